/*
 * shoal_uart_ring.h - the receive ring shared by the QEMU UART drivers.
 *
 * Responsible for: a single-producer (UART interrupt) single-consumer (shoal_hal_uart_getc in
 * thread mode) byte queue. Safe without locks because each index is written by one side only
 * and 32-bit aligned accesses are atomic on Cortex-M. Must not: be used from two consumers.
 */
#ifndef SHOAL_UART_RING_H
#define SHOAL_UART_RING_H

#include <stdint.h>

#include "shoal_qemu.h"

typedef struct {
    uint8_t bytes[SHOAL_QEMU_UART_RX_BYTES];
    volatile uint32_t head;    /* written by the interrupt */
    volatile uint32_t tail;    /* written by the reader */
    volatile uint32_t dropped; /* bytes lost because the ring was full */
} shoal_uart_ring;

static inline void shoal_uart_ring_push(shoal_uart_ring *ring, uint8_t byte)
{
    uint32_t head = ring->head;
    if (head - ring->tail >= SHOAL_QEMU_UART_RX_BYTES) {
        ring->dropped = ring->dropped + 1u;
        return;
    }
    ring->bytes[head % SHOAL_QEMU_UART_RX_BYTES] = byte;
    ring->head = head + 1u;
}

static inline int shoal_uart_ring_ready(const shoal_uart_ring *ring)
{
    return ring->tail != ring->head;
}

static inline int shoal_uart_ring_pop(shoal_uart_ring *ring)
{
    uint32_t tail = ring->tail;
    int byte;
    if (tail == ring->head) {
        return -1;
    }
    byte = ring->bytes[tail % SHOAL_QEMU_UART_RX_BYTES];
    ring->tail = tail + 1u;
    return byte;
}

#endif /* SHOAL_UART_RING_H */
