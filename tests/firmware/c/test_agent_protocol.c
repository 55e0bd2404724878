/*
 * Host self-test of the C agent protocol codec against the golden vectors
 * (firmware_templates/agent_protocol_vectors.json).
 *
 * The vectors reach C as agent_vectors.inc, which tests/firmware/test_agent_protocol_c.py
 * writes from the JSON file (one fill function per valid vector, the exact bytes, the expected
 * error code per invalid vector); the JSON file stays the only source.
 *
 * Modes:
 *   (no argument)  every valid vector both ways (encode fields -> bytes, decode bytes -> fields),
 *                  its correlation id by shoal_agent_peek_corr, encode into a buffer one byte short, every invalid vector -> its error code.
 *                  Prints "N passed, M failed"; exit status 1 when anything failed.
 *   --fuzz         reads records (u16 little-endian length, bytes) from stdin, decodes each from
 *                  a heap buffer of exactly its size (so ASan sees any over-read), prints the
 *                  result code per line, and aborts if an accepted payload does not re-encode to
 *                  the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_agent_protocol.h"

typedef struct {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    void (*fill)(shoal_agent_msg *msg);
} valid_vector;

typedef struct {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    int error;
} invalid_vector;

#include "agent_vectors.inc"

static unsigned passed;
static unsigned failed;

static void check(int ok, const char *what, const char *name)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s: %s\n", what, name);
    }
}

static int bytes_equal(const shoal_agent_bytes *a, const shoal_agent_bytes *b)
{
    if (a->len != b->len) {
        return 0;
    }
    return a->len == 0u || memcmp(a->ptr, b->ptr, a->len) == 0;
}

static int msg_equal(const shoal_agent_msg *a, const shoal_agent_msg *b)
{
    unsigned i;
    if (a->kind != b->kind || a->incarnation != b->incarnation || !bytes_equal(&a->role, &b->role) ||
        !bytes_equal(&a->board, &b->board) ||
        memcmp(a->firmware_id, b->firmware_id, SHOAL_AGENT_HASH_BYTES) != 0 ||
        !bytes_equal(&a->generator, &b->generator) || a->free_ram != b->free_ram ||
        a->max_payload != b->max_payload || a->model_count != b->model_count) {
        return 0;
    }
    for (i = 0u; i < SHOAL_AGENT_MAX_MODELS; i++) {
        if (memcmp(a->models[i].hash, b->models[i].hash, SHOAL_AGENT_HASH_BYTES) != 0 ||
            !bytes_equal(&a->models[i].name, &b->models[i].name)) {
            return 0;
        }
    }
    if (a->seq != b->seq || a->uptime_s != b->uptime_s || a->inferences != b->inferences ||
        a->commands != b->commands || a->errors != b->errors || a->reconnects != b->reconnects ||
        a->latency_us != b->latency_us || a->state != b->state ||
        a->param_count != b->param_count) {
        return 0;
    }
    for (i = 0u; i < SHOAL_AGENT_MAX_PARAMS; i++) {
        if (a->params[i].id != b->params[i].id || a->params[i].value != b->params[i].value) {
            return 0;
        }
    }
    if (a->corr != b->corr || a->code != b->code || a->error != b->error ||
        !bytes_equal(&a->args, &b->args) || !bytes_equal(&a->result, &b->result) ||
        a->model != b->model || a->unit != b->unit || a->total_layers != b->total_layers ||
        a->layer_count != b->layer_count) {
        return 0;
    }
    for (i = 0u; i < SHOAL_AGENT_MAX_LAYERS; i++) {
        if (a->layers[i].index != b->layers[i].index || a->layers[i].op != b->layers[i].op ||
            a->layers[i].time != b->layers[i].time || a->layers[i].macs != b->layers[i].macs) {
            return 0;
        }
    }
    return a->reset_cause == b->reset_cause && a->boot_ms == b->boot_ms &&
           bytes_equal(&a->ext, &b->ext);
}

static int run_vectors(void)
{
    static uint8_t out[SHOAL_AGENT_MAX_MESSAGE + 64u];
    static shoal_agent_msg expected;
    static shoal_agent_msg decoded;
    size_t i;
    for (i = 0u; i < VALID_COUNT; i++) {
        const valid_vector *v = &VALID[i];
        uint8_t *exact;
        int n;
        shoal_agent_msg_init(&expected, 0u);
        v->fill(&expected);
        n = shoal_agent_encode(&expected, out, sizeof(out));
        check(n == (int)v->len && memcmp(out, v->bytes, v->len) == 0, "encode", v->name);
        n = shoal_agent_decode(v->bytes, v->len, &decoded);
        check(n == (int)v->len && msg_equal(&decoded, &expected), "decode", v->name);
        check(shoal_agent_peek_corr(v->bytes, v->len) ==
                  (expected.kind == SHOAL_AGENT_CMD ? expected.corr : 0u),
              "peek corr", v->name);
        /* One byte short: refused, and nothing written past the buffer (ASan watches). */
        exact = (uint8_t *)malloc(v->len - 1u);
        if (exact == NULL) {
            return 1;
        }
        n = shoal_agent_encode(&expected, exact, v->len - 1u);
        check(n == SHOAL_AGENT_ERR_BUFFER_TOO_SMALL, "encode into a short buffer", v->name);
        free(exact);
    }
    for (i = 0u; i < INVALID_COUNT; i++) {
        const invalid_vector *v = &INVALID[i];
        uint8_t *copy = (uint8_t *)malloc(v->len > 0u ? v->len : 1u);
        int n;
        if (copy == NULL) {
            return 1;
        }
        if (v->len > 0u) {
            memcpy(copy, v->bytes, v->len);
        }
        n = shoal_agent_decode(copy, v->len, &decoded);
        free(copy);
        if (n != v->error) {
            printf("  got %d (%s), expected %d\n", n, shoal_agent_strerror(n), v->error);
        }
        check(n == v->error, "invalid", v->name);
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed == 0u ? 0 : 1;
}

static int run_fuzz(void)
{
    static uint8_t out[SHOAL_AGENT_MAX_MESSAGE + 64u];
    static shoal_agent_msg msg;
    unsigned inputs = 0u;
    unsigned decoded = 0u;
    for (;;) {
        uint8_t head[2];
        size_t len;
        uint8_t *data;
        int n;
        if (fread(head, 1u, 2u, stdin) != 2u) {
            break;
        }
        len = (size_t)head[0] | ((size_t)head[1] << 8);
        data = (uint8_t *)malloc(len > 0u ? len : 1u);
        if (data == NULL || fread(data, 1u, len, stdin) != len) {
            fprintf(stderr, "short record\n");
            return 2;
        }
        n = shoal_agent_decode(data, len, &msg);
        inputs++;
        if (n >= 0) {
            int m;
            decoded++;
            m = shoal_agent_encode(&msg, out, sizeof(out));
            if (m != n || memcmp(out, data, len) != 0) {
                fprintf(stderr, "accepted payload does not re-encode (%d vs %d)\n", m, n);
                abort();
            }
        } else if (n < SHOAL_AGENT_ERR_BAD_ARGUMENT || n == SHOAL_AGENT_ERR_BUFFER_TOO_SMALL) {
            fprintf(stderr, "decode returned %d\n", n);
            abort();
        }
        printf("%d\n", n);
        free(data);
    }
    printf("inputs=%u decoded=%u\n", inputs, decoded);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--fuzz") == 0) {
        return run_fuzz();
    }
    return run_vectors();
}
