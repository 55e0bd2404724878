/*
 * shoal_uart_transport.h - MQTT-SN over a UART using the shoal_frame serial framing.
 *
 * Responsible for: turning the byte-level UART functions a board provides into the datagram
 * transport the client expects (one frame per message, noise and partial frames dropped).
 * Must not: touch UART registers itself; it calls shoal_hal_uart_putc, shoal_hal_uart_getc
 * and shoal_hal_now_ms from the platform layer (shoal_hal.h, e.g. hal/qemu/<machine>/).
 *
 * Buffer ownership: all buffers live inside shoal_uart_transport (caller-allocated, must outlive
 * the client).
 */
#ifndef SHOAL_UART_TRANSPORT_H
#define SHOAL_UART_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "shoal_frame.h"
#include "shoal_mqttsn_client.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SHOAL_UART_MAX_MESSAGE
#define SHOAL_UART_MAX_MESSAGE SHOAL_MQTTSN_MAX_PACKET /* bytes per MQTT-SN message */
#endif

typedef struct {
    shoal_frame_decoder decoder;
    uint8_t rx_frame[SHOAL_FRAME_BUFFER_BYTES(SHOAL_UART_MAX_MESSAGE)];
    uint8_t tx_frame[SHOAL_FRAME_ENCODED_MAX(SHOAL_UART_MAX_MESSAGE) + 1u];
} shoal_uart_transport;

/* Reset the framing state and fill *t (send, recv, now_ms; no broadcast). */
void shoal_uart_transport_init(shoal_uart_transport *u, shoal_mqttsn_transport *t);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_UART_TRANSPORT_H */
