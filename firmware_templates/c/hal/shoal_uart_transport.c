/*
 * shoal_uart_transport.c - framed MQTT-SN datagrams over a byte UART (see header).
 */
#include "shoal_uart_transport.h"

#include <string.h>

#include "shoal_hal.h"

static int uart_send(void *ctx, const uint8_t *data, size_t len)
{
    shoal_uart_transport *u = (shoal_uart_transport *)ctx;
    int n = shoal_frame_encode(data, len, u->tx_frame, sizeof(u->tx_frame));
    int i;
    if (n < 0) {
        return -1;
    }
    /* A leading delimiter flushes whatever partial frame the receiver holds. */
    shoal_hal_uart_putc(0x00u);
    for (i = 0; i < n; ++i) {
        shoal_hal_uart_putc(u->tx_frame[i]);
    }
    return 0;
}

static int uart_recv(void *ctx, uint8_t *buf, size_t cap)
{
    shoal_uart_transport *u = (shoal_uart_transport *)ctx;
    size_t budget;
    /* Bounded so a noisy line cannot keep poll() busy forever. */
    for (budget = 0; budget < sizeof(u->rx_frame) + 2u; ++budget) {
        const uint8_t *msg;
        size_t msg_len;
        int byte = shoal_hal_uart_getc();
        if (byte < 0) {
            return 0;
        }
        if (shoal_frame_decoder_push(&u->decoder, (uint8_t)byte, &msg, &msg_len)) {
            if (msg_len > cap) {
                continue; /* larger than the client accepts: drop */
            }
            memcpy(buf, msg, msg_len);
            return (int)msg_len;
        }
    }
    return 0;
}

static uint32_t uart_now_ms(void *ctx)
{
    (void)ctx;
    return shoal_hal_now_ms();
}

void shoal_uart_transport_init(shoal_uart_transport *u, shoal_mqttsn_transport *t)
{
    shoal_frame_decoder_init(&u->decoder, u->rx_frame, sizeof(u->rx_frame),
                             SHOAL_UART_MAX_MESSAGE);
    t->send = uart_send;
    t->broadcast = NULL;
    t->recv = uart_recv;
    t->now_ms = uart_now_ms;
    t->ctx = u;
}
