/*
 * test_mqttsn_client.c - the client state machine against a fake transport and a fake clock.
 *
 * The fake transport records every datagram the client sends and hands it scripted gateway
 * replies; the clock only moves when the test moves it. Expected datagrams are written as
 * bytes from the v1.2 message layouts, so the test checks the wire, not the client's own
 * encoder. Prints "N passed, N failed"; exit status 0 only when nothing failed.
 */
#include <stdio.h>
#include <string.h>

#include "shoal_mqttsn_client.h"

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

#define ARR(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/* ---- fake transport and clock ---- */

#define MAX_DGRAMS 64
typedef struct {
    uint8_t data[400];
    size_t len;
} dgram;

static dgram sent[MAX_DGRAMS];
static int sent_count;
static int sent_read;
static int broadcasts;
static dgram inbox[MAX_DGRAMS];
static int inbox_count;
static int inbox_read;
static uint32_t fake_now = 1000u;

static int fake_send(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (sent_count < MAX_DGRAMS) {
        memcpy(sent[sent_count].data, data, len);
        sent[sent_count].len = len;
        sent_count++;
    }
    return 0;
}

static int fake_broadcast(void *ctx, const uint8_t *data, size_t len)
{
    broadcasts++;
    return fake_send(ctx, data, len);
}

static int fake_recv(void *ctx, uint8_t *buf, size_t cap)
{
    (void)ctx;
    if (inbox_read < inbox_count && inbox[inbox_read].len <= cap) {
        size_t n = inbox[inbox_read].len;
        memcpy(buf, inbox[inbox_read].data, n);
        inbox_read++;
        return (int)n;
    }
    return 0;
}

static uint32_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

/* ---- recorded callbacks ---- */

#define MAX_EVENTS 64
static shoal_mqttsn_event events[MAX_EVENTS];
static int event_count;
static int event_read;
static char last_topic[80];
static char last_payload[300];
static int last_qos;
static int deliveries;

static void on_event(void *user, const shoal_mqttsn_event *ev)
{
    (void)user;
    if (event_count < MAX_EVENTS) {
        events[event_count++] = *ev;
    }
}

static void on_message(void *user, const shoal_mqttsn_message *msg)
{
    (void)user;
    deliveries++;
    snprintf(last_topic, sizeof(last_topic), "%s", msg->topic != NULL ? msg->topic : "(null)");
    memcpy(last_payload, msg->payload, msg->payload_len);
    last_payload[msg->payload_len] = '\0';
    last_qos = msg->qos;
}

static shoal_mqttsn_client client;
static shoal_mqttsn_transport transport;
static shoal_mqttsn_callbacks callbacks;

static void reset(shoal_mqttsn_config *cfg)
{
    sent_count = sent_read = inbox_count = inbox_read = broadcasts = 0;
    event_count = event_read = deliveries = 0;
    fake_now = 1000u;
    transport.send = fake_send;
    transport.broadcast = fake_broadcast;
    transport.recv = fake_recv;
    transport.now_ms = fake_clock;
    transport.ctx = NULL;
    callbacks.on_event = on_event;
    callbacks.on_message = on_message;
    callbacks.user = NULL;
    shoal_mqttsn_config_defaults(cfg);
    cfg->client_id = "dev1";
    cfg->keepalive_s = 30;
    cfg->retry_ms = 1000;
    cfg->max_retries = 2;
    cfg->reconnect_delay_ms = 500;
    cfg->congestion_wait_ms = 5000;
}

static void gateway_says(const uint8_t *data, size_t len)
{
    memcpy(inbox[inbox_count].data, data, len);
    inbox[inbox_count].len = len;
    inbox_count++;
    shoal_mqttsn_client_poll(&client);
}

static void advance(uint32_t ms)
{
    /* Step in 100 ms ticks so timers fire where they would in a real loop. */
    while (ms > 0u) {
        uint32_t step = ms < 100u ? ms : 100u;
        fake_now += step;
        ms -= step;
        shoal_mqttsn_client_poll(&client);
    }
}

/* The next datagram the client sent must equal `want`. */
static int expect_sent_bytes(const uint8_t *want, size_t len)
{
    int ok;
    if (sent_read >= sent_count) {
        printf("  expected a datagram, none sent\n");
        return 0;
    }
    ok = sent[sent_read].len == len && memcmp(sent[sent_read].data, want, len) == 0;
    if (!ok) {
        size_t i;
        printf("  sent:");
        for (i = 0; i < sent[sent_read].len; ++i) {
            printf(" %02x", sent[sent_read].data[i]);
        }
        printf("\n  want:");
        for (i = 0; i < len; ++i) {
            printf(" %02x", want[i]);
        }
        printf("\n");
    }
    sent_read++;
    return ok;
}
#define EXPECT_SENT(what, ...) CHECK(expect_sent_bytes(ARR(__VA_ARGS__)), what)
#define EXPECT_NOTHING_SENT(what) CHECK(sent_read == sent_count, what)

static int next_event(shoal_mqttsn_event_type type, shoal_mqttsn_event *out)
{
    while (event_read < event_count) {
        shoal_mqttsn_event *ev = &events[event_read++];
        if (ev->type == type) {
            if (out != NULL) {
                *out = *ev;
            }
            return 1;
        }
    }
    return 0;
}

static void connect_plain(void)
{
    shoal_mqttsn_config cfg;
    reset(&cfg);
    shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks);
    shoal_mqttsn_client_connect(&client);
    gateway_says(ARR(0x03, 0x05, 0x00));
    sent_read = sent_count;
}

/* ---- scenarios ---- */

static void test_connect_with_will(void)
{
    shoal_mqttsn_config cfg;
    shoal_mqttsn_event ev;
    reset(&cfg);
    cfg.will_topic = "w/t";
    cfg.will_msg = (const uint8_t *)"bye";
    cfg.will_msg_len = 3;
    cfg.will_qos = 1;
    cfg.will_retain = 1;
    CHECK(shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks) == 0, "init");
    CHECK(shoal_mqttsn_client_connect(&client) == 0, "connect");
    /* CONNECT flags Will|Clean = 0x0C, protocol 1, duration 30, "dev1". */
    EXPECT_SENT("CONNECT", 0x0A, 0x04, 0x0C, 0x01, 0x00, 0x1E, 'd', 'e', 'v', '1');
    gateway_says(ARR(0x02, 0x06));
    EXPECT_SENT("WILLTOPIC qos1 retain", 0x06, 0x07, 0x30, 'w', '/', 't');
    gateway_says(ARR(0x02, 0x08));
    EXPECT_SENT("WILLMSG", 0x05, 0x09, 'b', 'y', 'e');
    gateway_says(ARR(0x03, 0x05, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_CONNACK, &ev) && ev.return_code == 0, "CONNACK event");
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_ACTIVE, "active");
}

static void test_connect_rejected(void)
{
    shoal_mqttsn_config cfg;
    shoal_mqttsn_event ev;
    reset(&cfg);
    cfg.clean_session = 0;
    shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks);
    shoal_mqttsn_client_connect(&client);
    EXPECT_SENT("CONNECT persistent", 0x0A, 0x04, 0x00, 0x01, 0x00, 0x1E, 'd', 'e', 'v', '1');
    gateway_says(ARR(0x03, 0x05, 0x03));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_CONNACK, &ev) && ev.return_code == 3, "CONNACK rc 3");
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_DISCONNECTED,
          "rejected -> disconnected");
}

static void test_publish_qos1_register_retry_dup(void)
{
    shoal_mqttsn_event ev;
    int id;
    connect_plain();
    id = shoal_mqttsn_client_publish(&client, "a/b", 1, 0, (const uint8_t *)"hi", 2);
    CHECK(id == 1, "first message id is 1");
    /* REGISTER TopicId 0, MsgId 2 (ids are shared), "a/b". */
    EXPECT_SENT("REGISTER", 0x09, 0x0A, 0x00, 0x00, 0x00, 0x02, 'a', '/', 'b');
    gateway_says(ARR(0x07, 0x0B, 0x00, 0x11, 0x00, 0x02, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_REGISTERED, &ev) && ev.topic_id == 0x11,
          "REGISTERED event");
    EXPECT_SENT("PUBLISH qos1", 0x09, 0x0C, 0x20, 0x00, 0x11, 0x00, 0x01, 'h', 'i');
    advance(999);
    EXPECT_NOTHING_SENT("no retransmission before T_RETRY");
    advance(1);
    EXPECT_SENT("PUBLISH retransmitted with DUP", 0x09, 0x0C, 0xA0, 0x00, 0x11, 0x00, 0x01, 'h',
                'i');
    CHECK(client.retransmitted == 1, "retransmission counted");
    gateway_says(ARR(0x07, 0x0D, 0x00, 0x11, 0x00, 0x01, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_PUBDONE, &ev) && ev.msg_id == 1 && ev.return_code == 0,
          "PUBDONE");
    /* Same topic again: no second REGISTER. */
    id = shoal_mqttsn_client_publish(&client, "a/b", 0, 1, (const uint8_t *)"x", 1);
    CHECK(id == 0, "QoS 0 returns id 0");
    EXPECT_SENT("PUBLISH qos0 retain, known id", 0x08, 0x0C, 0x10, 0x00, 0x11, 0x00, 0x00, 'x');
    CHECK(next_event(SHOAL_MQTTSN_EVENT_PUBDONE, &ev) && ev.msg_id == 0, "QoS 0 PUBDONE");
}

static void test_publish_qos2(void)
{
    shoal_mqttsn_event ev;
    connect_plain();
    shoal_mqttsn_client_publish_predefined(&client, 0x0102, 2, 0, (const uint8_t *)"z", 1);
    EXPECT_SENT("PUBLISH qos2 predefined", 0x08, 0x0C, 0x41, 0x01, 0x02, 0x00, 0x01, 'z');
    gateway_says(ARR(0x04, 0x0F, 0x00, 0x01));
    EXPECT_SENT("PUBREL", 0x04, 0x10, 0x00, 0x01);
    advance(1000);
    EXPECT_SENT("PUBREL retransmitted (no DUP flag exists)", 0x04, 0x10, 0x00, 0x01);
    CHECK(!next_event(SHOAL_MQTTSN_EVENT_PUBDONE, NULL), "not done before PUBCOMP");
    gateway_says(ARR(0x04, 0x0E, 0x00, 0x01));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_PUBDONE, &ev) && ev.msg_id == 1, "PUBDONE after PUBCOMP");
}

static void test_one_in_flight(void)
{
    connect_plain();
    shoal_mqttsn_client_publish_short(&client, "ab", 1, 0, (const uint8_t *)"1", 1);
    shoal_mqttsn_client_publish_short(&client, "ab", 1, 0, (const uint8_t *)"2", 1);
    EXPECT_SENT("first PUBLISH short name", 0x08, 0x0C, 0x22, 'a', 'b', 0x00, 0x01, '1');
    shoal_mqttsn_client_poll(&client);
    EXPECT_NOTHING_SENT("second PUBLISH waits for the first PUBACK");
    gateway_says(ARR(0x07, 0x0D, 'a', 'b', 0x00, 0x01, 0x00));
    EXPECT_SENT("second PUBLISH after PUBACK", 0x08, 0x0C, 0x22, 'a', 'b', 0x00, 0x02, '2');
}

static void test_reregister_on_invalid_topic(void)
{
    shoal_mqttsn_event ev;
    connect_plain();
    shoal_mqttsn_client_publish(&client, "t", 1, 0, (const uint8_t *)"v", 1);
    EXPECT_SENT("REGISTER", 0x07, 0x0A, 0x00, 0x00, 0x00, 0x02, 't');
    gateway_says(ARR(0x07, 0x0B, 0x00, 0x05, 0x00, 0x02, 0x00));
    EXPECT_SENT("PUBLISH id 5", 0x08, 0x0C, 0x20, 0x00, 0x05, 0x00, 0x01, 'v');
    gateway_says(ARR(0x07, 0x0D, 0x00, 0x05, 0x00, 0x01, 0x02));
    EXPECT_SENT("REGISTER again after rc 0x02", 0x07, 0x0A, 0x00, 0x00, 0x00, 0x03, 't');
    gateway_says(ARR(0x07, 0x0B, 0x00, 0x09, 0x00, 0x03, 0x00));
    EXPECT_SENT("PUBLISH with the new id", 0x08, 0x0C, 0x20, 0x00, 0x09, 0x00, 0x01, 'v');
    gateway_says(ARR(0x07, 0x0D, 0x00, 0x09, 0x00, 0x01, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_PUBDONE, &ev) && ev.return_code == 0,
          "delivered after re-register");
}

static void test_qos_minus_one(void)
{
    shoal_mqttsn_config cfg;
    reset(&cfg);
    shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks);
    /* No CONNECT: QoS -1 goes straight out. */
    CHECK(shoal_mqttsn_client_publish_predefined(&client, 7, -1, 0, (const uint8_t *)"q", 1) == 0,
          "QoS -1 accepted while disconnected");
    EXPECT_SENT("PUBLISH QoS -1 predefined", 0x08, 0x0C, 0x61, 0x00, 0x07, 0x00, 0x00, 'q');
    CHECK(shoal_mqttsn_client_publish(&client, "name", -1, 0, NULL, 0) ==
              SHOAL_MQTTSN_ERR_INVALID,
          "QoS -1 refused on a topic name");
}

static void test_inbound_qos2_exactly_once(void)
{
    connect_plain();
    shoal_mqttsn_client_subscribe_predefined(&client, 0x20, 2);
    EXPECT_SENT("SUBSCRIBE predefined qos2", 0x07, 0x12, 0x41, 0x00, 0x01, 0x00, 0x20);
    gateway_says(ARR(0x08, 0x13, 0x40, 0x00, 0x20, 0x00, 0x01, 0x00));
    shoal_mqttsn_client_add_predefined(&client, 0x20, "cmd/x");
    gateway_says(ARR(0x08, 0x0C, 0x41, 0x00, 0x20, 0x00, 0x07, 'A'));
    CHECK(deliveries == 1 && strcmp(last_topic, "cmd/x") == 0 && last_qos == 2,
          "QoS 2 delivered with predefined name");
    EXPECT_SENT("PUBREC", 0x04, 0x0F, 0x00, 0x07);
    gateway_says(ARR(0x08, 0x0C, 0xC1, 0x00, 0x20, 0x00, 0x07, 'A'));
    CHECK(deliveries == 1, "DUP before PUBREL not delivered again");
    EXPECT_SENT("PUBREC again", 0x04, 0x0F, 0x00, 0x07);
    gateway_says(ARR(0x04, 0x10, 0x00, 0x07));
    EXPECT_SENT("PUBCOMP", 0x04, 0x0E, 0x00, 0x07);
    gateway_says(ARR(0x08, 0x0C, 0xC1, 0x00, 0x20, 0x00, 0x07, 'A'));
    CHECK(deliveries == 1, "stale DUP after PUBREL not delivered");
    EXPECT_SENT("stale DUP acknowledged", 0x04, 0x0F, 0x00, 0x07);
    gateway_says(ARR(0x08, 0x0C, 0x41, 0x00, 0x20, 0x00, 0x07, 'A'));
    CHECK(deliveries == 1, "network duplicate (no DUP flag) after PUBREL not delivered");
    EXPECT_SENT("network duplicate acknowledged", 0x04, 0x0F, 0x00, 0x07);
    gateway_says(ARR(0x08, 0x0C, 0x41, 0x00, 0x20, 0x00, 0x08, 'B'));
    CHECK(deliveries == 2 && strcmp(last_payload, "B") == 0, "next QoS 2 message delivered");
    sent_read = sent_count;
    CHECK(shoal_mqttsn_client_unsubscribe_predefined(&client, 0x20) == 2, "unsubscribe id");
    EXPECT_SENT("UNSUBSCRIBE predefined", 0x07, 0x14, 0x01, 0x00, 0x02, 0x00, 0x20);
    gateway_says(ARR(0x04, 0x15, 0x00, 0x02));
    CHECK(shoal_mqttsn_client_pending_ops(&client) == 0, "UNSUBACK completes it");
}

static void test_wildcard_and_gateway_register(void)
{
    shoal_mqttsn_event ev;
    connect_plain();
    shoal_mqttsn_client_subscribe(&client, "s/#", 1);
    EXPECT_SENT("SUBSCRIBE wildcard", 0x08, 0x12, 0x20, 0x00, 0x01, 's', '/', '#');
    gateway_says(ARR(0x08, 0x13, 0x20, 0x00, 0x00, 0x00, 0x01, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_SUBACK, &ev) && ev.topic_id == 0 && ev.qos == 1 &&
              strcmp(ev.topic, "s/#") == 0,
          "SUBACK event for the filter");
    /* Gateway REGISTERs the concrete topic before the first PUBLISH. */
    gateway_says(ARR(0x0A, 0x0A, 0x00, 0x33, 0x00, 0x09, 's', '/', 'x', '1'));
    EXPECT_SENT("REGACK to gateway REGISTER", 0x07, 0x0B, 0x00, 0x33, 0x00, 0x09, 0x00);
    gateway_says(ARR(0x09, 0x0C, 0x20, 0x00, 0x33, 0x00, 0x0A, 'o', 'k'));
    CHECK(deliveries == 1 && strcmp(last_topic, "s/x1") == 0 && strcmp(last_payload, "ok") == 0,
          "PUBLISH delivered with the registered name");
    EXPECT_SENT("PUBACK", 0x07, 0x0D, 0x00, 0x33, 0x00, 0x0A, 0x00);
    gateway_says(ARR(0x09, 0x0C, 0x20, 0x00, 0x44, 0x00, 0x0B, 'n', 'o'));
    CHECK(deliveries == 1, "unknown topic id not delivered");
    EXPECT_SENT("PUBACK invalid topic id", 0x07, 0x0D, 0x00, 0x44, 0x00, 0x0B, 0x02);
    shoal_mqttsn_client_unsubscribe(&client, "s/#");
    EXPECT_SENT("UNSUBSCRIBE", 0x08, 0x14, 0x00, 0x00, 0x02, 's', '/', '#');
    gateway_says(ARR(0x04, 0x15, 0x00, 0x02));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_UNSUBACK, &ev) && ev.msg_id == 2, "UNSUBACK");
}

static void test_keepalive(void)
{
    connect_plain();
    advance(29900);
    EXPECT_NOTHING_SENT("no PINGREQ before the keep-alive");
    advance(100);
    EXPECT_SENT("PINGREQ", 0x02, 0x16);
    gateway_says(ARR(0x02, 0x17));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_PINGRESP, NULL), "PINGRESP");
    advance(29000);
    EXPECT_NOTHING_SENT("keep-alive restarts after the ping");
}

static void test_gateway_loss_and_resubscribe(void)
{
    int i;
    connect_plain();
    shoal_mqttsn_client_subscribe(&client, "c/1", 1);
    EXPECT_SENT("SUBSCRIBE", 0x08, 0x12, 0x20, 0x00, 0x01, 'c', '/', '1');
    gateway_says(ARR(0x08, 0x13, 0x20, 0x00, 0x07, 0x00, 0x01, 0x00));
    shoal_mqttsn_client_publish(&client, "c/1", 1, 0, (const uint8_t *)"p", 1);
    /* "c/1" is known from the SUBACK topic id 7: no REGISTER. */
    EXPECT_SENT("PUBLISH on the id from SUBACK", 0x08, 0x0C, 0x20, 0x00, 0x07, 0x00, 0x02, 'p');
    for (i = 0; i < 2; ++i) {
        advance(1000);
        EXPECT_SENT("retransmission", 0x08, 0x0C, 0xA0, 0x00, 0x07, 0x00, 0x02, 'p');
    }
    advance(1000);
    CHECK(next_event(SHOAL_MQTTSN_EVENT_LOST, NULL), "LOST after N_RETRY");
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_LOST, "state LOST");
    EXPECT_NOTHING_SENT("nothing during the reconnect delay");
    advance(500);
    EXPECT_SENT("CONNECT again", 0x0A, 0x04, 0x04, 0x01, 0x00, 0x1E, 'd', 'e', 'v', '1');
    gateway_says(ARR(0x03, 0x05, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_RECONNECTED, NULL), "RECONNECTED");
    EXPECT_SENT("resubscribe", 0x08, 0x12, 0x20, 0x00, 0x03, 'c', '/', '1');
    gateway_says(ARR(0x08, 0x13, 0x20, 0x00, 0x08, 0x00, 0x03, 0x00));
    EXPECT_SENT("interrupted publish resent on the new id, same msg id, DUP", 0x08, 0x0C, 0xA0,
                0x00, 0x08, 0x00, 0x02, 'p');
    gateway_says(ARR(0x07, 0x0D, 0x00, 0x08, 0x00, 0x02, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_PUBDONE, NULL), "publish completes after reconnect");
    CHECK(shoal_mqttsn_client_pending_ops(&client) == 0, "nothing left queued");
}

static void test_lost_while_connecting_keeps_trying(void)
{
    shoal_mqttsn_config cfg;
    int lost_events = 0;
    int i;
    reset(&cfg);
    shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks);
    shoal_mqttsn_client_connect(&client);
    /* Attempts at 1000 (+2 retries, LOST at 4000), 4500 (LOST at 7500), 8000 (pending now). */
    advance(9500);
    for (i = 0; i < event_count; ++i) {
        lost_events += events[i].type == SHOAL_MQTTSN_EVENT_LOST;
    }
    CHECK(lost_events == 1, "LOST reported once while the gateway stays silent");
    CHECK(sent_count >= 6, "CONNECT keeps being retried");
    gateway_says(ARR(0x03, 0x05, 0x00));
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_ACTIVE, "eventually active");
}

static void test_sleep_and_wake(void)
{
    connect_plain();
    CHECK(shoal_mqttsn_client_sleep(&client, 20) == 0, "sleep accepted when idle");
    EXPECT_SENT("DISCONNECT with duration 20", 0x04, 0x18, 0x00, 0x14);
    gateway_says(ARR(0x04, 0x18, 0x00, 0x14));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_ASLEEP, NULL), "ASLEEP");
    advance(14900);
    EXPECT_NOTHING_SENT("no keep-alive while asleep");
    advance(100);
    EXPECT_SENT("PINGREQ with client id on wake", 0x06, 0x16, 'd', 'e', 'v', '1');
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_AWAKE, "AWAKE");
    gateway_says(ARR(0x08, 0x0C, 0x02, 'z', 'z', 0x00, 0x00, 'b'));
    CHECK(deliveries == 1 && strcmp(last_topic, "zz") == 0, "buffered message delivered");
    gateway_says(ARR(0x02, 0x17));
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_ASLEEP, "back to sleep");
    CHECK(shoal_mqttsn_client_connect(&client) == 0, "CONNECT from sleep");
    EXPECT_SENT("CONNECT", 0x0A, 0x04, 0x04, 0x01, 0x00, 0x1E, 'd', 'e', 'v', '1');
    gateway_says(ARR(0x03, 0x05, 0x00));
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_ACTIVE, "active again");
    CHECK(shoal_mqttsn_client_disconnect(&client) == 0, "disconnect");
    EXPECT_SENT("DISCONNECT", 0x02, 0x18);
    gateway_says(ARR(0x02, 0x18));
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_DISCONNECTED, "disconnected");
}

static void test_search_gateway(void)
{
    shoal_mqttsn_config cfg;
    shoal_mqttsn_event ev;
    reset(&cfg);
    cfg.search_radius = 2;
    shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks);
    shoal_mqttsn_client_search_gateway(&client);
    EXPECT_SENT("SEARCHGW radius 2", 0x03, 0x01, 0x02);
    CHECK(broadcasts == 1, "SEARCHGW is broadcast");
    gateway_says(ARR(0x03, 0x02, 0x2A));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_GWINFO, &ev) && ev.gw_id == 0x2A, "GWINFO event");
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_DISCONNECTED,
          "ready to connect");
}

static void test_garbage_is_counted(void)
{
    connect_plain();
    gateway_says(ARR(0x09, 0x0C, 0x20));
    gateway_says(ARR(0x02, 0x03));
    gateway_says(ARR(0xFF));
    CHECK(client.malformed == 3, "malformed datagrams counted");
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_ACTIVE, "still active");
}

static void test_congestion_backoff(void)
{
    connect_plain();
    shoal_mqttsn_client_publish_short(&client, "cc", 1, 0, (const uint8_t *)"1", 1);
    EXPECT_SENT("PUBLISH", 0x08, 0x0C, 0x22, 'c', 'c', 0x00, 0x01, '1');
    gateway_says(ARR(0x07, 0x0D, 'c', 'c', 0x00, 0x01, 0x01));
    advance(4900);
    CHECK(sent_read == sent_count || (sent[sent_read].data[1] == 0x16),
          "no PUBLISH during T_WAIT");
    sent_read = sent_count;
    advance(200);
    EXPECT_SENT("PUBLISH again after T_WAIT", 0x08, 0x0C, 0x22, 'c', 'c', 0x00, 0x01, '1');
}

static void test_will_update(void)
{
    shoal_mqttsn_event ev;
    static const uint8_t new_msg[] = {'o', 'f', 'f'};
    connect_plain();
    CHECK(shoal_mqttsn_client_update_will_topic(&client, "w/2", 2, 0) == 0, "will topic update");
    CHECK(shoal_mqttsn_client_update_will_msg(&client, new_msg, sizeof(new_msg)) == 0,
          "will msg update queued");
    EXPECT_SENT("WILLTOPICUPD qos2", 0x06, 0x1A, 0x40, 'w', '/', '2');
    EXPECT_NOTHING_SENT("WILLMSGUPD waits for WILLTOPICRESP");
    gateway_says(ARR(0x03, 0x1B, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_WILLRESP, &ev) && ev.return_code == 0, "WILLTOPICRESP");
    EXPECT_SENT("WILLMSGUPD", 0x05, 0x1C, 'o', 'f', 'f');
    gateway_says(ARR(0x03, 0x1D, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_WILLRESP, &ev), "WILLMSGRESP");
    CHECK(shoal_mqttsn_client_pending_ops(&client) == 0, "will updates done");
    /* A reconnect now carries the updated will. */
    shoal_mqttsn_client_disconnect(&client);
    gateway_says(ARR(0x02, 0x18));
    sent_read = sent_count;
    shoal_mqttsn_client_connect(&client);
    EXPECT_SENT("CONNECT with Will flag", 0x0A, 0x04, 0x0C, 0x01, 0x00, 0x1E, 'd', 'e', 'v', '1');
    gateway_says(ARR(0x02, 0x06));
    EXPECT_SENT("WILLTOPIC is the updated one", 0x06, 0x07, 0x40, 'w', '/', '2');
    gateway_says(ARR(0x02, 0x08));
    EXPECT_SENT("WILLMSG is the updated one", 0x05, 0x09, 'o', 'f', 'f');
    CHECK(shoal_mqttsn_client_update_will_topic(&client, NULL, 0, 0) == 0, "delete will queued");
    gateway_says(ARR(0x03, 0x05, 0x00));
    EXPECT_SENT("empty WILLTOPICUPD deletes the will", 0x02, 0x1A);
}

static void test_api_errors(void)
{
    shoal_mqttsn_config cfg;
    int i;
    reset(&cfg);
    cfg.client_id = "abcdefghijklmnopqrstuvwx"; /* 24 bytes */
    CHECK(shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks) ==
              SHOAL_MQTTSN_ERR_INVALID,
          "client id over 23 bytes refused");
    cfg.client_id = "ok";
    shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks);
    for (i = 0; i < SHOAL_MQTTSN_QUEUE_LEN; ++i) {
        CHECK(shoal_mqttsn_client_publish(&client, "q", 1, 0, NULL, 0) > 0, "queued");
    }
    CHECK(shoal_mqttsn_client_publish(&client, "q", 1, 0, NULL, 0) == SHOAL_MQTTSN_ERR_QUEUE_FULL,
          "queue full reported");
    {
        static uint8_t big[SHOAL_MQTTSN_MAX_PAYLOAD + 1];
        CHECK(shoal_mqttsn_client_publish_short(&client, "ab", -1, 0, big, sizeof(big)) ==
                  SHOAL_MQTTSN_ERR_TOO_BIG,
              "payload over capacity refused");
    }
    CHECK(shoal_mqttsn_client_publish_short(&client, "abc", 0, 0, NULL, 0) ==
              SHOAL_MQTTSN_ERR_INVALID,
          "short name must be 2 chars");
    CHECK(shoal_mqttsn_client_publish(&client, "a/#", 0, 0, NULL, 0) == SHOAL_MQTTSN_ERR_INVALID,
          "no wildcards in a publish topic");
    /* Not connected: a stray PUBLISH is neither delivered nor acknowledged. */
    sent_read = sent_count;
    gateway_says(ARR(0x08, 0x0C, 0x22, 'a', 'b', 0x00, 0x05, 'x'));
    CHECK(deliveries == 0 && client.dropped == 1, "PUBLISH without a session dropped");
    EXPECT_NOTHING_SENT("no PUBACK without a session");
}

/* Times (fake ms) at which CONNECT went out, from sent[] since `from`. */
static int connect_times(int from, uint32_t *times, int cap, const uint32_t *sent_at)
{
    int i;
    int n = 0;
    for (i = from; i < sent_count && n < cap; ++i) {
        if (sent[i].len >= 2u && sent[i].data[1] == 0x04) {
            times[n++] = sent_at[i];
        }
    }
    return n;
}

static void test_reconnect_backoff_grows_with_jitter_and_resets(void)
{
    shoal_mqttsn_config cfg;
    static uint32_t sent_at[MAX_DGRAMS];
    uint32_t times[16];
    int n;
    int i;
    int last_seen = 0;
    reset(&cfg);
    cfg.retry_ms = 100;
    cfg.max_retries = 0; /* one CONNECT per attempt: attempts are CONNECTs */
    cfg.reconnect_delay_ms = 400;
    cfg.reconnect_max_delay_ms = 2000;
    shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks);
    shoal_mqttsn_client_connect(&client);
    /* Step 10 ms at a time, stamping each datagram with the time it went out. */
    while (fake_now < 1000u + 12000u) {
        fake_now += 10u;
        shoal_mqttsn_client_poll(&client);
        for (; last_seen < sent_count; ++last_seen) {
            sent_at[last_seen] = fake_now;
        }
    }
    n = connect_times(0, times, 16, sent_at);
    CHECK(n >= 6, "CONNECT keeps being retried while the gateway is silent");
    for (i = 1; i < n; ++i) {
        /* Attempt i-1 failed 100 ms after its CONNECT; the pause d doubles from 400, cap 2000. */
        uint32_t d = 400u << (i - 1 < 3 ? i - 1 : 3);
        uint32_t pause = times[i] - times[i - 1] - 100u;
        if (d > 2000u) {
            d = 2000u;
        }
        CHECK(pause + 10u >= d / 2u && pause <= d + 10u, "pause within [d/2, d] of the backoff");
    }
    CHECK(times[n - 1] - times[n - 2] - 100u <= 2010u, "pause capped at reconnect_max_delay_ms");
    for (i = 0; i < 300 && client.pending != 0x05u; ++i) {
        fake_now += 10u; /* until a CONNECT awaits its CONNACK */
        shoal_mqttsn_client_poll(&client);
    }
    CHECK(client.reconnect_attempt > 0u, "failed attempts counted");
    gateway_says(ARR(0x03, 0x05, 0x00));
    CHECK(client.reconnect_attempt == 0u, "CONNACK resets the backoff");
}

static void test_gateway_disconnect_reconnects_clean_session_resubscribes(void)
{
    shoal_mqttsn_event ev;
    connect_plain();
    shoal_mqttsn_client_subscribe(&client, "c/2", 1);
    EXPECT_SENT("SUBSCRIBE", 0x08, 0x12, 0x20, 0x00, 0x01, 'c', '/', '2');
    gateway_says(ARR(0x08, 0x13, 0x20, 0x00, 0x07, 0x00, 0x01, 0x00));
    gateway_says(ARR(0x02, 0x18)); /* the gateway restarted and does not know us */
    CHECK(next_event(SHOAL_MQTTSN_EVENT_DISCONNECTED, NULL), "DISCONNECTED event");
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_LOST, "reconnect pending");
    advance(500);
    EXPECT_SENT("CONNECT after the backoff", 0x0A, 0x04, 0x04, 0x01, 0x00, 0x1E, 'd', 'e', 'v',
                '1');
    gateway_says(ARR(0x03, 0x05, 0x00));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_RECONNECTED, &ev), "RECONNECTED");
    EXPECT_SENT("clean session: SUBSCRIBE again", 0x08, 0x12, 0x20, 0x00, 0x02, 'c', '/', '2');
}

static void test_persistent_session_resends_pubrel_not_publish(void)
{
    shoal_mqttsn_config cfg;
    reset(&cfg);
    cfg.clean_session = 0;
    shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks);
    shoal_mqttsn_client_connect(&client);
    gateway_says(ARR(0x03, 0x05, 0x00));
    shoal_mqttsn_client_add_predefined(&client, 0x20, "cmd/p");
    sent_read = sent_count;
    shoal_mqttsn_client_publish_predefined(&client, 0x0102, 2, 0, (const uint8_t *)"z", 1);
    EXPECT_SENT("PUBLISH qos2", 0x08, 0x0C, 0x41, 0x01, 0x02, 0x00, 0x01, 'z');
    gateway_says(ARR(0x04, 0x0F, 0x00, 0x01));
    EXPECT_SENT("PUBREL", 0x04, 0x10, 0x00, 0x01);
    /* A QoS 2 message arrives too; then the gateway goes silent. */
    gateway_says(ARR(0x08, 0x0C, 0x41, 0x00, 0x20, 0x00, 0x09, 'A'));
    CHECK(deliveries == 1, "inbound QoS 2 delivered");
    EXPECT_SENT("PUBREC", 0x04, 0x0F, 0x00, 0x09);
    advance(3000);
    CHECK(next_event(SHOAL_MQTTSN_EVENT_LOST, NULL), "LOST");
    sent_read = sent_count;
    advance(500);
    EXPECT_SENT("CONNECT persistent", 0x0A, 0x04, 0x00, 0x01, 0x00, 0x1E, 'd', 'e', 'v', '1');
    gateway_says(ARR(0x03, 0x05, 0x00));
    EXPECT_SENT("only PUBREL again (the gateway has the message)", 0x04, 0x10, 0x00, 0x01);
    gateway_says(ARR(0x08, 0x0C, 0xC1, 0x00, 0x20, 0x00, 0x09, 'A'));
    CHECK(deliveries == 1, "persistent session: the resent QoS 2 message is not delivered again");
    EXPECT_SENT("PUBREC for the copy", 0x04, 0x0F, 0x00, 0x09);
    gateway_says(ARR(0x04, 0x0E, 0x00, 0x01));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_PUBDONE, NULL), "PUBDONE after PUBCOMP");
    EXPECT_NOTHING_SENT("no PUBLISH copy, no re-SUBSCRIBE in a persistent session");
}

static void test_disconnect_waits_for_pubrel(void)
{
    connect_plain();
    shoal_mqttsn_client_add_predefined(&client, 0x20, "cmd/x");
    gateway_says(ARR(0x08, 0x0C, 0x41, 0x00, 0x20, 0x00, 0x07, 'A'));
    EXPECT_SENT("PUBREC", 0x04, 0x0F, 0x00, 0x07);
    CHECK(shoal_mqttsn_client_disconnect(&client) == SHOAL_MQTTSN_ERR_STATE,
          "DISCONNECT refused while the PUBREL is due");
    EXPECT_NOTHING_SENT("no DISCONNECT before PUBCOMP");
    gateway_says(ARR(0x04, 0x10, 0x00, 0x07));
    EXPECT_SENT("PUBCOMP", 0x04, 0x0E, 0x00, 0x07);
    CHECK(shoal_mqttsn_client_disconnect(&client) == SHOAL_MQTTSN_OK, "then DISCONNECT");
    EXPECT_SENT("DISCONNECT after PUBCOMP", 0x02, 0x18);
    CHECK(deliveries == 1, "delivered once");
}

static void test_gwinfo_gwadd_and_advertise_end_the_search(void)
{
    shoal_mqttsn_config cfg;
    shoal_mqttsn_event ev;
    reset(&cfg);
    shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks);
    shoal_mqttsn_client_search_gateway(&client);
    gateway_says(ARR(0x09, 0x02, 0x05, 127, 0, 0, 1, 0x07, 0x5D)); /* answered by a client */
    CHECK(next_event(SHOAL_MQTTSN_EVENT_GWINFO, &ev) && ev.gw_id == 5 && ev.gw_add_len == 6 &&
              ev.gw_add != NULL,
          "GWINFO event carries GwAdd");
    shoal_mqttsn_client_search_gateway(&client);
    gateway_says(ARR(0x05, 0x00, 0x07, 0x03, 0x84));
    CHECK(next_event(SHOAL_MQTTSN_EVENT_ADVERTISE, &ev) && ev.gw_id == 7 && ev.duration_s == 900,
          "ADVERTISE event");
    CHECK(shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_DISCONNECTED && !client.pending,
          "an ADVERTISE ends the search too");
}

int main(void)
{
    test_connect_with_will();
    test_connect_rejected();
    test_publish_qos1_register_retry_dup();
    test_publish_qos2();
    test_one_in_flight();
    test_reregister_on_invalid_topic();
    test_qos_minus_one();
    test_inbound_qos2_exactly_once();
    test_wildcard_and_gateway_register();
    test_keepalive();
    test_gateway_loss_and_resubscribe();
    test_lost_while_connecting_keeps_trying();
    test_sleep_and_wake();
    test_search_gateway();
    test_garbage_is_counted();
    test_congestion_backoff();
    test_will_update();
    test_api_errors();
    test_reconnect_backoff_grows_with_jitter_and_resets();
    test_gateway_disconnect_reconnects_clean_session_resubscribes();
    test_persistent_session_resends_pubrel_not_publish();
    test_disconnect_waits_for_pubrel();
    test_gwinfo_gwadd_and_advertise_end_the_search();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
