/*
 * shoal_mcu_vectors.c - the vector table of the real Cortex-M boards (placed at the flash
 * origin by the linker script, section .isr_vector).
 *
 * Responsible for: the 16 Armv6-M/Armv7-M system exception entries (Arm v7-M ARM B1.5.2,
 * v6-M ARM B1.5.2) and SHOAL_MCU_EXTERNAL_IRQS external interrupt entries, the count taken
 * from the family's shoal_mcu_family.h. Every external interrupt enters one dispatcher that
 * reads IPSR and hands the IRQ number to the family's shoal_mcu_irq(); an interrupt nobody
 * serves (and every fault) ends in shoal_fault_handler, which reports it on the console.
 * Must not: hold peripheral knowledge; the family decides what each IRQ number means.
 */
#include <stdint.h>

#include "shoal_mcu.h"
#include "shoal_mcu_family.h"

#if SHOAL_MCU_EXTERNAL_IRQS % 8 != 0
#error "SHOAL_MCU_EXTERNAL_IRQS must be a multiple of 8 (unused entries fault)"
#endif

extern uint32_t _estack[];

/* Provided by the family: serve external interrupt `irq`; return 1 when it was served. */
int shoal_mcu_irq(uint32_t irq);
/* Provided by the family: the SysTick exception. */
void shoal_systick_handler(void);
/* Target of the weak aliases below (an alias must name a function of this file). */
void shoal_default_handler(void);

/* Weak: firmware may serve external interrupts the family does not (reads IPSR itself). */
void shoal_irq_handler(void) __attribute__((weak, alias("shoal_default_handler")));
void shoal_external_irq_handler(void);

void shoal_nmi_handler(void) __attribute__((weak, alias("shoal_default_handler")));
void shoal_hardfault_handler(void) __attribute__((weak, alias("shoal_default_handler")));
void shoal_memmanage_handler(void) __attribute__((weak, alias("shoal_default_handler")));
void shoal_busfault_handler(void) __attribute__((weak, alias("shoal_default_handler")));
void shoal_usagefault_handler(void) __attribute__((weak, alias("shoal_default_handler")));
void shoal_svc_handler(void) __attribute__((weak, alias("shoal_default_handler")));
void shoal_debugmon_handler(void) __attribute__((weak, alias("shoal_default_handler")));
void shoal_pendsv_handler(void) __attribute__((weak, alias("shoal_default_handler")));

typedef union {
    void (*handler)(void);
    void *initial_stack;
} shoal_vector;

#define IRQ_VECTOR {.handler = shoal_external_irq_handler}
#define IRQ_VECTORS_8 IRQ_VECTOR, IRQ_VECTOR, IRQ_VECTOR, IRQ_VECTOR, \
                      IRQ_VECTOR, IRQ_VECTOR, IRQ_VECTOR, IRQ_VECTOR
#if SHOAL_MCU_EXTERNAL_IRQS == 32
#define IRQ_VECTORS IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8
#elif SHOAL_MCU_EXTERNAL_IRQS == 48
#define IRQ_VECTORS IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, \
                    IRQ_VECTORS_8, IRQ_VECTORS_8
#elif SHOAL_MCU_EXTERNAL_IRQS == 104
#define IRQ_VECTORS IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, \
                    IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, \
                    IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8
#else
#error "add a row for this SHOAL_MCU_EXTERNAL_IRQS"
#endif

__attribute__((section(".isr_vector"), used))
const shoal_vector shoal_vector_table[16 + SHOAL_MCU_EXTERNAL_IRQS] = {
    {.initial_stack = _estack},
    {.handler = shoal_reset_handler},
    {.handler = shoal_nmi_handler},
    {.handler = shoal_hardfault_handler},
    {.handler = shoal_memmanage_handler},
    {.handler = shoal_busfault_handler},
    {.handler = shoal_usagefault_handler},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = shoal_svc_handler},
    {.handler = shoal_debugmon_handler},
    {.handler = 0},
    {.handler = shoal_pendsv_handler},
    {.handler = shoal_systick_handler},
    IRQ_VECTORS,
};

void shoal_external_irq_handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    if (!shoal_mcu_irq(ipsr - 16u)) {
        shoal_irq_handler();
    }
}

void shoal_default_handler(void)
{
    shoal_fault_handler();
}
