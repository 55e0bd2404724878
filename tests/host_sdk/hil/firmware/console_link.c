/*
 * console_link.c - test firmware for the QEMU HAL's two-UART mode (SHOAL_HAL_CONSOLE_UART=1)
 * and its system reset.
 *
 * Console (UART1, printf): "boot N" at start, N counted in .noinit RAM (1 after power-on, +1
 * per reset), then one "got X" line per link byte. Link (UART0): every byte received is sent
 * back upper-cased; 'r' resets the system (shoal_hal_reset), 'x' exits with status 0.
 */
#include <stdint.h>
#include <stdio.h>

#include "shoal_hal.h"

#define BOOT_MAGIC 0xB007C0DEu

static struct {
    uint32_t magic;
    uint32_t boots;
} s_record __attribute__((section(".noinit")));

int main(void)
{
    shoal_hal_init();
    if (s_record.magic != BOOT_MAGIC) {
        s_record.magic = BOOT_MAGIC;
        s_record.boots = 0u;
    }
    s_record.boots++;
    printf("boot %lu\n", (unsigned long)s_record.boots);
    for (;;) {
        int byte;
        while (!shoal_hal_uart_rx_ready()) {
            shoal_hal_idle();
        }
        byte = shoal_hal_uart_getc();
        if (byte < 0) {
            continue;
        }
        printf("got %c\n", (char)byte);
        if (byte == 'r') {
            shoal_hal_reset();
        }
        if (byte == 'x') {
            return 0;
        }
        shoal_hal_uart_putc((uint8_t)(byte >= 'a' && byte <= 'z' ? byte - 32 : byte));
    }
}
