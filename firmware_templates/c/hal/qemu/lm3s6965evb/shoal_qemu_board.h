/*
 * shoal_qemu_board.h - facts about QEMU's lm3s6965evb that the common QEMU code needs.
 */
#ifndef SHOAL_QEMU_BOARD_H
#define SHOAL_QEMU_BOARD_H

/*
 * Core clock as QEMU models it: the Stellaris system control block derives it from RCC, whose
 * reset value divides the 200 MHz PLL output by 16 (12.5 MHz). Measured: a 1000 ms SysTick
 * wait takes 1.0 s of host time. QEMU gives this SysTick no reference clock (SYST_CALIB NOREF).
 */
#define SHOAL_QEMU_CORE_HZ 12500000u

/* The second PL011 (UART1), QEMU's second -serial: the console with SHOAL_HAL_CONSOLE_UART=1.
 * QEMU's stellaris machine: UARTs at 0x4000C000, 0x4000D000, 0x4000E000 (IRQ 5, 6, 33). */
#define SHOAL_QEMU_CONSOLE_UART_BASE 0x4000D000u

#endif /* SHOAL_QEMU_BOARD_H */
