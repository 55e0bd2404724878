/*
 * shoal_mcu_family.h - nRF52840 facts the shared Cortex-M code needs.
 *
 * nRF52840 Product Specification v1.7, section 6.1.2 "Instantiation" (peripheral ids = IRQ
 * numbers): ids 0..47, so 48 external vectors.
 */
#ifndef SHOAL_MCU_FAMILY_H
#define SHOAL_MCU_FAMILY_H

#define SHOAL_MCU_EXTERNAL_IRQS 48

#endif /* SHOAL_MCU_FAMILY_H */
