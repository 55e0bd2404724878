/*
 * shoal_mqttsn_client.h - MQTT-SN v1.2 client state machine for devices.
 *
 * Responsible for: the client side of a session - gateway discovery (SEARCHGW/GWINFO), CONNECT
 * with the will flow, topic registration, PUBLISH at QoS -1/0/1/2 with retransmission
 * (T_RETRY / N_RETRY) and the DUP flag, re-registration after PUBACK rc 0x02, SUBSCRIBE /
 * UNSUBSCRIBE (names with wildcards, predefined ids, short names), gateway-initiated REGISTER,
 * keep-alive PINGREQ, gateway loss after N_RETRY unanswered retransmissions (or a DISCONNECT the
 * gateway sends on its own) followed by its own reconnect with exponential backoff and jitter
 * (a clean session re-SUBSCRIBEs; the interrupted QoS 1/2 PUBLISH is sent again with its message
 * id and DUP, or only its PUBREL after a PUBREC on a persistent session), sleep (DISCONNECT with
 * a duration) and wake (PINGREQ + client id), and a DISCONNECT that waits for open QoS 2
 * exchanges (never before our PUBCOMP of a received message).
 * Must not: allocate, block, or touch hardware. All state lives in a caller-provided
 * shoal_mqttsn_client with fixed capacities; I/O and time come through shoal_mqttsn_transport.
 *
 * Call order:
 *   1. shoal_mqttsn_client_init(&client, &config, &transport, &callbacks)
 *   2. optionally shoal_mqttsn_client_add_predefined() for ids agreed with the gateway
 *   3. shoal_mqttsn_client_connect()  (or shoal_mqttsn_client_search_gateway() first)
 *   4. call shoal_mqttsn_client_poll() often (every few ms, or when the transport is readable):
 *      it reads datagrams, runs timers and sends queued work. Callbacks run inside poll() (and
 *      inside the API calls that send immediately); they may call the API again.
 *   5. publish/subscribe/unsubscribe queue work at any time after init; it is sent once the
 *      session is active. shoal_mqttsn_client_sleep()/wake()/disconnect() as needed.
 *
 * Buffer ownership: every pointer in shoal_mqttsn_config (client id, will topic, will message)
 * is borrowed and must outlive the client. publish/subscribe copy the topic and payload into
 * the client's own fixed buffers, so the caller's buffers may be reused when the call returns.
 * Data handed to callbacks points into the client and is valid only during the callback.
 *
 * Time: milliseconds from transport->now_ms, a free-running uint32_t that may wrap.
 * Capacities: override the SHOAL_MQTTSN_* macros below with -D at build time.
 */
#ifndef SHOAL_MQTTSN_CLIENT_H
#define SHOAL_MQTTSN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "shoal_mqttsn_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SHOAL_MQTTSN_MAX_TOPICS
#define SHOAL_MQTTSN_MAX_TOPICS 16 /* topic id <-> name table entries */
#endif
#ifndef SHOAL_MQTTSN_TOPIC_NAME_MAX
#define SHOAL_MQTTSN_TOPIC_NAME_MAX 64 /* bytes per topic name or filter, without NUL */
#endif
#ifndef SHOAL_MQTTSN_MAX_SUBSCRIPTIONS
#define SHOAL_MQTTSN_MAX_SUBSCRIPTIONS 8 /* remembered for resubscribe after a reconnect */
#endif
#ifndef SHOAL_MQTTSN_QUEUE_LEN
#define SHOAL_MQTTSN_QUEUE_LEN 4 /* outbound operations (publish, subscribe, will update...) */
#endif
#ifndef SHOAL_MQTTSN_MAX_PAYLOAD
/* Bytes per PUBLISH payload (both directions; larger datagrams are dropped by the transport).
 * Hosted builds (native processes) get room for the large messages gateways send; every
 * translation unit of one build sees the same value, so the struct layout stays consistent. */
#if defined(__unix__) || defined(__APPLE__)
#define SHOAL_MQTTSN_MAX_PAYLOAD 2048
#else
#define SHOAL_MQTTSN_MAX_PAYLOAD 256
#endif
#endif
#define SHOAL_MQTTSN_MAX_PACKET (SHOAL_MQTTSN_MAX_PAYLOAD + SHOAL_MQTTSN_TOPIC_NAME_MAX + 16)

/* Default timers (spec 7.2 suggests T_RETRY 10-15 s, N_RETRY 3-5). */
#define SHOAL_MQTTSN_DEFAULT_RETRY_MS 10000u
#define SHOAL_MQTTSN_DEFAULT_MAX_RETRIES 3u

/* API results (negative = error). */
#define SHOAL_MQTTSN_OK 0
#define SHOAL_MQTTSN_ERR_QUEUE_FULL (-20)    /* try again after a PUBDONE/SUBACK event */
#define SHOAL_MQTTSN_ERR_TOO_BIG (-21)       /* topic or payload over the compiled capacity */
#define SHOAL_MQTTSN_ERR_INVALID (-22)       /* bad QoS, empty or wildcard topic, QoS -1 on a
                                                name */
#define SHOAL_MQTTSN_ERR_STATE (-23)         /* not allowed in the current state */
#define SHOAL_MQTTSN_ERR_TRANSPORT (-24)     /* transport send failed */
#define SHOAL_MQTTSN_ERR_TABLE_FULL (-25)    /* subscription table full */

typedef enum {
    SHOAL_MQTTSN_STATE_DISCONNECTED = 0,
    SHOAL_MQTTSN_STATE_SEARCHING,   /* SEARCHGW sent, waiting for GWINFO */
    SHOAL_MQTTSN_STATE_CONNECTING,  /* CONNECT (and will flow) in progress */
    SHOAL_MQTTSN_STATE_ACTIVE,
    SHOAL_MQTTSN_STATE_DISCONNECTING, /* DISCONNECT sent (with or without duration) */
    SHOAL_MQTTSN_STATE_ASLEEP,
    SHOAL_MQTTSN_STATE_AWAKE,       /* PINGREQ(client id) sent, receiving buffered messages */
    SHOAL_MQTTSN_STATE_LOST         /* gateway silent after N_RETRY; reconnecting */
} shoal_mqttsn_state;

typedef enum {
    SHOAL_MQTTSN_EVENT_CONNACK = 1,   /* return_code; 0 means the session is active */
    SHOAL_MQTTSN_EVENT_RECONNECTED,   /* active again after LOST (subscriptions being resent) */
    SHOAL_MQTTSN_EVENT_LOST,          /* gateway did not answer N_RETRY retransmissions */
    SHOAL_MQTTSN_EVENT_REGISTERED,    /* topic_id <-> topic (ours after REGACK, or gateway's) */
    SHOAL_MQTTSN_EVENT_PUBDONE,       /* msg_id, return_code (0 delivered per its QoS) */
    SHOAL_MQTTSN_EVENT_SUBACK,        /* msg_id, topic_id, qos (granted), return_code, topic */
    SHOAL_MQTTSN_EVENT_UNSUBACK,      /* msg_id, topic */
    SHOAL_MQTTSN_EVENT_PINGRESP,
    SHOAL_MQTTSN_EVENT_ASLEEP,        /* gateway confirmed DISCONNECT(duration) */
    SHOAL_MQTTSN_EVENT_AWAKE,         /* woke and sent PINGREQ(client id) */
    SHOAL_MQTTSN_EVENT_DISCONNECTED,  /* session closed (by us, or by the gateway) */
    SHOAL_MQTTSN_EVENT_GWINFO,        /* gw_id, gw_add/gw_add_len: select the gateway in the
                                         transport (e.g. shoal_posix_udp_use_gateway): GwAdd when
                                         a client answered for it, else the datagram's sender */
    SHOAL_MQTTSN_EVENT_ADVERTISE,     /* gw_id, duration_s (the sender is the gateway) */
    SHOAL_MQTTSN_EVENT_SEARCH_FAILED, /* no GWINFO after N_RETRY SEARCHGW */
    SHOAL_MQTTSN_EVENT_WILLRESP       /* return_code of a WILLTOPICUPD / WILLMSGUPD */
} shoal_mqttsn_event_type;

typedef struct {
    shoal_mqttsn_event_type type;
    uint8_t return_code;
    int8_t qos;
    uint8_t gw_id;
    uint16_t msg_id;
    uint16_t topic_id;
    uint16_t duration_s;
    const char *topic; /* NUL-terminated when not NULL; valid during the callback only */
    const uint8_t *gw_add; /* GWINFO's GwAdd (gw_add_len bytes, 0 = none); callback only */
    uint8_t gw_add_len;
} shoal_mqttsn_event;

/* A received PUBLISH, already acknowledged per its QoS. QoS 2 is delivered exactly once, on its
 * first PUBLISH (copies with the same message id are acknowledged, not delivered, until the next
 * message id); the exchange ends with our PUBCOMP to the gateway's PUBREL. */
typedef struct {
    const char *topic;      /* NUL-terminated name; NULL for a predefined id with no name */
    uint16_t topic_id;
    uint8_t topic_type;     /* SHOAL_MQTTSN_TOPIC_* */
    int8_t qos;
    uint8_t retain;
    uint8_t dup;
    uint16_t msg_id;
    const uint8_t *payload;
    size_t payload_len;     /* bytes */
} shoal_mqttsn_message;

typedef struct {
    void (*on_message)(void *user, const shoal_mqttsn_message *msg);
    void (*on_event)(void *user, const shoal_mqttsn_event *ev);
    void *user;
} shoal_mqttsn_callbacks;

/*
 * The link to the gateway. send/recv move whole MQTT-SN messages (one per datagram, or one per
 * serial frame). recv must not block. The client calls these only from its own functions.
 */
typedef struct {
    /* Returns 0 on success, negative on failure. */
    int (*send)(void *ctx, const uint8_t *data, size_t len);
    /* Optional: broadcast for SEARCHGW; NULL uses send. */
    int (*broadcast)(void *ctx, const uint8_t *data, size_t len);
    /* Returns the length of one received datagram (> 0), 0 when none is waiting, < 0 error. */
    int (*recv)(void *ctx, uint8_t *buf, size_t cap);
    uint32_t (*now_ms)(void *ctx);
    void *ctx;
} shoal_mqttsn_transport;

typedef struct {
    const char *client_id;      /* 1..23 bytes, NUL-terminated */
    uint16_t keepalive_s;       /* CONNECT Duration; PINGREQ after this long without sending */
    uint8_t clean_session;
    uint32_t retry_ms;          /* T_RETRY */
    uint8_t max_retries;        /* N_RETRY */
    uint32_t congestion_wait_ms; /* T_WAIT after rc 0x01 */
    uint32_t reconnect_delay_ms; /* first pause before reconnecting after LOST/DISCONNECT; it
                                    doubles per failed attempt up to reconnect_max_delay_ms,
                                    each drawn from [d/2, d] (jitter); reset by a CONNACK */
    uint32_t reconnect_max_delay_ms;
    uint8_t auto_reconnect;     /* 1: reconnect (and resubscribe) on its own after LOST */
    uint8_t search_radius;      /* SEARCHGW Radius */
    /* Will: will_topic NULL = no will. */
    const char *will_topic;
    const uint8_t *will_msg;
    size_t will_msg_len;
    int8_t will_qos;
    uint8_t will_retain;
} shoal_mqttsn_config;

/* Fills *cfg with defaults: keep-alive 60 s, clean session, T_RETRY 10 s, N_RETRY 3, T_WAIT
 * 300 s, reconnect delay 1 s doubling up to 60 s, auto reconnect on, radius 1, no will.
 * client_id stays NULL. */
void shoal_mqttsn_config_defaults(shoal_mqttsn_config *cfg);

/* Internal types; read-only for applications (fields may change). */
typedef struct {
    uint16_t id;
    uint8_t type;   /* SHOAL_MQTTSN_TOPIC_NORMAL or _PREDEFINED */
    uint8_t used;
    char name[SHOAL_MQTTSN_TOPIC_NAME_MAX + 1];
} shoal_mqttsn_topic_entry;

typedef struct {
    uint8_t used;
    uint8_t topic_type;
    int8_t qos;
    uint16_t topic_id;  /* predefined id or short name */
    char name[SHOAL_MQTTSN_TOPIC_NAME_MAX + 1];
} shoal_mqttsn_subscription;

typedef struct {
    uint8_t kind;       /* publish, subscribe, unsubscribe, will topic/message update */
    uint8_t topic_type;
    int8_t qos;
    uint8_t retain;
    uint8_t reregistered; /* already re-registered once after rc 0x02 */
    uint8_t sent_before;  /* PUBLISH was in flight when the session was lost: resent with DUP */
    uint8_t released;     /* PUBREC came (QoS 2): after a reconnect only PUBREL is resent */
    uint16_t topic_id;
    uint16_t msg_id;
    uint16_t payload_len;
    char name[SHOAL_MQTTSN_TOPIC_NAME_MAX + 1];
    uint8_t payload[SHOAL_MQTTSN_MAX_PAYLOAD];
} shoal_mqttsn_op;

typedef struct {
    shoal_mqttsn_config config;
    shoal_mqttsn_transport transport;
    shoal_mqttsn_callbacks callbacks;
    shoal_mqttsn_state state;
    uint8_t was_lost;        /* reconnecting after LOST: report RECONNECTED, resubscribe */
    uint8_t resubscribe_next; /* index into subs while resubscribing */
    uint8_t resubscribing;

    /* The one outstanding request (stop-and-wait): its bytes are kept for retransmission. */
    uint8_t pending;          /* 0 none, else the reply type awaited */
    uint8_t pending_stage;    /* what the pending request belongs to (op stage or control) */
    uint8_t pending_retries;
    uint16_t pending_msg_id;
    uint32_t pending_sent_ms;
    uint16_t pending_len;
    uint8_t pending_packet[SHOAL_MQTTSN_MAX_PACKET];

    /* Outbound operations: ring buffer; the head is the one in progress. */
    shoal_mqttsn_op queue[SHOAL_MQTTSN_QUEUE_LEN];
    uint8_t queue_head;
    uint8_t queue_count;
    uint8_t op_active;        /* head operation started */
    uint32_t hold_until_ms;   /* congestion back-off */
    uint8_t holding;

    /* Inbound QoS 2: the message id delivered but not yet released (PUBREL). */
    uint16_t inbound_qos2_msg_id;
    uint8_t inbound_qos2_active;
    uint8_t inbound_qos2_released; /* inbound_qos2_msg_id was released; copies are stale */

    shoal_mqttsn_topic_entry topics[SHOAL_MQTTSN_MAX_TOPICS];
    shoal_mqttsn_subscription subs[SHOAL_MQTTSN_MAX_SUBSCRIPTIONS];

    uint16_t next_msg_id;
    uint32_t last_send_ms;
    uint32_t state_since_ms;
    uint32_t reconnect_at_ms;  /* when LOST: time of the next CONNECT attempt */
    uint8_t reconnect_attempt; /* failed attempts since the last CONNACK (backoff exponent) */
    uint32_t rng_state;        /* xorshift32 for the reconnect jitter */
    uint16_t sleep_duration_s;

    /* Counters for observability. */
    uint32_t sent;
    uint32_t received;
    uint32_t retransmitted;
    uint32_t malformed;
    uint32_t dropped;

    uint8_t rx_buf[SHOAL_MQTTSN_MAX_PACKET];
    uint8_t tx_buf[SHOAL_MQTTSN_MAX_PACKET];
} shoal_mqttsn_client;

/* Copy config/transport/callbacks (the structs, not what they point to) and reset all state.
 * Returns SHOAL_MQTTSN_ERR_INVALID for a missing client id (or one longer than 23 bytes) or a
 * transport without send/recv/now_ms. */
int shoal_mqttsn_client_init(shoal_mqttsn_client *c, const shoal_mqttsn_config *config,
                             const shoal_mqttsn_transport *transport,
                             const shoal_mqttsn_callbacks *callbacks);

/* Record a predefined topic id and its name (used to name received messages). */
int shoal_mqttsn_client_add_predefined(shoal_mqttsn_client *c, uint16_t topic_id,
                                       const char *name);

/* Broadcast SEARCHGW; a GWINFO answer raises EVENT_GWINFO (then select the gateway in the
 * transport and call connect). Retries every T_RETRY, N_RETRY times. */
int shoal_mqttsn_client_search_gateway(shoal_mqttsn_client *c);

/* Start a CONNECT (also the way back from sleep to active). CONNACK arrives as an event. */
int shoal_mqttsn_client_connect(shoal_mqttsn_client *c);

/*
 * Queue a PUBLISH on a topic name (registered automatically), a predefined id or a two-character
 * short name. qos -1..2 (-1 only with predefined or short topics; sent at once, any state).
 * Returns the message id (>= 1) for QoS 1/2, 0 for QoS 0/-1, or a negative error. Completion
 * raises EVENT_PUBDONE with that id (QoS 0: once sent).
 */
int shoal_mqttsn_client_publish(shoal_mqttsn_client *c, const char *topic, int qos, int retain,
                                const uint8_t *payload, size_t payload_len);
int shoal_mqttsn_client_publish_predefined(shoal_mqttsn_client *c, uint16_t topic_id, int qos,
                                           int retain, const uint8_t *payload,
                                           size_t payload_len);
int shoal_mqttsn_client_publish_short(shoal_mqttsn_client *c, const char *short_name, int qos,
                                      int retain, const uint8_t *payload, size_t payload_len);

/* Subscribe to a topic filter (wildcards allowed), a predefined id, or a short name. The
 * subscription is remembered and resent after a reconnect. Returns the message id or < 0. */
int shoal_mqttsn_client_subscribe(shoal_mqttsn_client *c, const char *filter, int qos);
int shoal_mqttsn_client_subscribe_predefined(shoal_mqttsn_client *c, uint16_t topic_id, int qos);
int shoal_mqttsn_client_subscribe_short(shoal_mqttsn_client *c, const char *short_name, int qos);
int shoal_mqttsn_client_unsubscribe(shoal_mqttsn_client *c, const char *filter);
int shoal_mqttsn_client_unsubscribe_predefined(shoal_mqttsn_client *c, uint16_t topic_id);
int shoal_mqttsn_client_unsubscribe_short(shoal_mqttsn_client *c, const char *short_name);

/*
 * Queue a WILLTOPICUPD (topic NULL or "" deletes the will) or a WILLMSGUPD; the answer raises
 * EVENT_WILLRESP. The pointers become the config's will (borrowed: keep them alive) so later
 * reconnects send the updated will. Returns 0 or a negative error.
 */
int shoal_mqttsn_client_update_will_topic(shoal_mqttsn_client *c, const char *topic, int qos,
                                          int retain);
int shoal_mqttsn_client_update_will_msg(shoal_mqttsn_client *c, const uint8_t *msg, size_t len);

/* Ask the gateway to hold messages while we sleep for duration_s seconds (DISCONNECT with
 * Duration). The client wakes on its own every 3/4 of duration_s to collect them. */
int shoal_mqttsn_client_sleep(shoal_mqttsn_client *c, uint16_t duration_s);
/* While asleep: send PINGREQ(client id) now to collect buffered messages. */
int shoal_mqttsn_client_wake(shoal_mqttsn_client *c);
/* DISCONNECT without a duration. Returns SHOAL_MQTTSN_ERR_STATE while work is queued or in
 * flight, or while a received QoS 2 message awaits its PUBREL: keep polling and call again
 * (bounded by the caller) so the gateway's exchange completes first. */
int shoal_mqttsn_client_disconnect(shoal_mqttsn_client *c);

/* Read the waiting datagrams (at most 16 per call), handle them, run timers, send queued work.
 * Returns SHOAL_MQTTSN_OK; a failed send is treated like a lost datagram (retransmitted). */
int shoal_mqttsn_client_poll(shoal_mqttsn_client *c);

/* Feed one received datagram directly (what poll() does for each datagram it reads). */
void shoal_mqttsn_client_handle_datagram(shoal_mqttsn_client *c, const uint8_t *data,
                                         size_t len);

shoal_mqttsn_state shoal_mqttsn_client_state(const shoal_mqttsn_client *c);
/* Operations queued or in flight (0 = all publishes/subscriptions done). */
unsigned shoal_mqttsn_client_pending_ops(const shoal_mqttsn_client *c);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_MQTTSN_CLIENT_H */
