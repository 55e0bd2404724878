/*
 * shoal_uart_cmsdk.c - the MPS2 AN386's CMSDK APB UARTs for shoal_hal.h: UART0 is the link,
 * UART1 the console when built with SHOAL_HAL_CONSOLE_UART=1.
 *
 * Responsible for: one CMSDK UART driver parametrised by base address; shoal_hal_uart_putc
 * (polled) and shoal_hal_uart_getc (from a ring filled by the UART0 receive interrupt, IRQ 0
 * on QEMU's AN385/AN386) on UART0; shoal_qemu_console_putc (polled, transmit only) on UART1.
 * The CMSDK UART holds one received byte (no FIFO), and QEMU drops transmitted bytes while
 * BAUDDIV is below 16, so init programs a real divider before enabling TX. Must not: block in
 * the interrupt handler.
 *
 * Known QEMU behaviour: after the firmware reads a byte, QEMU only offers the next one when its
 * main loop runs again (a timer, or any QMP command). The 1 ms SysTick keeps that latency
 * bounded; host_sdk.hil.qemu sends QMP commands while it writes to remove it.
 */
#include <stdint.h>

#include "shoal_hal.h"
#include "shoal_qemu.h"
#include "shoal_qemu_board.h"
#include "shoal_uart_ring.h"

#ifndef SHOAL_QEMU_UART_BASE
#define SHOAL_QEMU_UART_BASE 0x40004000u
#endif
#define UART0_RX_IRQ 0u

#define UART_REG(base, offset) (*(volatile uint32_t *)((base) + (offset)))
#define UART_DATA(base) UART_REG(base, 0x000u)
#define UART_STATE(base) UART_REG(base, 0x004u)
#define UART_CTRL(base) UART_REG(base, 0x008u)
#define UART_INTSTATUS(base) UART_REG(base, 0x00Cu)
#define UART_BAUDDIV(base) UART_REG(base, 0x010u)

#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)
#define UART_CTRL_RX_INTEN (1u << 3)
#define UART_INTSTATUS_RX (1u << 1)

static shoal_uart_ring rx_ring;

static void cmsdk_init(uint32_t base, uint32_t control)
{
    UART_CTRL(base) = 0u;
    /* 115200 baud from the 25 MHz APB clock. */
    UART_BAUDDIV(base) = 25000000u / 115200u;
    UART_CTRL(base) = control;
}

static void cmsdk_putc(uint32_t base, uint8_t byte)
{
    while ((UART_STATE(base) & UART_STATE_TXFULL) != 0u) {
    }
    UART_DATA(base) = byte;
}

void shoal_qemu_uart_init(void)
{
    cmsdk_init(SHOAL_QEMU_UART_BASE, UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_RX_INTEN);
    SHOAL_QEMU_NVIC_ISER0 = 1u << UART0_RX_IRQ;
#if SHOAL_HAL_CONSOLE_UART == 1
    cmsdk_init(SHOAL_QEMU_CONSOLE_UART_BASE, UART_CTRL_TX_EN);
#endif
}

int shoal_qemu_uart_irq(uint32_t irq)
{
    if (irq != UART0_RX_IRQ) {
        return 0;
    }
    /* The RX interrupt status is write-one-to-clear; clear it before reading so a byte that
     * arrives meanwhile raises it again instead of being missed. */
    UART_INTSTATUS(SHOAL_QEMU_UART_BASE) = UART_INTSTATUS_RX;
    while ((UART_STATE(SHOAL_QEMU_UART_BASE) & UART_STATE_RXFULL) != 0u) {
        shoal_uart_ring_push(&rx_ring, (uint8_t)(UART_DATA(SHOAL_QEMU_UART_BASE) & 0xFFu));
    }
    return 1;
}

void shoal_hal_uart_putc(uint8_t byte)
{
    cmsdk_putc(SHOAL_QEMU_UART_BASE, byte);
}

int shoal_hal_uart_getc(void)
{
    return shoal_uart_ring_pop(&rx_ring);
}

int shoal_hal_uart_rx_ready(void)
{
    return shoal_uart_ring_ready(&rx_ring);
}

void shoal_qemu_console_putc(uint8_t byte)
{
#if SHOAL_HAL_CONSOLE_UART == 1
    cmsdk_putc(SHOAL_QEMU_CONSOLE_UART_BASE, byte);
#else
    cmsdk_putc(SHOAL_QEMU_UART_BASE, byte);
#endif
}
