/*
 * shoal_mcu_ring.h - the link UART's receive ring on the real Cortex-M boards.
 *
 * Responsible for: a single-producer (the UART receive interrupt) single-consumer
 * (shoal_hal_uart_getc in thread mode) byte queue of SHOAL_MCU_UART_RX_BYTES. No lock is needed:
 * each index is written by one side only and aligned 32-bit stores are single-copy atomic on
 * Armv6-M and Armv7-M. Must not: be used from two consumers or two producers.
 */
#ifndef SHOAL_MCU_RING_H
#define SHOAL_MCU_RING_H

#include <stdint.h>

#include "shoal_mcu.h"

#if (SHOAL_MCU_UART_RX_BYTES & (SHOAL_MCU_UART_RX_BYTES - 1u)) != 0u
#error "SHOAL_MCU_UART_RX_BYTES must be a power of two"
#endif

typedef struct {
    uint8_t bytes[SHOAL_MCU_UART_RX_BYTES];
    volatile uint32_t head;    /* next slot the interrupt fills */
    volatile uint32_t tail;    /* next slot the reader takes */
    volatile uint32_t dropped; /* bytes lost to a full ring or a receiver overrun */
} shoal_mcu_ring;

static inline void shoal_mcu_ring_push(shoal_mcu_ring *ring, uint8_t byte)
{
    uint32_t head = ring->head;
    if ((uint32_t)(head - ring->tail) >= SHOAL_MCU_UART_RX_BYTES) {
        ring->dropped = ring->dropped + 1u;
        return;
    }
    ring->bytes[head & (SHOAL_MCU_UART_RX_BYTES - 1u)] = byte;
    ring->head = head + 1u;
}

static inline int shoal_mcu_ring_pop(shoal_mcu_ring *ring)
{
    uint32_t tail = ring->tail;
    int byte;
    if (tail == ring->head) {
        return -1;
    }
    byte = ring->bytes[tail & (SHOAL_MCU_UART_RX_BYTES - 1u)];
    ring->tail = tail + 1u;
    return byte;
}

#endif /* SHOAL_MCU_RING_H */
