/*
 * shoal_qemu_board.h - facts about QEMU's mps2-an386 that the common QEMU code needs.
 */
#ifndef SHOAL_QEMU_BOARD_H
#define SHOAL_QEMU_BOARD_H

/* Core clock as QEMU models it: the AN386 FPGA system clock, 25 MHz (also the APB clock). */
#define SHOAL_QEMU_CORE_HZ 25000000u

#endif /* SHOAL_QEMU_BOARD_H */
