/*
 * shoal_startup.c - vector table and reset handler for the QEMU Cortex-M boards.
 *
 * Responsible for: what runs before main(): enable the FPU when built for hard/soft-fp float,
 * copy .data from flash, zero .bss, run static constructors, bring the UART up, call main()
 * and pass its return value to shoal_hal_exit(). Unexpected exceptions print a line on the
 * UART and exit with SHOAL_QEMU_EXIT_FAULT so a crashed test fails fast instead of hanging.
 * Must not: configure clocks or timers (shoal_hal_init() does) or assume a particular board;
 * memory addresses come from the board's linker script.
 */
#include <stdint.h>
#include <string.h>

#include "shoal_hal.h"
#include "shoal_qemu.h"

/* Number of external interrupt vectors; both emulated boards use fewer, unused ones fault. */
#define SHOAL_QEMU_EXTERNAL_IRQS 48

/* Symbols from common/shoal_sections.ld. */
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
extern void (*__preinit_array_start[])(void);
extern void (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);

void shoal_nmi_handler(void) __attribute__((weak, alias("shoal_fault_handler")));
void shoal_hardfault_handler(void) __attribute__((weak, alias("shoal_fault_handler")));
void shoal_memmanage_handler(void) __attribute__((weak, alias("shoal_fault_handler")));
void shoal_busfault_handler(void) __attribute__((weak, alias("shoal_fault_handler")));
void shoal_usagefault_handler(void) __attribute__((weak, alias("shoal_fault_handler")));
void shoal_svc_handler(void) __attribute__((weak, alias("shoal_fault_handler")));
void shoal_debugmon_handler(void) __attribute__((weak, alias("shoal_fault_handler")));
void shoal_pendsv_handler(void) __attribute__((weak, alias("shoal_fault_handler")));
void shoal_irq_handler(void) __attribute__((weak, alias("shoal_fault_handler")));

typedef union {
    void (*handler)(void);
    void *initial_stack;
} shoal_vector;

#define IRQ_VECTOR {.handler = shoal_external_irq_handler}
#define IRQ_VECTORS_8 IRQ_VECTOR, IRQ_VECTOR, IRQ_VECTOR, IRQ_VECTOR, \
                      IRQ_VECTOR, IRQ_VECTOR, IRQ_VECTOR, IRQ_VECTOR

__attribute__((section(".isr_vector"), used))
const shoal_vector shoal_vector_table[16 + SHOAL_QEMU_EXTERNAL_IRQS] = {
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
    IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8, IRQ_VECTORS_8,
};

static void enable_fpu(void)
{
#if defined(__ARM_FP)
    /* CPACR: full access to coprocessors 10 and 11 (the FPU), before any float instruction. */
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
    shoal_qemu_uart_init();
    shoal_hal_exit(main());
}

void shoal_external_irq_handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    if (!shoal_qemu_uart_irq(ipsr - 16u)) {
        shoal_irq_handler();
    }
}

static void put_text(const char *text)
{
    while (*text != '\0') {
        shoal_qemu_console_putc((uint8_t)*text++);
    }
}

void shoal_fault_handler(void)
{
    static const char hex[] = "0123456789abcdef";
    char digits[9];
    uint32_t ipsr;
    int i;

    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    for (i = 7; i >= 0; --i) {
        digits[i] = hex[ipsr & 0xFu];
        ipsr >>= 4;
    }
    digits[8] = '\0';
    put_text("\nshoal: unexpected exception, IPSR=0x");
    put_text(digits);
    put_text("\n");
    shoal_qemu_semihost_exit(SHOAL_QEMU_EXIT_FAULT);
}
