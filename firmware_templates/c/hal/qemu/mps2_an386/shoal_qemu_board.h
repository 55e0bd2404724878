/*
 * shoal_qemu_board.h - facts about QEMU's mps2-an386 that the common QEMU code needs.
 */
#ifndef SHOAL_QEMU_BOARD_H
#define SHOAL_QEMU_BOARD_H

/* Core clock as QEMU models it: the AN386 FPGA system clock, 25 MHz (also the APB clock). */
#define SHOAL_QEMU_CORE_HZ 25000000u

/* The second CMSDK APB UART (UART1), QEMU's second -serial: the console with
 * SHOAL_HAL_CONSOLE_UART=1. QEMU's mps2 AN385/AN386: UARTs at 0x40004000, 0x40005000, ... */
#define SHOAL_QEMU_CONSOLE_UART_BASE 0x40005000u

#endif /* SHOAL_QEMU_BOARD_H */
