/*
 * shoal_frame.h - serial framing of MQTT-SN messages: COBS(M || CRC16(M)) || 0x00.
 *
 * Responsible for: the byte-stream contract shared with the Python gateway and the MicroPython
 * client. CRC16 is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0),
 * appended high byte first; COBS is the standard encoding (blocks of up to 254 data bytes,
 * code 0xFF for a full block), so an encoded frame holds no 0x00 and 0x00 ends each frame.
 * The decoder is incremental (one byte per call), drops and counts bad frames, and
 * resynchronises on the next 0x00. Empty frames (0x00 0x00) are ignored silently.
 * Must not: do I/O, allocate, or look inside the MQTT-SN message.
 *
 * Buffer ownership: the encoder writes into a caller buffer; the decoder works in place in a
 * caller-provided buffer of SHOAL_FRAME_BUFFER_BYTES(max_message_bytes) bytes that must outlive
 * the decoder. A delivered message points into that buffer and is valid until the next push.
 */
#ifndef SHOAL_FRAME_H
#define SHOAL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHOAL_FRAME_DEFAULT_MAX_MESSAGE 1024u

/* COBS overhead for n data bytes: one code byte per started 254-byte block (at least one). */
#define SHOAL_FRAME_COBS_OVERHEAD(n) (((n) / 254u) + 1u)
/* Largest encoded frame body (without the 0x00 delimiter) for a message of m bytes. */
#define SHOAL_FRAME_ENCODED_MAX(m) ((m) + 2u + SHOAL_FRAME_COBS_OVERHEAD((m) + 2u))
/* Decoder buffer size for messages up to m bytes. */
#define SHOAL_FRAME_BUFFER_BYTES(m) SHOAL_FRAME_ENCODED_MAX(m)

#define SHOAL_FRAME_ERR_BUFFER_TOO_SMALL (-1)

/* CRC-16/CCITT-FALSE over data[0..len); check value for "123456789" is 0x29B1. */
uint16_t shoal_crc16_ccitt(const uint8_t *data, size_t len);

/*
 * Encode msg[0..len) as one frame including the trailing 0x00 delimiter (no leading 0x00: a
 * sender that wants to flush the receiver writes one before calling its UART).
 * Returns the bytes written (at most SHOAL_FRAME_ENCODED_MAX(len) + 1) or
 * SHOAL_FRAME_ERR_BUFFER_TOO_SMALL.
 */
int shoal_frame_encode(const uint8_t *msg, size_t len, uint8_t *out, size_t out_cap);

typedef struct {
    uint8_t *buf;          /* caller-owned, `cap` bytes */
    size_t cap;            /* encoded bytes accepted per frame */
    size_t len;            /* encoded bytes collected so far */
    uint8_t discarding;    /* 1 after an oversized frame, until the next 0x00 */
    uint32_t frames_ok;        /* messages delivered */
    uint32_t frames_malformed; /* bad COBS, shorter than 3 decoded bytes, or CRC mismatch */
    uint32_t frames_oversized; /* longer than `cap`; dropped up to the next 0x00 */
} shoal_frame_decoder;

/*
 * Prepare a decoder for messages of up to max_message_bytes; `buf` must hold
 * SHOAL_FRAME_BUFFER_BYTES(max_message_bytes) bytes (buf_cap is checked; a smaller buffer
 * lowers the maximum accordingly).
 */
void shoal_frame_decoder_init(shoal_frame_decoder *dec, uint8_t *buf, size_t buf_cap,
                              size_t max_message_bytes);

/*
 * Feed one received byte. Returns 1 and sets *msg / *msg_len (pointing into the decoder's
 * buffer, CRC removed) when this byte completed a good frame; 0 otherwise.
 */
int shoal_frame_decoder_push(shoal_frame_decoder *dec, uint8_t byte, const uint8_t **msg,
                             size_t *msg_len);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_FRAME_H */
