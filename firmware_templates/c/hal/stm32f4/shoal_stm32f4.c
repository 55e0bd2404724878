/*
 * shoal_stm32f4.c - shoal_hal.h on the STM32F446RE (NUCLEO-F446RE), register level, no vendor
 * framework.
 *
 * Responsible for: the clock tree, the link UART (USART2 on PA2 TX / PA3 RX: the ST-LINK
 * virtual COM port of the Nucleo), the console UART (USART1 on PA9 TX = Arduino D8, PA10 RX =
 * Arduino D2; wire a 3.3 V USB-serial adapter there; -DSHOAL_STM32F4_SWAP_UARTS=1 swaps the
 * two), the 1 kHz SysTick millisecond clock and the DWT cycle counter. Must not: block in an interrupt handler or use the HAL/LL libraries.
 *
 * Clock (RM0390 section 6.3): the 16 MHz HSI feeds the main PLL with M = 8 (2 MHz at the PLL
 * input), N = 180 (VCO 360 MHz), P = 2: SYSCLK = HCLK = 180 MHz, APB1 = 45 MHz (/4, its
 * maximum), APB2 = 90 MHz (/2). 180 MHz needs voltage scale 1 with over-drive (RM0390 5.1.4)
 * and 5 flash wait states (RM0390 table 5, 2.7-3.6 V). Every ready flag is awaited with a
 * bound; if one never comes the core stays on the 16 MHz HSI (APB1 = APB2 = 16 MHz) and
 * shoal_mcu_core_hz says so. The HSI is factory-trimmed to 1 % (datasheet DS10693 table 41),
 * good enough for 115200 baud. No HSE is used: the Nucleo's 8 MHz MCO from the ST-LINK is not
 * fitted-by-default on every board revision.
 *
 * Not verified on hardware in this repository (no board attached to CI): it is compile- and
 * link-checked with the board's flags by tests/codegen/test_platformio_projects.py.
 *
 * Register addresses: RM0390 section 2.2.2 "Memory map" (table 1) for the peripheral bases,
 * and the register maps of each chapter (RCC 6.3.28, PWR 5.5, FLASH 3.8, GPIO 7.4.11, USART
 * 25.6.8); core registers (SysTick, DWT, DEMCR) from the Armv7-M ARM.
 */
#include <stdint.h>

#include "shoal_hal.h"
#include "shoal_mcu.h"
#include "shoal_mcu_ring.h"

#define REG(address) (*(volatile uint32_t *)(address))

/* RCC, base 0x40023800 (RM0390 table 1; register map 6.3.28). */
#define RCC_BASE 0x40023800u
#define RCC_CR REG(RCC_BASE + 0x00u)
#define RCC_PLLCFGR REG(RCC_BASE + 0x04u)
#define RCC_CFGR REG(RCC_BASE + 0x08u)
#define RCC_AHB1ENR REG(RCC_BASE + 0x30u)
#define RCC_APB1ENR REG(RCC_BASE + 0x40u)
#define RCC_APB2ENR REG(RCC_BASE + 0x44u)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR_PLLM_SHIFT 0u  /* bits 5:0 */
#define RCC_PLLCFGR_PLLN_SHIFT 6u  /* bits 14:6 */
#define RCC_PLLCFGR_PLLP_SHIFT 16u /* bits 17:16, 0 = /2 */
#define RCC_PLLCFGR_PLLSRC_HSE (1u << 22)
#define RCC_PLLCFGR_PLLQ_SHIFT 24u /* bits 27:24 */
#define RCC_PLLCFGR_MNPQ_MASK                                                                 \
    (0x3Fu | (0x1FFu << 6) | (0x3u << 16) | RCC_PLLCFGR_PLLSRC_HSE | (0xFu << 24))
#define RCC_CFGR_SW_MASK 0x3u
#define RCC_CFGR_SW_PLL_P 0x2u
#define RCC_CFGR_SWS_SHIFT 2u
#define RCC_CFGR_HPRE_MASK (0xFu << 4)
#define RCC_CFGR_PPRE1_MASK (0x7u << 10)
#define RCC_CFGR_PPRE1_DIV4 (0x5u << 10)
#define RCC_CFGR_PPRE2_MASK (0x7u << 13)
#define RCC_CFGR_PPRE2_DIV2 (0x4u << 13)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_APB2ENR_USART1EN (1u << 4)

/* PWR, base 0x40007000 (RM0390 5.5). */
#define PWR_BASE 0x40007000u
#define PWR_CR REG(PWR_BASE + 0x00u)
#define PWR_CSR REG(PWR_BASE + 0x04u)
#define PWR_CR_VOS_SCALE1 (0x3u << 14)
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)

/* Flash interface, base 0x40023C00 (RM0390 3.8). */
#define FLASH_ACR REG(0x40023C00u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* GPIOA, base 0x40020000 (RM0390 7.4.11). */
#define GPIOA_BASE 0x40020000u
#define GPIOA_MODER REG(GPIOA_BASE + 0x00u)
#define GPIOA_OSPEEDR REG(GPIOA_BASE + 0x08u)
#define GPIOA_PUPDR REG(GPIOA_BASE + 0x0Cu)
#define GPIOA_AFRL REG(GPIOA_BASE + 0x20u)
#define GPIOA_AFRH REG(GPIOA_BASE + 0x24u)
#define GPIO_MODE_AF 0x2u
#define GPIO_PULL_UP 0x1u
#define GPIO_SPEED_MEDIUM 0x1u
#define GPIO_AF7_USART 0x7u

/* USART1 (APB2) 0x40011000, USART2 (APB1) 0x40004400 (RM0390 table 1; map 25.6.8). */
#define USART1_BASE 0x40011000u
#define USART2_BASE 0x40004400u
#define USART_SR(base) REG((base) + 0x00u)
#define USART_DR(base) REG((base) + 0x04u)
#define USART_BRR(base) REG((base) + 0x08u)
#define USART_CR1(base) REG((base) + 0x0Cu)
#define USART_CR2(base) REG((base) + 0x10u)
#define USART_CR3(base) REG((base) + 0x14u)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)
/* RM0390 table 38: USART1 global interrupt is IRQ 37, USART2 IRQ 38. */
#define USART1_IRQ 37u
#define USART2_IRQ 38u

/*
 * Which USART is which. Default: link = USART2 (the ST-LINK virtual COM port), console =
 * USART1 (PA9). SHOAL_STM32F4_SWAP_UARTS=1 swaps them: the link on PA9/PA10 (to a radio or a
 * gateway host wired to the pins) and the console on the ST-LINK's USB port.
 */
#ifndef SHOAL_STM32F4_SWAP_UARTS
#define SHOAL_STM32F4_SWAP_UARTS 0
#endif
#if SHOAL_STM32F4_SWAP_UARTS
#define LINK_BASE USART1_BASE
#define LINK_IRQ USART1_IRQ
#define LINK_PCLK apb2_hz
#define CONSOLE_BASE USART2_BASE
#define CONSOLE_PCLK apb1_hz
#else
#define LINK_BASE USART2_BASE
#define LINK_IRQ USART2_IRQ
#define LINK_PCLK apb1_hz
#define CONSOLE_BASE USART1_BASE
#define CONSOLE_PCLK apb2_hz
#endif

/* Debug: DEMCR (Armv7-M ARM C1.6.5) and DWT (C1.8). */
#define DEMCR REG(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define DWT_CTRL_CYCCNTENA (1u << 0)

#define HSI_HZ 16000000u
#define PLL_HZ 180000000u
#define PLL_M 8u
#define PLL_N 180u
#define PLL_Q 8u
#define FLASH_WAIT_STATES_180MHZ 5u
/* Polls of a ready flag before giving up (far beyond the datasheet's start-up times). */
#define READY_POLLS 1000000u

uint32_t shoal_mcu_core_hz = HSI_HZ;
static uint32_t apb1_hz = HSI_HZ;
static uint32_t apb2_hz = HSI_HZ;
static volatile uint32_t ms_ticks;
static shoal_mcu_ring link_rx;

static int wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    uint32_t polls;
    for (polls = 0; polls < READY_POLLS; ++polls) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

/* HSI -> PLL 180 MHz with over-drive; returns 0 (and leaves the HSI running) on a timeout. */
static int clock_to_180mhz(void)
{
    uint32_t cfgr;

    if (!wait_set(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY)) {
        return 0;
    }
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* read back: the enable takes effect before PWR is touched */
    PWR_CR |= PWR_CR_VOS_SCALE1;
    /* PLLR keeps its reset value (2); PLLQ = 8 keeps PLL48CLK at 45 MHz (unused here). */
    RCC_PLLCFGR = (RCC_PLLCFGR & ~RCC_PLLCFGR_MNPQ_MASK) | (PLL_M << RCC_PLLCFGR_PLLM_SHIFT) |
                  (PLL_N << RCC_PLLCFGR_PLLN_SHIFT) | (0u << RCC_PLLCFGR_PLLP_SHIFT) |
                  (PLL_Q << RCC_PLLCFGR_PLLQ_SHIFT);
    RCC_CR |= RCC_CR_PLLON;
    if (!wait_set(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        RCC_CR &= ~RCC_CR_PLLON;
        return 0;
    }
    PWR_CR |= PWR_CR_ODEN;
    if (!wait_set(&PWR_CSR, PWR_CSR_ODRDY, PWR_CSR_ODRDY)) {
        PWR_CR &= ~PWR_CR_ODEN;
        RCC_CR &= ~RCC_CR_PLLON;
        return 0;
    }
    PWR_CR |= PWR_CR_ODSWEN;
    if (!wait_set(&PWR_CSR, PWR_CSR_ODSWRDY, PWR_CSR_ODSWRDY)) {
        PWR_CR &= ~(PWR_CR_ODEN | PWR_CR_ODSWEN);
        RCC_CR &= ~RCC_CR_PLLON;
        return 0;
    }
    FLASH_ACR = FLASH_WAIT_STATES_180MHZ | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    if ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != FLASH_WAIT_STATES_180MHZ) {
        RCC_CR &= ~RCC_CR_PLLON;
        return 0;
    }
    cfgr = RCC_CFGR & ~(RCC_CFGR_HPRE_MASK | RCC_CFGR_PPRE1_MASK | RCC_CFGR_PPRE2_MASK);
    RCC_CFGR = cfgr | RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL_P;
    if (!wait_set(&RCC_CFGR, RCC_CFGR_SW_MASK << RCC_CFGR_SWS_SHIFT,
                  RCC_CFGR_SW_PLL_P << RCC_CFGR_SWS_SHIFT)) {
        RCC_CFGR &= ~(RCC_CFGR_SW_MASK | RCC_CFGR_PPRE1_MASK | RCC_CFGR_PPRE2_MASK);
        return 0;
    }
    return 1;
}

static void pin_to_usart(uint32_t pin)
{
    GPIOA_MODER = (GPIOA_MODER & ~(0x3u << (2u * pin))) | (GPIO_MODE_AF << (2u * pin));
    GPIOA_OSPEEDR =
        (GPIOA_OSPEEDR & ~(0x3u << (2u * pin))) | (GPIO_SPEED_MEDIUM << (2u * pin));
    if (pin < 8u) {
        GPIOA_AFRL = (GPIOA_AFRL & ~(0xFu << (4u * pin))) | (GPIO_AF7_USART << (4u * pin));
    } else {
        GPIOA_AFRH =
            (GPIOA_AFRH & ~(0xFu << (4u * (pin - 8u)))) | (GPIO_AF7_USART << (4u * (pin - 8u)));
    }
}

static void pull_up(uint32_t pin)
{
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(0x3u << (2u * pin))) | (GPIO_PULL_UP << (2u * pin));
}

/* Oversampling by 16 (RM0390 25.4.4): BRR = USARTDIV * 16 = f_pclk / baud, rounded. */
static void usart_start(uint32_t base, uint32_t pclk_hz, uint32_t baud, uint32_t cr1_extra)
{
    USART_CR1(base) = 0u;
    USART_CR2(base) = 0u; /* 1 stop bit */
    USART_CR3(base) = 0u; /* no flow control */
    USART_BRR(base) = (pclk_hz + baud / 2u) / baud;
    USART_CR1(base) = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | cr1_extra;
}

void shoal_mcu_board_init(void)
{
    if (clock_to_180mhz()) {
        shoal_mcu_core_hz = PLL_HZ;
        apb1_hz = PLL_HZ / 4u;
        apb2_hz = PLL_HZ / 2u;
    }
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR;
    pin_to_usart(2u);  /* PA2 USART2_TX */
    pin_to_usart(3u);  /* PA3 USART2_RX */
    pin_to_usart(9u);  /* PA9 USART1_TX */
    pin_to_usart(10u); /* PA10 USART1_RX (unused: the console is output only) */
    pull_up(3u);
    pull_up(10u);
    usart_start(LINK_BASE, LINK_PCLK, SHOAL_HAL_LINK_BAUD, USART_CR1_RXNEIE);
    usart_start(CONSOLE_BASE, CONSOLE_PCLK, SHOAL_HAL_CONSOLE_BAUD, 0u);
    shoal_mcu_nvic_enable(LINK_IRQ);
}

void shoal_hal_init(void)
{
    uint32_t reload = shoal_mcu_core_hz / 1000u - 1u; /* 179999: fits SysTick's 24 bits */

    SHOAL_SYST_CSR = 0u;
    ms_ticks = 0u;
    SHOAL_SYST_RVR = reload;
    SHOAL_SYST_CVR = 0u;
    SHOAL_SYST_CSR =
        SHOAL_SYST_CSR_ENABLE | SHOAL_SYST_CSR_TICKINT | SHOAL_SYST_CSR_CLKSOURCE_CORE;
    DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
}

void shoal_systick_handler(void)
{
    ms_ticks = ms_ticks + 1u;
}

uint32_t shoal_hal_now_ms(void)
{
    return ms_ticks;
}

/* Core clock cycles (DWT CYCCNT, 180 MHz: wraps every 23.9 s). */
uint32_t shoal_hal_cycles(void)
{
    return DWT_CYCCNT;
}

int shoal_mcu_irq(uint32_t irq)
{
    uint32_t status;
    if (irq != LINK_IRQ) {
        return 0;
    }
    /* Reading SR then DR clears RXNE and ORE (RM0390 25.6.1); an overrun lost a byte. */
    status = USART_SR(LINK_BASE);
    while ((status & (USART_SR_RXNE | USART_SR_ORE)) != 0u) {
        uint8_t byte = (uint8_t)(USART_DR(LINK_BASE) & 0xFFu);
        if ((status & USART_SR_ORE) != 0u) {
            link_rx.dropped = link_rx.dropped + 1u;
        }
        if ((status & USART_SR_RXNE) != 0u) {
            shoal_mcu_ring_push(&link_rx, byte);
        }
        status = USART_SR(LINK_BASE);
    }
    return 1;
}

void shoal_hal_uart_putc(uint8_t byte)
{
    while ((USART_SR(LINK_BASE) & USART_SR_TXE) == 0u) {
    }
    USART_DR(LINK_BASE) = byte;
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
    while ((USART_SR(CONSOLE_BASE) & USART_SR_TXE) == 0u) {
    }
    USART_DR(CONSOLE_BASE) = byte;
    if (byte == '\n') {
        /* Let a line leave before a halt can stop the clocks of a debug-less board. */
        while ((USART_SR(CONSOLE_BASE) & USART_SR_TC) == 0u) {
        }
    }
}
