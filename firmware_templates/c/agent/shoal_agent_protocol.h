/*
 * shoal_agent_protocol.h - encoder/decoder of the Shoal agent protocol v1 payloads
 * (docs/agent_protocol.md): birth, will, hb, status, cmd, resp, profile, boot.
 *
 * Responsible for: turning one payload (the data of one MQTT-SN PUBLISH) into a
 * shoal_agent_msg and back, with every bound of the document checked in wire order (so it
 * reports the same error class as the Python codec), and the v1 extension area kept as raw
 * bytes. It never reads or writes outside the buffers it is given.
 * Must not: do I/O, allocate, keep state between calls, know topics or MQTT-SN, or interpret
 * command arguments (that is the agent's business).
 *
 * Buffer ownership:
 *  - shoal_agent_encode() writes into a caller-owned buffer and returns the number of bytes
 *    written or a negative SHOAL_AGENT_ERR_*; on error the buffer content is unspecified. The
 *    message's pointer fields are only read.
 *  - shoal_agent_decode() fills a caller-owned shoal_agent_msg (zeroed first) whose
 *    shoal_agent_bytes fields (strings, args, result, ext) point INTO the caller's payload:
 *    they are valid as long as that buffer is, and are not NUL-terminated.
 *  - A shoal_agent_msg is 556 bytes on Cortex-M (640 on x86-64): fixed arrays for models,
 *    params and layers. Keep one static per direction on small devices, not on the stack.
 *
 * Wire format: little endian; version(1) kind(1) fields... [extension records].
 */
#ifndef SHOAL_AGENT_PROTOCOL_H
#define SHOAL_AGENT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHOAL_AGENT_VERSION 1u
#define SHOAL_AGENT_MAX_MESSAGE 2048u /* bytes per payload */
#define SHOAL_AGENT_SMALL_PAYLOAD 256u /* every kind but cmd/resp fits this */
#define SHOAL_AGENT_HASH_BYTES 8u     /* firmware id, model hash: first 8 bytes of SHA-256 */
#define SHOAL_AGENT_MAX_MODELS 4u
#define SHOAL_AGENT_MAX_PARAMS 16u
#define SHOAL_AGENT_MAX_LAYERS 20u /* per profile message */
#define SHOAL_AGENT_NAME_MAX 16u   /* role, generator, model name (bytes) */
#define SHOAL_AGENT_BOARD_MAX 32u
#define SHOAL_AGENT_MIN_MAX_PAYLOAD 64u

/* Message kinds (byte 1). */
#define SHOAL_AGENT_BIRTH 1u
#define SHOAL_AGENT_WILL 2u
#define SHOAL_AGENT_HB 3u
#define SHOAL_AGENT_STATUS 4u
#define SHOAL_AGENT_CMD 5u
#define SHOAL_AGENT_RESP 6u
#define SHOAL_AGENT_PROFILE 7u
#define SHOAL_AGENT_BOOT 8u

/* Command codes (cmd.code; open set). */
#define SHOAL_AGENT_CMD_INFER 1u
#define SHOAL_AGENT_CMD_SET_PARAM 2u
#define SHOAL_AGENT_CMD_STATUS 3u
#define SHOAL_AGENT_CMD_PROFILE 4u
#define SHOAL_AGENT_CMD_REBOOT 5u
#define SHOAL_AGENT_CMD_SLEEP 6u

/* Response states (resp.state; closed set). */
#define SHOAL_AGENT_STATE_OK 0u
#define SHOAL_AGENT_STATE_ACCEPTED 1u /* not final */
#define SHOAL_AGENT_STATE_REJECTED 2u
#define SHOAL_AGENT_STATE_BUSY 3u
#define SHOAL_AGENT_STATE_ERROR 4u

/* Agent states (status.state; closed set). */
#define SHOAL_AGENT_AGENT_BOOTING 0u
#define SHOAL_AGENT_AGENT_IDLE 1u
#define SHOAL_AGENT_AGENT_BUSY 2u
#define SHOAL_AGENT_AGENT_SLEEPING 3u
#define SHOAL_AGENT_AGENT_ERROR 4u

/* Error codes (resp.error; open set, see the document's table). */
#define SHOAL_AGENT_E_NONE 0u
#define SHOAL_AGENT_E_UNKNOWN_COMMAND 1u
#define SHOAL_AGENT_E_BAD_ARGUMENTS 2u
#define SHOAL_AGENT_E_UNKNOWN_MODEL 3u
#define SHOAL_AGENT_E_INPUT_SIZE 4u
#define SHOAL_AGENT_E_UNKNOWN_PARAM 5u
#define SHOAL_AGENT_E_PARAM_RANGE 6u
#define SHOAL_AGENT_E_BUSY 7u
#define SHOAL_AGENT_E_INFERENCE_FAILED 8u
#define SHOAL_AGENT_E_RESULT_TOO_LARGE 9u
#define SHOAL_AGENT_E_UNSUPPORTED_VERSION 10u
#define SHOAL_AGENT_E_MALFORMED 11u
#define SHOAL_AGENT_E_NOT_SUPPORTED 12u
#define SHOAL_AGENT_E_INTERNAL 13u

/* Reset causes (boot.reset_cause; closed set). */
#define SHOAL_AGENT_RESET_POWER_ON 0u
#define SHOAL_AGENT_RESET_SOFTWARE 1u
#define SHOAL_AGENT_RESET_WATCHDOG 2u
#define SHOAL_AGENT_RESET_BROWNOUT 3u
#define SHOAL_AGENT_RESET_PIN 4u
#define SHOAL_AGENT_RESET_WAKE 5u
#define SHOAL_AGENT_RESET_UNKNOWN 6u

/* Profile time units (profile.unit; closed set). */
#define SHOAL_AGENT_UNIT_US 0u
#define SHOAL_AGENT_UNIT_CYCLES 1u
#define SHOAL_AGENT_UNIT_INSTRUCTIONS 2u

/* Errors returned (negative) by encode/decode; one per error class of the document. */
#define SHOAL_AGENT_ERR_BUFFER_TOO_SMALL (-1) /* encode: output buffer too small */
#define SHOAL_AGENT_ERR_TRUNCATED (-2)        /* payload ends inside a field */
#define SHOAL_AGENT_ERR_TOO_LARGE (-3)        /* more than SHOAL_AGENT_MAX_MESSAGE bytes */
#define SHOAL_AGENT_ERR_VERSION (-4)          /* version byte is not 1 */
#define SHOAL_AGENT_ERR_KIND (-5)             /* kind byte is not 1..8 */
#define SHOAL_AGENT_ERR_LENGTH (-6)           /* string/blob length or list count out of bounds */
#define SHOAL_AGENT_ERR_VALUE (-7)            /* value out of its range or vocabulary */
#define SHOAL_AGENT_ERR_EXTENSION (-8)        /* malformed extension area */
#define SHOAL_AGENT_ERR_BAD_ARGUMENT (-9)     /* NULL pointer where bytes are required */

/* A byte range inside a caller-owned buffer (string, blob or extension area). */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} shoal_agent_bytes;

typedef struct {
    uint8_t hash[SHOAL_AGENT_HASH_BYTES];
    shoal_agent_bytes name; /* 1..16 bytes */
} shoal_agent_model;

typedef struct {
    uint8_t id;
    int32_t value;
} shoal_agent_param;

typedef struct {
    uint16_t index; /* < total_layers */
    uint8_t op;     /* TFLite builtin operator code */
    uint32_t time;  /* in the report's unit */
    uint32_t macs;  /* multiply-accumulates */
} shoal_agent_layer;

/*
 * One decoded (or to-be-encoded) message. Which fields are meaningful depends on `kind`:
 *   BIRTH    incarnation, role, board, firmware_id, generator, free_ram, max_payload,
 *            model_count + models
 *   WILL     incarnation
 *   HB       incarnation, seq, uptime_s, inferences, commands, errors, reconnects,
 *            latency_us, free_ram
 *   STATUS   incarnation, state (agent state), uptime_s, free_ram, param_count + params
 *   CMD      corr, code, args
 *   RESP     corr, code, state (response state), error, latency_us, result
 *   PROFILE  corr, model, unit, total_layers, layer_count + layers
 *   BOOT     incarnation, reset_cause, corr, boot_ms, free_ram, firmware_id
 *   all      ext: the extension area (records of type, length, value); len 0 when absent
 */
typedef struct {
    uint8_t kind;
    uint32_t incarnation;
    shoal_agent_bytes role;
    shoal_agent_bytes board;
    uint8_t firmware_id[SHOAL_AGENT_HASH_BYTES];
    shoal_agent_bytes generator;
    uint32_t free_ram;    /* bytes */
    uint16_t max_payload; /* bytes */
    uint8_t model_count;
    shoal_agent_model models[SHOAL_AGENT_MAX_MODELS];
    uint32_t seq;
    uint32_t uptime_s;
    uint32_t inferences;
    uint32_t commands;
    uint32_t errors;
    uint16_t reconnects;
    uint32_t latency_us;
    uint8_t state;
    uint8_t param_count;
    shoal_agent_param params[SHOAL_AGENT_MAX_PARAMS];
    uint16_t corr;
    uint8_t code;
    uint8_t error;
    shoal_agent_bytes args;
    shoal_agent_bytes result;
    uint8_t model;
    uint8_t unit;
    uint16_t total_layers;
    uint8_t layer_count;
    shoal_agent_layer layers[SHOAL_AGENT_MAX_LAYERS];
    uint8_t reset_cause;
    uint32_t boot_ms;
    shoal_agent_bytes ext;
} shoal_agent_msg;

/* Zero every field and set `kind`; the usual start before filling a message to encode. */
void shoal_agent_msg_init(shoal_agent_msg *msg, uint8_t kind);

/*
 * Encode `msg` into out[0..out_cap). Returns the number of bytes written or a negative
 * SHOAL_AGENT_ERR_*. The encoder applies the decoder's rules, so what it writes, it reads.
 */
int shoal_agent_encode(const shoal_agent_msg *msg, uint8_t *out, size_t out_cap);

/*
 * Decode exactly one payload in[0..len) into *msg. Returns `len` on success or a negative
 * SHOAL_AGENT_ERR_* (the first problem in wire order). On error *msg is unspecified.
 */
int shoal_agent_decode(const uint8_t *in, size_t len, shoal_agent_msg *msg);

/*
 * The correlation id of a cmd payload of any version (offsets 2-3 in every version), or 0 when
 * in[0..len) is not a cmd or too short; lets an agent answer a cmd it cannot decode
 * (SHOAL_AGENT_E_UNSUPPORTED_VERSION, SHOAL_AGENT_E_MALFORMED) with the right corr.
 */
uint16_t shoal_agent_peek_corr(const uint8_t *in, size_t len);

/* Static, human-readable text for an error code or a kind (never NULL). */
const char *shoal_agent_strerror(int err);
const char *shoal_agent_kind_name(uint8_t kind);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_AGENT_PROTOCOL_H */
