/*
 * shoal_mcu_common.c - the parts of shoal_hal.h that are the same on every real Cortex-M board.
 *
 * Responsible for: shoal_hal_uart_write (bytes through the family's shoal_hal_uart_putc),
 * shoal_hal_console_write (the second UART with SHOAL_HAL_CONSOLE_UART=1, else the link UART),
 * shoal_hal_idle (WFI), shoal_hal_reset (SCB AIRCR SYSRESETREQ, Armv7-M ARM B3.2.6 / Armv6-M
 * ARM B3.2.6), shoal_hal_exit and the unexpected-exception report (both printed on the
 * console, then the core is parked). Must not: touch peripherals other than the core's own
 * registers; UARTs and clocks belong to the family folder.
 *
 * Exit on a real board: there is no host to take a status (no semihosting: a BKPT without a
 * debugger attached would lock the core up), so shoal_hal_exit flushes stdout, prints
 * "shoal: exit <code>" on the console and parks the core with interrupts off. Unexpected
 * exceptions print "shoal: unexpected exception, IPSR=0x..." the same way.
 */
#include <stdint.h>

#include "shoal_hal.h"
#include "shoal_mcu.h"

void shoal_hal_uart_write(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; ++i) {
        shoal_hal_uart_putc(data[i]);
    }
}

static void console_putc(uint8_t byte)
{
#if SHOAL_HAL_CONSOLE_UART == 1
    shoal_mcu_console_putc(byte);
#else
    shoal_hal_uart_putc(byte);
#endif
}

void shoal_hal_console_write(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; ++i) {
        console_putc(data[i]);
    }
}

#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define SCB_AIRCR_VECTKEY (0x05FAu << 16)
#define SCB_AIRCR_PRIGROUP_MASK (7u << 8) /* kept as it is (reads as 0 on Armv6-M) */
#define SCB_AIRCR_SYSRESETREQ (1u << 2)

void shoal_hal_reset(void)
{
    if (shoal_mcu_flush_stdio) {
        shoal_mcu_flush_stdio();
    }
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = SCB_AIRCR_VECTKEY | (SCB_AIRCR & SCB_AIRCR_PRIGROUP_MASK) | SCB_AIRCR_SYSRESETREQ;
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void shoal_hal_idle(void)
{
    __asm__ volatile("wfi" ::: "memory");
}

static void put_text(const char *text)
{
    while (*text != '\0') {
        console_putc((uint8_t)*text++);
    }
}

static void put_hex(uint32_t value)
{
    static const char hex[] = "0123456789abcdef";
    char digits[9];
    int i;
    for (i = 7; i >= 0; --i) {
        digits[i] = hex[value & 0xFu];
        value >>= 4;
    }
    digits[8] = '\0';
    put_text(digits);
}

void shoal_mcu_halt(void)
{
    __asm__ volatile("cpsid i" ::: "memory");
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void shoal_hal_exit(int code)
{
    char digits[12];
    uint32_t magnitude = code < 0 ? 0u - (uint32_t)code : (uint32_t)code;
    int at = (int)sizeof(digits) - 1;

    if (shoal_mcu_flush_stdio) {
        shoal_mcu_flush_stdio();
    }
    digits[at] = '\0';
    do {
        digits[--at] = (char)('0' + magnitude % 10u);
        magnitude /= 10u;
    } while (magnitude != 0u && at > 1);
    if (code < 0) {
        digits[--at] = '-';
    }
    put_text("\nshoal: exit ");
    put_text(&digits[at]);
    put_text("\n");
    shoal_mcu_halt();
}

void shoal_fault_handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    put_text("\nshoal: unexpected exception, IPSR=0x");
    put_hex(ipsr);
    put_text("\n");
    shoal_mcu_halt();
}
