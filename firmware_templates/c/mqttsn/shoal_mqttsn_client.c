/*
 * shoal_mqttsn_client.c - MQTT-SN v1.2 client state machine (see shoal_mqttsn_client.h).
 *
 * Design: stop-and-wait. At most one request that expects a reply is outstanding (its encoded
 * bytes stay in pending_packet for retransmission), which also satisfies the spec's "one QoS 1/2
 * PUBLISH in flight per direction". Application work waits in a small ring of operations; the
 * head operation is restarted from scratch (register, then publish) when the session is lost.
 */
#include "shoal_mqttsn_client.h"

#include <string.h>

enum {
    OP_PUBLISH = 1,
    OP_SUBSCRIBE,
    OP_UNSUBSCRIBE,
    OP_WILLTOPICUPD,
    OP_WILLMSGUPD
};

/* What the outstanding request belongs to. */
enum {
    STAGE_NONE = 0,
    STAGE_SEARCH,
    STAGE_CONNECT,
    STAGE_REGISTER,
    STAGE_PUBLISH,
    STAGE_PUBREL,
    STAGE_SUBSCRIBE,
    STAGE_RESUBSCRIBE,
    STAGE_UNSUBSCRIBE,
    STAGE_WILLUPD,
    STAGE_PING,
    STAGE_WAKE,
    STAGE_DISCONNECT,
    STAGE_SLEEP
};

#define SUB_FREE 0u
#define SUB_REQUESTED 1u
#define SUB_CONFIRMED 2u

static uint32_t now_ms(shoal_mqttsn_client *c)
{
    return c->transport.now_ms(c->transport.ctx);
}

static int time_reached(uint32_t now, uint32_t deadline)
{
    return (int32_t)(now - deadline) >= 0;
}

static uint16_t next_msg_id(shoal_mqttsn_client *c)
{
    c->next_msg_id++;
    if (c->next_msg_id == 0u) {
        c->next_msg_id = 1u;
    }
    return c->next_msg_id;
}

static size_t bounded_strlen(const char *s, size_t max_plus_one)
{
    size_t n = 0;
    while (n < max_plus_one && s[n] != '\0') {
        ++n;
    }
    return n;
}

static void emit(shoal_mqttsn_client *c, const shoal_mqttsn_event *ev)
{
    if (c->callbacks.on_event != NULL) {
        c->callbacks.on_event(c->callbacks.user, ev);
    }
}

static void emit_simple(shoal_mqttsn_client *c, shoal_mqttsn_event_type type, uint8_t rc,
                        uint16_t msg_id)
{
    shoal_mqttsn_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.return_code = rc;
    ev.msg_id = msg_id;
    emit(c, &ev);
}

/* The next reconnect pause: reconnect_delay_ms doubled per failed attempt, capped, drawn from
 * [d/2, d] so devices that lost the same gateway do not all return in the same instant. */
static uint32_t backoff_delay_ms(shoal_mqttsn_client *c)
{
    uint32_t cap = c->config.reconnect_max_delay_ms;
    uint32_t d = c->config.reconnect_delay_ms;
    uint8_t i;
    uint32_t x = c->rng_state;
    if (cap < d) {
        cap = d;
    }
    for (i = 0; i < c->reconnect_attempt && d < cap; ++i) {
        d = d > cap / 2u ? cap : d * 2u;
    }
    if (c->reconnect_attempt < 255u) {
        c->reconnect_attempt++;
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c->rng_state = x;
    return d / 2u + (d / 2u > 0u ? x % (d / 2u + 1u) : 0u);
}

static void set_state(shoal_mqttsn_client *c, shoal_mqttsn_state state)
{
    c->state = state;
    c->state_since_ms = now_ms(c);
}

static int send_raw(shoal_mqttsn_client *c, const uint8_t *data, size_t len, int broadcast)
{
    int rc;
    if (broadcast && c->transport.broadcast != NULL) {
        rc = c->transport.broadcast(c->transport.ctx, data, len);
    } else {
        rc = c->transport.send(c->transport.ctx, data, len);
    }
    c->last_send_ms = now_ms(c);
    if (rc < 0) {
        return SHOAL_MQTTSN_ERR_TRANSPORT;
    }
    c->sent++;
    return SHOAL_MQTTSN_OK;
}

/* Encode into tx_buf and send a message that expects no reply. */
static int send_msg(shoal_mqttsn_client *c, const shoal_mqttsn_msg *m)
{
    int n = shoal_mqttsn_encode(m, c->tx_buf, sizeof(c->tx_buf));
    if (n < 0) {
        return SHOAL_MQTTSN_ERR_TOO_BIG;
    }
    return send_raw(c, c->tx_buf, (size_t)n, 0);
}

/* Encode into pending_packet, send, and wait for `reply` (retransmitted every T_RETRY). */
static int send_request(shoal_mqttsn_client *c, const shoal_mqttsn_msg *m, uint8_t stage,
                        uint8_t reply, uint16_t msg_id)
{
    int n = shoal_mqttsn_encode(m, c->pending_packet, sizeof(c->pending_packet));
    if (n < 0) {
        return SHOAL_MQTTSN_ERR_TOO_BIG;
    }
    c->pending = reply;
    c->pending_stage = stage;
    c->pending_msg_id = msg_id;
    c->pending_retries = 0;
    c->pending_len = (uint16_t)n;
    c->pending_sent_ms = now_ms(c);
    /* A failed send is retried by the retransmission timer like a lost datagram. */
    (void)send_raw(c, c->pending_packet, (size_t)n, stage == STAGE_SEARCH);
    return SHOAL_MQTTSN_OK;
}

static void clear_pending(shoal_mqttsn_client *c)
{
    c->pending = 0;
    c->pending_stage = STAGE_NONE;
}

/* ---- topic table ---------------------------------------------------------------------- */

static shoal_mqttsn_topic_entry *topic_by_name(shoal_mqttsn_client *c, const char *name)
{
    int i;
    for (i = 0; i < SHOAL_MQTTSN_MAX_TOPICS; ++i) {
        shoal_mqttsn_topic_entry *t = &c->topics[i];
        if (t->used && t->type == SHOAL_MQTTSN_TOPIC_NORMAL && strcmp(t->name, name) == 0) {
            return t;
        }
    }
    return NULL;
}

static shoal_mqttsn_topic_entry *topic_by_id(shoal_mqttsn_client *c, uint8_t type, uint16_t id)
{
    int i;
    for (i = 0; i < SHOAL_MQTTSN_MAX_TOPICS; ++i) {
        shoal_mqttsn_topic_entry *t = &c->topics[i];
        if (t->used && t->type == type && t->id == id) {
            return t;
        }
    }
    return NULL;
}

/* Record id <-> name; returns 0, or -1 when the name is too long or the table is full. */
static int topic_store(shoal_mqttsn_client *c, uint8_t type, uint16_t id, const uint8_t *name,
                       size_t name_len)
{
    shoal_mqttsn_topic_entry *slot = topic_by_id(c, type, id);
    int i;
    if (name_len > SHOAL_MQTTSN_TOPIC_NAME_MAX) {
        return -1;
    }
    for (i = 0; slot == NULL && i < SHOAL_MQTTSN_MAX_TOPICS; ++i) {
        shoal_mqttsn_topic_entry *t = &c->topics[i];
        if (t->used && t->type == type && t->name[name_len] == '\0' &&
            memcmp(t->name, name, name_len) == 0) {
            slot = t; /* same name, new id */
        }
    }
    for (i = 0; slot == NULL && i < SHOAL_MQTTSN_MAX_TOPICS; ++i) {
        if (!c->topics[i].used) {
            slot = &c->topics[i];
        }
    }
    if (slot == NULL) {
        return -1;
    }
    slot->used = 1u;
    slot->type = type;
    slot->id = id;
    memcpy(slot->name, name, name_len);
    slot->name[name_len] = '\0';
    return 0;
}

/* Registered ids belong to one session: forget them (predefined ids stay). */
static void forget_registrations(shoal_mqttsn_client *c)
{
    int i;
    for (i = 0; i < SHOAL_MQTTSN_MAX_TOPICS; ++i) {
        if (c->topics[i].type == SHOAL_MQTTSN_TOPIC_NORMAL) {
            c->topics[i].used = 0u;
        }
    }
}

/* ---- subscriptions and operations -------------------------------------------------------- */

static shoal_mqttsn_subscription *sub_find(shoal_mqttsn_client *c, uint8_t type, uint16_t id,
                                           const char *name)
{
    int i;
    for (i = 0; i < SHOAL_MQTTSN_MAX_SUBSCRIPTIONS; ++i) {
        shoal_mqttsn_subscription *s = &c->subs[i];
        if (s->used == SUB_FREE || s->topic_type != type) {
            continue;
        }
        if (type == SHOAL_MQTTSN_TOPIC_NORMAL ? strcmp(s->name, name) == 0 : s->topic_id == id) {
            return s;
        }
    }
    return NULL;
}

static shoal_mqttsn_op *head_op(shoal_mqttsn_client *c)
{
    return c->queue_count ? &c->queue[c->queue_head] : NULL;
}

static void pop_op(shoal_mqttsn_client *c)
{
    if (c->queue_count > 0u) {
        c->queue_head = (uint8_t)((c->queue_head + 1u) % SHOAL_MQTTSN_QUEUE_LEN);
        c->queue_count--;
    }
    c->op_active = 0u;
}

static void finish_publish(shoal_mqttsn_client *c, uint8_t rc)
{
    shoal_mqttsn_op *op = head_op(c);
    uint16_t msg_id = op != NULL ? op->msg_id : 0u;
    pop_op(c);
    emit_simple(c, SHOAL_MQTTSN_EVENT_PUBDONE, rc, msg_id);
}

static void hold_for_congestion(shoal_mqttsn_client *c)
{
    c->holding = 1u;
    c->hold_until_ms = now_ms(c) + c->config.congestion_wait_ms;
    c->op_active = 0u;
}

static void fill_topic_fields(shoal_mqttsn_msg *m, uint8_t topic_type, uint16_t topic_id,
                              const char *name)
{
    m->flags |= topic_type;
    if (topic_type == SHOAL_MQTTSN_TOPIC_NORMAL) {
        m->text = (const uint8_t *)name;
        m->text_len = strlen(name);
    } else {
        m->topic_id = topic_id;
    }
}

static int send_subscribe(shoal_mqttsn_client *c, uint8_t stage, uint8_t topic_type,
                          uint16_t topic_id, const char *name, int qos, uint16_t msg_id)
{
    shoal_mqttsn_msg m;
    shoal_mqttsn_msg_init(&m, stage == STAGE_UNSUBSCRIBE ? SHOAL_MQTTSN_UNSUBSCRIBE
                                                         : SHOAL_MQTTSN_SUBSCRIBE);
    if (stage != STAGE_UNSUBSCRIBE) {
        m.flags = shoal_mqttsn_qos_flags(qos);
    }
    m.msg_id = msg_id;
    fill_topic_fields(&m, topic_type, topic_id, name);
    return send_request(c, &m, stage,
                        stage == STAGE_UNSUBSCRIBE ? SHOAL_MQTTSN_UNSUBACK : SHOAL_MQTTSN_SUBACK,
                        msg_id);
}

/* Send the PUBLISH of the head operation (its topic is known). Returns 1 when the operation
 * completed immediately (QoS 0), 0 when a reply is awaited. */
static int send_publish(shoal_mqttsn_client *c, shoal_mqttsn_op *op, uint16_t topic_id)
{
    shoal_mqttsn_msg m;
    shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_PUBLISH);
    m.flags = (uint8_t)(shoal_mqttsn_qos_flags(op->qos) | op->topic_type |
                        (op->retain ? SHOAL_MQTTSN_FLAG_RETAIN : 0u));
    m.topic_id = topic_id;
    m.msg_id = op->qos > 0 ? op->msg_id : 0u;
    m.data = op->payload;
    m.data_len = op->payload_len;
    if (op->qos > 0 && op->sent_before) {
        m.flags |= SHOAL_MQTTSN_FLAG_DUP; /* sent before a reconnect: the gateway may have it */
    }
    if (op->qos <= 0) {
        (void)send_msg(c, &m);
        finish_publish(c, SHOAL_MQTTSN_RC_ACCEPTED);
        return 1;
    }
    (void)send_request(c, &m, STAGE_PUBLISH,
                       op->qos == 1 ? SHOAL_MQTTSN_PUBACK : SHOAL_MQTTSN_PUBREC, op->msg_id);
    return 0;
}

/* Start (or restart) the head operation. Returns 1 if it finished at once. */
static int start_op(shoal_mqttsn_client *c, shoal_mqttsn_op *op)
{
    c->op_active = 1u;
    if (op->kind == OP_PUBLISH && op->released) {
        /* PUBREC came before the session was lost: the gateway has the message, finish it. */
        shoal_mqttsn_msg rel;
        shoal_mqttsn_msg_init(&rel, SHOAL_MQTTSN_PUBREL);
        rel.msg_id = op->msg_id;
        (void)send_request(c, &rel, STAGE_PUBREL, SHOAL_MQTTSN_PUBCOMP, op->msg_id);
        return 0;
    }
    if (op->kind == OP_PUBLISH) {
        if (op->topic_type == SHOAL_MQTTSN_TOPIC_NORMAL) {
            shoal_mqttsn_topic_entry *t = topic_by_name(c, op->name);
            if (t == NULL) {
                shoal_mqttsn_msg m;
                uint16_t reg_id = next_msg_id(c);
                shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_REGISTER);
                m.msg_id = reg_id;
                m.text = (const uint8_t *)op->name;
                m.text_len = strlen(op->name);
                (void)send_request(c, &m, STAGE_REGISTER, SHOAL_MQTTSN_REGACK, reg_id);
                return 0;
            }
            return send_publish(c, op, t->id);
        }
        return send_publish(c, op, op->topic_id);
    }
    if (op->kind == OP_WILLTOPICUPD || op->kind == OP_WILLMSGUPD) {
        shoal_mqttsn_msg m;
        if (op->kind == OP_WILLTOPICUPD) {
            shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_WILLTOPICUPD);
            m.flags = (uint8_t)(shoal_mqttsn_qos_flags(op->qos) |
                                (op->retain ? SHOAL_MQTTSN_FLAG_RETAIN : 0u));
            m.text = (const uint8_t *)op->name;
            m.text_len = strlen(op->name); /* empty: delete the will */
        } else {
            shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_WILLMSGUPD);
            m.data = op->payload;
            m.data_len = op->payload_len;
        }
        (void)send_request(c, &m, STAGE_WILLUPD,
                           op->kind == OP_WILLTOPICUPD ? SHOAL_MQTTSN_WILLTOPICRESP
                                                       : SHOAL_MQTTSN_WILLMSGRESP,
                           0u);
        return 0;
    }
    (void)send_subscribe(c, op->kind == OP_SUBSCRIBE ? STAGE_SUBSCRIBE : STAGE_UNSUBSCRIBE,
                         op->topic_type, op->topic_id, op->name, op->qos, op->msg_id);
    return 0;
}

static int next_resubscribe(shoal_mqttsn_client *c)
{
    while (c->resubscribe_next < SHOAL_MQTTSN_MAX_SUBSCRIPTIONS) {
        shoal_mqttsn_subscription *s = &c->subs[c->resubscribe_next];
        if (s->used == SUB_CONFIRMED) {
            (void)send_subscribe(c, STAGE_RESUBSCRIBE, s->topic_type, s->topic_id, s->name,
                                 s->qos, next_msg_id(c));
            return 1;
        }
        c->resubscribe_next++;
    }
    c->resubscribing = 0u;
    return 0;
}

/* Start the next piece of work when the session is active and nothing is outstanding. */
static void pump(shoal_mqttsn_client *c)
{
    uint32_t now = now_ms(c);
    int guard;
    for (guard = 0; guard < SHOAL_MQTTSN_QUEUE_LEN + 1; ++guard) {
        shoal_mqttsn_op *op;
        if (c->state != SHOAL_MQTTSN_STATE_ACTIVE || c->pending) {
            return;
        }
        if (c->resubscribing && next_resubscribe(c)) {
            return;
        }
        if (c->holding) {
            if (!time_reached(now, c->hold_until_ms)) {
                break;
            }
            c->holding = 0u;
        }
        op = head_op(c);
        if (op == NULL) {
            break;
        }
        if (!start_op(c, op)) {
            return;
        }
    }
    if (c->state == SHOAL_MQTTSN_STATE_ACTIVE && !c->pending && c->config.keepalive_s > 0u &&
        time_reached(now, c->last_send_ms + (uint32_t)c->config.keepalive_s * 1000u)) {
        shoal_mqttsn_msg m;
        shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_PINGREQ);
        (void)send_request(c, &m, STAGE_PING, SHOAL_MQTTSN_PINGRESP, 0u);
    }
}

/* ---- session ----------------------------------------------------------------------------- */

static int send_connect(shoal_mqttsn_client *c)
{
    shoal_mqttsn_msg m;
    shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_CONNECT);
    m.flags = (uint8_t)((c->config.clean_session ? SHOAL_MQTTSN_FLAG_CLEAN : 0u) |
                        (c->config.will_topic != NULL ? SHOAL_MQTTSN_FLAG_WILL : 0u));
    m.protocol_id = SHOAL_MQTTSN_PROTOCOL_ID;
    m.duration = c->config.keepalive_s;
    m.text = (const uint8_t *)c->config.client_id;
    m.text_len = strlen(c->config.client_id);
    set_state(c, SHOAL_MQTTSN_STATE_CONNECTING);
    return send_request(c, &m, STAGE_CONNECT, SHOAL_MQTTSN_CONNACK, 0u);
}

/* The gateway stopped answering (or dropped us): forget the session, reconnect later. */
static void session_lost(shoal_mqttsn_client *c, uint32_t retry_after_ms, int announce)
{
    shoal_mqttsn_op *op = head_op(c);
    uint8_t in_release = c->pending_stage == STAGE_PUBREL;
    uint8_t in_publish = c->pending_stage == STAGE_PUBLISH;
    clear_pending(c);
    c->resubscribing = 0u;
    if (c->config.clean_session) {
        c->inbound_qos2_active = 0u; /* a persistent session may still get the PUBREL */
        c->inbound_qos2_released = 0u;
    }
    set_state(c, SHOAL_MQTTSN_STATE_LOST);
    c->reconnect_at_ms = now_ms(c) + retry_after_ms;
    if (announce && !c->was_lost) {
        emit_simple(c, SHOAL_MQTTSN_EVENT_LOST, 0u, 0u);
    }
    c->was_lost = 1u;
    if (op != NULL && c->op_active) {
        /* After PUBREC the gateway owns a QoS 2 message. A clean session starts anew on the
         * gateway, so it counts as delivered; a persistent one gets its PUBREL again. */
        if (in_release && c->config.clean_session) {
            finish_publish(c, SHOAL_MQTTSN_RC_ACCEPTED);
        } else {
            op->released = in_release;
            op->sent_before = (uint8_t)(op->sent_before | in_publish);
            c->op_active = 0u;
        }
    }
    if (!c->config.auto_reconnect) {
        set_state(c, SHOAL_MQTTSN_STATE_DISCONNECTED);
        emit_simple(c, SHOAL_MQTTSN_EVENT_DISCONNECTED, 0u, 0u);
    }
}

static void on_connack(shoal_mqttsn_client *c, uint8_t rc)
{
    int reconnected = c->was_lost;
    clear_pending(c);
    if (rc != SHOAL_MQTTSN_RC_ACCEPTED) {
        emit_simple(c, SHOAL_MQTTSN_EVENT_CONNACK, rc, 0u);
        if (rc == SHOAL_MQTTSN_RC_CONGESTION && c->config.auto_reconnect) {
            session_lost(c, c->config.congestion_wait_ms, 0);
        } else {
            set_state(c, SHOAL_MQTTSN_STATE_DISCONNECTED);
        }
        return;
    }
    set_state(c, SHOAL_MQTTSN_STATE_ACTIVE);
    c->was_lost = 0u;
    c->reconnect_attempt = 0u;
    if (c->config.clean_session) {
        /* A new session: the gateway forgot our topic ids and subscriptions, and may restart
         * its message ids. A persistent session (CleanSession=0) keeps all of it. */
        c->inbound_qos2_active = 0u;
        c->inbound_qos2_released = 0u;
        forget_registrations(c);
        c->resubscribing = 1u;
        c->resubscribe_next = 0u;
        c->op_active = 0u;
    }
    emit_simple(c, SHOAL_MQTTSN_EVENT_CONNACK, rc, 0u);
    if (reconnected) {
        emit_simple(c, SHOAL_MQTTSN_EVENT_RECONNECTED, 0u, 0u);
    }
}

static void on_will_request(shoal_mqttsn_client *c, uint8_t type)
{
    shoal_mqttsn_msg m;
    if (c->pending_stage != STAGE_CONNECT || c->config.will_topic == NULL) {
        return;
    }
    if (type == SHOAL_MQTTSN_WILLTOPICREQ) {
        shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_WILLTOPIC);
        m.flags = (uint8_t)(shoal_mqttsn_qos_flags(c->config.will_qos) |
                            (c->config.will_retain ? SHOAL_MQTTSN_FLAG_RETAIN : 0u));
        m.text = (const uint8_t *)c->config.will_topic;
        m.text_len = strlen(c->config.will_topic);
    } else {
        shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_WILLMSG);
        m.data = c->config.will_msg;
        m.data_len = c->config.will_msg_len;
    }
    (void)send_request(c, &m, STAGE_CONNECT, SHOAL_MQTTSN_CONNACK, 0u);
}

static void on_register(shoal_mqttsn_client *c, const shoal_mqttsn_msg *in)
{
    shoal_mqttsn_msg ack;
    uint8_t rc = SHOAL_MQTTSN_RC_ACCEPTED;
    if (in->topic_id == 0u || in->topic_id == 0xFFFFu) {
        rc = SHOAL_MQTTSN_RC_INVALID_TOPIC_ID;
    } else if (topic_store(c, SHOAL_MQTTSN_TOPIC_NORMAL, in->topic_id, in->text, in->text_len) <
               0) {
        rc = SHOAL_MQTTSN_RC_NOT_SUPPORTED;
    }
    shoal_mqttsn_msg_init(&ack, SHOAL_MQTTSN_REGACK);
    ack.topic_id = in->topic_id;
    ack.msg_id = in->msg_id;
    ack.return_code = rc;
    (void)send_msg(c, &ack);
    if (rc == SHOAL_MQTTSN_RC_ACCEPTED) {
        shoal_mqttsn_event ev;
        shoal_mqttsn_topic_entry *t = topic_by_id(c, SHOAL_MQTTSN_TOPIC_NORMAL, in->topic_id);
        memset(&ev, 0, sizeof(ev));
        ev.type = SHOAL_MQTTSN_EVENT_REGISTERED;
        ev.topic_id = in->topic_id;
        ev.msg_id = in->msg_id;
        ev.topic = t != NULL ? t->name : NULL;
        emit(c, &ev);
    }
}

static void on_regack(shoal_mqttsn_client *c, const shoal_mqttsn_msg *in)
{
    shoal_mqttsn_op *op = head_op(c);
    if (c->pending_stage != STAGE_REGISTER || in->msg_id != c->pending_msg_id || op == NULL) {
        return;
    }
    clear_pending(c);
    if (in->return_code == SHOAL_MQTTSN_RC_ACCEPTED) {
        shoal_mqttsn_event ev;
        if (topic_store(c, SHOAL_MQTTSN_TOPIC_NORMAL, in->topic_id, (const uint8_t *)op->name,
                        strlen(op->name)) < 0) {
            finish_publish(c, SHOAL_MQTTSN_RC_NOT_SUPPORTED); /* our table is full */
            return;
        }
        memset(&ev, 0, sizeof(ev));
        ev.type = SHOAL_MQTTSN_EVENT_REGISTERED;
        ev.topic_id = in->topic_id;
        ev.msg_id = in->msg_id;
        ev.topic = op->name;
        emit(c, &ev);
        (void)send_publish(c, op, in->topic_id);
    } else if (in->return_code == SHOAL_MQTTSN_RC_CONGESTION) {
        hold_for_congestion(c);
    } else {
        finish_publish(c, in->return_code);
    }
}

static void on_puback(shoal_mqttsn_client *c, const shoal_mqttsn_msg *in)
{
    shoal_mqttsn_op *op = head_op(c);
    if (c->pending_stage != STAGE_PUBLISH || in->msg_id != c->pending_msg_id || op == NULL) {
        return;
    }
    clear_pending(c);
    if (in->return_code == SHOAL_MQTTSN_RC_INVALID_TOPIC_ID &&
        op->topic_type == SHOAL_MQTTSN_TOPIC_NORMAL && !op->reregistered) {
        shoal_mqttsn_topic_entry *t = topic_by_name(c, op->name);
        if (t != NULL) {
            t->used = 0u;
        }
        op->reregistered = 1u;
        c->op_active = 0u; /* pump() re-registers, then publishes again */
    } else if (in->return_code == SHOAL_MQTTSN_RC_CONGESTION) {
        hold_for_congestion(c);
    } else {
        finish_publish(c, in->return_code);
    }
}

static void on_pubrec(shoal_mqttsn_client *c, const shoal_mqttsn_msg *in)
{
    shoal_mqttsn_msg rel;
    if (in->msg_id != c->pending_msg_id ||
        (c->pending_stage != STAGE_PUBLISH && c->pending_stage != STAGE_PUBREL)) {
        return;
    }
    shoal_mqttsn_msg_init(&rel, SHOAL_MQTTSN_PUBREL);
    rel.msg_id = in->msg_id;
    (void)send_request(c, &rel, STAGE_PUBREL, SHOAL_MQTTSN_PUBCOMP, in->msg_id);
}

static void on_suback(shoal_mqttsn_client *c, const shoal_mqttsn_msg *in)
{
    shoal_mqttsn_event ev;
    shoal_mqttsn_subscription *s;
    shoal_mqttsn_op *op = head_op(c);
    uint8_t stage = c->pending_stage;
    uint8_t type;
    uint16_t id;
    const char *name;

    if ((stage != STAGE_SUBSCRIBE && stage != STAGE_RESUBSCRIBE) ||
        in->msg_id != c->pending_msg_id) {
        return;
    }
    clear_pending(c);
    if (stage == STAGE_SUBSCRIBE) {
        if (op == NULL) {
            return;
        }
        type = op->topic_type;
        id = op->topic_id;
        name = op->name;
    } else {
        s = &c->subs[c->resubscribe_next];
        c->resubscribe_next++;
        type = s->topic_type;
        id = s->topic_id;
        name = s->name;
    }
    s = sub_find(c, type, id, name);
    if (in->return_code == SHOAL_MQTTSN_RC_CONGESTION && stage == STAGE_SUBSCRIBE) {
        hold_for_congestion(c);
        return;
    }
    if (in->return_code == SHOAL_MQTTSN_RC_ACCEPTED) {
        if (s != NULL) {
            s->used = SUB_CONFIRMED;
        }
        if (type == SHOAL_MQTTSN_TOPIC_NORMAL && in->topic_id != 0u && in->topic_id != 0xFFFFu) {
            (void)topic_store(c, SHOAL_MQTTSN_TOPIC_NORMAL, in->topic_id, (const uint8_t *)name,
                              strlen(name));
        }
    } else if (s != NULL) {
        s->used = SUB_FREE;
    }
    memset(&ev, 0, sizeof(ev));
    ev.type = SHOAL_MQTTSN_EVENT_SUBACK;
    ev.return_code = in->return_code;
    ev.msg_id = in->msg_id;
    ev.topic_id = in->topic_id;
    ev.qos = (int8_t)shoal_mqttsn_flags_qos(in->flags);
    ev.topic = name;
    /* Copy out before pop_op() lets the slot be reused by a callback. */
    if (stage == STAGE_SUBSCRIBE) {
        char name_copy[SHOAL_MQTTSN_TOPIC_NAME_MAX + 1];
        memcpy(name_copy, name, strlen(name) + 1u);
        ev.topic = name_copy;
        pop_op(c);
        emit(c, &ev);
    } else {
        emit(c, &ev);
    }
}

static void deliver(shoal_mqttsn_client *c, const shoal_mqttsn_msg *in, const char *topic)
{
    shoal_mqttsn_message msg;
    if (c->callbacks.on_message == NULL) {
        return;
    }
    msg.topic = topic;
    msg.topic_id = in->topic_id;
    msg.topic_type = (uint8_t)(in->flags & SHOAL_MQTTSN_FLAG_TOPIC_TYPE_MASK);
    msg.qos = (int8_t)shoal_mqttsn_flags_qos(in->flags);
    msg.retain = (in->flags & SHOAL_MQTTSN_FLAG_RETAIN) ? 1u : 0u;
    msg.dup = (in->flags & SHOAL_MQTTSN_FLAG_DUP) ? 1u : 0u;
    msg.msg_id = in->msg_id;
    msg.payload = in->data;
    msg.payload_len = in->data_len;
    c->callbacks.on_message(c->callbacks.user, &msg);
}

static void send_ack(shoal_mqttsn_client *c, uint8_t type, uint16_t topic_id, uint16_t msg_id,
                     uint8_t rc)
{
    shoal_mqttsn_msg m;
    shoal_mqttsn_msg_init(&m, type);
    m.topic_id = topic_id;
    m.msg_id = msg_id;
    m.return_code = rc;
    (void)send_msg(c, &m);
}

static void on_publish(shoal_mqttsn_client *c, const shoal_mqttsn_msg *in)
{
    uint8_t topic_type = (uint8_t)(in->flags & SHOAL_MQTTSN_FLAG_TOPIC_TYPE_MASK);
    int qos = shoal_mqttsn_flags_qos(in->flags);
    const char *topic = NULL;
    char short_name[3];

    if (topic_type == SHOAL_MQTTSN_TOPIC_SHORT) {
        short_name[0] = (char)(in->topic_id >> 8);
        short_name[1] = (char)(in->topic_id & 0xFFu);
        short_name[2] = '\0';
        topic = short_name;
    } else {
        shoal_mqttsn_topic_entry *t = topic_by_id(c, topic_type, in->topic_id);
        if (t != NULL) {
            topic = t->name;
        } else if (topic_type == SHOAL_MQTTSN_TOPIC_NORMAL) {
            /* Unknown id: tell the gateway so it can REGISTER it again. */
            c->dropped++;
            if (qos >= 0) {
                send_ack(c, SHOAL_MQTTSN_PUBACK, in->topic_id, in->msg_id,
                         SHOAL_MQTTSN_RC_INVALID_TOPIC_ID);
            }
            return;
        }
    }
    if (qos == 2) {
        /* Same id as the message in flight, or as the one just released: a retransmission or
         * a network duplicate that the PUBREL overtook. The gateway has one QoS 2 message in
         * flight and moves to a new id for the next one. */
        int duplicate = (c->inbound_qos2_active || c->inbound_qos2_released) &&
                        c->inbound_qos2_msg_id == in->msg_id;
        if (duplicate) {
            c->dropped++; /* acknowledge again, deliver once */
        } else {
            c->inbound_qos2_released = 0u;
            c->inbound_qos2_active = 1u;
            c->inbound_qos2_msg_id = in->msg_id;
            deliver(c, in, topic);
        }
        send_ack(c, SHOAL_MQTTSN_PUBREC, 0u, in->msg_id, 0u);
        return;
    }
    deliver(c, in, topic);
    if (qos == 1) {
        send_ack(c, SHOAL_MQTTSN_PUBACK, in->topic_id, in->msg_id, SHOAL_MQTTSN_RC_ACCEPTED);
    }
}

static void on_disconnect(shoal_mqttsn_client *c)
{
    if (c->pending_stage == STAGE_SLEEP) {
        clear_pending(c);
        set_state(c, SHOAL_MQTTSN_STATE_ASLEEP);
        emit_simple(c, SHOAL_MQTTSN_EVENT_ASLEEP, 0u, 0u);
        return;
    }
    if (c->pending_stage == STAGE_DISCONNECT) {
        clear_pending(c);
        set_state(c, SHOAL_MQTTSN_STATE_DISCONNECTED);
        emit_simple(c, SHOAL_MQTTSN_EVENT_DISCONNECTED, 0u, 0u);
        return;
    }
    if (c->state == SHOAL_MQTTSN_STATE_DISCONNECTED || c->state == SHOAL_MQTTSN_STATE_LOST) {
        return;
    }
    /* The gateway ended the session on its own: reconnect like after a loss. */
    emit_simple(c, SHOAL_MQTTSN_EVENT_DISCONNECTED, 0u, 0u);
    c->was_lost = 1u;
    session_lost(c, backoff_delay_ms(c), 0);
}

void shoal_mqttsn_client_handle_datagram(shoal_mqttsn_client *c, const uint8_t *data, size_t len)
{
    shoal_mqttsn_msg in;
    shoal_mqttsn_event ev;
    if (shoal_mqttsn_decode(data, len, &in) < 0) {
        c->malformed++;
        return;
    }
    c->received++;
    switch (in.type) {
    case SHOAL_MQTTSN_ADVERTISE:
    case SHOAL_MQTTSN_GWINFO:
        if (c->pending_stage == STAGE_SEARCH) {
            /* GWINFO, or an ADVERTISE heard meanwhile: either names a gateway. */
            clear_pending(c);
            set_state(c, SHOAL_MQTTSN_STATE_DISCONNECTED);
        }
        memset(&ev, 0, sizeof(ev));
        ev.type = in.type == SHOAL_MQTTSN_GWINFO ? SHOAL_MQTTSN_EVENT_GWINFO
                                                 : SHOAL_MQTTSN_EVENT_ADVERTISE;
        ev.gw_id = in.gw_id;
        ev.duration_s = in.duration;
        if (in.type == SHOAL_MQTTSN_GWINFO && in.text_len <= 255u) {
            ev.gw_add = in.text;
            ev.gw_add_len = (uint8_t)in.text_len;
        }
        emit(c, &ev);
        break;
    case SHOAL_MQTTSN_CONNACK:
        if (c->pending_stage == STAGE_CONNECT) {
            on_connack(c, in.return_code);
        }
        break;
    case SHOAL_MQTTSN_WILLTOPICREQ:
    case SHOAL_MQTTSN_WILLMSGREQ:
        on_will_request(c, in.type);
        break;
    case SHOAL_MQTTSN_REGISTER:
        on_register(c, &in);
        break;
    case SHOAL_MQTTSN_REGACK:
        on_regack(c, &in);
        break;
    case SHOAL_MQTTSN_PUBLISH:
        if (c->state == SHOAL_MQTTSN_STATE_DISCONNECTED ||
            c->state == SHOAL_MQTTSN_STATE_SEARCHING) {
            c->dropped++; /* no session: nothing to deliver into or acknowledge from */
            break;
        }
        on_publish(c, &in);
        break;
    case SHOAL_MQTTSN_PUBACK:
        on_puback(c, &in);
        break;
    case SHOAL_MQTTSN_PUBREC:
        on_pubrec(c, &in);
        break;
    case SHOAL_MQTTSN_PUBCOMP:
        if (c->pending_stage == STAGE_PUBREL && in.msg_id == c->pending_msg_id) {
            clear_pending(c);
            finish_publish(c, SHOAL_MQTTSN_RC_ACCEPTED);
        }
        break;
    case SHOAL_MQTTSN_PUBREL:
        if (c->inbound_qos2_active && c->inbound_qos2_msg_id == in.msg_id) {
            c->inbound_qos2_active = 0u;
            c->inbound_qos2_released = 1u;
        }
        send_ack(c, SHOAL_MQTTSN_PUBCOMP, 0u, in.msg_id, 0u);
        break;
    case SHOAL_MQTTSN_SUBACK:
        on_suback(c, &in);
        break;
    case SHOAL_MQTTSN_UNSUBACK:
        if (c->pending_stage == STAGE_UNSUBSCRIBE && in.msg_id == c->pending_msg_id) {
            shoal_mqttsn_op *op = head_op(c);
            char name_copy[SHOAL_MQTTSN_TOPIC_NAME_MAX + 1];
            clear_pending(c);
            name_copy[0] = '\0';
            if (op != NULL) {
                memcpy(name_copy, op->name, strlen(op->name) + 1u);
            }
            pop_op(c);
            memset(&ev, 0, sizeof(ev));
            ev.type = SHOAL_MQTTSN_EVENT_UNSUBACK;
            ev.msg_id = in.msg_id;
            ev.topic = name_copy;
            emit(c, &ev);
        }
        break;
    case SHOAL_MQTTSN_WILLTOPICRESP:
    case SHOAL_MQTTSN_WILLMSGRESP:
        if (c->pending_stage == STAGE_WILLUPD && c->pending == in.type) {
            clear_pending(c);
            pop_op(c);
            emit_simple(c, SHOAL_MQTTSN_EVENT_WILLRESP, in.return_code, 0u);
        }
        break;
    case SHOAL_MQTTSN_PINGREQ:
        send_ack(c, SHOAL_MQTTSN_PINGRESP, 0u, 0u, 0u);
        break;
    case SHOAL_MQTTSN_PINGRESP:
        if (c->pending_stage == STAGE_PING) {
            clear_pending(c);
            emit_simple(c, SHOAL_MQTTSN_EVENT_PINGRESP, 0u, 0u);
        } else if (c->pending_stage == STAGE_WAKE) {
            /* Buffered messages arrived before this PINGRESP: back to sleep. */
            clear_pending(c);
            set_state(c, SHOAL_MQTTSN_STATE_ASLEEP);
            emit_simple(c, SHOAL_MQTTSN_EVENT_ASLEEP, 0u, 0u);
        }
        break;
    case SHOAL_MQTTSN_DISCONNECT:
        on_disconnect(c);
        break;
    default:
        break; /* SEARCHGW from peers, encapsulated frames: not for a client */
    }
}

static void on_retries_exhausted(shoal_mqttsn_client *c)
{
    uint8_t stage = c->pending_stage;
    if (stage == STAGE_SEARCH || stage == STAGE_DISCONNECT) {
        clear_pending(c); /* otherwise session_lost() reads what was pending, then clears it */
    }
    switch (stage) {
    case STAGE_SEARCH:
        set_state(c, SHOAL_MQTTSN_STATE_DISCONNECTED);
        emit_simple(c, SHOAL_MQTTSN_EVENT_SEARCH_FAILED, 0u, 0u);
        break;
    case STAGE_DISCONNECT:
        set_state(c, SHOAL_MQTTSN_STATE_DISCONNECTED);
        emit_simple(c, SHOAL_MQTTSN_EVENT_DISCONNECTED, 0u, 0u);
        break;
    default:
        session_lost(c, backoff_delay_ms(c), 1);
        break;
    }
}

static void run_timers(shoal_mqttsn_client *c)
{
    uint32_t now = now_ms(c);
    if (c->pending && time_reached(now, c->pending_sent_ms + c->config.retry_ms)) {
        if (c->pending_retries >= c->config.max_retries) {
            on_retries_exhausted(c);
        } else {
            size_t flags_at = c->pending_packet[0] == 0x01u ? 4u : 2u;
            uint8_t type = c->pending_packet[flags_at - 1u];
            if (type == SHOAL_MQTTSN_PUBLISH || type == SHOAL_MQTTSN_SUBSCRIBE) {
                c->pending_packet[flags_at] |= SHOAL_MQTTSN_FLAG_DUP;
            }
            c->pending_retries++;
            c->pending_sent_ms = now;
            c->retransmitted++;
            (void)send_raw(c, c->pending_packet, c->pending_len, c->pending_stage == STAGE_SEARCH);
        }
    }
    if (c->state == SHOAL_MQTTSN_STATE_LOST && c->config.auto_reconnect &&
        time_reached(now, c->reconnect_at_ms)) {
        (void)send_connect(c);
    }
    if (c->state == SHOAL_MQTTSN_STATE_ASLEEP && c->sleep_duration_s > 0u &&
        time_reached(now, c->state_since_ms + (uint32_t)c->sleep_duration_s * 750u)) {
        (void)shoal_mqttsn_client_wake(c);
    }
}

int shoal_mqttsn_client_poll(shoal_mqttsn_client *c)
{
    int budget;
    for (budget = 0; budget < 16; ++budget) {
        int n = c->transport.recv(c->transport.ctx, c->rx_buf, sizeof(c->rx_buf));
        if (n <= 0) {
            break;
        }
        shoal_mqttsn_client_handle_datagram(c, c->rx_buf, (size_t)n);
    }
    run_timers(c);
    pump(c);
    return SHOAL_MQTTSN_OK;
}

/* ---- public API ---------------------------------------------------------------------------- */

void shoal_mqttsn_config_defaults(shoal_mqttsn_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->keepalive_s = 60u;
    cfg->clean_session = 1u;
    cfg->retry_ms = SHOAL_MQTTSN_DEFAULT_RETRY_MS;
    cfg->max_retries = SHOAL_MQTTSN_DEFAULT_MAX_RETRIES;
    cfg->congestion_wait_ms = 300000u;
    cfg->reconnect_delay_ms = 1000u;
    cfg->reconnect_max_delay_ms = 60000u;
    cfg->auto_reconnect = 1u;
    cfg->search_radius = 1u;
}

int shoal_mqttsn_client_init(shoal_mqttsn_client *c, const shoal_mqttsn_config *config,
                             const shoal_mqttsn_transport *transport,
                             const shoal_mqttsn_callbacks *callbacks)
{
    size_t id_len;
    if (c == NULL || config == NULL || transport == NULL || config->client_id == NULL ||
        transport->send == NULL || transport->recv == NULL || transport->now_ms == NULL) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    id_len = bounded_strlen(config->client_id, SHOAL_MQTTSN_CLIENT_ID_MAX + 1u);
    if (id_len < 1u || id_len > SHOAL_MQTTSN_CLIENT_ID_MAX) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    if (config->will_topic != NULL &&
        (bounded_strlen(config->will_topic, SHOAL_MQTTSN_TOPIC_NAME_MAX + 1u) < 1u ||
         config->will_msg_len > SHOAL_MQTTSN_MAX_PAYLOAD ||
         (config->will_msg_len > 0u && config->will_msg == NULL) || config->will_qos < 0 ||
         config->will_qos > 2)) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    memset(c, 0, sizeof(*c));
    c->config = *config;
    c->transport = *transport;
    if (callbacks != NULL) {
        c->callbacks = *callbacks;
    }
    c->state = SHOAL_MQTTSN_STATE_DISCONNECTED;
    c->last_send_ms = now_ms(c);
    c->state_since_ms = c->last_send_ms;
    {
        /* Jitter seed: differs per client id and start time (FNV-1a), never 0 (xorshift). */
        uint32_t h = 2166136261u;
        size_t i;
        for (i = 0; i < id_len; ++i) {
            h = (h ^ (uint8_t)config->client_id[i]) * 16777619u;
        }
        h ^= c->last_send_ms;
        c->rng_state = h != 0u ? h : 0x9E3779B9u;
    }
    return SHOAL_MQTTSN_OK;
}

int shoal_mqttsn_client_add_predefined(shoal_mqttsn_client *c, uint16_t topic_id,
                                       const char *name)
{
    size_t len = bounded_strlen(name, SHOAL_MQTTSN_TOPIC_NAME_MAX + 1u);
    if (len > SHOAL_MQTTSN_TOPIC_NAME_MAX) {
        return SHOAL_MQTTSN_ERR_TOO_BIG;
    }
    if (topic_store(c, SHOAL_MQTTSN_TOPIC_PREDEFINED, topic_id, (const uint8_t *)name, len) < 0) {
        return SHOAL_MQTTSN_ERR_TABLE_FULL;
    }
    return SHOAL_MQTTSN_OK;
}

int shoal_mqttsn_client_search_gateway(shoal_mqttsn_client *c)
{
    shoal_mqttsn_msg m;
    if (c->pending) {
        return SHOAL_MQTTSN_ERR_STATE;
    }
    shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_SEARCHGW);
    m.radius = c->config.search_radius;
    set_state(c, SHOAL_MQTTSN_STATE_SEARCHING);
    return send_request(c, &m, STAGE_SEARCH, SHOAL_MQTTSN_GWINFO, 0u);
}

int shoal_mqttsn_client_connect(shoal_mqttsn_client *c)
{
    if (c->state == SHOAL_MQTTSN_STATE_ACTIVE || c->state == SHOAL_MQTTSN_STATE_CONNECTING ||
        c->state == SHOAL_MQTTSN_STATE_DISCONNECTING) {
        return SHOAL_MQTTSN_ERR_STATE;
    }
    clear_pending(c);
    return send_connect(c);
}

static int enqueue(shoal_mqttsn_client *c, uint8_t kind, uint8_t topic_type, uint16_t topic_id,
                   const char *name, int qos, int retain, const uint8_t *payload,
                   size_t payload_len)
{
    shoal_mqttsn_op *op;
    size_t name_len = 0;
    if (c->queue_count >= SHOAL_MQTTSN_QUEUE_LEN) {
        return SHOAL_MQTTSN_ERR_QUEUE_FULL;
    }
    if (name != NULL) {
        name_len = bounded_strlen(name, SHOAL_MQTTSN_TOPIC_NAME_MAX + 1u);
        if (name_len > SHOAL_MQTTSN_TOPIC_NAME_MAX) {
            return SHOAL_MQTTSN_ERR_TOO_BIG;
        }
    }
    if (payload_len > SHOAL_MQTTSN_MAX_PAYLOAD) {
        return SHOAL_MQTTSN_ERR_TOO_BIG;
    }
    op = &c->queue[(c->queue_head + c->queue_count) % SHOAL_MQTTSN_QUEUE_LEN];
    memset(op, 0, sizeof(*op) - sizeof(op->payload));
    op->kind = kind;
    op->topic_type = topic_type;
    op->topic_id = topic_id;
    op->qos = (int8_t)qos;
    op->retain = retain ? 1u : 0u;
    if (kind == OP_SUBSCRIBE || kind == OP_UNSUBSCRIBE || (kind == OP_PUBLISH && qos > 0)) {
        op->msg_id = next_msg_id(c);
    }
    if (name_len > 0u) {
        memcpy(op->name, name, name_len);
    }
    op->name[name_len] = '\0';
    op->payload_len = (uint16_t)payload_len;
    if (payload_len > 0u) {
        memcpy(op->payload, payload, payload_len);
    }
    c->queue_count++;
    {
        /* pump() may complete a QoS 0 op and let a callback reuse its slot. */
        int msg_id = op->msg_id;
        pump(c);
        return msg_id;
    }
}

static int publish_now_qos_minus_one(shoal_mqttsn_client *c, uint8_t topic_type,
                                     uint16_t topic_id, int retain, const uint8_t *payload,
                                     size_t payload_len)
{
    shoal_mqttsn_msg m;
    int rc;
    if (payload_len > SHOAL_MQTTSN_MAX_PAYLOAD) {
        return SHOAL_MQTTSN_ERR_TOO_BIG;
    }
    shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_PUBLISH);
    m.flags = (uint8_t)(shoal_mqttsn_qos_flags(-1) | topic_type |
                        (retain ? SHOAL_MQTTSN_FLAG_RETAIN : 0u));
    m.topic_id = topic_id;
    m.data = payload;
    m.data_len = payload_len;
    rc = send_msg(c, &m);
    if (rc == SHOAL_MQTTSN_OK) {
        emit_simple(c, SHOAL_MQTTSN_EVENT_PUBDONE, 0u, 0u);
    }
    return rc;
}

int shoal_mqttsn_client_publish(shoal_mqttsn_client *c, const char *topic, int qos, int retain,
                                const uint8_t *payload, size_t payload_len)
{
    if (topic == NULL || topic[0] == '\0' || qos < 0 || qos > 2 ||
        (payload == NULL && payload_len > 0u)) {
        return SHOAL_MQTTSN_ERR_INVALID; /* QoS -1 needs a predefined id or a short name */
    }
    if (strchr(topic, '+') != NULL || strchr(topic, '#') != NULL) {
        return SHOAL_MQTTSN_ERR_INVALID; /* wildcards belong in subscriptions only */
    }
    return enqueue(c, OP_PUBLISH, SHOAL_MQTTSN_TOPIC_NORMAL, 0u, topic, qos, retain, payload,
                   payload_len);
}

int shoal_mqttsn_client_publish_predefined(shoal_mqttsn_client *c, uint16_t topic_id, int qos,
                                           int retain, const uint8_t *payload,
                                           size_t payload_len)
{
    if (qos < -1 || qos > 2 || topic_id == 0u || topic_id == 0xFFFFu ||
        (payload == NULL && payload_len > 0u)) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    if (qos == -1) {
        return publish_now_qos_minus_one(c, SHOAL_MQTTSN_TOPIC_PREDEFINED, topic_id, retain,
                                         payload, payload_len);
    }
    return enqueue(c, OP_PUBLISH, SHOAL_MQTTSN_TOPIC_PREDEFINED, topic_id, NULL, qos, retain,
                   payload, payload_len);
}

static int short_name_id(const char *short_name, uint16_t *id)
{
    if (short_name == NULL || short_name[0] == '\0' || short_name[1] == '\0' ||
        short_name[2] != '\0') {
        return -1;
    }
    *id = (uint16_t)(((uint16_t)(uint8_t)short_name[0] << 8) | (uint8_t)short_name[1]);
    return 0;
}

int shoal_mqttsn_client_publish_short(shoal_mqttsn_client *c, const char *short_name, int qos,
                                      int retain, const uint8_t *payload, size_t payload_len)
{
    uint16_t id;
    if (short_name_id(short_name, &id) < 0 || qos < -1 || qos > 2 ||
        (payload == NULL && payload_len > 0u)) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    if (qos == -1) {
        return publish_now_qos_minus_one(c, SHOAL_MQTTSN_TOPIC_SHORT, id, retain, payload,
                                         payload_len);
    }
    return enqueue(c, OP_PUBLISH, SHOAL_MQTTSN_TOPIC_SHORT, id, short_name, qos, retain,
                   payload, payload_len);
}

static int subscribe_any(shoal_mqttsn_client *c, uint8_t type, uint16_t id, const char *name,
                         int qos)
{
    shoal_mqttsn_subscription *s;
    size_t len = bounded_strlen(name, SHOAL_MQTTSN_TOPIC_NAME_MAX + 1u);
    int i;
    int rc;
    if (qos < 0 || qos > 2) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    if (len > SHOAL_MQTTSN_TOPIC_NAME_MAX) {
        return SHOAL_MQTTSN_ERR_TOO_BIG;
    }
    s = sub_find(c, type, id, name);
    for (i = 0; s == NULL && i < SHOAL_MQTTSN_MAX_SUBSCRIPTIONS; ++i) {
        if (c->subs[i].used == SUB_FREE) {
            s = &c->subs[i];
            s->used = SUB_REQUESTED;
        }
    }
    if (s == NULL) {
        return SHOAL_MQTTSN_ERR_TABLE_FULL;
    }
    rc = enqueue(c, OP_SUBSCRIBE, type, id, name, qos, 0, NULL, 0u);
    if (rc < 0) {
        if (s->used == SUB_REQUESTED) {
            s->used = SUB_FREE;
        }
        return rc;
    }
    s->topic_type = type;
    s->topic_id = id;
    s->qos = (int8_t)qos;
    memcpy(s->name, name, len + 1u);
    return rc;
}

int shoal_mqttsn_client_subscribe(shoal_mqttsn_client *c, const char *filter, int qos)
{
    if (filter == NULL || filter[0] == '\0') {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    return subscribe_any(c, SHOAL_MQTTSN_TOPIC_NORMAL, 0u, filter, qos);
}

int shoal_mqttsn_client_subscribe_predefined(shoal_mqttsn_client *c, uint16_t topic_id, int qos)
{
    if (topic_id == 0u || topic_id == 0xFFFFu) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    return subscribe_any(c, SHOAL_MQTTSN_TOPIC_PREDEFINED, topic_id, "", qos);
}

int shoal_mqttsn_client_subscribe_short(shoal_mqttsn_client *c, const char *short_name, int qos)
{
    uint16_t id;
    if (short_name_id(short_name, &id) < 0) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    return subscribe_any(c, SHOAL_MQTTSN_TOPIC_SHORT, id, short_name, qos);
}

static int unsubscribe_any(shoal_mqttsn_client *c, uint8_t type, uint16_t id, const char *name)
{
    int rc = enqueue(c, OP_UNSUBSCRIBE, type, id, name, 0, 0, NULL, 0u);
    if (rc >= 0) {
        /* Forget it now so a reconnect before the UNSUBACK does not resubscribe it. */
        shoal_mqttsn_subscription *s = sub_find(c, type, id, name);
        if (s != NULL) {
            s->used = SUB_FREE;
        }
    }
    return rc;
}

int shoal_mqttsn_client_unsubscribe(shoal_mqttsn_client *c, const char *filter)
{
    if (filter == NULL || filter[0] == '\0') {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    return unsubscribe_any(c, SHOAL_MQTTSN_TOPIC_NORMAL, 0u, filter);
}

int shoal_mqttsn_client_unsubscribe_predefined(shoal_mqttsn_client *c, uint16_t topic_id)
{
    if (topic_id == 0u || topic_id == 0xFFFFu) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    return unsubscribe_any(c, SHOAL_MQTTSN_TOPIC_PREDEFINED, topic_id, "");
}

int shoal_mqttsn_client_unsubscribe_short(shoal_mqttsn_client *c, const char *short_name)
{
    uint16_t id;
    if (short_name_id(short_name, &id) < 0) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    return unsubscribe_any(c, SHOAL_MQTTSN_TOPIC_SHORT, id, short_name);
}

int shoal_mqttsn_client_update_will_topic(shoal_mqttsn_client *c, const char *topic, int qos,
                                          int retain)
{
    int rc;
    if (qos < 0 || qos > 2) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    rc = enqueue(c, OP_WILLTOPICUPD, SHOAL_MQTTSN_TOPIC_NORMAL, 0u, topic != NULL ? topic : "",
                 qos, retain, NULL, 0u);
    if (rc >= 0) {
        /* Later CONNECTs (reconnects) carry the updated will. */
        c->config.will_topic = (topic != NULL && topic[0] != '\0') ? topic : NULL;
        c->config.will_qos = (int8_t)qos;
        c->config.will_retain = retain ? 1u : 0u;
    }
    return rc < 0 ? rc : SHOAL_MQTTSN_OK;
}

int shoal_mqttsn_client_update_will_msg(shoal_mqttsn_client *c, const uint8_t *msg, size_t len)
{
    int rc;
    if (msg == NULL && len > 0u) {
        return SHOAL_MQTTSN_ERR_INVALID;
    }
    rc = enqueue(c, OP_WILLMSGUPD, SHOAL_MQTTSN_TOPIC_NORMAL, 0u, NULL, 0, 0, msg, len);
    if (rc >= 0) {
        c->config.will_msg = msg;
        c->config.will_msg_len = len;
    }
    return rc < 0 ? rc : SHOAL_MQTTSN_OK;
}

/* DISCONNECT needs the link idle; a keep-alive ping in progress may be abandoned. */
static int idle_for_disconnect(shoal_mqttsn_client *c)
{
    if (c->state != SHOAL_MQTTSN_STATE_ACTIVE || c->queue_count > 0u || c->resubscribing ||
        c->inbound_qos2_active) {
        return 0; /* inbound_qos2_active: our PUBCOMP is still due */
    }
    if (c->pending && c->pending_stage != STAGE_PING) {
        return 0;
    }
    clear_pending(c);
    return 1;
}

int shoal_mqttsn_client_sleep(shoal_mqttsn_client *c, uint16_t duration_s)
{
    shoal_mqttsn_msg m;
    if (duration_s == 0u || !idle_for_disconnect(c)) {
        return SHOAL_MQTTSN_ERR_STATE;
    }
    shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_DISCONNECT);
    m.has_duration = 1u;
    m.duration = duration_s;
    c->sleep_duration_s = duration_s;
    set_state(c, SHOAL_MQTTSN_STATE_DISCONNECTING);
    return send_request(c, &m, STAGE_SLEEP, SHOAL_MQTTSN_DISCONNECT, 0u);
}

int shoal_mqttsn_client_wake(shoal_mqttsn_client *c)
{
    shoal_mqttsn_msg m;
    if (c->state != SHOAL_MQTTSN_STATE_ASLEEP) {
        return SHOAL_MQTTSN_ERR_STATE;
    }
    shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_PINGREQ);
    m.text = (const uint8_t *)c->config.client_id;
    m.text_len = strlen(c->config.client_id);
    set_state(c, SHOAL_MQTTSN_STATE_AWAKE);
    emit_simple(c, SHOAL_MQTTSN_EVENT_AWAKE, 0u, 0u);
    return send_request(c, &m, STAGE_WAKE, SHOAL_MQTTSN_PINGRESP, 0u);
}

int shoal_mqttsn_client_disconnect(shoal_mqttsn_client *c)
{
    shoal_mqttsn_msg m;
    if (c->state == SHOAL_MQTTSN_STATE_ASLEEP || c->state == SHOAL_MQTTSN_STATE_AWAKE) {
        clear_pending(c);
    } else if (!idle_for_disconnect(c)) {
        return SHOAL_MQTTSN_ERR_STATE;
    }
    shoal_mqttsn_msg_init(&m, SHOAL_MQTTSN_DISCONNECT);
    set_state(c, SHOAL_MQTTSN_STATE_DISCONNECTING);
    return send_request(c, &m, STAGE_DISCONNECT, SHOAL_MQTTSN_DISCONNECT, 0u);
}

shoal_mqttsn_state shoal_mqttsn_client_state(const shoal_mqttsn_client *c)
{
    return c->state;
}

unsigned shoal_mqttsn_client_pending_ops(const shoal_mqttsn_client *c)
{
    return (unsigned)c->queue_count + (c->resubscribing ? 1u : 0u);
}
