/*
 * shoal_mqttsn_codec.c - MQTT-SN v1.2 encode/decode (see shoal_mqttsn_codec.h).
 *
 * Every read is bounds-checked against the datagram length before it happens; the encoder
 * computes the exact size first and writes only when it fits.
 */
#include "shoal_mqttsn_codec.h"

#include <string.h>

void shoal_mqttsn_msg_init(shoal_mqttsn_msg *msg, uint8_t type)
{
    memset(msg, 0, sizeof(*msg));
    msg->type = type;
}

int shoal_mqttsn_flags_qos(uint8_t flags)
{
    switch ((flags & SHOAL_MQTTSN_FLAG_QOS_MASK) >> 5) {
    case 0u: return 0;
    case 1u: return 1;
    case 2u: return 2;
    default: return -1;
    }
}

uint8_t shoal_mqttsn_qos_flags(int qos)
{
    switch (qos) {
    case 1: return 0x20u;
    case 2: return 0x40u;
    case -1: return 0x60u;
    default: return 0x00u;
    }
}

static uint16_t read_u16(const uint8_t *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static void write_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)(v & 0xFFu);
}

static int topic_type_valid(uint8_t flags)
{
    return (flags & SHOAL_MQTTSN_FLAG_TOPIC_TYPE_MASK) != 0x03u;
}

/* Checks shared by encode and decode, on the fields only. Returns 0 or an error. */
static int check_fields(const shoal_mqttsn_msg *m)
{
    uint8_t topic_type = (uint8_t)(m->flags & SHOAL_MQTTSN_FLAG_TOPIC_TYPE_MASK);
    switch (m->type) {
    case SHOAL_MQTTSN_CONNECT:
        if (m->text_len < 1u || m->text_len > SHOAL_MQTTSN_CLIENT_ID_MAX) {
            return SHOAL_MQTTSN_ERR_BAD_FIELD;
        }
        if (m->protocol_id != SHOAL_MQTTSN_PROTOCOL_ID) {
            return SHOAL_MQTTSN_ERR_BAD_FIELD;
        }
        return 0;
    case SHOAL_MQTTSN_PINGREQ:
        return m->text_len > SHOAL_MQTTSN_CLIENT_ID_MAX ? SHOAL_MQTTSN_ERR_BAD_FIELD : 0;
    case SHOAL_MQTTSN_WILLTOPIC:
    case SHOAL_MQTTSN_WILLTOPICUPD:
        if (m->text_len > 0u && shoal_mqttsn_flags_qos(m->flags) < 0) {
            return SHOAL_MQTTSN_ERR_BAD_FIELD;
        }
        return 0;
    case SHOAL_MQTTSN_REGISTER:
        return m->text_len < 1u ? SHOAL_MQTTSN_ERR_BAD_FIELD : 0;
    case SHOAL_MQTTSN_PUBLISH:
        return topic_type_valid(m->flags) ? 0 : SHOAL_MQTTSN_ERR_BAD_FIELD;
    case SHOAL_MQTTSN_SUBSCRIBE:
    case SHOAL_MQTTSN_UNSUBSCRIBE:
        if (!topic_type_valid(m->flags)) {
            return SHOAL_MQTTSN_ERR_BAD_FIELD;
        }
        if (m->type == SHOAL_MQTTSN_SUBSCRIBE && shoal_mqttsn_flags_qos(m->flags) < 0) {
            return SHOAL_MQTTSN_ERR_BAD_FIELD;
        }
        if (topic_type == SHOAL_MQTTSN_TOPIC_NORMAL && m->text_len < 1u) {
            return SHOAL_MQTTSN_ERR_BAD_FIELD;
        }
        return 0;
    case SHOAL_MQTTSN_ENCAPSULATED:
        /* The Length octet covers only Length, MsgType, Ctrl and the node id. */
        if (m->text_len > 255u - 3u || m->data_len < 2u) {
            return SHOAL_MQTTSN_ERR_BAD_FIELD;
        }
        return 0;
    default:
        return 0;
    }
}

/* Body size in bytes for encoding `m`, or a negative error for an unknown type. */
static long body_size(const shoal_mqttsn_msg *m)
{
    uint8_t topic_type = (uint8_t)(m->flags & SHOAL_MQTTSN_FLAG_TOPIC_TYPE_MASK);
    switch (m->type) {
    case SHOAL_MQTTSN_ADVERTISE: return 3;
    case SHOAL_MQTTSN_SEARCHGW: return 1;
    case SHOAL_MQTTSN_GWINFO: return 1 + (long)m->text_len;
    case SHOAL_MQTTSN_CONNECT: return 4 + (long)m->text_len;
    case SHOAL_MQTTSN_CONNACK:
    case SHOAL_MQTTSN_WILLTOPICRESP:
    case SHOAL_MQTTSN_WILLMSGRESP: return 1;
    case SHOAL_MQTTSN_WILLTOPICREQ:
    case SHOAL_MQTTSN_WILLMSGREQ:
    case SHOAL_MQTTSN_PINGRESP: return 0;
    case SHOAL_MQTTSN_WILLTOPIC:
    case SHOAL_MQTTSN_WILLTOPICUPD: return m->text_len == 0u ? 0 : 1 + (long)m->text_len;
    case SHOAL_MQTTSN_WILLMSG:
    case SHOAL_MQTTSN_WILLMSGUPD: return (long)m->data_len;
    case SHOAL_MQTTSN_REGISTER: return 4 + (long)m->text_len;
    case SHOAL_MQTTSN_REGACK:
    case SHOAL_MQTTSN_PUBACK: return 5;
    case SHOAL_MQTTSN_PUBLISH: return 5 + (long)m->data_len;
    case SHOAL_MQTTSN_PUBREC:
    case SHOAL_MQTTSN_PUBREL:
    case SHOAL_MQTTSN_PUBCOMP:
    case SHOAL_MQTTSN_UNSUBACK: return 2;
    case SHOAL_MQTTSN_SUBSCRIBE:
    case SHOAL_MQTTSN_UNSUBSCRIBE:
        return topic_type == SHOAL_MQTTSN_TOPIC_NORMAL ? 3 + (long)m->text_len : 5;
    case SHOAL_MQTTSN_SUBACK: return 6;
    case SHOAL_MQTTSN_PINGREQ: return (long)m->text_len;
    case SHOAL_MQTTSN_DISCONNECT: return m->has_duration ? 2 : 0;
    default: return SHOAL_MQTTSN_ERR_UNKNOWN_TYPE;
    }
}

static int encode_encapsulated(const shoal_mqttsn_msg *m, uint8_t *out, size_t out_cap)
{
    size_t header = 3u + m->text_len;
    size_t total = header + m->data_len;
    if (m->text_len > 0u && m->text == NULL) {
        return SHOAL_MQTTSN_ERR_BAD_ARGUMENT;
    }
    if (m->data == NULL) {
        return SHOAL_MQTTSN_ERR_BAD_ARGUMENT;
    }
    if (total > SHOAL_MQTTSN_MAX_MESSAGE) {
        return SHOAL_MQTTSN_ERR_TOO_LONG;
    }
    if (total > out_cap) {
        return SHOAL_MQTTSN_ERR_BUFFER_TOO_SMALL;
    }
    out[0] = (uint8_t)header;
    out[1] = SHOAL_MQTTSN_ENCAPSULATED;
    out[2] = (uint8_t)((m->flags & 0xFCu) | (m->radius & 0x03u));
    if (m->text_len > 0u) {
        memcpy(&out[3], m->text, m->text_len);
    }
    memcpy(&out[header], m->data, m->data_len);
    return (int)total;
}

int shoal_mqttsn_encode(const shoal_mqttsn_msg *m, uint8_t *out, size_t out_cap)
{
    long body;
    size_t header;
    size_t total;
    uint8_t *p;
    uint8_t topic_type;
    int err;

    if (m == NULL || out == NULL) {
        return SHOAL_MQTTSN_ERR_BAD_ARGUMENT;
    }
    err = check_fields(m);
    if (err < 0) {
        return err;
    }
    if (m->type == SHOAL_MQTTSN_ENCAPSULATED) {
        return encode_encapsulated(m, out, out_cap);
    }
    body = body_size(m);
    if (body < 0) {
        return (int)body;
    }
    if ((unsigned long)body > SHOAL_MQTTSN_MAX_MESSAGE - 4u) {
        return SHOAL_MQTTSN_ERR_TOO_LONG;
    }
    header = ((unsigned long)body + 2u <= 255u) ? 2u : 4u;
    total = header + (size_t)body;
    if (total > out_cap) {
        return SHOAL_MQTTSN_ERR_BUFFER_TOO_SMALL;
    }
    if ((m->text_len > 0u && m->text == NULL) || (m->data_len > 0u && m->data == NULL)) {
        return SHOAL_MQTTSN_ERR_BAD_ARGUMENT;
    }
    if (header == 2u) {
        out[0] = (uint8_t)total;
        out[1] = m->type;
    } else {
        out[0] = 0x01u;
        write_u16(&out[1], (uint16_t)total);
        out[3] = m->type;
    }
    p = &out[header];
    topic_type = (uint8_t)(m->flags & SHOAL_MQTTSN_FLAG_TOPIC_TYPE_MASK);

    switch (m->type) {
    case SHOAL_MQTTSN_ADVERTISE:
        p[0] = m->gw_id;
        write_u16(&p[1], m->duration);
        break;
    case SHOAL_MQTTSN_SEARCHGW:
        p[0] = m->radius;
        break;
    case SHOAL_MQTTSN_GWINFO:
        p[0] = m->gw_id;
        if (m->text_len > 0u) {
            memcpy(&p[1], m->text, m->text_len);
        }
        break;
    case SHOAL_MQTTSN_CONNECT:
        p[0] = m->flags;
        p[1] = m->protocol_id;
        write_u16(&p[2], m->duration);
        memcpy(&p[4], m->text, m->text_len);
        break;
    case SHOAL_MQTTSN_CONNACK:
    case SHOAL_MQTTSN_WILLTOPICRESP:
    case SHOAL_MQTTSN_WILLMSGRESP:
        p[0] = m->return_code;
        break;
    case SHOAL_MQTTSN_WILLTOPIC:
    case SHOAL_MQTTSN_WILLTOPICUPD:
        if (m->text_len > 0u) {
            p[0] = m->flags;
            memcpy(&p[1], m->text, m->text_len);
        }
        break;
    case SHOAL_MQTTSN_WILLMSG:
    case SHOAL_MQTTSN_WILLMSGUPD:
        if (m->data_len > 0u) {
            memcpy(p, m->data, m->data_len);
        }
        break;
    case SHOAL_MQTTSN_REGISTER:
        write_u16(&p[0], m->topic_id);
        write_u16(&p[2], m->msg_id);
        memcpy(&p[4], m->text, m->text_len);
        break;
    case SHOAL_MQTTSN_REGACK:
    case SHOAL_MQTTSN_PUBACK:
        write_u16(&p[0], m->topic_id);
        write_u16(&p[2], m->msg_id);
        p[4] = m->return_code;
        break;
    case SHOAL_MQTTSN_PUBLISH:
        p[0] = m->flags;
        write_u16(&p[1], m->topic_id);
        write_u16(&p[3], m->msg_id);
        if (m->data_len > 0u) {
            memcpy(&p[5], m->data, m->data_len);
        }
        break;
    case SHOAL_MQTTSN_PUBREC:
    case SHOAL_MQTTSN_PUBREL:
    case SHOAL_MQTTSN_PUBCOMP:
    case SHOAL_MQTTSN_UNSUBACK:
        write_u16(&p[0], m->msg_id);
        break;
    case SHOAL_MQTTSN_SUBSCRIBE:
    case SHOAL_MQTTSN_UNSUBSCRIBE:
        p[0] = m->flags;
        write_u16(&p[1], m->msg_id);
        if (topic_type == SHOAL_MQTTSN_TOPIC_NORMAL) {
            memcpy(&p[3], m->text, m->text_len);
        } else {
            write_u16(&p[3], m->topic_id);
        }
        break;
    case SHOAL_MQTTSN_SUBACK:
        p[0] = m->flags;
        write_u16(&p[1], m->topic_id);
        write_u16(&p[3], m->msg_id);
        p[5] = m->return_code;
        break;
    case SHOAL_MQTTSN_PINGREQ:
        if (m->text_len > 0u) {
            memcpy(p, m->text, m->text_len);
        }
        break;
    case SHOAL_MQTTSN_DISCONNECT:
        if (m->has_duration) {
            write_u16(p, m->duration);
        }
        break;
    default:
        break; /* WILLTOPICREQ, WILLMSGREQ, PINGRESP: header only */
    }
    return (int)total;
}

static int decode_encapsulated(const uint8_t *in, size_t len, shoal_mqttsn_msg *m)
{
    size_t header = in[0];
    if (header < 3u) {
        return SHOAL_MQTTSN_ERR_BAD_FIELD;
    }
    if (len < header + 2u) {
        return SHOAL_MQTTSN_ERR_TRUNCATED; /* needs at least a 2-byte inner message */
    }
    m->radius = (uint8_t)(in[2] & 0x03u);
    m->flags = (uint8_t)(in[2] & 0xFCu); /* reserved Ctrl bits, kept so re-encoding is exact */
    m->text = &in[3];
    m->text_len = header - 3u;
    m->data = &in[header];
    m->data_len = len - header;
    return (int)len;
}

/* Whether `body` bytes after the header is a legal body size for `type`. */
static int body_len_ok(uint8_t type, size_t body)
{
    switch (type) {
    case SHOAL_MQTTSN_ADVERTISE: return body == 3u;
    case SHOAL_MQTTSN_SEARCHGW: return body == 1u;
    case SHOAL_MQTTSN_GWINFO: return body >= 1u;
    case SHOAL_MQTTSN_CONNECT: return body >= 4u;
    case SHOAL_MQTTSN_CONNACK:
    case SHOAL_MQTTSN_WILLTOPICRESP:
    case SHOAL_MQTTSN_WILLMSGRESP: return body == 1u;
    case SHOAL_MQTTSN_WILLTOPICREQ:
    case SHOAL_MQTTSN_WILLMSGREQ:
    case SHOAL_MQTTSN_PINGRESP: return body == 0u;
    case SHOAL_MQTTSN_WILLTOPIC:
    case SHOAL_MQTTSN_WILLTOPICUPD: return body == 0u || body >= 2u;
    case SHOAL_MQTTSN_WILLMSG:
    case SHOAL_MQTTSN_WILLMSGUPD:
    case SHOAL_MQTTSN_PINGREQ: return 1;
    case SHOAL_MQTTSN_REGISTER: return body >= 4u;
    case SHOAL_MQTTSN_REGACK:
    case SHOAL_MQTTSN_PUBACK: return body == 5u;
    case SHOAL_MQTTSN_PUBLISH: return body >= 5u;
    case SHOAL_MQTTSN_PUBREC:
    case SHOAL_MQTTSN_PUBREL:
    case SHOAL_MQTTSN_PUBCOMP:
    case SHOAL_MQTTSN_UNSUBACK: return body == 2u;
    case SHOAL_MQTTSN_SUBSCRIBE:
    case SHOAL_MQTTSN_UNSUBSCRIBE: return body >= 3u;
    case SHOAL_MQTTSN_SUBACK: return body == 6u;
    case SHOAL_MQTTSN_DISCONNECT: return body == 0u || body == 2u;
    default: return 0;
    }
}

static int type_known(uint8_t type)
{
    return type <= SHOAL_MQTTSN_WILLMSGRESP && type != 0x03u && type != 0x11u && type != 0x19u;
}

int shoal_mqttsn_decode(const uint8_t *in, size_t len, shoal_mqttsn_msg *m)
{
    size_t header;
    size_t declared;
    size_t body;
    const uint8_t *p;
    uint8_t type;

    if (in == NULL || m == NULL) {
        return SHOAL_MQTTSN_ERR_BAD_ARGUMENT;
    }
    memset(m, 0, sizeof(*m));
    if (len < 2u) {
        return SHOAL_MQTTSN_ERR_TRUNCATED;
    }
    if (in[0] == 0x01u) {
        if (len < 4u) {
            return SHOAL_MQTTSN_ERR_TRUNCATED;
        }
        header = 4u;
        declared = read_u16(&in[1]);
        type = in[3];
    } else {
        header = 2u;
        declared = in[0];
        type = in[1];
    }
    m->type = type;
    if (type == SHOAL_MQTTSN_ENCAPSULATED && header == 2u) {
        return decode_encapsulated(in, len, m);
    }
    if (!type_known(type)) {
        return SHOAL_MQTTSN_ERR_UNKNOWN_TYPE;
    }
    if (declared != len) {
        return declared > len ? SHOAL_MQTTSN_ERR_TRUNCATED : SHOAL_MQTTSN_ERR_LENGTH_MISMATCH;
    }
    if (declared < header) {
        return SHOAL_MQTTSN_ERR_LENGTH_MISMATCH;
    }
    body = len - header;
    p = &in[header];
    if (!body_len_ok(type, body)) {
        return SHOAL_MQTTSN_ERR_BAD_FIELD;
    }

    switch (type) {
    case SHOAL_MQTTSN_ADVERTISE:
        m->gw_id = p[0];
        m->duration = read_u16(&p[1]);
        break;
    case SHOAL_MQTTSN_SEARCHGW:
        m->radius = p[0];
        break;
    case SHOAL_MQTTSN_GWINFO:
        m->gw_id = p[0];
        m->text = &p[1];
        m->text_len = body - 1u;
        break;
    case SHOAL_MQTTSN_CONNECT:
        m->flags = p[0];
        m->protocol_id = p[1];
        m->duration = read_u16(&p[2]);
        m->text = &p[4];
        m->text_len = body - 4u;
        break;
    case SHOAL_MQTTSN_CONNACK:
    case SHOAL_MQTTSN_WILLTOPICRESP:
    case SHOAL_MQTTSN_WILLMSGRESP:
        m->return_code = p[0];
        break;
    case SHOAL_MQTTSN_WILLTOPIC:
    case SHOAL_MQTTSN_WILLTOPICUPD:
        if (body > 0u) {
            m->flags = p[0];
            m->text = &p[1];
            m->text_len = body - 1u;
        }
        break;
    case SHOAL_MQTTSN_WILLMSG:
    case SHOAL_MQTTSN_WILLMSGUPD:
        m->data = p;
        m->data_len = body;
        break;
    case SHOAL_MQTTSN_REGISTER:
        m->topic_id = read_u16(&p[0]);
        m->msg_id = read_u16(&p[2]);
        m->text = &p[4];
        m->text_len = body - 4u;
        break;
    case SHOAL_MQTTSN_REGACK:
    case SHOAL_MQTTSN_PUBACK:
        m->topic_id = read_u16(&p[0]);
        m->msg_id = read_u16(&p[2]);
        m->return_code = p[4];
        break;
    case SHOAL_MQTTSN_PUBLISH:
        m->flags = p[0];
        m->topic_id = read_u16(&p[1]);
        m->msg_id = read_u16(&p[3]);
        m->data = &p[5];
        m->data_len = body - 5u;
        break;
    case SHOAL_MQTTSN_PUBREC:
    case SHOAL_MQTTSN_PUBREL:
    case SHOAL_MQTTSN_PUBCOMP:
    case SHOAL_MQTTSN_UNSUBACK:
        m->msg_id = read_u16(p);
        break;
    case SHOAL_MQTTSN_SUBSCRIBE:
    case SHOAL_MQTTSN_UNSUBSCRIBE:
        m->flags = p[0];
        m->msg_id = read_u16(&p[1]);
        if ((m->flags & SHOAL_MQTTSN_FLAG_TOPIC_TYPE_MASK) == SHOAL_MQTTSN_TOPIC_NORMAL) {
            m->text = &p[3];
            m->text_len = body - 3u;
        } else if (body == 5u) {
            m->topic_id = read_u16(&p[3]);
        } else {
            return SHOAL_MQTTSN_ERR_BAD_FIELD;
        }
        break;
    case SHOAL_MQTTSN_SUBACK:
        m->flags = p[0];
        m->topic_id = read_u16(&p[1]);
        m->msg_id = read_u16(&p[3]);
        m->return_code = p[5];
        break;
    case SHOAL_MQTTSN_PINGREQ:
        m->text = p;
        m->text_len = body;
        break;
    case SHOAL_MQTTSN_DISCONNECT:
        if (body == 2u) {
            m->has_duration = 1u;
            m->duration = read_u16(p);
        }
        break;
    default:
        break;
    }
    {
        int err = check_fields(m);
        if (err < 0) {
            return err;
        }
    }
    return (int)len;
}

const char *shoal_mqttsn_strerror(int err)
{
    switch (err) {
    case SHOAL_MQTTSN_ERR_BUFFER_TOO_SMALL: return "output buffer too small";
    case SHOAL_MQTTSN_ERR_TRUNCATED: return "datagram shorter than its Length field or header";
    case SHOAL_MQTTSN_ERR_LENGTH_MISMATCH: return "Length field does not match the datagram";
    case SHOAL_MQTTSN_ERR_UNKNOWN_TYPE: return "reserved or unknown MsgType";
    case SHOAL_MQTTSN_ERR_BAD_FIELD:
        return "invalid field (body size, flags, protocol id or client id of 1..23 bytes)";
    case SHOAL_MQTTSN_ERR_TOO_LONG: return "message longer than 65535 bytes";
    case SHOAL_MQTTSN_ERR_BAD_ARGUMENT: return "NULL buffer or message";
    default: return err >= 0 ? "ok" : "unknown error";
    }
}

const char *shoal_mqttsn_type_name(uint8_t type)
{
    static const char *const names[] = {
        "ADVERTISE", "SEARCHGW", "GWINFO", "reserved", "CONNECT", "CONNACK",
        "WILLTOPICREQ", "WILLTOPIC", "WILLMSGREQ", "WILLMSG", "REGISTER", "REGACK",
        "PUBLISH", "PUBACK", "PUBCOMP", "PUBREC", "PUBREL", "reserved", "SUBSCRIBE",
        "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT",
        "reserved", "WILLTOPICUPD", "WILLTOPICRESP", "WILLMSGUPD", "WILLMSGRESP",
    };
    if (type < sizeof(names) / sizeof(names[0])) {
        return names[type];
    }
    return type == SHOAL_MQTTSN_ENCAPSULATED ? "ENCAPSULATED" : "reserved";
}
