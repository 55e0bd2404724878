/*
 * shoal_mcu_family.h - RP2040 facts the shared Cortex-M code needs.
 *
 * RP2040 datasheet section 2.3.2 "Interrupts": 26 IRQs (0..25) per core; the table has 32
 * entries (the NVIC's size on Cortex-M0+), the unused ones fault.
 */
#ifndef SHOAL_MCU_FAMILY_H
#define SHOAL_MCU_FAMILY_H

#define SHOAL_MCU_EXTERNAL_IRQS 32

#endif /* SHOAL_MCU_FAMILY_H */
