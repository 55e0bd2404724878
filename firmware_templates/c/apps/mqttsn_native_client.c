/*
 * mqttsn_native_client.c - a native POSIX MQTT-SN client driven by command-line arguments,
 * for end-to-end tests against the Shoal gateway (and for trying the C client by hand).
 *
 * Responsible for: running one scripted session - connect, subscribe, publish, optionally
 * sleep - and printing one line per event on stdout (flushed per line). Must not: contain
 * protocol logic; everything goes through shoal_mqttsn_client.
 *
 * Build (from firmware_templates/c): gcc -std=c99 -Imqttsn -Ihal/posix
 *        apps/mqttsn_native_client.c mqttsn/shoal_mqttsn_codec.c mqttsn/shoal_mqttsn_client.c
 *        hal/posix/shoal_hal_posix.c -o mqttsn_native_client
 *
 * Arguments (all optional except --gateway and --client-id):
 *   --gateway HOST:PORT        gateway UDP address
 *   --client-id ID             1..23 bytes
 *   --clean 0|1                CleanSession (default 1)
 *   --keepalive S              keep-alive seconds (default 60)
 *   --will-topic T --will-msg M --will-qos Q --will-retain 0|1
 *   --predef ID:NAME           name a predefined topic id (for RECV lines); repeatable
 *   --sub FILTER:QOS           subscribe to a topic filter (wildcards allowed); repeatable
 *   --sub-predef ID:QOS        subscribe to a predefined topic id; repeatable
 *   --sub-short AB:QOS         subscribe to a two-character short topic name; repeatable
 *   --pub TOPIC:QOS:PAYLOAD[:RETAIN]   publish on a topic name; repeatable. RETAIN is 0|1; a
 *                              payload that itself ends in ":0" or ":1" needs RETAIN given.
 *                              "{n}" in PAYLOAD becomes the round number (1..count).
 *   --pub-predef ID:QOS:PAYLOAD[:RETAIN]  same on a predefined id (QOS may be -1)
 *   --pub-short AB:QOS:PAYLOAD[:RETAIN]   same on a short topic name (QOS may be -1)
 *   --count N                  publish rounds (every --pub once per round; default 1)
 *   --interval-ms MS           pause between rounds (default 0)
 *   --expect N                 the script also waits until N messages were received
 *   --sleep S                  after publishing, sleep with Duration S seconds (wakes every
 *                              0.75*S to collect buffered messages) for the rest of the run
 *   --run-ms MS                minimum run time before exiting (default 0)
 *   --timeout-ms MS            give up after this long: print TIMEOUT, exit 1 (default 60000)
 *   --retry-ms MS              T_RETRY (default 10000)   --max-retries N   N_RETRY (default 3)
 *   --reconnect-ms MS          first pause before reconnecting after LOST or a DISCONNECT from
 *                              the gateway (default 1000); doubles per failed attempt, jittered
 *   --reconnect-max-ms MS      cap of that pause (default 60000)
 *   --search                   send SEARCHGW to the --gateway address (may be a broadcast
 *                              address) and connect to whoever answers with GWINFO
 *   --multicast GROUP:PORT     discover the gateway on this IPv4 multicast group: SEARCHGW goes
 *                              there, GWINFO/ADVERTISE heard there name the gateway (the sender,
 *                              or GWINFO's GwAdd); --gateway is then optional
 *   --multicast-interface ADDR local interface address to join and send on (default 0.0.0.0)
 *   --local-port P             bind this UDP port (default any)
 *
 * Output lines (space separated; <topic> is the name, "@<id>" for a predefined id without a
 * name; <hex> is the payload in lower-case hex, "-" when empty):
 *   CONNACK <rc>                        every CONNACK (rc 0 = accepted)
 *   READY                               first CONNACK accepted and initial subscriptions acked
 *   SUBACK <msgid> <granted_qos> <rc> <topic_id> <filter>
 *   REGISTER <topic_id> <name>          a topic id learnt (our REGACK or the gateway's REGISTER)
 *   RECV <topic> <qos> <retain> <hex>   a received PUBLISH. QoS 2 is printed (and counted for
 *                              --expect) exactly once, when its first PUBLISH arrives: the client
 *                              acknowledges copies of that message id without delivering them.
 *                              The program exits only after that exchange ended with our PUBCOMP
 *                              (the client refuses DISCONNECT while a PUBREL is due).
 *   PUBDONE <msgid> <rc>                a publish completed (QoS 0/-1: sent; msgid 0)
 *   LOST / RECONNECTED                  gateway stopped answering / session back (resubscribed)
 *   ASLEEP / AWAKE / DISCONNECTED / PINGRESP
 *   GWINFO <gw_id> / ADVERTISE <gw_id> <duration_s> / SEARCHFAILED
 *   STATS sent=<n> received=<n> retransmitted=<n> malformed=<n> dropped=<n>
 *   DONE                                script complete; then DISCONNECT (so the gateway publishes
 *                                       no will), after any open QoS 2 exchange; exit status 0
 *   TIMEOUT                             --timeout-ms passed first; exit status 1
 *   ERROR <text>                        bad arguments or socket failure; exit status 2
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_hal_posix.h"
#include "shoal_mqttsn_client.h"

#define MAX_ITEMS 16
#define PAYLOAD_TEMPLATE_MAX 200

enum { TOPIC_NAME, TOPIC_PREDEF, TOPIC_SHORT };

typedef struct {
    int kind;
    char topic[SHOAL_MQTTSN_TOPIC_NAME_MAX + 1];
    unsigned long id;
    int qos;
    int retain;
    char payload[PAYLOAD_TEMPLATE_MAX + 1];
} script_item;

typedef struct {
    script_item subs[MAX_ITEMS];
    int sub_count;
    script_item pubs[MAX_ITEMS];
    int pub_count;
    long count;
    long interval_ms;
    long expect;
    long sleep_s;
    long run_ms;
    long timeout_ms;
    int search;
    /* progress */
    int gwinfo;
    int search_failed;
    shoal_posix_udp *udp;
    int connacked;
    int ready;
    long received;
    int asleep;
} app_state;

static void fail(const char *what)
{
    printf("ERROR %s\n", what);
    fflush(stdout);
    exit(2);
}

static void on_message(void *user, const shoal_mqttsn_message *msg)
{
    app_state *app = (app_state *)user;
    size_t i;
    if (msg->topic != NULL) {
        printf("RECV %s %d %d ", msg->topic, msg->qos, msg->retain);
    } else {
        printf("RECV @%u %d %d ", (unsigned)msg->topic_id, msg->qos, msg->retain);
    }
    if (msg->payload_len == 0u) {
        printf("-");
    }
    for (i = 0; i < msg->payload_len; ++i) {
        printf("%02x", msg->payload[i]);
    }
    printf("\n");
    fflush(stdout);
    app->received++;
}

static void on_event(void *user, const shoal_mqttsn_event *ev)
{
    app_state *app = (app_state *)user;
    switch (ev->type) {
    case SHOAL_MQTTSN_EVENT_CONNACK:
        printf("CONNACK %u\n", ev->return_code);
        if (ev->return_code == 0u) {
            app->connacked = 1;
        }
        break;
    case SHOAL_MQTTSN_EVENT_RECONNECTED: printf("RECONNECTED\n"); break;
    case SHOAL_MQTTSN_EVENT_LOST: printf("LOST\n"); break;
    case SHOAL_MQTTSN_EVENT_REGISTERED:
        printf("REGISTER %u %s\n", (unsigned)ev->topic_id, ev->topic != NULL ? ev->topic : "-");
        break;
    case SHOAL_MQTTSN_EVENT_PUBDONE:
        printf("PUBDONE %u %u\n", (unsigned)ev->msg_id, ev->return_code);
        break;
    case SHOAL_MQTTSN_EVENT_SUBACK:
        printf("SUBACK %u %d %u %u %s\n", (unsigned)ev->msg_id, ev->qos, ev->return_code,
               (unsigned)ev->topic_id, ev->topic != NULL && ev->topic[0] ? ev->topic : "-");
        break;
    case SHOAL_MQTTSN_EVENT_UNSUBACK: printf("UNSUBACK %u\n", (unsigned)ev->msg_id); break;
    case SHOAL_MQTTSN_EVENT_PINGRESP: printf("PINGRESP\n"); break;
    case SHOAL_MQTTSN_EVENT_ASLEEP:
        printf("ASLEEP\n");
        app->asleep = 1;
        break;
    case SHOAL_MQTTSN_EVENT_AWAKE: printf("AWAKE\n"); break;
    case SHOAL_MQTTSN_EVENT_DISCONNECTED: printf("DISCONNECTED\n"); break;
    case SHOAL_MQTTSN_EVENT_GWINFO:
    case SHOAL_MQTTSN_EVENT_ADVERTISE:
        if (ev->type == SHOAL_MQTTSN_EVENT_GWINFO) {
            printf("GWINFO %u\n", ev->gw_id);
        } else {
            printf("ADVERTISE %u %u\n", ev->gw_id, (unsigned)ev->duration_s);
        }
        if (app->search && !app->gwinfo) {
            /* Inside poll(), right after recv: the last sender is this datagram's. */
            shoal_posix_udp_use_gateway(app->udp, ev->gw_add, ev->gw_add_len);
            app->gwinfo = 1;
        }
        break;
    case SHOAL_MQTTSN_EVENT_SEARCH_FAILED:
        printf("SEARCHFAILED\n");
        app->search_failed = 1;
        break;
    default: break;
    }
    fflush(stdout);
}

static long parse_long(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        fail(what);
    }
    return v;
}

static void copy_bounded(char *dst, size_t cap, const char *src, size_t len, const char *what)
{
    if (len >= cap) {
        fail(what);
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* "TOPIC:QOS" (sub) or "TOPIC:QOS:PAYLOAD[:RETAIN]" (pub). */
static void parse_item(script_item *it, int kind, const char *arg, int is_pub)
{
    const char *c1 = strchr(arg, ':');
    const char *rest;
    char qos_text[8];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    if (c1 == NULL) {
        fail(is_pub ? "--pub expects TOPIC:QOS:PAYLOAD[:RETAIN]" : "--sub expects FILTER:QOS");
    }
    copy_bounded(it->topic, sizeof(it->topic), arg, (size_t)(c1 - arg), "topic too long");
    rest = c1 + 1;
    if (is_pub) {
        const char *c2 = strchr(rest, ':');
        size_t plen;
        if (c2 == NULL) {
            fail("--pub expects TOPIC:QOS:PAYLOAD[:RETAIN]");
        }
        copy_bounded(qos_text, sizeof(qos_text), rest, (size_t)(c2 - rest), "bad QoS");
        rest = c2 + 1;
        plen = strlen(rest);
        if (plen >= 2u && rest[plen - 2u] == ':' &&
            (rest[plen - 1u] == '0' || rest[plen - 1u] == '1')) {
            it->retain = rest[plen - 1u] == '1';
            plen -= 2u;
        }
        copy_bounded(it->payload, sizeof(it->payload), rest, plen, "payload too long");
    } else {
        copy_bounded(qos_text, sizeof(qos_text), rest, strlen(rest), "bad QoS");
    }
    it->qos = (int)parse_long(qos_text, "QoS must be -1, 0, 1 or 2");
    if (it->qos < -1 || it->qos > 2 || (it->qos == -1 && (kind == TOPIC_NAME || !is_pub))) {
        fail("QoS must be 0..2 (-1 only for --pub-predef/--pub-short)");
    }
    if (kind == TOPIC_PREDEF) {
        it->id = (unsigned long)parse_long(it->topic, "predefined topic id must be a number");
    }
}

/* Expand "{n}" to the round number. */
static size_t render_payload(const char *tmpl, long round, char *out, size_t cap)
{
    size_t w = 0;
    const char *p = tmpl;
    while (*p != '\0' && w + 1u < cap) {
        if (strncmp(p, "{n}", 3) == 0) {
            int n = snprintf(out + w, cap - w, "%ld", round);
            if (n < 0 || (size_t)n >= cap - w) {
                break;
            }
            w += (size_t)n;
            p += 3;
        } else {
            out[w++] = *p++;
        }
    }
    out[w] = '\0';
    return w;
}

static int start_subscription(shoal_mqttsn_client *c, const script_item *it)
{
    switch (it->kind) {
    case TOPIC_PREDEF:
        return shoal_mqttsn_client_subscribe_predefined(c, (uint16_t)it->id, it->qos);
    case TOPIC_SHORT: return shoal_mqttsn_client_subscribe_short(c, it->topic, it->qos);
    default: return shoal_mqttsn_client_subscribe(c, it->topic, it->qos);
    }
}

static int start_publish(shoal_mqttsn_client *c, const script_item *it, long round)
{
    char payload[SHOAL_MQTTSN_MAX_PAYLOAD + 1];
    size_t len = render_payload(it->payload, round, payload, sizeof(payload));
    switch (it->kind) {
    case TOPIC_PREDEF:
        return shoal_mqttsn_client_publish_predefined(c, (uint16_t)it->id, it->qos, it->retain,
                                                      (const uint8_t *)payload, len);
    case TOPIC_SHORT:
        return shoal_mqttsn_client_publish_short(c, it->topic, it->qos, it->retain,
                                                 (const uint8_t *)payload, len);
    default:
        return shoal_mqttsn_client_publish(c, it->topic, it->qos, it->retain,
                                           (const uint8_t *)payload, len);
    }
}

/* "--predef ID:NAME" */
static void parse_predef(script_item *it, const char *arg)
{
    const char *colon = strchr(arg, ':');
    char id_text[8];
    memset(it, 0, sizeof(*it));
    if (colon == NULL) {
        fail("--predef expects ID:NAME");
    }
    copy_bounded(id_text, sizeof(id_text), arg, (size_t)(colon - arg), "bad --predef id");
    it->id = (unsigned long)parse_long(id_text, "--predef id must be a number");
    copy_bounded(it->topic, sizeof(it->topic), colon + 1, strlen(colon + 1),
                 "--predef name too long");
}

int main(int argc, char **argv)
{
    static shoal_mqttsn_client client;
    static app_state app;
    shoal_mqttsn_config cfg;
    shoal_mqttsn_transport transport;
    shoal_mqttsn_callbacks callbacks;
    shoal_posix_udp udp;
    char host[128] = "";
    long port = -1;
    long local_port = 0;
    char mcast_group[64] = "";
    char mcast_iface[64] = "0.0.0.0";
    long mcast_port = -1;
    static char will_msg[SHOAL_MQTTSN_MAX_PAYLOAD + 1];
    static script_item predefs[MAX_ITEMS];
    int predef_count = 0;
    int timed_out = 0;
    int i;
    int next_sub = 0;
    long round = 1;
    int next_pub = 0;
    int sleep_requested = 0;
    uint32_t start;
    uint32_t next_round_ms;

    shoal_mqttsn_config_defaults(&cfg);
    app.count = 1;
    app.timeout_ms = 60000;
    for (i = 1; i < argc; ++i) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "--search") == 0) {
            app.search = 1;
            continue;
        }
        if (val == NULL) {
            fail("missing value after an option");
        }
        ++i;
        if (strcmp(opt, "--gateway") == 0) {
            const char *colon = strrchr(val, ':');
            if (colon == NULL) {
                fail("--gateway expects HOST:PORT");
            }
            copy_bounded(host, sizeof(host), val, (size_t)(colon - val), "gateway host too long");
            port = parse_long(colon + 1, "--gateway port must be a number");
        } else if (strcmp(opt, "--client-id") == 0) {
            cfg.client_id = val;
        } else if (strcmp(opt, "--clean") == 0) {
            cfg.clean_session = (uint8_t)(parse_long(val, "--clean expects 0 or 1") != 0);
        } else if (strcmp(opt, "--keepalive") == 0) {
            cfg.keepalive_s = (uint16_t)parse_long(val, "--keepalive expects seconds");
        } else if (strcmp(opt, "--will-topic") == 0) {
            cfg.will_topic = val;
        } else if (strcmp(opt, "--will-msg") == 0) {
            copy_bounded(will_msg, sizeof(will_msg), val, strlen(val), "--will-msg too long");
            cfg.will_msg = (const uint8_t *)will_msg;
            cfg.will_msg_len = strlen(will_msg);
        } else if (strcmp(opt, "--will-qos") == 0) {
            cfg.will_qos = (int8_t)parse_long(val, "--will-qos expects 0..2");
        } else if (strcmp(opt, "--will-retain") == 0) {
            cfg.will_retain = (uint8_t)(parse_long(val, "--will-retain expects 0 or 1") != 0);
        } else if (strcmp(opt, "--predef") == 0) {
            if (predef_count >= MAX_ITEMS) {
                fail("too many --predef options");
            }
            parse_predef(&predefs[predef_count++], val);
        } else if (strcmp(opt, "--sub") == 0 || strcmp(opt, "--sub-predef") == 0 ||
                   strcmp(opt, "--sub-short") == 0) {
            int kind = strcmp(opt, "--sub") == 0          ? TOPIC_NAME
                       : strcmp(opt, "--sub-predef") == 0 ? TOPIC_PREDEF
                                                          : TOPIC_SHORT;
            if (app.sub_count >= MAX_ITEMS) {
                fail("too many --sub options");
            }
            parse_item(&app.subs[app.sub_count++], kind, val, 0);
        } else if (strcmp(opt, "--pub") == 0 || strcmp(opt, "--pub-predef") == 0 ||
                   strcmp(opt, "--pub-short") == 0) {
            int kind = strcmp(opt, "--pub") == 0          ? TOPIC_NAME
                       : strcmp(opt, "--pub-predef") == 0 ? TOPIC_PREDEF
                                                          : TOPIC_SHORT;
            if (app.pub_count >= MAX_ITEMS) {
                fail("too many --pub options");
            }
            parse_item(&app.pubs[app.pub_count++], kind, val, 1);
        } else if (strcmp(opt, "--count") == 0) {
            app.count = parse_long(val, "--count expects a number");
        } else if (strcmp(opt, "--interval-ms") == 0) {
            app.interval_ms = parse_long(val, "--interval-ms expects a number");
        } else if (strcmp(opt, "--expect") == 0) {
            app.expect = parse_long(val, "--expect expects a number");
        } else if (strcmp(opt, "--sleep") == 0) {
            app.sleep_s = parse_long(val, "--sleep expects seconds");
        } else if (strcmp(opt, "--run-ms") == 0) {
            app.run_ms = parse_long(val, "--run-ms expects a number");
        } else if (strcmp(opt, "--timeout-ms") == 0) {
            app.timeout_ms = parse_long(val, "--timeout-ms expects a number");
        } else if (strcmp(opt, "--retry-ms") == 0) {
            cfg.retry_ms = (uint32_t)parse_long(val, "--retry-ms expects a number");
        } else if (strcmp(opt, "--max-retries") == 0) {
            cfg.max_retries = (uint8_t)parse_long(val, "--max-retries expects a number");
        } else if (strcmp(opt, "--reconnect-ms") == 0) {
            cfg.reconnect_delay_ms = (uint32_t)parse_long(val, "--reconnect-ms expects a number");
        } else if (strcmp(opt, "--reconnect-max-ms") == 0) {
            cfg.reconnect_max_delay_ms =
                (uint32_t)parse_long(val, "--reconnect-max-ms expects a number");
        } else if (strcmp(opt, "--multicast") == 0) {
            const char *colon = strrchr(val, ':');
            if (colon == NULL) {
                fail("--multicast expects GROUP:PORT");
            }
            copy_bounded(mcast_group, sizeof(mcast_group), val, (size_t)(colon - val),
                         "multicast group too long");
            mcast_port = parse_long(colon + 1, "--multicast port must be a number");
        } else if (strcmp(opt, "--multicast-interface") == 0) {
            copy_bounded(mcast_iface, sizeof(mcast_iface), val, strlen(val),
                         "--multicast-interface too long");
        } else if (strcmp(opt, "--local-port") == 0) {
            local_port = parse_long(val, "--local-port expects a number");
        } else {
            fail("unknown option (see the header of mqttsn_native_client.c)");
        }
    }
    if (mcast_group[0] != '\0') {
        if (mcast_port <= 0 || mcast_port > 65535) {
            fail("--multicast GROUP:PORT needs a port 1..65535");
        }
        if (host[0] == '\0') {
            /* No gateway known yet: discovery names it. */
            copy_bounded(host, sizeof(host), mcast_group, strlen(mcast_group), "group too long");
            port = mcast_port;
        }
        app.search = 1;
    }
    if (host[0] == '\0' || port <= 0 || port > 65535) {
        fail("--gateway HOST:PORT (or --multicast GROUP:PORT) is required");
    }
    if (shoal_posix_udp_open(&udp, host, (uint16_t)port, (uint16_t)local_port) < 0) {
        fail("cannot open the UDP socket or resolve the gateway host");
    }
    if (mcast_group[0] != '\0' &&
        shoal_posix_udp_join_multicast(&udp, mcast_group, (uint16_t)mcast_port, mcast_iface) <
            0) {
        fail("cannot join the multicast group (check GROUP is 224.0.0.0/4 and the interface)");
    }
    shoal_posix_udp_transport(&udp, &transport);
    app.udp = &udp;
    callbacks.on_message = on_message;
    callbacks.on_event = on_event;
    callbacks.user = &app;
    if (cfg.client_id == NULL ||
        shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks) != SHOAL_MQTTSN_OK) {
        fail("--client-id (1..23 bytes) is required; check the will options");
    }
    for (i = 0; i < predef_count; ++i) {
        if (shoal_mqttsn_client_add_predefined(&client, (uint16_t)predefs[i].id,
                                               predefs[i].topic) != SHOAL_MQTTSN_OK) {
            fail("--predef table full or name too long");
        }
    }

    start = shoal_posix_now_ms();
    if (app.search) {
        (void)shoal_mqttsn_client_search_gateway(&client);
    } else {
        (void)shoal_mqttsn_client_connect(&client);
    }
    next_round_ms = start;
    for (;;) {
        uint32_t now = shoal_posix_now_ms();
        shoal_mqttsn_state st = shoal_mqttsn_client_state(&client);
        int pubs_done;
        if ((long)(now - start) >= app.timeout_ms) {
            printf("TIMEOUT\n");
            timed_out = 1;
            break;
        }
        if (app.search && app.gwinfo) {
            app.search = 0;
            (void)shoal_mqttsn_client_connect(&client);
        } else if (app.search && app.search_failed && st == SHOAL_MQTTSN_STATE_DISCONNECTED) {
            app.search_failed = 0;
            (void)shoal_mqttsn_client_search_gateway(&client); /* keep looking */
        }
        /* Queue subscriptions once, in order, as queue space allows. */
        while (app.connacked && next_sub < app.sub_count) {
            script_item *it = &app.subs[next_sub];
            int rc = start_subscription(&client, it);
            if (rc == SHOAL_MQTTSN_ERR_QUEUE_FULL) {
                break;
            }
            if (rc < 0) {
                fail("subscription rejected by the client (check filter length and QoS)");
            }
            next_sub++;
        }
        if (app.connacked && !app.ready && next_sub == app.sub_count &&
            shoal_mqttsn_client_pending_ops(&client) == 0u &&
            shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_ACTIVE) {
            app.ready = 1;
            printf("READY\n");
            fflush(stdout);
        }
        while (app.ready && round <= app.count && app.pub_count > 0 &&
               (int32_t)(now - next_round_ms) >= 0) {
            int rc = start_publish(&client, &app.pubs[next_pub], round);
            if (rc == SHOAL_MQTTSN_ERR_QUEUE_FULL) {
                break;
            }
            if (rc < 0) {
                fail("publish rejected by the client (check topic, QoS and payload size)");
            }
            if (++next_pub == app.pub_count) {
                next_pub = 0;
                round++;
                next_round_ms += (uint32_t)app.interval_ms;
            }
        }
        pubs_done = app.ready && (app.pub_count == 0 || round > app.count) &&
                    shoal_mqttsn_client_pending_ops(&client) == 0u;
        if (pubs_done && app.sleep_s > 0 && !sleep_requested &&
            shoal_mqttsn_client_sleep(&client, (uint16_t)app.sleep_s) == SHOAL_MQTTSN_OK) {
            sleep_requested = 1;
        }
        if (pubs_done && app.received >= app.expect && (long)(now - start) >= app.run_ms &&
            (app.sleep_s == 0 || app.asleep)) {
            printf("DONE\n");
            break;
        }
        (void)shoal_mqttsn_client_poll(&client);
        (void)shoal_posix_udp_wait(&udp, 2u);
    }
    {
        /* DISCONNECT so the gateway frees our slot and does not publish the will. The client
         * refuses it while a received QoS 2 message still awaits its PUBREL (our PUBCOMP is
         * due), so poll until it is accepted; both waits are bounded by T_RETRY x (N_RETRY+1). */
        uint32_t bound = cfg.retry_ms * ((uint32_t)cfg.max_retries + 1u);
        uint32_t t0 = shoal_posix_now_ms();
        int rc = shoal_mqttsn_client_disconnect(&client);
        while (rc == SHOAL_MQTTSN_ERR_STATE && !timed_out &&
               shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_ACTIVE &&
               (uint32_t)(shoal_posix_now_ms() - t0) < bound) {
            (void)shoal_posix_udp_wait(&udp, 5u);
            (void)shoal_mqttsn_client_poll(&client);
            rc = shoal_mqttsn_client_disconnect(&client);
        }
        t0 = shoal_posix_now_ms();
        while (rc == SHOAL_MQTTSN_OK &&
               shoal_mqttsn_client_state(&client) == SHOAL_MQTTSN_STATE_DISCONNECTING &&
               (uint32_t)(shoal_posix_now_ms() - t0) < bound) {
            (void)shoal_posix_udp_wait(&udp, 5u);
            (void)shoal_mqttsn_client_poll(&client);
        }
    }
    printf("STATS sent=%lu received=%lu retransmitted=%lu malformed=%lu dropped=%lu\n",
           (unsigned long)client.sent, (unsigned long)client.received,
           (unsigned long)client.retransmitted, (unsigned long)client.malformed,
           (unsigned long)client.dropped);
    fflush(stdout);
    shoal_posix_udp_close(&udp);
    return timed_out ? 1 : 0;
}
