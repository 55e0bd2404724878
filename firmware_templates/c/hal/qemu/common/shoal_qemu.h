/*
 * shoal_qemu.h - what the QEMU Cortex-M platform files share among themselves.
 *
 * Responsible for: the seams between common/ (startup, clock, semihosting, syscalls) and the
 * per-board folder (UART driver, linker script). Must not: be included by application code;
 * applications include shoal_hal.h only.
 */
#ifndef SHOAL_QEMU_H
#define SHOAL_QEMU_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit status used when the core takes an unexpected exception (HardFault, stray IRQ, ...). */
#define SHOAL_QEMU_EXIT_FAULT 125

/* Exception handlers named in the vector table (shoal_startup.c). The fault handlers and
 * shoal_irq_handler are weak: firmware may define shoal_irq_handler to serve external
 * interrupts other than the UART's (it reads IPSR to tell them apart). */
void shoal_reset_handler(void);
void shoal_systick_handler(void);
void shoal_fault_handler(void);
void shoal_external_irq_handler(void);
void shoal_irq_handler(void);

/* Provided by the board's UART driver; called by the reset handler before main(). */
void shoal_qemu_uart_init(void);

/*
 * Provided by the board's UART driver: called for every external interrupt with its number
 * (IPSR - 16); returns 1 when it was the UART's and has been served, else 0.
 */
int shoal_qemu_uart_irq(uint32_t irq);

/* Console UART: 0 = the link UART (UART0, the default), 1 = UART1 (QEMU's second -serial). */
#ifndef SHOAL_HAL_CONSOLE_UART
#define SHOAL_HAL_CONSOLE_UART 0
#endif

/* Provided by the board's UART driver: one console byte (polled) on the console UART. */
void shoal_qemu_console_putc(uint8_t byte);

/* Bytes the UART receive ring holds before it drops input (a power of two). */
#ifndef SHOAL_QEMU_UART_RX_BYTES
#define SHOAL_QEMU_UART_RX_BYTES 256u
#endif

/* NVIC interrupt set-enable register for IRQs 0..31. */
#define SHOAL_QEMU_NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

/* Semihosting (Arm "bkpt 0xAB" convention): op in r0, argument block pointer in r1. */
int shoal_qemu_semihost_call(uint32_t op, const void *arg);

/* Ask the host to end emulation with this status (SYS_EXIT_EXTENDED). Does not return. */
void shoal_qemu_semihost_exit(int code) __attribute__((noreturn));

/*
 * Flush newlib's stdio buffers; defined only when the stdio retarget (shoal_syscalls.c) is
 * linked in, so firmware that never prints does not pay for stdio. Weak reference.
 */
void shoal_qemu_flush_stdio(void) __attribute__((weak));

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_QEMU_H */
