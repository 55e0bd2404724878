/*
 * mqttsn_codec_cli.c - line-oriented stdin/stdout front end to the C codec and framing, so
 * Python tests can cross-check them against independent encoders (one request per line):
 *
 *   D <hex>      decode a datagram  -> "OK <fields>" or "ERR <code>"
 *   E <fields>   encode             -> "OK <hex>" or "ERR <code>"
 *   F <hex>      frame a message    -> "OK <hex of the frame, delimiter included>"
 *   U <hex>      push bytes through a fresh frame decoder -> "OK <hex msg> ..." then counters
 *
 * <fields> is 12 space-separated values: type flags return_code gw_id radius protocol_id
 * has_duration duration topic_id msg_id text_hex data_hex (decimal numbers; "-" = empty hex).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_frame.h"
#include "shoal_mqttsn_codec.h"

#define LINE_MAX_BYTES 300000

static uint8_t bytes_a[70000];
static uint8_t bytes_b[70000];
static uint8_t bytes_out[140000];
static char line[LINE_MAX_BYTES];

static long parse_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (strcmp(hex, "-") == 0) {
        return 0;
    }
    while (hex[0] != '\0' && hex[1] != '\0') {
        unsigned v;
        if (n >= cap || sscanf(hex, "%2x", &v) != 1) {
            return -1;
        }
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return hex[0] == '\0' ? (long)n : -1;
}

static void print_hex(const uint8_t *p, size_t n)
{
    size_t i;
    if (n == 0u) {
        fputs("-", stdout);
    }
    for (i = 0; i < n; ++i) {
        printf("%02x", p[i]);
    }
}

static void print_fields(const shoal_mqttsn_msg *m)
{
    printf("OK %u %u %u %u %u %u %u %u %u %u ", m->type, m->flags, m->return_code, m->gw_id,
           m->radius, m->protocol_id, m->has_duration, m->duration, m->topic_id, m->msg_id);
    print_hex(m->text, m->text_len);
    fputs(" ", stdout);
    print_hex(m->data, m->data_len);
}

int main(void)
{
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *nl = strchr(line, '\n');
        char *arg = line + 2;
        if (nl != NULL) {
            *nl = '\0';
        }
        if (line[0] == 'D') {
            shoal_mqttsn_msg m;
            long n = parse_hex(arg, bytes_a, sizeof(bytes_a));
            int rc = n < 0 ? -100 : shoal_mqttsn_decode(bytes_a, (size_t)n, &m);
            if (rc < 0) {
                printf("ERR %d", rc);
            } else {
                print_fields(&m);
            }
        } else if (line[0] == 'E') {
            shoal_mqttsn_msg m;
            unsigned v[10];
            static char text_hex[140000];
            static char data_hex[140000];
            long tl;
            long dl;
            int rc;
            if (sscanf(arg, "%u %u %u %u %u %u %u %u %u %u %139999s %139999s", &v[0], &v[1],
                       &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], text_hex,
                       data_hex) != 12) {
                printf("ERR bad-request");
            } else {
                tl = parse_hex(text_hex, bytes_a, sizeof(bytes_a));
                dl = parse_hex(data_hex, bytes_b, sizeof(bytes_b));
                shoal_mqttsn_msg_init(&m, (uint8_t)v[0]);
                m.flags = (uint8_t)v[1];
                m.return_code = (uint8_t)v[2];
                m.gw_id = (uint8_t)v[3];
                m.radius = (uint8_t)v[4];
                m.protocol_id = (uint8_t)v[5];
                m.has_duration = (uint8_t)v[6];
                m.duration = (uint16_t)v[7];
                m.topic_id = (uint16_t)v[8];
                m.msg_id = (uint16_t)v[9];
                m.text = bytes_a;
                m.text_len = tl < 0 ? 0u : (size_t)tl;
                m.data = bytes_b;
                m.data_len = dl < 0 ? 0u : (size_t)dl;
                rc = shoal_mqttsn_encode(&m, bytes_out, sizeof(bytes_out));
                if (rc < 0) {
                    printf("ERR %d", rc);
                } else {
                    fputs("OK ", stdout);
                    print_hex(bytes_out, (size_t)rc);
                }
            }
        } else if (line[0] == 'F') {
            long n = parse_hex(arg, bytes_a, sizeof(bytes_a));
            int rc = n < 0 ? -100 : shoal_frame_encode(bytes_a, (size_t)n, bytes_out,
                                                       sizeof(bytes_out));
            if (rc < 0) {
                printf("ERR %d", rc);
            } else {
                fputs("OK ", stdout);
                print_hex(bytes_out, (size_t)rc);
            }
        } else if (line[0] == 'U') {
            static uint8_t dec_buf[SHOAL_FRAME_BUFFER_BYTES(SHOAL_FRAME_DEFAULT_MAX_MESSAGE)];
            shoal_frame_decoder dec;
            long n = parse_hex(arg, bytes_a, sizeof(bytes_a));
            long i;
            shoal_frame_decoder_init(&dec, dec_buf, sizeof(dec_buf),
                                     SHOAL_FRAME_DEFAULT_MAX_MESSAGE);
            fputs("OK", stdout);
            for (i = 0; i < n; ++i) {
                const uint8_t *msg;
                size_t len;
                if (shoal_frame_decoder_push(&dec, bytes_a[i], &msg, &len)) {
                    fputs(" ", stdout);
                    print_hex(msg, len);
                }
            }
            printf(" ok=%lu malformed=%lu oversized=%lu", (unsigned long)dec.frames_ok,
                   (unsigned long)dec.frames_malformed, (unsigned long)dec.frames_oversized);
        } else {
            printf("ERR bad-request");
        }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
