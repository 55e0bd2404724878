/*
 * shoal_mcu_startup.c - the reset handler shared by the real Cortex-M boards.
 *
 * Responsible for: what runs before main() once the core has loaded the stack pointer and the
 * reset vector from the family's vector table: enable the FPU when built for hardware float
 * (CPACR, Armv7-M ARM B3.2.20), copy .data from flash, zero .bss, run static constructors,
 * call the family's shoal_mcu_board_init() (clocks, pins, UARTs), call main() and pass its
 * return value to shoal_hal_exit(). Must not: know a particular MCU; the vector table and
 * every peripheral address live in the family folder, memory addresses in its linker script.
 */
#include <stdint.h>
#include <string.h>

#include "shoal_hal.h"
#include "shoal_mcu.h"

/* Symbols from hal/qemu/common/shoal_sections.ld (shared output sections). */
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];
extern void (*__preinit_array_start[])(void);
extern void (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);

static void enable_fpu(void)
{
#if defined(__ARM_FP)
    /* CPACR (0xE000ED88): CP10 and CP11 full access (bits 20..23), before any float code. */
    volatile uint32_t *const cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
}

void shoal_reset_handler(void)
{
    void (**ctor)(void);

    enable_fpu();
    memcpy(_sdata, _sidata, (size_t)((uintptr_t)_edata - (uintptr_t)_sdata));
    memset(_sbss, 0, (size_t)((uintptr_t)_ebss - (uintptr_t)_sbss));
    for (ctor = __preinit_array_start; ctor < __preinit_array_end; ++ctor) {
        (*ctor)();
    }
    for (ctor = __init_array_start; ctor < __init_array_end; ++ctor) {
        (*ctor)();
    }
    shoal_mcu_board_init();
    shoal_hal_exit(main());
}
