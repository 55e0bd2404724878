/*
 * shoal_agent_protocol.c - agent protocol v1 encode/decode (see shoal_agent_protocol.h).
 *
 * Every read is bounds-checked against the payload length before it happens, and fields are
 * checked in wire order, as in host_sdk/agent/protocol.py, so both report the same error
 * class for the same payload. Every write is checked against the caller's capacity.
 */
#include "shoal_agent_protocol.h"

#include <string.h>

#define TRY(expr)                                                                             \
    do {                                                                                      \
        int try_rc_ = (expr);                                                                 \
        if (try_rc_ < 0) {                                                                    \
            return try_rc_;                                                                   \
        }                                                                                     \
    } while (0)

void shoal_agent_msg_init(shoal_agent_msg *msg, uint8_t kind)
{
    memset(msg, 0, sizeof(*msg));
    msg->kind = kind;
}

/* ---- shared field rules ------------------------------------------------------------------ */

/* Printable ASCII without '/', '+', '#' (names are topic levels or sit beside them). */
static int name_bytes_ok(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0u; i < n; i++) {
        uint8_t b = p[i];
        if (b < 0x21u || b > 0x7Eu || b == 0x23u || b == 0x2Bu || b == 0x2Fu) {
            return 0;
        }
    }
    return 1;
}

/* The extension area: (type 1..255, length, value) records up to the end. */
static int check_ext(const uint8_t *p, size_t n)
{
    size_t pos = 0u;
    while (pos < n) {
        if (pos + 2u > n || p[pos] == 0u) {
            return SHOAL_AGENT_ERR_EXTENSION;
        }
        pos += 2u + (size_t)p[pos + 1u];
        if (pos > n) {
            return SHOAL_AGENT_ERR_EXTENSION;
        }
    }
    return 0;
}

/* Rules across fields (resp state/error, profile layer indices). */
static int check_rules(const shoal_agent_msg *m)
{
    uint8_t i;
    if (m->kind == SHOAL_AGENT_RESP) {
        int final_ok = m->state == SHOAL_AGENT_STATE_OK || m->state == SHOAL_AGENT_STATE_ACCEPTED;
        if (final_ok != (m->error == 0u)) {
            return SHOAL_AGENT_ERR_VALUE;
        }
    } else if (m->kind == SHOAL_AGENT_PROFILE) {
        for (i = 0u; i < m->layer_count; i++) {
            if (m->layers[i].index >= m->total_layers) {
                return SHOAL_AGENT_ERR_VALUE;
            }
        }
    }
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *in;
    size_t len;
    size_t pos;
} reader;

static int need(const reader *r, size_t n)
{
    return r->len - r->pos < n ? SHOAL_AGENT_ERR_TRUNCATED : 0;
}

static int get_u8(reader *r, uint8_t *v, uint8_t lo, uint8_t hi)
{
    TRY(need(r, 1u));
    *v = r->in[r->pos];
    r->pos += 1u;
    return (*v < lo || *v > hi) ? SHOAL_AGENT_ERR_VALUE : 0;
}

static int get_u16(reader *r, uint16_t *v, uint16_t lo, uint16_t hi)
{
    TRY(need(r, 2u));
    *v = (uint16_t)(r->in[r->pos] | ((uint16_t)r->in[r->pos + 1u] << 8));
    r->pos += 2u;
    return (*v < lo || *v > hi) ? SHOAL_AGENT_ERR_VALUE : 0;
}

static int get_u32(reader *r, uint32_t *v)
{
    const uint8_t *p;
    TRY(need(r, 4u));
    p = r->in + r->pos;
    *v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    r->pos += 4u;
    return 0;
}

static int get_i32(reader *r, int32_t *v)
{
    uint32_t u;
    TRY(get_u32(r, &u));
    /* Two's complement without implementation-defined conversion. */
    *v = u <= 0x7FFFFFFFu ? (int32_t)u : (int32_t)(u - 0x80000000u) - 0x7FFFFFFF - 1;
    return 0;
}

static int get_id8(reader *r, uint8_t *out)
{
    TRY(need(r, SHOAL_AGENT_HASH_BYTES));
    memcpy(out, r->in + r->pos, SHOAL_AGENT_HASH_BYTES);
    r->pos += SHOAL_AGENT_HASH_BYTES;
    return 0;
}

static int get_str8(reader *r, shoal_agent_bytes *s, size_t max)
{
    size_t n;
    TRY(need(r, 1u));
    n = r->in[r->pos];
    if (n < 1u || n > max) {
        return SHOAL_AGENT_ERR_LENGTH;
    }
    r->pos += 1u;
    TRY(need(r, n));
    s->ptr = r->in + r->pos;
    s->len = n;
    r->pos += n;
    return name_bytes_ok(s->ptr, n) ? 0 : SHOAL_AGENT_ERR_VALUE;
}

static int get_blob16(reader *r, shoal_agent_bytes *b)
{
    size_t n;
    TRY(need(r, 2u));
    n = (size_t)r->in[r->pos] | ((size_t)r->in[r->pos + 1u] << 8);
    if (n > SHOAL_AGENT_MAX_MESSAGE) {
        return SHOAL_AGENT_ERR_LENGTH;
    }
    r->pos += 2u;
    TRY(need(r, n));
    b->ptr = n > 0u ? r->in + r->pos : NULL;
    b->len = n;
    r->pos += n;
    return 0;
}

static int get_count(reader *r, uint8_t *count, uint8_t max)
{
    TRY(need(r, 1u));
    *count = r->in[r->pos];
    if (*count > max) {
        return SHOAL_AGENT_ERR_LENGTH;
    }
    r->pos += 1u;
    return 0;
}

static int decode_body(reader *r, shoal_agent_msg *m)
{
    uint8_t i;
    switch (m->kind) {
    case SHOAL_AGENT_BIRTH:
        TRY(get_u32(r, &m->incarnation));
        TRY(get_str8(r, &m->role, SHOAL_AGENT_NAME_MAX));
        TRY(get_str8(r, &m->board, SHOAL_AGENT_BOARD_MAX));
        TRY(get_id8(r, m->firmware_id));
        TRY(get_str8(r, &m->generator, SHOAL_AGENT_NAME_MAX));
        TRY(get_u32(r, &m->free_ram));
        TRY(get_u16(r, &m->max_payload, SHOAL_AGENT_MIN_MAX_PAYLOAD, SHOAL_AGENT_MAX_MESSAGE));
        TRY(get_count(r, &m->model_count, SHOAL_AGENT_MAX_MODELS));
        for (i = 0u; i < m->model_count; i++) {
            TRY(get_id8(r, m->models[i].hash));
            TRY(get_str8(r, &m->models[i].name, SHOAL_AGENT_NAME_MAX));
        }
        return 0;
    case SHOAL_AGENT_WILL: return get_u32(r, &m->incarnation);
    case SHOAL_AGENT_HB:
        TRY(get_u32(r, &m->incarnation));
        TRY(get_u32(r, &m->seq));
        TRY(get_u32(r, &m->uptime_s));
        TRY(get_u32(r, &m->inferences));
        TRY(get_u32(r, &m->commands));
        TRY(get_u32(r, &m->errors));
        TRY(get_u16(r, &m->reconnects, 0u, 0xFFFFu));
        TRY(get_u32(r, &m->latency_us));
        return get_u32(r, &m->free_ram);
    case SHOAL_AGENT_STATUS:
        TRY(get_u32(r, &m->incarnation));
        TRY(get_u8(r, &m->state, 0u, SHOAL_AGENT_AGENT_ERROR));
        TRY(get_u32(r, &m->uptime_s));
        TRY(get_u32(r, &m->free_ram));
        TRY(get_count(r, &m->param_count, SHOAL_AGENT_MAX_PARAMS));
        for (i = 0u; i < m->param_count; i++) {
            TRY(get_u8(r, &m->params[i].id, 0u, 0xFFu));
            TRY(get_i32(r, &m->params[i].value));
        }
        return 0;
    case SHOAL_AGENT_CMD:
        TRY(get_u16(r, &m->corr, 1u, 0xFFFFu));
        TRY(get_u8(r, &m->code, 1u, 0xFFu));
        return get_blob16(r, &m->args);
    case SHOAL_AGENT_RESP:
        TRY(get_u16(r, &m->corr, 0u, 0xFFFFu));
        TRY(get_u8(r, &m->code, 0u, 0xFFu));
        TRY(get_u8(r, &m->state, 0u, SHOAL_AGENT_STATE_ERROR));
        TRY(get_u8(r, &m->error, 0u, 0xFFu));
        TRY(get_u32(r, &m->latency_us));
        return get_blob16(r, &m->result);
    case SHOAL_AGENT_PROFILE:
        TRY(get_u16(r, &m->corr, 0u, 0xFFFFu));
        TRY(get_u8(r, &m->model, 0u, SHOAL_AGENT_MAX_MODELS - 1u));
        TRY(get_u8(r, &m->unit, 0u, SHOAL_AGENT_UNIT_INSTRUCTIONS));
        TRY(get_u16(r, &m->total_layers, 1u, 0xFFFFu));
        TRY(get_count(r, &m->layer_count, SHOAL_AGENT_MAX_LAYERS));
        for (i = 0u; i < m->layer_count; i++) {
            TRY(get_u16(r, &m->layers[i].index, 0u, 0xFFFFu));
            TRY(get_u8(r, &m->layers[i].op, 0u, 0xFFu));
            TRY(get_u32(r, &m->layers[i].time));
            TRY(get_u32(r, &m->layers[i].macs));
        }
        return 0;
    case SHOAL_AGENT_BOOT:
        TRY(get_u32(r, &m->incarnation));
        TRY(get_u8(r, &m->reset_cause, 0u, SHOAL_AGENT_RESET_UNKNOWN));
        TRY(get_u16(r, &m->corr, 0u, 0xFFFFu));
        TRY(get_u32(r, &m->boot_ms));
        TRY(get_u32(r, &m->free_ram));
        return get_id8(r, m->firmware_id);
    default: return SHOAL_AGENT_ERR_KIND;
    }
}

int shoal_agent_decode(const uint8_t *in, size_t len, shoal_agent_msg *msg)
{
    reader r;
    if (msg == NULL || (in == NULL && len > 0u)) {
        return SHOAL_AGENT_ERR_BAD_ARGUMENT;
    }
    memset(msg, 0, sizeof(*msg));
    if (len > SHOAL_AGENT_MAX_MESSAGE) {
        return SHOAL_AGENT_ERR_TOO_LARGE;
    }
    if (len < 2u) {
        return SHOAL_AGENT_ERR_TRUNCATED;
    }
    if (in[0] != SHOAL_AGENT_VERSION) {
        return SHOAL_AGENT_ERR_VERSION;
    }
    if (in[1] < SHOAL_AGENT_BIRTH || in[1] > SHOAL_AGENT_BOOT) {
        return SHOAL_AGENT_ERR_KIND;
    }
    msg->kind = in[1];
    r.in = in;
    r.len = len;
    r.pos = 2u;
    TRY(decode_body(&r, msg));
    TRY(check_ext(in + r.pos, len - r.pos));
    if (r.pos < len) {
        msg->ext.ptr = in + r.pos;
        msg->ext.len = len - r.pos;
    }
    TRY(check_rules(msg));
    return (int)len;
}

/* ---- encoding ---------------------------------------------------------------------------- */

typedef struct {
    uint8_t *out;
    size_t cap;
    size_t pos;
} writer;

static int put(writer *w, const uint8_t *p, size_t n)
{
    if (w->cap - w->pos < n) {
        return SHOAL_AGENT_ERR_BUFFER_TOO_SMALL;
    }
    if (n > 0u) {
        memcpy(w->out + w->pos, p, n);
    }
    w->pos += n;
    return 0;
}

static int put_u8(writer *w, uint8_t v, uint8_t lo, uint8_t hi)
{
    if (v < lo || v > hi) {
        return SHOAL_AGENT_ERR_VALUE;
    }
    return put(w, &v, 1u);
}

static int put_u16(writer *w, uint16_t v, uint16_t lo, uint16_t hi)
{
    uint8_t b[2];
    if (v < lo || v > hi) {
        return SHOAL_AGENT_ERR_VALUE;
    }
    b[0] = (uint8_t)(v & 0xFFu);
    b[1] = (uint8_t)(v >> 8);
    return put(w, b, 2u);
}

static int put_u32(writer *w, uint32_t v)
{
    uint8_t b[4];
    b[0] = (uint8_t)(v & 0xFFu);
    b[1] = (uint8_t)((v >> 8) & 0xFFu);
    b[2] = (uint8_t)((v >> 16) & 0xFFu);
    b[3] = (uint8_t)(v >> 24);
    return put(w, b, 4u);
}

static int put_i32(writer *w, int32_t v)
{
    /* Conversion to unsigned is defined (modulo 2^32): two's complement bytes. */
    return put_u32(w, (uint32_t)v);
}

static int put_str8(writer *w, const shoal_agent_bytes *s, size_t max)
{
    uint8_t n;
    if (s->len < 1u || s->len > max) {
        return SHOAL_AGENT_ERR_LENGTH;
    }
    if (s->ptr == NULL) {
        return SHOAL_AGENT_ERR_BAD_ARGUMENT;
    }
    if (!name_bytes_ok(s->ptr, s->len)) {
        return SHOAL_AGENT_ERR_VALUE;
    }
    n = (uint8_t)s->len;
    TRY(put(w, &n, 1u));
    return put(w, s->ptr, s->len);
}

static int put_blob16(writer *w, const shoal_agent_bytes *b)
{
    if (b->len > SHOAL_AGENT_MAX_MESSAGE) {
        return SHOAL_AGENT_ERR_LENGTH;
    }
    if (b->len > 0u && b->ptr == NULL) {
        return SHOAL_AGENT_ERR_BAD_ARGUMENT;
    }
    TRY(put_u16(w, (uint16_t)b->len, 0u, 0xFFFFu));
    return put(w, b->ptr, b->len);
}

static int put_count(writer *w, uint8_t count, uint8_t max)
{
    if (count > max) {
        return SHOAL_AGENT_ERR_LENGTH;
    }
    return put(w, &count, 1u);
}

static int encode_body(writer *w, const shoal_agent_msg *m)
{
    uint8_t i;
    switch (m->kind) {
    case SHOAL_AGENT_BIRTH:
        TRY(put_u32(w, m->incarnation));
        TRY(put_str8(w, &m->role, SHOAL_AGENT_NAME_MAX));
        TRY(put_str8(w, &m->board, SHOAL_AGENT_BOARD_MAX));
        TRY(put(w, m->firmware_id, SHOAL_AGENT_HASH_BYTES));
        TRY(put_str8(w, &m->generator, SHOAL_AGENT_NAME_MAX));
        TRY(put_u32(w, m->free_ram));
        TRY(put_u16(w, m->max_payload, SHOAL_AGENT_MIN_MAX_PAYLOAD, SHOAL_AGENT_MAX_MESSAGE));
        TRY(put_count(w, m->model_count, SHOAL_AGENT_MAX_MODELS));
        for (i = 0u; i < m->model_count; i++) {
            TRY(put(w, m->models[i].hash, SHOAL_AGENT_HASH_BYTES));
            TRY(put_str8(w, &m->models[i].name, SHOAL_AGENT_NAME_MAX));
        }
        return 0;
    case SHOAL_AGENT_WILL: return put_u32(w, m->incarnation);
    case SHOAL_AGENT_HB:
        TRY(put_u32(w, m->incarnation));
        TRY(put_u32(w, m->seq));
        TRY(put_u32(w, m->uptime_s));
        TRY(put_u32(w, m->inferences));
        TRY(put_u32(w, m->commands));
        TRY(put_u32(w, m->errors));
        TRY(put_u16(w, m->reconnects, 0u, 0xFFFFu));
        TRY(put_u32(w, m->latency_us));
        return put_u32(w, m->free_ram);
    case SHOAL_AGENT_STATUS:
        TRY(put_u32(w, m->incarnation));
        TRY(put_u8(w, m->state, 0u, SHOAL_AGENT_AGENT_ERROR));
        TRY(put_u32(w, m->uptime_s));
        TRY(put_u32(w, m->free_ram));
        TRY(put_count(w, m->param_count, SHOAL_AGENT_MAX_PARAMS));
        for (i = 0u; i < m->param_count; i++) {
            TRY(put_u8(w, m->params[i].id, 0u, 0xFFu));
            TRY(put_i32(w, m->params[i].value));
        }
        return 0;
    case SHOAL_AGENT_CMD:
        TRY(put_u16(w, m->corr, 1u, 0xFFFFu));
        TRY(put_u8(w, m->code, 1u, 0xFFu));
        return put_blob16(w, &m->args);
    case SHOAL_AGENT_RESP:
        TRY(put_u16(w, m->corr, 0u, 0xFFFFu));
        TRY(put_u8(w, m->code, 0u, 0xFFu));
        TRY(put_u8(w, m->state, 0u, SHOAL_AGENT_STATE_ERROR));
        TRY(put_u8(w, m->error, 0u, 0xFFu));
        TRY(put_u32(w, m->latency_us));
        return put_blob16(w, &m->result);
    case SHOAL_AGENT_PROFILE:
        TRY(put_u16(w, m->corr, 0u, 0xFFFFu));
        TRY(put_u8(w, m->model, 0u, SHOAL_AGENT_MAX_MODELS - 1u));
        TRY(put_u8(w, m->unit, 0u, SHOAL_AGENT_UNIT_INSTRUCTIONS));
        TRY(put_u16(w, m->total_layers, 1u, 0xFFFFu));
        TRY(put_count(w, m->layer_count, SHOAL_AGENT_MAX_LAYERS));
        for (i = 0u; i < m->layer_count; i++) {
            TRY(put_u16(w, m->layers[i].index, 0u, 0xFFFFu));
            TRY(put_u8(w, m->layers[i].op, 0u, 0xFFu));
            TRY(put_u32(w, m->layers[i].time));
            TRY(put_u32(w, m->layers[i].macs));
        }
        return 0;
    case SHOAL_AGENT_BOOT:
        TRY(put_u32(w, m->incarnation));
        TRY(put_u8(w, m->reset_cause, 0u, SHOAL_AGENT_RESET_UNKNOWN));
        TRY(put_u16(w, m->corr, 0u, 0xFFFFu));
        TRY(put_u32(w, m->boot_ms));
        TRY(put_u32(w, m->free_ram));
        return put(w, m->firmware_id, SHOAL_AGENT_HASH_BYTES);
    default: return SHOAL_AGENT_ERR_KIND;
    }
}

int shoal_agent_encode(const shoal_agent_msg *msg, uint8_t *out, size_t out_cap)
{
    writer w;
    uint8_t header[2];
    if (msg == NULL || (out == NULL && out_cap > 0u)) {
        return SHOAL_AGENT_ERR_BAD_ARGUMENT;
    }
    if (msg->kind < SHOAL_AGENT_BIRTH || msg->kind > SHOAL_AGENT_BOOT) {
        return SHOAL_AGENT_ERR_KIND;
    }
    if (msg->ext.len > 0u && msg->ext.ptr == NULL) {
        return SHOAL_AGENT_ERR_BAD_ARGUMENT;
    }
    w.out = out;
    w.cap = out_cap;
    w.pos = 0u;
    header[0] = SHOAL_AGENT_VERSION;
    header[1] = msg->kind;
    TRY(put(&w, header, 2u));
    TRY(encode_body(&w, msg));
    TRY(check_rules(msg));
    if (msg->ext.len > 0u) {
        TRY(check_ext(msg->ext.ptr, msg->ext.len));
        if (msg->ext.len > SHOAL_AGENT_MAX_MESSAGE) {
            return SHOAL_AGENT_ERR_TOO_LARGE;
        }
        TRY(put(&w, msg->ext.ptr, msg->ext.len));
    }
    if (w.pos > SHOAL_AGENT_MAX_MESSAGE) {
        return SHOAL_AGENT_ERR_TOO_LARGE;
    }
    return (int)w.pos;
}

uint16_t shoal_agent_peek_corr(const uint8_t *in, size_t len)
{
    if (in == NULL || len < 4u || in[1] != SHOAL_AGENT_CMD) {
        return 0u;
    }
    return (uint16_t)(in[2] | ((uint16_t)in[3] << 8));
}

/* ---- names ------------------------------------------------------------------------------- */

const char *shoal_agent_strerror(int err)
{
    switch (err) {
    case SHOAL_AGENT_ERR_BUFFER_TOO_SMALL: return "output buffer too small";
    case SHOAL_AGENT_ERR_TRUNCATED: return "truncated: the payload ends inside a field";
    case SHOAL_AGENT_ERR_TOO_LARGE: return "too_large: more than 2048 bytes";
    case SHOAL_AGENT_ERR_VERSION: return "version: expected version byte 1";
    case SHOAL_AGENT_ERR_KIND: return "kind: expected kind 1..8";
    case SHOAL_AGENT_ERR_LENGTH: return "length: a length or count outside its bounds";
    case SHOAL_AGENT_ERR_VALUE: return "value: a field outside its range or vocabulary";
    case SHOAL_AGENT_ERR_EXTENSION: return "extension: malformed extension records";
    case SHOAL_AGENT_ERR_BAD_ARGUMENT: return "bad argument: NULL pointer";
    default: return err >= 0 ? "ok" : "unknown error";
    }
}

const char *shoal_agent_kind_name(uint8_t kind)
{
    switch (kind) {
    case SHOAL_AGENT_BIRTH: return "birth";
    case SHOAL_AGENT_WILL: return "will";
    case SHOAL_AGENT_HB: return "hb";
    case SHOAL_AGENT_STATUS: return "status";
    case SHOAL_AGENT_CMD: return "cmd";
    case SHOAL_AGENT_RESP: return "resp";
    case SHOAL_AGENT_PROFILE: return "profile";
    case SHOAL_AGENT_BOOT: return "boot";
    default: return "unknown kind";
    }
}
