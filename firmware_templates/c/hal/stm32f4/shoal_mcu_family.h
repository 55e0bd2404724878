/*
 * shoal_mcu_family.h - STM32F446 facts the shared Cortex-M code needs.
 *
 * RM0390 (STM32F446xx reference manual) rev 6, table 38 "Vector table": 97 maskable
 * interrupts (IRQ 0..96); the table is rounded up to 104 entries, the extra ones fault.
 */
#ifndef SHOAL_MCU_FAMILY_H
#define SHOAL_MCU_FAMILY_H

#define SHOAL_MCU_EXTERNAL_IRQS 104

#endif /* SHOAL_MCU_FAMILY_H */
