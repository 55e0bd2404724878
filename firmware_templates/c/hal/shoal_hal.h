/*
 * shoal_hal.h - the platform contract every Shoal firmware is written against.
 *
 * Responsible for: naming the handful of functions a platform (hal/qemu/<board>/, hal/posix/,
 * a real MCU family) must provide so the MQTT-SN client, the model runtime and the apps never
 * touch registers or OS calls themselves. Must not: grow board-specific knobs; a platform that
 * needs configuration takes it from its own header or compile-time defines.
 *
 * Call order:
 *   1. The platform's startup code runs first (on QEMU: copy .data, zero .bss, enable the FPU
 *      when built for hard float, bring the UART up so early printf works).
 *   2. main() calls shoal_hal_init() once, before any other shoal_hal_* function.
 *   3. Everything else may be called from thread (main loop) context in any order.
 *      None of these functions is safe to call from an interrupt handler unless stated.
 *
 * Ownership: shoal_hal_uart_write() reads `data` only during the call; the HAL keeps no
 * pointer to caller memory. The HAL owns the UART and the system timer (SysTick on Cortex-M):
 * firmware must not reprogram them.
 *
 * stdio: on platforms with newlib (QEMU boards), printf/puts/putchar go to the console
 * (shoal_hal_console_write) through the `_write` syscall, line-buffered; shoal_hal_exit() and
 * shoal_hal_reset() flush stdout first.
 *
 * Console vs link: the "UART" functions below are the link (MQTT-SN frames to a gateway, or a
 * test's stdin/stdout). The console is where humans and tests read log lines. By default it
 * is the same UART; a board with a second UART routes the console there when built with
 * -DSHOAL_HAL_CONSOLE_UART=1 (QEMU boards: UART1, QEMU's second -serial), as real boards
 * keep a debug console apart from the link.
 */
#ifndef SHOAL_HAL_H
#define SHOAL_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start the millisecond clock and anything else the platform needs. Call once, first. */
void shoal_hal_init(void);

/* Send one byte on the console/transport UART; blocks while the transmitter is full. */
void shoal_hal_uart_putc(uint8_t byte);

/* Next received byte (0..255), or -1 at once when none is waiting (never blocks). */
int shoal_hal_uart_getc(void);

/* Send len bytes from data (blocking, in order); same UART as shoal_hal_uart_putc. */
void shoal_hal_uart_write(const uint8_t *data, size_t len);

/* 1 when shoal_hal_uart_getc() would return a byte now, else 0 (never blocks, consumes
 * nothing): lets a firmware sleep in shoal_hal_idle() until input arrives. */
int shoal_hal_uart_rx_ready(void);

/* Write len bytes of console text (blocking, in order): the link UART, or a second UART
 * where the board has one and SHOAL_HAL_CONSOLE_UART=1 (see "Console vs link" above). */
void shoal_hal_console_write(const uint8_t *data, size_t len);

/* Milliseconds since shoal_hal_init(); free-running, wraps after 2^32 ms (~49.7 days). */
uint32_t shoal_hal_now_ms(void);

/*
 * A free-running counter for profiling, in platform ticks (wraps; subtract as uint32_t).
 * QEMU models no DWT CYCCNT (it reads 0), so on QEMU boards this is derived from SysTick:
 * periods of the core clock QEMU models since shoal_hal_init() (SHOAL_QEMU_CORE_HZ in
 * hal/qemu/<board>/shoal_qemu_board.h: 12.5 MHz lm3s6965evb, 25 MHz mps2-an386). Emulated
 * time is not emulated work: use host_sdk.hil.icount to count instructions.
 * Measured on QEMU 7.2 without -icount: the SysTick counter often stands still (the same value
 * for up to ~1 ms) while an expired period waits for QEMU's main loop, so intervals shorter
 * than a few ms can read 0; run QEMU with -icount for per-layer profiles.
 */
uint32_t shoal_hal_cycles(void);

/* Ticks of shoal_hal_cycles() per second (the core clock QEMU models on QEMU boards). */
uint32_t shoal_hal_cycles_hz(void);

/* Sleep until the next interrupt (WFI on Cortex-M): lets an idle emulated board cost no CPU. */
void shoal_hal_idle(void);

/*
 * Stop the firmware with an exit status (0 = success). On QEMU this is a semihosting
 * SYS_EXIT_EXTENDED, so qemu-system-arm exits with `code` (0..255 observed by the host).
 * Does not return.
 */
void shoal_hal_exit(int code) __attribute__((noreturn));

/*
 * Reset the whole system as a reset button would (Cortex-M: SCB->AIRCR SYSRESETREQ), after
 * flushing stdout. RAM outside .data/.bss (a `.noinit` section) keeps its contents, so a
 * firmware can pass facts to the next boot. On QEMU the machine resets and runs the same
 * ELF again; the -serial connections stay open (unless QEMU runs with -no-reboot, which
 * makes it exit instead). Does not return.
 */
void shoal_hal_reset(void) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_HAL_H */
