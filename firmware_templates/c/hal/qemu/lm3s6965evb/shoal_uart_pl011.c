/*
 * shoal_uart_pl011.c - the LM3S6965's PL011 UARTs for shoal_hal.h: UART0 is the link, UART1
 * the console when built with SHOAL_HAL_CONSOLE_UART=1.
 *
 * Responsible for: one PL011 driver parametrised by base address; shoal_hal_uart_putc (polled)
 * and shoal_hal_uart_getc (from a ring filled by the UART0 receive interrupt, IRQ 5) on UART0,
 * 8N1, FIFOs off; shoal_qemu_console_putc (polled, transmit only) on UART1. The interrupt also
 * wakes a core idling in WFI, so a byte is handled as soon as it arrives rather than at the
 * next SysTick. Why FIFOs off: turning the FIFO on flushes it (in QEMU as on silicon), which
 * would drop a byte the host sent between QEMU starting and this init running; with the FIFO
 * off that byte waits in the holding register and raises the interrupt once it is enabled.
 * QEMU ignores the baud rate, the clock gate and pin muxing; they are set anyway so the code
 * reads like what real silicon needs. Must not: block in the interrupt handler.
 */
#include <stdint.h>

#include "shoal_hal.h"
#include "shoal_qemu.h"
#include "shoal_qemu_board.h"
#include "shoal_uart_ring.h"

#ifndef SHOAL_QEMU_UART_BASE
#define SHOAL_QEMU_UART_BASE 0x4000C000u
#endif
#define UART0_IRQ 5u

#define UART_REG(base, offset) (*(volatile uint32_t *)((base) + (offset)))
#define UART_DR(base) UART_REG(base, 0x000u)
#define UART_FR(base) UART_REG(base, 0x018u)
#define UART_IBRD(base) UART_REG(base, 0x024u)
#define UART_FBRD(base) UART_REG(base, 0x028u)
#define UART_LCRH(base) UART_REG(base, 0x02Cu)
#define UART_CR(base) UART_REG(base, 0x030u)
#define UART_IMSC(base) UART_REG(base, 0x038u)

#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
#define UART_LCRH_WLEN_8 (3u << 5)
#define UART_CR_UARTEN (1u << 0)
#define UART_CR_TXE (1u << 8)
#define UART_CR_RXE (1u << 9)
#define UART_IMSC_RXIM (1u << 4)

/* System control RCGC1: bit n gates UARTn's clock. */
#define SYSCTL_RCGC1 (*(volatile uint32_t *)0x400FE104u)

static shoal_uart_ring rx_ring;

static void pl011_init(uint32_t base, uint32_t control, uint32_t interrupts)
{
    UART_CR(base) = 0u;
    /* 115200 baud from a 50 MHz clock: 50e6 / (16 * 115200) = 27 + 8/64. */
    UART_IBRD(base) = 27u;
    UART_FBRD(base) = 8u;
    UART_LCRH(base) = UART_LCRH_WLEN_8;
    UART_CR(base) = control;
    UART_IMSC(base) = interrupts;
}

static void pl011_putc(uint32_t base, uint8_t byte)
{
    while ((UART_FR(base) & UART_FR_TXFF) != 0u) {
    }
    UART_DR(base) = byte;
}

void shoal_qemu_uart_init(void)
{
    SYSCTL_RCGC1 |= 1u;
    pl011_init(SHOAL_QEMU_UART_BASE, UART_CR_UARTEN | UART_CR_TXE | UART_CR_RXE, UART_IMSC_RXIM);
    SHOAL_QEMU_NVIC_ISER0 = 1u << UART0_IRQ;
#if SHOAL_HAL_CONSOLE_UART == 1
    SYSCTL_RCGC1 |= 2u;
    pl011_init(SHOAL_QEMU_CONSOLE_UART_BASE, UART_CR_UARTEN | UART_CR_TXE, 0u);
#endif
}

int shoal_qemu_uart_irq(uint32_t irq)
{
    if (irq != UART0_IRQ) {
        return 0;
    }
    /* Reading DR clears the receive interrupt; bits 8..11 are error flags, not data. */
    while ((UART_FR(SHOAL_QEMU_UART_BASE) & UART_FR_RXFE) == 0u) {
        shoal_uart_ring_push(&rx_ring, (uint8_t)(UART_DR(SHOAL_QEMU_UART_BASE) & 0xFFu));
    }
    return 1;
}

void shoal_hal_uart_putc(uint8_t byte)
{
    pl011_putc(SHOAL_QEMU_UART_BASE, byte);
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
    pl011_putc(SHOAL_QEMU_CONSOLE_UART_BASE, byte);
#else
    pl011_putc(SHOAL_QEMU_UART_BASE, byte);
#endif
}
