/*
 * test_mqttsn_codec.c - golden vectors for the MQTT-SN v1.2 codec and the serial framing.
 *
 * Every byte string below was written by hand from the v1.2 specification's message layouts
 * (section 5): each vector is decoded and compared field by field, and the fields are encoded
 * and compared byte for byte. Negative vectors must be rejected with the stated error.
 * Prints "N passed, N failed"; exit status 0 only when nothing failed.
 */
#include <stdio.h>
#include <string.h>

#include "shoal_frame.h"
#include "shoal_mqttsn_codec.h"

static int passed;
static int failed;

#define CHECK(cond, what)                                                                    \
    do {                                                                                     \
        if (cond) {                                                                          \
            passed++;                                                                        \
        } else {                                                                             \
            failed++;                                                                        \
            printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, what, #cond);                  \
        }                                                                                    \
    } while (0)

#define BYTES(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
#define ARR(...) ((const uint8_t[]){__VA_ARGS__})

static int same_span(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0u || memcmp(a, b, alen) == 0);
}

static int same_msg(const shoal_mqttsn_msg *a, const shoal_mqttsn_msg *b)
{
    return a->type == b->type && a->flags == b->flags && a->return_code == b->return_code &&
           a->gw_id == b->gw_id && a->radius == b->radius && a->protocol_id == b->protocol_id &&
           a->has_duration == b->has_duration && a->duration == b->duration &&
           a->topic_id == b->topic_id && a->msg_id == b->msg_id &&
           same_span(a->text, a->text_len, b->text, b->text_len) &&
           same_span(a->data, a->data_len, b->data, b->data_len);
}

static shoal_mqttsn_msg M(uint8_t type)
{
    shoal_mqttsn_msg m;
    shoal_mqttsn_msg_init(&m, type);
    return m;
}

static void check_vector(const char *name, const uint8_t *bytes, size_t len,
                         const shoal_mqttsn_msg *expect)
{
    shoal_mqttsn_msg got;
    uint8_t out[512];
    int n = shoal_mqttsn_decode(bytes, len, &got);
    char what[96];
    snprintf(what, sizeof(what), "decode %s", name);
    CHECK(n == (int)len, what);
    if (n == (int)len) {
        CHECK(same_msg(&got, expect), what);
    }
    snprintf(what, sizeof(what), "encode %s", name);
    n = shoal_mqttsn_encode(expect, out, sizeof(out));
    CHECK(n == (int)len && memcmp(out, bytes, len) == 0, what);
    /* One byte less room must be refused, never overrun. */
    n = shoal_mqttsn_encode(expect, out, len - 1u);
    CHECK(n == SHOAL_MQTTSN_ERR_BUFFER_TOO_SMALL, what);
}

static void check_reject(const char *name, const uint8_t *bytes, size_t len, int err)
{
    shoal_mqttsn_msg got;
    int n = shoal_mqttsn_decode(bytes, len, &got);
    char what[96];
    snprintf(what, sizeof(what), "reject %s (got %d)", name, n);
    CHECK(n == err, what);
}

static void golden_vectors(void)
{
    shoal_mqttsn_msg m;

    m = M(SHOAL_MQTTSN_ADVERTISE); m.gw_id = 5; m.duration = 900;
    check_vector("ADVERTISE", BYTES(0x05, 0x00, 0x05, 0x03, 0x84), &m);
    m = M(SHOAL_MQTTSN_SEARCHGW); m.radius = 1;
    check_vector("SEARCHGW", BYTES(0x03, 0x01, 0x01), &m);
    m = M(SHOAL_MQTTSN_GWINFO); m.gw_id = 7;
    check_vector("GWINFO", BYTES(0x03, 0x02, 0x07), &m);
    m = M(SHOAL_MQTTSN_GWINFO); m.gw_id = 7; m.text = ARR(0x7F, 0x00, 0x00, 0x01);
    m.text_len = 4;
    check_vector("GWINFO+GwAdd", BYTES(0x07, 0x02, 0x07, 0x7F, 0x00, 0x00, 0x01), &m);
    m = M(SHOAL_MQTTSN_CONNECT); m.flags = 0x0C; m.protocol_id = 1; m.duration = 60;
    m.text = (const uint8_t *)"dev1"; m.text_len = 4;
    check_vector("CONNECT will+clean",
                 BYTES(0x0A, 0x04, 0x0C, 0x01, 0x00, 0x3C, 0x64, 0x65, 0x76, 0x31), &m);
    m = M(SHOAL_MQTTSN_CONNECT); m.flags = 0x00; m.protocol_id = 1; m.duration = 0xFFFF;
    m.text = (const uint8_t *)"abcdefghijklmnopqrstuvw"; m.text_len = 23;
    check_vector("CONNECT 23-byte id",
                 BYTES(0x1D, 0x04, 0x00, 0x01, 0xFF, 0xFF, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
                       'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w'),
                 &m);
    m = M(SHOAL_MQTTSN_CONNACK); m.return_code = 0;
    check_vector("CONNACK accepted", BYTES(0x03, 0x05, 0x00), &m);
    m = M(SHOAL_MQTTSN_CONNACK); m.return_code = 3;
    check_vector("CONNACK not supported", BYTES(0x03, 0x05, 0x03), &m);
    m = M(SHOAL_MQTTSN_WILLTOPICREQ);
    check_vector("WILLTOPICREQ", BYTES(0x02, 0x06), &m);
    m = M(SHOAL_MQTTSN_WILLMSGREQ);
    check_vector("WILLMSGREQ", BYTES(0x02, 0x08), &m);
    m = M(SHOAL_MQTTSN_WILLTOPIC); m.flags = 0x30; m.text = (const uint8_t *)"w/t"; m.text_len = 3;
    check_vector("WILLTOPIC qos1 retain", BYTES(0x06, 0x07, 0x30, 0x77, 0x2F, 0x74), &m);
    m = M(SHOAL_MQTTSN_WILLTOPIC);
    check_vector("WILLTOPIC empty (delete will)", BYTES(0x02, 0x07), &m);
    m = M(SHOAL_MQTTSN_WILLMSG); m.data = (const uint8_t *)"bye"; m.data_len = 3;
    check_vector("WILLMSG", BYTES(0x05, 0x09, 0x62, 0x79, 0x65), &m);
    m = M(SHOAL_MQTTSN_REGISTER); m.topic_id = 0; m.msg_id = 1;
    m.text = (const uint8_t *)"a/b"; m.text_len = 3;
    check_vector("REGISTER from client",
                 BYTES(0x09, 0x0A, 0x00, 0x00, 0x00, 0x01, 0x61, 0x2F, 0x62), &m);
    m = M(SHOAL_MQTTSN_REGACK); m.topic_id = 0x11; m.msg_id = 1; m.return_code = 0;
    check_vector("REGACK", BYTES(0x07, 0x0B, 0x00, 0x11, 0x00, 0x01, 0x00), &m);
    m = M(SHOAL_MQTTSN_PUBLISH); m.flags = 0x20; m.topic_id = 0x11; m.msg_id = 2;
    m.data = (const uint8_t *)"hi"; m.data_len = 2;
    check_vector("PUBLISH qos1", BYTES(0x09, 0x0C, 0x20, 0x00, 0x11, 0x00, 0x02, 0x68, 0x69),
                 &m);
    m = M(SHOAL_MQTTSN_PUBLISH); m.flags = 0xC0; m.topic_id = 0x11; m.msg_id = 0x1234;
    check_vector("PUBLISH qos2 dup empty payload",
                 BYTES(0x07, 0x0C, 0xC0, 0x00, 0x11, 0x12, 0x34), &m);
    m = M(SHOAL_MQTTSN_PUBLISH); m.flags = 0x72; m.topic_id = 0x6162; m.msg_id = 0;
    m.data = ARR(0x01); m.data_len = 1;
    check_vector("PUBLISH qos-1 retain short name",
                 BYTES(0x08, 0x0C, 0x72, 0x61, 0x62, 0x00, 0x00, 0x01), &m);
    m = M(SHOAL_MQTTSN_PUBLISH); m.flags = 0x01; m.topic_id = 0x0102; m.msg_id = 0;
    check_vector("PUBLISH qos0 predefined", BYTES(0x07, 0x0C, 0x01, 0x01, 0x02, 0x00, 0x00),
                 &m);
    m = M(SHOAL_MQTTSN_PUBACK); m.topic_id = 0x11; m.msg_id = 2; m.return_code = 2;
    check_vector("PUBACK invalid topic id", BYTES(0x07, 0x0D, 0x00, 0x11, 0x00, 0x02, 0x02), &m);
    m = M(SHOAL_MQTTSN_PUBREC); m.msg_id = 3;
    check_vector("PUBREC", BYTES(0x04, 0x0F, 0x00, 0x03), &m);
    m = M(SHOAL_MQTTSN_PUBREL); m.msg_id = 3;
    check_vector("PUBREL", BYTES(0x04, 0x10, 0x00, 0x03), &m);
    m = M(SHOAL_MQTTSN_PUBCOMP); m.msg_id = 3;
    check_vector("PUBCOMP", BYTES(0x04, 0x0E, 0x00, 0x03), &m);
    m = M(SHOAL_MQTTSN_SUBSCRIBE); m.flags = 0x20; m.msg_id = 4;
    m.text = (const uint8_t *)"s/#"; m.text_len = 3;
    check_vector("SUBSCRIBE wildcard name",
                 BYTES(0x08, 0x12, 0x20, 0x00, 0x04, 0x73, 0x2F, 0x23), &m);
    m = M(SHOAL_MQTTSN_SUBSCRIBE); m.flags = 0xC1; m.msg_id = 5; m.topic_id = 0x0102;
    check_vector("SUBSCRIBE predefined qos2 dup",
                 BYTES(0x07, 0x12, 0xC1, 0x00, 0x05, 0x01, 0x02), &m);
    m = M(SHOAL_MQTTSN_SUBACK); m.flags = 0x20; m.topic_id = 0; m.msg_id = 4; m.return_code = 0;
    check_vector("SUBACK wildcard", BYTES(0x08, 0x13, 0x20, 0x00, 0x00, 0x00, 0x04, 0x00), &m);
    m = M(SHOAL_MQTTSN_UNSUBSCRIBE); m.flags = 0x02; m.msg_id = 6; m.topic_id = 0x7879;
    check_vector("UNSUBSCRIBE short name", BYTES(0x07, 0x14, 0x02, 0x00, 0x06, 0x78, 0x79), &m);
    m = M(SHOAL_MQTTSN_UNSUBSCRIBE); m.flags = 0x00; m.msg_id = 7;
    m.text = (const uint8_t *)"a"; m.text_len = 1;
    check_vector("UNSUBSCRIBE name", BYTES(0x06, 0x14, 0x00, 0x00, 0x07, 0x61), &m);
    m = M(SHOAL_MQTTSN_UNSUBACK); m.msg_id = 6;
    check_vector("UNSUBACK", BYTES(0x04, 0x15, 0x00, 0x06), &m);
    m = M(SHOAL_MQTTSN_PINGREQ);
    check_vector("PINGREQ", BYTES(0x02, 0x16), &m);
    m = M(SHOAL_MQTTSN_PINGREQ); m.text = (const uint8_t *)"dev1"; m.text_len = 4;
    check_vector("PINGREQ waking client", BYTES(0x06, 0x16, 0x64, 0x65, 0x76, 0x31), &m);
    m = M(SHOAL_MQTTSN_PINGRESP);
    check_vector("PINGRESP", BYTES(0x02, 0x17), &m);
    m = M(SHOAL_MQTTSN_DISCONNECT);
    check_vector("DISCONNECT", BYTES(0x02, 0x18), &m);
    m = M(SHOAL_MQTTSN_DISCONNECT); m.has_duration = 1; m.duration = 300;
    check_vector("DISCONNECT sleep 300 s", BYTES(0x04, 0x18, 0x01, 0x2C), &m);
    m = M(SHOAL_MQTTSN_WILLTOPICUPD); m.flags = 0x40; m.text = (const uint8_t *)"t"; m.text_len = 1;
    check_vector("WILLTOPICUPD", BYTES(0x04, 0x1A, 0x40, 0x74), &m);
    m = M(SHOAL_MQTTSN_WILLTOPICRESP); m.return_code = 0;
    check_vector("WILLTOPICRESP", BYTES(0x03, 0x1B, 0x00), &m);
    m = M(SHOAL_MQTTSN_WILLMSGUPD); m.data = (const uint8_t *)"m"; m.data_len = 1;
    check_vector("WILLMSGUPD", BYTES(0x03, 0x1C, 0x6D), &m);
    m = M(SHOAL_MQTTSN_WILLMSGRESP); m.return_code = 1;
    check_vector("WILLMSGRESP congestion", BYTES(0x03, 0x1D, 0x01), &m);
    m = M(SHOAL_MQTTSN_ENCAPSULATED); m.radius = 1; m.text = ARR(0x0A, 0x0B); m.text_len = 2;
    m.data = ARR(0x02, 0x17); m.data_len = 2;
    check_vector("Forwarder Encapsulation of PINGRESP",
                 BYTES(0x05, 0xFE, 0x01, 0x0A, 0x0B, 0x02, 0x17), &m);
}

static void long_form_vectors(void)
{
    static uint8_t wire[400];
    static uint8_t payload[400];
    shoal_mqttsn_msg m;
    memset(payload, 0xAA, sizeof(payload));

    /* 255 bytes total: still the 1-octet form. */
    m = M(SHOAL_MQTTSN_PUBLISH); m.topic_id = 1; m.data = payload; m.data_len = 248;
    wire[0] = 0xFF; wire[1] = 0x0C; wire[2] = 0x00; wire[3] = 0x00; wire[4] = 0x01;
    wire[5] = 0x00; wire[6] = 0x00;
    memcpy(&wire[7], payload, 248);
    check_vector("PUBLISH 255 bytes (short form)", wire, 255, &m);

    /* A 254-byte body no longer fits one octet (256 > 255): 0x01, a 2-octet length (258),
     * and a 4-byte header. */
    m.data_len = 249;
    wire[0] = 0x01; wire[1] = 0x01; wire[2] = 0x02; wire[3] = 0x0C; wire[4] = 0x00;
    wire[5] = 0x00; wire[6] = 0x01; wire[7] = 0x00; wire[8] = 0x00;
    memcpy(&wire[9], payload, 249);
    check_vector("PUBLISH 258 bytes (smallest long form)", wire, 258, &m);

    /* 300 bytes: 01 01 2C. */
    m.data_len = 291;
    wire[0] = 0x01; wire[1] = 0x01; wire[2] = 0x2C;
    memcpy(&wire[9], payload, 291);
    check_vector("PUBLISH 300 bytes (long form)", wire, 300, &m);

    /* Truncated long PUBLISH (the datagram lost its tail). */
    check_reject("long PUBLISH truncated", wire, 299, SHOAL_MQTTSN_ERR_TRUNCATED);
    /* A long-form header on a short message is accepted on input. */
    {
        shoal_mqttsn_msg got;
        int n = shoal_mqttsn_decode(BYTES(0x01, 0x00, 0x06, 0x04 + 0x11, 0x00, 0x01), &got);
        CHECK(n == 6 && got.type == SHOAL_MQTTSN_UNSUBACK && got.msg_id == 1,
              "long-form header on a small UNSUBACK");
    }
}

static void reject_vectors(void)
{
    check_reject("empty datagram", (const uint8_t *)"", 0, SHOAL_MQTTSN_ERR_TRUNCATED);
    check_reject("one byte", BYTES(0x02), SHOAL_MQTTSN_ERR_TRUNCATED);
    check_reject("length larger than datagram", BYTES(0x03, 0x05), SHOAL_MQTTSN_ERR_TRUNCATED);
    check_reject("length smaller than datagram", BYTES(0x02, 0x05, 0x00),
                 SHOAL_MQTTSN_ERR_LENGTH_MISMATCH);
    check_reject("length zero", BYTES(0x00, 0x05), SHOAL_MQTTSN_ERR_LENGTH_MISMATCH);
    check_reject("long form cut in header", BYTES(0x01, 0x00), SHOAL_MQTTSN_ERR_TRUNCATED);
    check_reject("long form declares more", BYTES(0x01, 0x00, 0x05, 0x0C),
                 SHOAL_MQTTSN_ERR_TRUNCATED);
    check_reject("reserved type 0x03", BYTES(0x02, 0x03), SHOAL_MQTTSN_ERR_UNKNOWN_TYPE);
    check_reject("reserved type 0x11", BYTES(0x02, 0x11), SHOAL_MQTTSN_ERR_UNKNOWN_TYPE);
    check_reject("reserved type 0x19", BYTES(0x02, 0x19), SHOAL_MQTTSN_ERR_UNKNOWN_TYPE);
    check_reject("reserved type 0x1E", BYTES(0x02, 0x1E), SHOAL_MQTTSN_ERR_UNKNOWN_TYPE);
    check_reject("reserved type 0xFF", BYTES(0x02, 0xFF), SHOAL_MQTTSN_ERR_UNKNOWN_TYPE);
    check_reject("CONNECT client id 24 bytes",
                 BYTES(0x1E, 0x04, 0x00, 0x01, 0x00, 0x3C, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
                       'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w',
                       'x'),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("CONNECT empty client id", BYTES(0x06, 0x04, 0x04, 0x01, 0x00, 0x3C),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("CONNECT protocol id 2 (MQTT-SN 2.0)",
                 BYTES(0x07, 0x04, 0x04, 0x02, 0x00, 0x3C, 0x61), SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("CONNECT body cut", BYTES(0x05, 0x04, 0x04, 0x01, 0x00),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("PUBLISH body shorter than its fixed fields",
                 BYTES(0x06, 0x0C, 0x20, 0x00, 0x11, 0x00), SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("PUBLISH cut short of its Length", BYTES(0x09, 0x0C, 0x20, 0x00, 0x11, 0x00),
                 SHOAL_MQTTSN_ERR_TRUNCATED);
    check_reject("PUBLISH reserved topic id type",
                 BYTES(0x07, 0x0C, 0x03, 0x00, 0x01, 0x00, 0x00), SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("SUBSCRIBE QoS -1", BYTES(0x06, 0x12, 0x60, 0x00, 0x01, 0x61),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("SUBSCRIBE predefined with 3-byte id",
                 BYTES(0x08, 0x12, 0x01, 0x00, 0x01, 0x00, 0x01, 0x02),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("SUBSCRIBE empty name", BYTES(0x05, 0x12, 0x00, 0x00, 0x01),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("REGISTER empty name", BYTES(0x06, 0x0A, 0x00, 0x00, 0x00, 0x01),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("REGACK short body", BYTES(0x06, 0x0B, 0x00, 0x11, 0x00, 0x01),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("SUBACK long body", BYTES(0x09, 0x13, 0x20, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("DISCONNECT 1-byte duration", BYTES(0x03, 0x18, 0x01),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("WILLTOPIC flags without topic", BYTES(0x03, 0x07, 0x20),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("WILLTOPIC QoS -1", BYTES(0x04, 0x07, 0x60, 0x74), SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("CONNACK without rc", BYTES(0x02, 0x05), SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("PINGRESP with body", BYTES(0x03, 0x17, 0x00), SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("ADVERTISE short", BYTES(0x04, 0x00, 0x05, 0x03), SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("Encapsulation header length 2", BYTES(0x02, 0xFE),
                 SHOAL_MQTTSN_ERR_BAD_FIELD);
    check_reject("Encapsulation without a message", BYTES(0x05, 0xFE, 0x01, 0x0A, 0x0B, 0x02),
                 SHOAL_MQTTSN_ERR_TRUNCATED);
    check_reject("Encapsulation header past the end", BYTES(0x09, 0xFE, 0x01, 0x0A),
                 SHOAL_MQTTSN_ERR_TRUNCATED);
}

static void encode_errors(void)
{
    uint8_t out[64];
    shoal_mqttsn_msg m = M(SHOAL_MQTTSN_CONNECT);
    m.protocol_id = 1;
    m.text = (const uint8_t *)"abcdefghijklmnopqrstuvwx";
    m.text_len = 24;
    CHECK(shoal_mqttsn_encode(&m, out, sizeof(out)) == SHOAL_MQTTSN_ERR_BAD_FIELD,
          "encode CONNECT with a 24-byte client id");
    m = M(0x03);
    CHECK(shoal_mqttsn_encode(&m, out, sizeof(out)) == SHOAL_MQTTSN_ERR_UNKNOWN_TYPE,
          "encode reserved type");
    m = M(SHOAL_MQTTSN_PUBLISH);
    m.flags = 0x03;
    CHECK(shoal_mqttsn_encode(&m, out, sizeof(out)) == SHOAL_MQTTSN_ERR_BAD_FIELD,
          "encode reserved topic id type");
    m = M(SHOAL_MQTTSN_PUBLISH);
    m.data = out;
    m.data_len = 70000;
    CHECK(shoal_mqttsn_encode(&m, out, sizeof(out)) == SHOAL_MQTTSN_ERR_TOO_LONG,
          "encode > 65535 bytes");
    CHECK(shoal_mqttsn_flags_qos(0x60) == -1 && shoal_mqttsn_flags_qos(0x40) == 2 &&
              shoal_mqttsn_qos_flags(-1) == 0x60 && shoal_mqttsn_qos_flags(1) == 0x20,
          "QoS flag mapping");
}

/* ---- framing ---- */

static void frame_vectors(void)
{
    static uint8_t frame[2100];
    static uint8_t msg[1100];
    static uint8_t dec_buf[SHOAL_FRAME_BUFFER_BYTES(SHOAL_FRAME_DEFAULT_MAX_MESSAGE)];
    shoal_frame_decoder dec;
    const uint8_t *out;
    size_t out_len;
    int n;
    int i;
    int delivered;

    CHECK(shoal_crc16_ccitt((const uint8_t *)"123456789", 9) == 0x29B1, "CRC check value");
    CHECK(shoal_crc16_ccitt((const uint8_t *)"", 0) == 0xFFFF, "CRC of nothing is init");

    /* PINGRESP 02 17: CRC-16/CCITT-FALSE is 0x19BB (cross-checked with Python's
     * binascii.crc_hqx(data, 0xFFFF)); COBS of 02 17 19 BB is 05 02 17 19 BB; then 00. */
    n = shoal_frame_encode(ARR(0x02, 0x17), 2, frame, sizeof(frame));
    CHECK(n == 6 && memcmp(frame, ARR(0x05, 0x02, 0x17, 0x19, 0xBB, 0x00), 6) == 0,
          "frame of PINGRESP");

    /* PUBREC id 3 = 04 0F 00 03, CRC 0x5263: the zero splits the COBS blocks. */
    n = shoal_frame_encode(ARR(0x04, 0x0F, 0x00, 0x03), 4, frame, sizeof(frame));
    CHECK(n == 8 && memcmp(frame, ARR(0x03, 0x04, 0x0F, 0x04, 0x03, 0x52, 0x63, 0x00), 8) == 0,
          "frame of PUBREC (zero byte inside the message)");

    shoal_frame_decoder_init(&dec, dec_buf, sizeof(dec_buf), SHOAL_FRAME_DEFAULT_MAX_MESSAGE);
    delivered = 0;
    for (i = 0; i < n; ++i) {
        if (shoal_frame_decoder_push(&dec, frame[i], &out, &out_len)) {
            delivered++;
            CHECK(i == n - 1 && out_len == 4 && memcmp(out, "\x04\x0F\x00\x03", 4) == 0,
                  "decoded PUBREC frame");
        }
    }
    CHECK(delivered == 1 && dec.frames_ok == 1, "one frame delivered");

    /* Noise, an empty frame, a frame with a bad CRC, then a good frame. */
    {
        static const uint8_t noise[] = {0x13, 0x37, 0xFF, 0x00, 0x00, 0x02, 0x01, 0x00};
        int good = 0;
        for (i = 0; i < (int)sizeof(noise); ++i) {
            good += shoal_frame_decoder_push(&dec, noise[i], &out, &out_len);
        }
        n = shoal_frame_encode(BYTES(0x02, 0x17), frame, sizeof(frame));
        frame[2] ^= 0x40; /* corrupt */
        for (i = 0; i < n; ++i) {
            good += shoal_frame_decoder_push(&dec, frame[i], &out, &out_len);
        }
        CHECK(good == 0 && dec.frames_malformed == 3, "noise and bad CRC dropped and counted");
        n = shoal_frame_encode(BYTES(0x02, 0x17), frame, sizeof(frame));
        for (i = 0; i < n; ++i) {
            good += shoal_frame_decoder_push(&dec, frame[i], &out, &out_len);
        }
        CHECK(good == 1 && out_len == 2 && out[1] == 0x17, "good frame after noise");
    }

    /* Full 254-byte COBS blocks, message of 1024 bytes (the maximum), no zeros. */
    for (i = 0; i < 1024; ++i) {
        msg[i] = (uint8_t)(1 + (i % 250));
    }
    n = shoal_frame_encode(msg, 1024, frame, sizeof(frame));
    CHECK(n > 0 && n <= (int)SHOAL_FRAME_ENCODED_MAX(1024u) + 1, "max frame size bound");
    CHECK(n > 0 && frame[0] == 0xFF, "full block uses code 0xFF");
    delivered = 0;
    for (i = 0; i < n; ++i) {
        if (shoal_frame_decoder_push(&dec, frame[i], &out, &out_len)) {
            delivered++;
            CHECK(out_len == 1024 && memcmp(out, msg, 1024) == 0, "1024-byte message round trip");
        }
    }
    CHECK(delivered == 1, "1024-byte frame delivered");

    /* Oversized: 1100 bytes is dropped whole, then the next frame is delivered. */
    for (i = 0; i < 1100; ++i) {
        msg[i] = 0x55;
    }
    n = shoal_frame_encode(msg, 1100, frame, sizeof(frame));
    delivered = 0;
    for (i = 0; i < n; ++i) {
        delivered += shoal_frame_decoder_push(&dec, frame[i], &out, &out_len);
    }
    CHECK(delivered == 0 && dec.frames_oversized == 1, "oversized frame dropped and counted");
    n = shoal_frame_encode(BYTES(0x03, 0x05, 0x00), frame, sizeof(frame));
    for (i = 0; i < n; ++i) {
        delivered += shoal_frame_decoder_push(&dec, frame[i], &out, &out_len);
    }
    CHECK(delivered == 1 && out_len == 3 && out[1] == 0x05, "resynchronised after oversize");

    CHECK(shoal_frame_encode(msg, 100, frame, 50) == SHOAL_FRAME_ERR_BUFFER_TOO_SMALL,
          "frame encode refuses a small buffer");
}

int main(void)
{
    golden_vectors();
    long_form_vectors();
    reject_vectors();
    encode_errors();
    frame_vectors();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
