/*
 * fuzz_mqttsn.c - batch fuzz harness for the MQTT-SN decoder and the serial frame decoder.
 *
 * stdin is a sequence of records: mode (1 byte), length (2 bytes, big-endian), bytes.
 *   mode 0: the bytes are one datagram for shoal_mqttsn_decode().
 *   mode 1: the bytes are a serial stream pushed one by one through a shoal_frame_decoder
 *           (max message 1024 bytes); every delivered message goes to shoal_mqttsn_decode().
 * Each datagram is copied into a heap buffer of exactly its length so AddressSanitizer sees any
 * read past the end. Invariants (abort() when broken): a decoded message re-encodes, and decoding
 * that encoding gives the same fields (and the same bytes when the input used the canonical
 * length form); a delivered frame message is re-framed and decoded back unchanged.
 * Prints "inputs=N decoded=N frames=N malformed_frames=N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_frame.h"
#include "shoal_mqttsn_codec.h"

static unsigned long decoded_ok;

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

static void check_datagram(const uint8_t *src, size_t len)
{
    static uint8_t out[70000];
    uint8_t *copy = (uint8_t *)malloc(len > 0u ? len : 1u);
    shoal_mqttsn_msg m;
    shoal_mqttsn_msg again;
    int n;
    if (copy == NULL) {
        abort();
    }
    if (len > 0u) {
        memcpy(copy, src, len);
    }
    n = shoal_mqttsn_decode(copy, len, &m);
    if (n >= 0) {
        int canonical;
        if ((size_t)n != len) {
            abort();
        }
        decoded_ok++;
        n = shoal_mqttsn_encode(&m, out, sizeof(out));
        if (n < 0) {
            fprintf(stderr, "decoded message does not re-encode: %d\n", n);
            abort();
        }
        if (shoal_mqttsn_decode(out, (size_t)n, &again) != n || !same_msg(&m, &again)) {
            fprintf(stderr, "re-encoded message decodes differently\n");
            abort();
        }
        canonical = m.type == SHOAL_MQTTSN_ENCAPSULATED || copy[0] != 0x01u || len > 255u;
        if (canonical && ((size_t)n != len || memcmp(out, copy, len) != 0)) {
            size_t i;
            fprintf(stderr, "re-encoding differs from the canonical input:");
            for (i = 0; i < len; ++i) {
                fprintf(stderr, " %02x", copy[i]);
            }
            fprintf(stderr, "\n");
            abort();
        }
    }
    free(copy);
}

int main(void)
{
    static uint8_t record[65536];
    static uint8_t dec_buf[SHOAL_FRAME_BUFFER_BYTES(SHOAL_FRAME_DEFAULT_MAX_MESSAGE)];
    static uint8_t reframed[SHOAL_FRAME_ENCODED_MAX(SHOAL_FRAME_DEFAULT_MAX_MESSAGE) + 1u];
    static uint8_t dec2_buf[SHOAL_FRAME_BUFFER_BYTES(SHOAL_FRAME_DEFAULT_MAX_MESSAGE)];
    unsigned long inputs = 0;
    unsigned long frames = 0;
    unsigned long malformed = 0;
    for (;;) {
        int mode = getchar();
        int hi;
        int lo;
        size_t len;
        if (mode == EOF) {
            break;
        }
        hi = getchar();
        lo = getchar();
        if (hi == EOF || lo == EOF) {
            break;
        }
        len = ((size_t)hi << 8) | (size_t)lo;
        if (fread(record, 1, len, stdin) != len) {
            break;
        }
        inputs++;
        if (mode == 0) {
            check_datagram(record, len);
        } else {
            shoal_frame_decoder dec;
            size_t i;
            shoal_frame_decoder_init(&dec, dec_buf, sizeof(dec_buf),
                                     SHOAL_FRAME_DEFAULT_MAX_MESSAGE);
            for (i = 0; i < len; ++i) {
                const uint8_t *msg;
                size_t msg_len;
                if (shoal_frame_decoder_push(&dec, record[i], &msg, &msg_len)) {
                    shoal_frame_decoder dec2;
                    int n = shoal_frame_encode(msg, msg_len, reframed, sizeof(reframed));
                    int k;
                    int back = 0;
                    const uint8_t *msg2 = NULL;
                    size_t msg2_len = 0;
                    frames++;
                    if (n < 0) {
                        abort();
                    }
                    shoal_frame_decoder_init(&dec2, dec2_buf, sizeof(dec2_buf),
                                             SHOAL_FRAME_DEFAULT_MAX_MESSAGE);
                    for (k = 0; k < n; ++k) {
                        back += shoal_frame_decoder_push(&dec2, reframed[k], &msg2, &msg2_len);
                    }
                    if (back != 1 || !same_span(msg, msg_len, msg2, msg2_len)) {
                        fprintf(stderr, "re-framed message does not decode back\n");
                        abort();
                    }
                    check_datagram(msg, msg_len);
                }
            }
            malformed += dec.frames_malformed + dec.frames_oversized;
        }
    }
    printf("inputs=%lu decoded=%lu frames=%lu malformed_frames=%lu\n", inputs, decoded_ok, frames,
           malformed);
    return 0;
}
