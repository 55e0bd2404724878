/*
 * shoal_mcu.h - what the bare-metal platform layers of the real Cortex-M boards share.
 *
 * Responsible for: the seams between mcu_common/ (reset handler, newlib syscalls, exit, fault
 * report, receive ring) and a family folder (hal/stm32f4, hal/nrf52840, hal/rp2040: clocks,
 * vector table, the link and console UARTs, the millisecond clock). Must not: be included by
 * application code; applications include shoal_hal.h only.
 *
 * Two UARTs on every real board:
 *   - the link UART carries shoal_hal_uart_putc/getc/write (MQTT-SN frames through
 *     shoal_uart_transport.c to the gateway's serial link). Its receive side is interrupt-fed
 *     into a ring of SHOAL_MCU_UART_RX_BYTES.
 *   - the second UART (transmit only) is the console when built with
 *     -DSHOAL_HAL_CONSOLE_UART=1: shoal_hal_console_write, stdout/stderr (printf through
 *     newlib's _write) and the exit/fault reports then never mix with the frames on the link.
 *     With the default SHOAL_HAL_CONSOLE_UART=0 (shoal_hal.h "Console vs link") the console is
 *     the link UART, for one-cable programs such as hal_selftest.c.
 *
 * Baud rates: SHOAL_HAL_LINK_BAUD and SHOAL_HAL_CONSOLE_BAUD (default 115200, 8N1, no flow
 * control).
 */
#ifndef SHOAL_MCU_H
#define SHOAL_MCU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SHOAL_HAL_LINK_BAUD
#define SHOAL_HAL_LINK_BAUD 115200u
#endif
#ifndef SHOAL_HAL_CONSOLE_BAUD
#define SHOAL_HAL_CONSOLE_BAUD 115200u
#endif
#ifndef SHOAL_HAL_CONSOLE_UART
#define SHOAL_HAL_CONSOLE_UART 0
#endif

/* Bytes the link UART's receive ring holds before it drops input (a power of two). */
#ifndef SHOAL_MCU_UART_RX_BYTES
#define SHOAL_MCU_UART_RX_BYTES 512u
#endif

/* Core clock in Hz after shoal_mcu_board_init() (what SysTick and the UART dividers use). */
extern uint32_t shoal_mcu_core_hz;

/*
 * Provided by the family folder, called by the reset handler (mcu_common/shoal_mcu_startup.c)
 * after .data/.bss are set up and before main(): clocks, GPIO pins, both UARTs (so early
 * printf works). shoal_hal_init() then starts the millisecond clock.
 */
void shoal_mcu_board_init(void);

/* Provided by the family folder: send one byte on the second (console) UART, polled. */
void shoal_mcu_console_putc(uint8_t byte);

/* Exception entry points named in each family's vector table. */
void shoal_reset_handler(void);
void shoal_fault_handler(void);

/*
 * Report an unexpected exception or exit on the console, then stop: interrupts off, the core
 * parked in WFI (a debugger can still attach). Real boards have no semihosting, so there is no
 * host to receive an exit status; the status is printed as "shoal: exit <code>".
 */
void shoal_mcu_halt(void) __attribute__((noreturn));

/* Flush newlib's stdio buffers; defined only when mcu_common/shoal_mcu_syscalls.c is linked. */
void shoal_mcu_flush_stdio(void) __attribute__((weak));

/* Armv6-M/Armv7-M System Control Space (Arm v7-M ARM B3.2, v6-M ARM B3.2). */
#define SHOAL_NVIC_ISER(n) (*(volatile uint32_t *)(0xE000E100u + 4u * (n)))
#define SHOAL_NVIC_ICPR(n) (*(volatile uint32_t *)(0xE000E280u + 4u * (n)))
#define SHOAL_SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SHOAL_SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SHOAL_SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SHOAL_SYST_CSR_ENABLE (1u << 0)
#define SHOAL_SYST_CSR_TICKINT (1u << 1)
#define SHOAL_SYST_CSR_CLKSOURCE_CORE (1u << 2)

/* Enable external interrupt `irq` (IRQn >= 0) in the NVIC, clearing a stale pending bit. */
static inline void shoal_mcu_nvic_enable(uint32_t irq)
{
    SHOAL_NVIC_ICPR(irq / 32u) = 1u << (irq % 32u);
    SHOAL_NVIC_ISER(irq / 32u) = 1u << (irq % 32u);
}

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_MCU_H */
