/*
 * shoal_hal_qemu.c - the shoal_hal.h contract on QEMU Cortex-M boards (clock, idle, exit).
 *
 * Responsible for: a 1 kHz SysTick interrupt driving shoal_hal_now_ms() and
 * shoal_hal_cycles(), WFI idling, and exit through semihosting. The UART functions come from
 * the board folder; the console goes to the board's shoal_qemu_console_putc. Reset: SCB AIRCR
 * SYSRESETREQ, which QEMU turns into a machine reset (the same ELF boots again, RAM outside
 * what the ELF loads is kept, the -serial connections stay). Must not: touch board
 * peripherals other than the core's SysTick/SCB.
 *
 * Clock source: the core clock (CLKSOURCE=1) at SHOAL_QEMU_CORE_HZ from the board's
 * shoal_qemu_board.h, so shoal_hal_cycles() counts core clock periods (12.5 MHz on
 * lm3s6965evb, 25 MHz on mps2-an386) rather than a coarse reference clock. Without -icount,
 * QEMU's virtual time follows the host's wall clock; with -icount, time advances per emulated
 * instruction and is repeatable.
 */
#include "shoal_hal.h"

#include <stdint.h>

#include "shoal_qemu.h"
#include "shoal_qemu_board.h"

/* SysTick counts down from RELOAD to 0, so a period is RELOAD + 1 core clocks = 1 ms. */
#define SYSTICK_RELOAD (SHOAL_QEMU_CORE_HZ / 1000u - 1u)
#if SYSTICK_RELOAD > 0x00FFFFFFu
#error "SHOAL_QEMU_CORE_HZ too high for a 1 ms SysTick reload (24 bits)"
#endif

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CORE (1u << 2)

static volatile uint32_t shoal_ms_ticks;

void shoal_systick_handler(void)
{
    shoal_ms_ticks = shoal_ms_ticks + 1u;
}

void shoal_hal_init(void)
{
    SYST_CSR = 0u;
    shoal_ms_ticks = 0u;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CORE;
}

uint32_t shoal_hal_now_ms(void)
{
    return shoal_ms_ticks;
}

uint32_t shoal_hal_cycles(void)
{
    uint32_t ms_before;
    uint32_t ms_after;
    uint32_t remaining;

    /* Re-read when a tick lands between the two reads, so ms and the counter agree. */
    do {
        ms_before = shoal_ms_ticks;
        remaining = SYST_CVR;
        ms_after = shoal_ms_ticks;
    } while (ms_before != ms_after);
    return ms_before * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - remaining);
}

void shoal_hal_idle(void)
{
    __asm__ volatile("wfi" ::: "memory");
}

void shoal_hal_uart_write(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; ++i) {
        shoal_hal_uart_putc(data[i]);
    }
}

uint32_t shoal_hal_cycles_hz(void)
{
    return SHOAL_QEMU_CORE_HZ;
}

void shoal_hal_console_write(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; ++i) {
        shoal_qemu_console_putc(data[i]);
    }
}

#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define SCB_AIRCR_VECTKEY (0x05FAu << 16)
#define SCB_AIRCR_PRIGROUP_MASK (7u << 8)
#define SCB_AIRCR_SYSRESETREQ (1u << 2)

void shoal_hal_reset(void)
{
    if (shoal_qemu_flush_stdio) {
        shoal_qemu_flush_stdio();
    }
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = SCB_AIRCR_VECTKEY | (SCB_AIRCR & SCB_AIRCR_PRIGROUP_MASK) | SCB_AIRCR_SYSRESETREQ;
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void shoal_hal_exit(int code)
{
    if (shoal_qemu_flush_stdio) {
        shoal_qemu_flush_stdio();
    }
    shoal_qemu_semihost_exit(code);
}
