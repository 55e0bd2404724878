/*
 * shoal_frame.c - COBS + CRC16 serial framing (see shoal_frame.h).
 */
#include "shoal_frame.h"

uint16_t shoal_crc16_ccitt(const uint8_t *data, size_t len)
{
    uint16_t crc = 0xFFFFu;
    size_t i;
    for (i = 0; i < len; ++i) {
        int bit;
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; ++bit) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

/* Streams message bytes then the two CRC bytes through the COBS encoder. */
int shoal_frame_encode(const uint8_t *msg, size_t len, uint8_t *out, size_t out_cap)
{
    uint16_t crc = shoal_crc16_ccitt(msg, len);
    size_t total = len + 2u;
    size_t code_at = 0;
    size_t w = 1;
    uint8_t code = 1;
    size_t i;

    if (out_cap < SHOAL_FRAME_ENCODED_MAX(len) + 1u) {
        return SHOAL_FRAME_ERR_BUFFER_TOO_SMALL;
    }
    for (i = 0; i < total; ++i) {
        uint8_t b;
        if (i < len) {
            b = msg[i];
        } else if (i == len) {
            b = (uint8_t)(crc >> 8);
        } else {
            b = (uint8_t)(crc & 0xFFu);
        }
        if (b == 0u) {
            out[code_at] = code;
            code_at = w++;
            code = 1;
        } else {
            out[w++] = b;
            ++code;
            /* A full block ends without an implied zero; start the next block only if data
             * remains, so 254 non-zero bytes encode as 0xFF + 254 bytes. */
            if (code == 0xFFu && i + 1u < total) {
                out[code_at] = code;
                code_at = w++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out[w++] = 0x00u;
    return (int)w;
}

void shoal_frame_decoder_init(shoal_frame_decoder *dec, uint8_t *buf, size_t buf_cap,
                              size_t max_message_bytes)
{
    size_t want = SHOAL_FRAME_BUFFER_BYTES(max_message_bytes);
    dec->buf = buf;
    dec->cap = buf_cap < want ? buf_cap : want;
    dec->len = 0;
    dec->discarding = 0;
    dec->frames_ok = 0;
    dec->frames_malformed = 0;
    dec->frames_oversized = 0;
}

/* Decode buf[0..len) in place; returns the decoded length or -1 for a bad code sequence. */
static long cobs_decode_in_place(uint8_t *buf, size_t len)
{
    size_t r = 0;
    size_t w = 0;
    while (r < len) {
        uint8_t code = buf[r++];
        size_t n = (size_t)code - 1u;
        size_t k;
        if (code == 0u || n > len - r) {
            return -1;
        }
        for (k = 0; k < n; ++k) {
            buf[w++] = buf[r++];
        }
        if (code != 0xFFu && r < len) {
            buf[w++] = 0u;
        }
    }
    return (long)w;
}

int shoal_frame_decoder_push(shoal_frame_decoder *dec, uint8_t byte, const uint8_t **msg,
                             size_t *msg_len)
{
    long decoded;
    uint16_t crc;
    size_t n;

    if (byte != 0u) {
        if (dec->discarding) {
            return 0;
        }
        if (dec->len >= dec->cap) {
            dec->discarding = 1;
            dec->len = 0;
            dec->frames_oversized++;
            return 0;
        }
        dec->buf[dec->len++] = byte;
        return 0;
    }
    /* Delimiter. */
    if (dec->discarding) {
        dec->discarding = 0;
        return 0;
    }
    if (dec->len == 0u) {
        return 0; /* empty frame: a sender's flush */
    }
    decoded = cobs_decode_in_place(dec->buf, dec->len);
    dec->len = 0;
    if (decoded < 3) {
        dec->frames_malformed++;
        return 0;
    }
    n = (size_t)decoded - 2u;
    crc = (uint16_t)(((uint16_t)dec->buf[n] << 8) | dec->buf[n + 1u]);
    if (crc != shoal_crc16_ccitt(dec->buf, n)) {
        dec->frames_malformed++;
        return 0;
    }
    dec->frames_ok++;
    *msg = dec->buf;
    *msg_len = n;
    return 1;
}
