/*
 * shoal_mqttsn_codec.h - sans-IO encoder/decoder for every MQTT-SN v1.2 message.
 *
 * Responsible for: turning one datagram (bytes) into a shoal_mqttsn_msg and back, with strict
 * validation (length field must equal the datagram length, per-type body sizes, client id
 * 1..23 bytes, reserved flag values rejected). It never reads or writes outside the buffers
 * it is given.
 * Must not: do I/O, allocate, keep state between calls, or interpret the session (whether a
 * message is acceptable *now* is the client state machine's business).
 *
 * Buffer ownership:
 *  - shoal_mqttsn_encode() writes into a caller-owned buffer and returns the number of bytes
 *    written or a negative SHOAL_MQTTSN_ERR_* code. The message's pointer fields are only read.
 *  - shoal_mqttsn_decode() fills a caller-owned shoal_mqttsn_msg whose pointer fields (text,
 *    data) point INTO the caller's datagram: they are valid as long as that buffer is, and are
 *    not NUL-terminated (use the *_len fields).
 *
 * Wire format (all integers big-endian): Length(1, or 0x01 + 2 octets) MsgType(1) body.
 */
#ifndef SHOAL_MQTTSN_CODEC_H
#define SHOAL_MQTTSN_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Message types (spec 5.2.2). */
#define SHOAL_MQTTSN_ADVERTISE 0x00u
#define SHOAL_MQTTSN_SEARCHGW 0x01u
#define SHOAL_MQTTSN_GWINFO 0x02u
#define SHOAL_MQTTSN_CONNECT 0x04u
#define SHOAL_MQTTSN_CONNACK 0x05u
#define SHOAL_MQTTSN_WILLTOPICREQ 0x06u
#define SHOAL_MQTTSN_WILLTOPIC 0x07u
#define SHOAL_MQTTSN_WILLMSGREQ 0x08u
#define SHOAL_MQTTSN_WILLMSG 0x09u
#define SHOAL_MQTTSN_REGISTER 0x0Au
#define SHOAL_MQTTSN_REGACK 0x0Bu
#define SHOAL_MQTTSN_PUBLISH 0x0Cu
#define SHOAL_MQTTSN_PUBACK 0x0Du
#define SHOAL_MQTTSN_PUBCOMP 0x0Eu
#define SHOAL_MQTTSN_PUBREC 0x0Fu
#define SHOAL_MQTTSN_PUBREL 0x10u
#define SHOAL_MQTTSN_SUBSCRIBE 0x12u
#define SHOAL_MQTTSN_SUBACK 0x13u
#define SHOAL_MQTTSN_UNSUBSCRIBE 0x14u
#define SHOAL_MQTTSN_UNSUBACK 0x15u
#define SHOAL_MQTTSN_PINGREQ 0x16u
#define SHOAL_MQTTSN_PINGRESP 0x17u
#define SHOAL_MQTTSN_DISCONNECT 0x18u
#define SHOAL_MQTTSN_WILLTOPICUPD 0x1Au
#define SHOAL_MQTTSN_WILLTOPICRESP 0x1Bu
#define SHOAL_MQTTSN_WILLMSGUPD 0x1Cu
#define SHOAL_MQTTSN_WILLMSGRESP 0x1Du
#define SHOAL_MQTTSN_ENCAPSULATED 0xFEu

/* Flags octet (spec 5.3.4). */
#define SHOAL_MQTTSN_FLAG_DUP 0x80u
#define SHOAL_MQTTSN_FLAG_QOS_MASK 0x60u
#define SHOAL_MQTTSN_FLAG_RETAIN 0x10u
#define SHOAL_MQTTSN_FLAG_WILL 0x08u
#define SHOAL_MQTTSN_FLAG_CLEAN 0x04u
#define SHOAL_MQTTSN_FLAG_TOPIC_TYPE_MASK 0x03u

/* Topic id types (low two bits of the flags octet). */
#define SHOAL_MQTTSN_TOPIC_NORMAL 0x00u     /* registered id, or a name in (UN)SUBSCRIBE */
#define SHOAL_MQTTSN_TOPIC_PREDEFINED 0x01u /* id agreed in advance */
#define SHOAL_MQTTSN_TOPIC_SHORT 0x02u      /* two characters carried in the TopicId field */

/* Return codes (spec 5.3.10). 0x04..0xFF are reserved; the decoder passes them through. */
#define SHOAL_MQTTSN_RC_ACCEPTED 0x00u
#define SHOAL_MQTTSN_RC_CONGESTION 0x01u
#define SHOAL_MQTTSN_RC_INVALID_TOPIC_ID 0x02u
#define SHOAL_MQTTSN_RC_NOT_SUPPORTED 0x03u

#define SHOAL_MQTTSN_PROTOCOL_ID 0x01u
#define SHOAL_MQTTSN_CLIENT_ID_MAX 23u
#define SHOAL_MQTTSN_MAX_MESSAGE 65535u

/* Errors returned (negated) by encode/decode. */
#define SHOAL_MQTTSN_ERR_BUFFER_TOO_SMALL (-1) /* encode: output buffer cannot hold the message */
#define SHOAL_MQTTSN_ERR_TRUNCATED (-2)        /* decode: datagram shorter than its header/body */
#define SHOAL_MQTTSN_ERR_LENGTH_MISMATCH (-3)  /* decode: Length field != datagram length */
#define SHOAL_MQTTSN_ERR_UNKNOWN_TYPE (-4)     /* reserved/unknown MsgType */
#define SHOAL_MQTTSN_ERR_BAD_FIELD (-5)        /* reserved flag value, bad client id, bad body size */
#define SHOAL_MQTTSN_ERR_TOO_LONG (-6)         /* encode: message would exceed 65535 bytes */
#define SHOAL_MQTTSN_ERR_BAD_ARGUMENT (-7)     /* NULL pointer where data is required */

/*
 * One decoded (or to-be-encoded) message. Which fields are meaningful depends on `type`:
 *   ADVERTISE      gw_id, duration (s until next ADVERTISE)
 *   SEARCHGW       radius
 *   GWINFO         gw_id, text = GwAdd (may be empty)
 *   CONNECT        flags (WILL, CLEAN), protocol_id, duration (keep-alive s), text = ClientId
 *   CONNACK, WILLTOPICRESP, WILLMSGRESP   return_code
 *   WILLTOPICREQ, WILLMSGREQ, PINGRESP    (no body)
 *   WILLTOPIC, WILLTOPICUPD  flags (QoS, RETAIN), text = WillTopic; text_len 0 = empty message
 *   WILLMSG, WILLMSGUPD      data = WillMsg
 *   REGISTER       topic_id, msg_id, text = TopicName
 *   REGACK         topic_id, msg_id, return_code
 *   PUBLISH        flags, topic_id, msg_id, data = payload
 *   PUBACK         topic_id, msg_id, return_code
 *   PUBREC, PUBREL, PUBCOMP, UNSUBACK     msg_id
 *   SUBSCRIBE, UNSUBSCRIBE  flags, msg_id, and text = TopicName when the topic type is NORMAL,
 *                  else topic_id (predefined id, or a short name as ('a' << 8) | 'b')
 *   SUBACK         flags (granted QoS), topic_id, msg_id, return_code
 *   PINGREQ        text = ClientId (text_len 0 when absent)
 *   DISCONNECT     has_duration, duration (sleep s)
 *   ENCAPSULATED   radius (Ctrl bits 1-0), flags = reserved Ctrl bits 7-2 (normally 0),
 *                  text = WirelessNodeId, data = encapsulated message
 *                  (decode it with another shoal_mqttsn_decode call)
 */
typedef struct {
    uint8_t type;
    uint8_t flags;
    uint8_t return_code;
    uint8_t gw_id;
    uint8_t radius;
    uint8_t protocol_id;
    uint8_t has_duration;
    uint16_t duration;
    uint16_t topic_id;
    uint16_t msg_id;
    const uint8_t *text;
    size_t text_len;
    const uint8_t *data;
    size_t data_len;
} shoal_mqttsn_msg;

/* Zero every field and set `type`; the usual start before filling a message to encode. */
void shoal_mqttsn_msg_init(shoal_mqttsn_msg *msg, uint8_t type);

/*
 * Encode `msg` into out[0..out_cap). Returns the number of bytes written (the 1-octet length
 * form when the total is <= 255 bytes, else the 3-octet form) or a negative SHOAL_MQTTSN_ERR_*.
 * The encoder applies the same field rules as the decoder (so what it writes, it can read).
 */
int shoal_mqttsn_encode(const shoal_mqttsn_msg *msg, uint8_t *out, size_t out_cap);

/*
 * Decode exactly one datagram `in[0..len)` into *msg. Returns the number of bytes consumed
 * (always `len` on success) or a negative SHOAL_MQTTSN_ERR_*. On error *msg is unspecified.
 */
int shoal_mqttsn_decode(const uint8_t *in, size_t len, shoal_mqttsn_msg *msg);

/* QoS carried in a flags octet: 0, 1, 2, or -1 (bits 11). */
int shoal_mqttsn_flags_qos(uint8_t flags);
/* Flags bits for QoS -1..2; any other value maps to QoS 0 bits. */
uint8_t shoal_mqttsn_qos_flags(int qos);

/* Static, human-readable text for an error code or a message type (never NULL). */
const char *shoal_mqttsn_strerror(int err);
const char *shoal_mqttsn_type_name(uint8_t type);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_MQTTSN_CODEC_H */
