/*
 * shoal_rp2040.c - shoal_hal.h on the RP2040 (Raspberry Pi Pico W), register level, no pico-sdk.
 *
 * Responsible for: resets and clock bring-up, the link UART (UART0 on GP0 TX / GP1 RX, Pico
 * pins 1 and 2), the console UART (UART1 on GP4 TX / GP5 RX, Pico pins 6 and 7; transmit
 * only), the millisecond clock from the 1 MHz TIMER, and a core-cycle counter from SysTick.
 * Runs on core 0 only; core 1 stays asleep in the boot ROM. The CYW43439 Wi-Fi chip is not
 * driven (no UDP transport from this HAL). Must not: block in an interrupt handler.
 *
 * Boot: the boot ROM loads and CRC-checks the 256-byte second stage at 0x10000000
 * (hal/rp2040/boot2/shoal_boot2.S, image and CRC made by boot2/shoal_boot2.py), which sets the
 * flash interface up for execute-in-place and enters the vector table at 0x10000100.
 *
 * Clock (datasheet 2.15, 2.16, 2.18): the 12 MHz crystal (XOSC) drives clk_ref; PLL_SYS with
 * REFDIV 1, FBDIV 133 (VCO 1596 MHz, within 750..1600), POSTDIV1 6, POSTDIV2 2 gives
 * clk_sys = 133 MHz; clk_peri (the UARTs) = clk_sys. The watchdog tick divides clk_ref by 12,
 * so the TIMER counts microseconds. ALARM0 fires every millisecond to wake WFI.
 *
 * Not verified on hardware in this repository (no board attached to CI): it is compile- and
 * link-checked by tests/codegen/test_platformio_projects.py.
 *
 * Register addresses: RP2040 datasheet (build 2023-06) section 2.2 "Address map" for the
 * bases, register lists: RESETS 2.14.3, CLOCKS 2.15.7, XOSC 2.16.7, PLL 2.18.4, IO_BANK0 and
 * PADS_BANK0 2.19.6, WATCHDOG 4.7.6, TIMER 4.6.5, UART (PL011) 4.2.8; atomic set/clear aliases
 * at +0x2000/+0x3000 (2.1.2). SysTick from the Armv6-M ARM B3.3.
 */
#include <stdint.h>

#include "shoal_hal.h"
#include "shoal_mcu.h"
#include "shoal_mcu_ring.h"

#define REG(address) (*(volatile uint32_t *)(address))
#define ALIAS_SET 0x2000u
#define ALIAS_CLR 0x3000u

/* RESETS, base 0x4000C000. */
#define RESETS_BASE 0x4000C000u
#define RESETS_RESET_SET REG(RESETS_BASE + ALIAS_SET + 0x0u)
#define RESETS_RESET_CLR REG(RESETS_BASE + ALIAS_CLR + 0x0u)
#define RESETS_RESET_DONE REG(RESETS_BASE + 0x8u)
#define RESET_IO_BANK0 (1u << 5)
#define RESET_PADS_BANK0 (1u << 8)
#define RESET_PLL_SYS (1u << 12)
#define RESET_TIMER (1u << 21)
#define RESET_UART0 (1u << 22)
#define RESET_UART1 (1u << 23)

/* XOSC, base 0x40024000. */
#define XOSC_BASE 0x40024000u
#define XOSC_CTRL REG(XOSC_BASE + 0x00u)
#define XOSC_STATUS REG(XOSC_BASE + 0x04u)
#define XOSC_STARTUP REG(XOSC_BASE + 0x0Cu)
#define XOSC_CTRL_FREQ_1_15MHZ 0xAA0u
#define XOSC_CTRL_ENABLE (0xFABu << 12)
#define XOSC_STATUS_STABLE (1u << 31)
#define XOSC_HZ 12000000u
/* Start-up delay in units of 256 XOSC cycles: about 1 ms (datasheet 2.16.3). */
#define XOSC_STARTUP_DELAY ((XOSC_HZ / 1000u + 128u) / 256u)

/* CLOCKS, base 0x40008000. */
#define CLOCKS_BASE 0x40008000u
#define CLK_REF_CTRL REG(CLOCKS_BASE + 0x30u)
#define CLK_REF_DIV REG(CLOCKS_BASE + 0x34u)
#define CLK_REF_SELECTED REG(CLOCKS_BASE + 0x38u)
#define CLK_SYS_CTRL REG(CLOCKS_BASE + 0x3Cu)
#define CLK_SYS_DIV REG(CLOCKS_BASE + 0x40u)
#define CLK_SYS_SELECTED REG(CLOCKS_BASE + 0x44u)
#define CLK_PERI_CTRL REG(CLOCKS_BASE + 0x48u)
#define CLK_SYS_RESUS_CTRL REG(CLOCKS_BASE + 0x78u)
#define CLK_REF_SRC_ROSC 0x0u
#define CLK_REF_SRC_XOSC 0x2u
#define CLK_SYS_SRC_AUX 0x1u
#define CLK_SYS_AUXSRC_PLL_SYS (0x0u << 5)
#define CLK_PERI_ENABLE (1u << 11)
#define CLK_PERI_AUXSRC_CLK_SYS (0x0u << 5)
#define CLK_DIV_ONE (1u << 8) /* integer part in bits 31:8 */

/* PLL_SYS, base 0x40028000. */
#define PLL_SYS_BASE 0x40028000u
#define PLL_CS REG(PLL_SYS_BASE + 0x0u)
#define PLL_PWR REG(PLL_SYS_BASE + 0x4u)
#define PLL_FBDIV_INT REG(PLL_SYS_BASE + 0x8u)
#define PLL_PRIM REG(PLL_SYS_BASE + 0xCu)
#define PLL_CS_LOCK (1u << 31)
#define PLL_PWR_PD (1u << 0)
#define PLL_PWR_POSTDIVPD (1u << 3)
#define PLL_PWR_VCOPD (1u << 5)
#define PLL_REFDIV 1u
#define PLL_FBDIV 133u
#define PLL_POSTDIV1 6u
#define PLL_POSTDIV2 2u
#define CLK_SYS_HZ (XOSC_HZ / PLL_REFDIV * PLL_FBDIV / (PLL_POSTDIV1 * PLL_POSTDIV2))

/* WATCHDOG, base 0x40058000: its tick generator clocks the TIMER. */
#define WATCHDOG_TICK REG(0x40058000u + 0x2Cu)
#define WATCHDOG_TICK_ENABLE (1u << 9)
#define ROSC_NOMINAL_MHZ 6u /* datasheet 2.17: the ring oscillator starts at 1.8..12 MHz */

/* TIMER, base 0x40054000; TIMER_IRQ_0 is IRQ 0. */
#define TIMER_BASE 0x40054000u
#define TIMER_ALARM0 REG(TIMER_BASE + 0x10u)
#define TIMER_TIMERAWH REG(TIMER_BASE + 0x24u)
#define TIMER_TIMERAWL REG(TIMER_BASE + 0x28u)
#define TIMER_INTR REG(TIMER_BASE + 0x34u)
#define TIMER_INTE REG(TIMER_BASE + 0x38u)
#define TIMER_IRQ_0 0u

/* IO_BANK0 0x40014000 (GPIOn_CTRL at 0x04 + 8n), PADS_BANK0 0x4001C000 (GPIOn at 0x04 + 4n). */
#define GPIO_CTRL(n) REG(0x40014000u + 0x04u + 8u * (n))
#define PADS_GPIO(n) REG(0x4001C000u + 0x04u + 4u * (n))
#define GPIO_FUNC_UART 2u
/* Pad: input enabled, 4 mA drive, pull-up, Schmitt trigger (bits 6, 5:4, 3, 1). */
#define PAD_INPUT_PULLUP 0x5Au

/* UART0 0x40034000 (IRQ 20), UART1 0x40038000 (IRQ 21): Arm PL011. */
#define UART0_BASE 0x40034000u
#define UART1_BASE 0x40038000u
#define UART0_IRQ 20u
#define UART_DR(base) REG((base) + 0x000u)
#define UART_RSR(base) REG((base) + 0x004u)
#define UART_FR(base) REG((base) + 0x018u)
#define UART_IBRD(base) REG((base) + 0x024u)
#define UART_FBRD(base) REG((base) + 0x028u)
#define UART_LCR_H(base) REG((base) + 0x02Cu)
#define UART_CR(base) REG((base) + 0x030u)
#define UART_IFLS(base) REG((base) + 0x034u)
#define UART_IMSC(base) REG((base) + 0x038u)
#define UART_ICR(base) REG((base) + 0x044u)
#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
#define UART_FR_BUSY (1u << 3)
#define UART_LCR_H_FEN (1u << 4)
#define UART_LCR_H_WLEN8 (0x3u << 5)
#define UART_CR_UARTEN (1u << 0)
#define UART_CR_TXE (1u << 8)
#define UART_CR_RXE (1u << 9)
#define UART_IMSC_RXIM (1u << 4)
#define UART_IMSC_RTIM (1u << 6)
#define UART_DR_ERRORS (0xFu << 8) /* framing, parity, break, overrun */

/* Interrupt control and state register (Armv6-M ARM B3.2.4): SysTick pending bit. */
#define SCB_ICSR REG(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)

#define READY_POLLS 1000000u
#define SYSTICK_PERIOD (1u << 24) /* free-running 24-bit down-counter */

uint32_t shoal_mcu_core_hz = CLK_SYS_HZ;
static shoal_mcu_ring link_rx;
static volatile uint32_t systick_wraps;

static int wait_bits(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    uint32_t polls;
    for (polls = 0; polls < READY_POLLS; ++polls) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

static void unreset(uint32_t blocks)
{
    RESETS_RESET_SET = blocks;
    RESETS_RESET_CLR = blocks;
    (void)wait_bits(&RESETS_RESET_DONE, blocks, blocks);
}

static void start_clocks(void)
{
    /* Run clk_sys from clk_ref and clk_ref from the ring oscillator while the crystal and the
     * PLL are (re)started: after a reset of the cores alone (AIRCR) they may be running. */
    CLK_SYS_RESUS_CTRL = 0u;
    CLK_SYS_CTRL = 0u;
    (void)wait_bits(&CLK_SYS_SELECTED, 0x1u, 0x1u);
    CLK_REF_CTRL = CLK_REF_SRC_ROSC;
    (void)wait_bits(&CLK_REF_SELECTED, 0x1u, 0x1u);

    XOSC_STARTUP = XOSC_STARTUP_DELAY;
    XOSC_CTRL = XOSC_CTRL_FREQ_1_15MHZ | XOSC_CTRL_ENABLE;
    if (!wait_bits(&XOSC_STATUS, XOSC_STATUS_STABLE, XOSC_STATUS_STABLE)) {
        /* No crystal: stay on the ring oscillator (about 6 MHz, so the UARTs are off-rate and
         * the TIMER's "microseconds" only roughly so), but keep the clocks running. */
        WATCHDOG_TICK = WATCHDOG_TICK_ENABLE | ROSC_NOMINAL_MHZ;
        return;
    }
    CLK_REF_CTRL = CLK_REF_SRC_XOSC;
    CLK_REF_DIV = CLK_DIV_ONE;
    (void)wait_bits(&CLK_REF_SELECTED, 1u << CLK_REF_SRC_XOSC, 1u << CLK_REF_SRC_XOSC);

    unreset(RESET_PLL_SYS);
    PLL_CS = PLL_REFDIV;
    PLL_FBDIV_INT = PLL_FBDIV;
    PLL_PWR &= ~(PLL_PWR_PD | PLL_PWR_VCOPD);
    if (!wait_bits(&PLL_CS, PLL_CS_LOCK, PLL_CS_LOCK)) {
        return;
    }
    PLL_PRIM = (PLL_POSTDIV1 << 16) | (PLL_POSTDIV2 << 12);
    PLL_PWR &= ~PLL_PWR_POSTDIVPD;

    CLK_SYS_DIV = CLK_DIV_ONE;
    CLK_SYS_CTRL = CLK_SYS_AUXSRC_PLL_SYS; /* aux mux changes only while SRC = clk_ref */
    CLK_SYS_CTRL = CLK_SYS_AUXSRC_PLL_SYS | CLK_SYS_SRC_AUX;
    (void)wait_bits(&CLK_SYS_SELECTED, 0x2u, 0x2u);
    CLK_PERI_CTRL = CLK_PERI_ENABLE | CLK_PERI_AUXSRC_CLK_SYS;

    /* 1 us ticks for the TIMER: clk_ref (12 MHz) / 12. */
    WATCHDOG_TICK = WATCHDOG_TICK_ENABLE | (XOSC_HZ / 1000000u);
}

/* PL011 divider (datasheet 4.2.7.1): clk / (16 * baud) as 16.6 fixed point, rounded. */
static void uart_start(uint32_t base, uint32_t baud, uint32_t imsc)
{
    uint32_t div64 = (uint32_t)(((uint64_t)CLK_SYS_HZ * 4u + baud / 2u) / baud);
    uint32_t ibrd = div64 >> 6;
    uint32_t fbrd = div64 & 0x3Fu;

    UART_CR(base) = 0u;
    UART_IBRD(base) = ibrd;
    UART_FBRD(base) = fbrd;
    UART_LCR_H(base) = UART_LCR_H_WLEN8 | UART_LCR_H_FEN; /* latches IBRD/FBRD too */
    UART_IFLS(base) = 0u;                                 /* RX interrupt at 1/8 full */
    UART_ICR(base) = 0x7FFu;
    UART_IMSC(base) = imsc;
    UART_CR(base) = UART_CR_UARTEN | UART_CR_TXE | UART_CR_RXE;
}

void shoal_mcu_board_init(void)
{
    start_clocks();
    unreset(RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_TIMER | RESET_UART0 | RESET_UART1);
    PADS_GPIO(1u) = PAD_INPUT_PULLUP; /* GP1 UART0 RX */
    PADS_GPIO(5u) = PAD_INPUT_PULLUP; /* GP5 UART1 RX */
    GPIO_CTRL(0u) = GPIO_FUNC_UART;   /* GP0 UART0 TX */
    GPIO_CTRL(1u) = GPIO_FUNC_UART;
    GPIO_CTRL(4u) = GPIO_FUNC_UART; /* GP4 UART1 TX */
    GPIO_CTRL(5u) = GPIO_FUNC_UART;
    uart_start(UART0_BASE, SHOAL_HAL_LINK_BAUD, UART_IMSC_RXIM | UART_IMSC_RTIM);
    uart_start(UART1_BASE, SHOAL_HAL_CONSOLE_BAUD, 0u);
    shoal_mcu_nvic_enable(UART0_IRQ);
}

void shoal_hal_init(void)
{
    SHOAL_SYST_CSR = 0u;
    systick_wraps = 0u;
    SHOAL_SYST_RVR = SYSTICK_PERIOD - 1u;
    SHOAL_SYST_CVR = 0u;
    SHOAL_SYST_CSR =
        SHOAL_SYST_CSR_ENABLE | SHOAL_SYST_CSR_TICKINT | SHOAL_SYST_CSR_CLKSOURCE_CORE;
    TIMER_INTR = 1u << 0;
    TIMER_INTE = 1u << 0;
    TIMER_ALARM0 = TIMER_TIMERAWL + 1000u;
    shoal_mcu_nvic_enable(TIMER_IRQ_0);
}

void shoal_systick_handler(void)
{
    systick_wraps = systick_wraps + 1u;
}

static uint64_t now_us(void)
{
    uint32_t high;
    uint32_t low;
    uint32_t again;
    do {
        high = TIMER_TIMERAWH;
        low = TIMER_TIMERAWL;
        again = TIMER_TIMERAWH;
    } while (high != again);
    return ((uint64_t)high << 32) | low;
}

uint32_t shoal_hal_now_ms(void)
{
    return (uint32_t)(now_us() / 1000u);
}

/* Core clock cycles (133 MHz): SysTick wraps extended in software; wraps every 32.3 s. */
uint32_t shoal_hal_cycles(void)
{
    uint32_t before;
    uint32_t after;
    uint32_t remaining;
    uint32_t pending;
    /* Re-read when the SysTick handler ran meanwhile, so wraps and counter agree. */
    do {
        before = systick_wraps;
        remaining = SHOAL_SYST_CVR;
        pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
        after = systick_wraps;
    } while (before != after);
    /* A wrap whose exception is still pending (interrupts masked, or just now): count it. */
    if (pending != 0u && remaining > SYSTICK_PERIOD / 2u) {
        before += 1u;
    }
    return before * SYSTICK_PERIOD + (SYSTICK_PERIOD - 1u - remaining);
}

int shoal_mcu_irq(uint32_t irq)
{
    if (irq == TIMER_IRQ_0) {
        TIMER_INTR = 1u << 0; /* write-one-to-clear */
        TIMER_ALARM0 = TIMER_TIMERAWL + 1000u;
        return 1;
    }
    if (irq == UART0_IRQ) {
        while ((UART_FR(UART0_BASE) & UART_FR_RXFE) == 0u) {
            uint32_t data = UART_DR(UART0_BASE);
            if ((data & UART_DR_ERRORS) != 0u) {
                link_rx.dropped = link_rx.dropped + 1u;
                UART_RSR(UART0_BASE) = 0u;
                continue;
            }
            shoal_mcu_ring_push(&link_rx, (uint8_t)(data & 0xFFu));
        }
        return 1;
    }
    return 0;
}

void shoal_hal_uart_putc(uint8_t byte)
{
    while ((UART_FR(UART0_BASE) & UART_FR_TXFF) != 0u) {
    }
    UART_DR(UART0_BASE) = byte;
}

int shoal_hal_uart_getc(void)
{
    return shoal_mcu_ring_pop(&link_rx);
}

int shoal_hal_uart_rx_ready(void)
{
    return link_rx.tail != link_rx.head;
}

uint32_t shoal_hal_cycles_hz(void)
{
    return shoal_mcu_core_hz;
}

void shoal_mcu_console_putc(uint8_t byte)
{
    while ((UART_FR(UART1_BASE) & UART_FR_TXFF) != 0u) {
    }
    UART_DR(UART1_BASE) = byte;
    if (byte == '\n') {
        while ((UART_FR(UART1_BASE) & UART_FR_BUSY) != 0u) {
        }
    }
}
