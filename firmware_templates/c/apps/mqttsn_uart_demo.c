/*
 * mqttsn_uart_demo.c - a bare-metal MQTT-SN client over a framed UART (shoal_uart_transport),
 * for any platform that implements hal/shoal_hal.h (e.g. hal/qemu/lm3s6965evb, mps2_an386).
 *
 * Responsible for: one short script that proves the device path end to end - connect,
 * subscribe to SHOAL_DEMO_PREFIX "/cmd" (QoS 1), publish "hello" to SHOAL_DEMO_PREFIX "/hello"
 * (QoS 1), wait for one command and publish its payload back on SHOAL_DEMO_PREFIX "/echo" (QoS 1),
 * then disconnect. main() returns 0 on success, 1 after SHOAL_DEMO_TIMEOUT_MS (on QEMU the
 * platform turns that into QEMU's exit status). Must not: print (stdout shares the UART that
 * carries the frames).
 */
#include <string.h>

#include "shoal_hal.h"
#include "shoal_mqttsn_client.h"
#include "shoal_uart_transport.h"

#ifndef SHOAL_DEMO_CLIENT_ID
#define SHOAL_DEMO_CLIENT_ID "shoal-uart-demo"
#endif
#ifndef SHOAL_DEMO_PREFIX
#define SHOAL_DEMO_PREFIX "shoal/demo"
#endif
#ifndef SHOAL_DEMO_TIMEOUT_MS
#define SHOAL_DEMO_TIMEOUT_MS 30000u
#endif
#ifndef SHOAL_DEMO_RETRY_MS
#define SHOAL_DEMO_RETRY_MS 1000u
#endif

static shoal_mqttsn_client client;
static shoal_uart_transport uart;

static struct {
    uint8_t connected;
    uint8_t subscribed;
    uint8_t got_command;
    uint8_t echo_queued;
    int echo_msg_id;
    uint8_t echo_done;
    uint8_t disconnected;
    uint8_t command[SHOAL_MQTTSN_MAX_PAYLOAD];
    size_t command_len;
} demo;

static void on_message(void *user, const shoal_mqttsn_message *msg)
{
    (void)user;
    if (!demo.got_command && msg->topic != NULL &&
        strcmp(msg->topic, SHOAL_DEMO_PREFIX "/cmd") == 0) {
        demo.command_len = msg->payload_len;
        memcpy(demo.command, msg->payload, msg->payload_len);
        demo.got_command = 1u;
    }
}

static void on_event(void *user, const shoal_mqttsn_event *ev)
{
    (void)user;
    switch (ev->type) {
    case SHOAL_MQTTSN_EVENT_CONNACK:
        demo.connected = ev->return_code == 0u;
        break;
    case SHOAL_MQTTSN_EVENT_SUBACK:
        demo.subscribed = ev->return_code == 0u;
        break;
    case SHOAL_MQTTSN_EVENT_PUBDONE:
        if (demo.echo_queued && ev->msg_id == (uint16_t)demo.echo_msg_id) {
            demo.echo_done = 1u;
        }
        break;
    case SHOAL_MQTTSN_EVENT_DISCONNECTED:
        demo.disconnected = 1u;
        break;
    default:
        break;
    }
}

int main(void)
{
    static const char hello[] = "hello from " SHOAL_DEMO_CLIENT_ID;
    shoal_mqttsn_config cfg;
    shoal_mqttsn_transport transport;
    shoal_mqttsn_callbacks callbacks;
    uint8_t started = 0u;
    uint8_t disconnect_sent = 0u;

    shoal_hal_init();
    shoal_uart_transport_init(&uart, &transport);
    shoal_mqttsn_config_defaults(&cfg);
    cfg.client_id = SHOAL_DEMO_CLIENT_ID;
    cfg.retry_ms = SHOAL_DEMO_RETRY_MS;
    cfg.keepalive_s = 30u;
    cfg.reconnect_delay_ms = 500u;
    callbacks.on_message = on_message;
    callbacks.on_event = on_event;
    callbacks.user = NULL;
    if (shoal_mqttsn_client_init(&client, &cfg, &transport, &callbacks) != SHOAL_MQTTSN_OK) {
        return 1;
    }
    (void)shoal_mqttsn_client_connect(&client);

    while (shoal_hal_now_ms() < SHOAL_DEMO_TIMEOUT_MS) {
        (void)shoal_mqttsn_client_poll(&client);
        if (demo.connected && !started) {
            started = 1u;
            (void)shoal_mqttsn_client_subscribe(&client, SHOAL_DEMO_PREFIX "/cmd", 1);
            (void)shoal_mqttsn_client_publish(&client, SHOAL_DEMO_PREFIX "/hello", 1, 0,
                                              (const uint8_t *)hello, sizeof(hello) - 1u);
        }
        if (demo.got_command && !demo.echo_queued) {
            demo.echo_msg_id = shoal_mqttsn_client_publish(
                &client, SHOAL_DEMO_PREFIX "/echo", 1, 0, demo.command, demo.command_len);
            demo.echo_queued = demo.echo_msg_id > 0;
        }
        if (demo.echo_done && !disconnect_sent) {
            /* Refused (ERR_STATE) while work or a QoS 2 PUBREL is outstanding: try again. */
            disconnect_sent = shoal_mqttsn_client_disconnect(&client) == SHOAL_MQTTSN_OK;
            demo.disconnected = 0u; /* a DISCONNECT the gateway sent earlier is not the answer */
        }
        if (disconnect_sent && demo.disconnected) {
            return 0;
        }
        shoal_hal_idle();
    }
    return 1;
}
