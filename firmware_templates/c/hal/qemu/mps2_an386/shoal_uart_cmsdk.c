/*
 * shoal_uart_cmsdk.c - CMSDK APB UART0 of the MPS2 AN386 for shoal_hal.h.
 *
 * Responsible for: shoal_hal_uart_putc (polled) and shoal_hal_uart_getc (from a ring filled
 * by the UART0 receive interrupt, IRQ 0 on QEMU's AN385/AN386). The CMSDK UART holds one
 * received byte (no FIFO), and QEMU drops transmitted bytes while BAUDDIV is below 16, so
 * init programs a real divider before enabling TX. Must not: block in the interrupt handler.
 *
 * Known QEMU behaviour: after the firmware reads a byte, QEMU only offers the next one when its
 * main loop runs again (a timer, or any QMP command). The 1 ms SysTick keeps that latency
 * bounded; host_sdk.hil.qemu sends QMP commands while it writes to remove it.
 */
#include <stdint.h>

#include "shoal_hal.h"
#include "shoal_qemu.h"
#include "shoal_uart_ring.h"

#ifndef SHOAL_QEMU_UART_BASE
#define SHOAL_QEMU_UART_BASE 0x40004000u
#endif
#define UART0_RX_IRQ 0u

#define UART_REG(offset) (*(volatile uint32_t *)(SHOAL_QEMU_UART_BASE + (offset)))
#define UART_DATA UART_REG(0x000u)
#define UART_STATE UART_REG(0x004u)
#define UART_CTRL UART_REG(0x008u)
#define UART_INTSTATUS UART_REG(0x00Cu)
#define UART_BAUDDIV UART_REG(0x010u)

#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)
#define UART_CTRL_RX_INTEN (1u << 3)
#define UART_INTSTATUS_RX (1u << 1)

static shoal_uart_ring rx_ring;

void shoal_qemu_uart_init(void)
{
    UART_CTRL = 0u;
    /* 115200 baud from the 25 MHz APB clock. */
    UART_BAUDDIV = 25000000u / 115200u;
    UART_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_RX_INTEN;
    SHOAL_QEMU_NVIC_ISER0 = 1u << UART0_RX_IRQ;
}

int shoal_qemu_uart_irq(uint32_t irq)
{
    if (irq != UART0_RX_IRQ) {
        return 0;
    }
    /* The RX interrupt status is write-one-to-clear; clear it before reading so a byte that
     * arrives meanwhile raises it again instead of being missed. */
    UART_INTSTATUS = UART_INTSTATUS_RX;
    while ((UART_STATE & UART_STATE_RXFULL) != 0u) {
        shoal_uart_ring_push(&rx_ring, (uint8_t)(UART_DATA & 0xFFu));
    }
    return 1;
}

void shoal_hal_uart_putc(uint8_t byte)
{
    while ((UART_STATE & UART_STATE_TXFULL) != 0u) {
    }
    UART_DATA = byte;
}

int shoal_hal_uart_getc(void)
{
    return shoal_uart_ring_pop(&rx_ring);
}
