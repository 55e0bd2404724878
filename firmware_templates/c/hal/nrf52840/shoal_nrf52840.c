/*
 * shoal_nrf52840.c - shoal_hal.h on the nRF52840 (nRF52840 DK), register level, no nrfx/Zephyr.
 *
 * Responsible for: clocks, the link UART (legacy UART0 on P0.06 TXD / P0.08 RXD: the J-Link
 * OB virtual COM port of the DK), the console UART (UARTE1, transmit only, on P1.02 = header
 * P24; wire a 3.3 V USB-serial adapter there, or change SHOAL_NRF_CONSOLE_TX_PSEL), the
 * millisecond clock (RTC1 on the 32.768 kHz LFCLK) and the DWT cycle counter. Must not: block
 * in an interrupt handler or use a SoftDevice (RTC1 and UART0 would clash with one).
 *
 * Clock (PS 6.4): the CPU always runs at 64 MHz from HFCLK. shoal_mcu_board_init starts the
 * 32 MHz crystal (HFXO) so UART baud rates are crystal-accurate, and the 32.768 kHz crystal
 * (LFXO) for RTC1; each start is awaited with a bound, falling back to the internal HFINT
 * (1.5 % accuracy) or the RC LFCLK (+-500 ppm after calibration, uncalibrated here).
 *
 * Milliseconds: RTC1 with PRESCALER 32 counts at 32768 / 33 Hz (992.97 Hz, a period of
 * 1.0071 ms); its TICK interrupt wakes WFI about every millisecond and its 24-bit COUNTER,
 * extended by the OVRFLW interrupt, is converted exactly: ms = ticks * 33 * 1000 / 32768.
 * RTC1 keeps counting while the CPU sleeps (SysTick is not guaranteed to: PS 6.1 "System ON").
 *
 * Not verified on hardware in this repository (no board attached to CI): it is compile- and
 * link-checked with the board's flags by tests/codegen/test_platformio_projects.py.
 *
 * Register addresses: nRF52840 PS v1.7 section 4.2.3 "Peripheral interface" / 6.1.2
 * "Instantiation" for bases and IDs; register tables in CLOCK 6.4.3, GPIO 6.9.2, RTC 6.22.10,
 * UART 6.33.10, UARTE 6.34.9. Core registers from the Armv7-M ARM.
 */
#include <stdint.h>

#include "shoal_hal.h"
#include "shoal_mcu.h"
#include "shoal_mcu_ring.h"

#define REG(address) (*(volatile uint32_t *)(address))

/* CLOCK, base 0x40000000 (PS 6.4.3). */
#define CLOCK_BASE 0x40000000u
#define CLOCK_TASKS_HFCLKSTART REG(CLOCK_BASE + 0x000u)
#define CLOCK_TASKS_LFCLKSTART REG(CLOCK_BASE + 0x008u)
#define CLOCK_TASKS_LFCLKSTOP REG(CLOCK_BASE + 0x00Cu)
#define CLOCK_EVENTS_HFCLKSTARTED REG(CLOCK_BASE + 0x100u)
#define CLOCK_EVENTS_LFCLKSTARTED REG(CLOCK_BASE + 0x104u)
#define CLOCK_LFCLKSRC REG(CLOCK_BASE + 0x518u)
#define CLOCK_LFCLKSRC_RC 0u
#define CLOCK_LFCLKSRC_XTAL 1u

/* GPIO P0 at 0x50000000, P1 at 0x50000300 (PS 6.9.2). */
#define P0_BASE 0x50000000u
#define P1_BASE 0x50000300u
#define GPIO_OUTSET(port) REG((port) + 0x508u)
#define GPIO_PIN_CNF(port, pin) REG((port) + 0x700u + 4u * (pin))
#define PIN_CNF_OUTPUT_DISCONNECTED 0x3u /* DIR=output, INPUT=disconnect */
#define PIN_CNF_INPUT_PULLUP 0xCu        /* DIR=input, INPUT=connect, PULL=pullup */

/* RTC1, base 0x40011000, IRQ 17 (PS 6.22.10, 6.1.2). */
#define RTC1_BASE 0x40011000u
#define RTC1_IRQ 17u
#define RTC_TASKS_START REG(RTC1_BASE + 0x000u)
#define RTC_TASKS_STOP REG(RTC1_BASE + 0x004u)
#define RTC_TASKS_CLEAR REG(RTC1_BASE + 0x008u)
#define RTC_EVENTS_TICK REG(RTC1_BASE + 0x100u)
#define RTC_EVENTS_OVRFLW REG(RTC1_BASE + 0x104u)
#define RTC_INTENSET REG(RTC1_BASE + 0x304u)
#define RTC_INTENCLR REG(RTC1_BASE + 0x308u)
#define RTC_COUNTER REG(RTC1_BASE + 0x504u)
#define RTC_PRESCALER REG(RTC1_BASE + 0x508u)
#define RTC_INTEN_TICK (1u << 0)
#define RTC_INTEN_OVRFLW (1u << 1)
#define RTC_PRESCALE 32u /* 32768 / (32 + 1) Hz */
#define RTC_COUNTER_BITS 24u

/* UART0 (legacy, shares id 2 with UARTE0), base 0x40002000 (PS 6.33.10). */
#define UART0_BASE 0x40002000u
#define UART0_IRQ 2u
#define UART_TASKS_STARTRX REG(UART0_BASE + 0x000u)
#define UART_TASKS_STARTTX REG(UART0_BASE + 0x008u)
#define UART_EVENTS_RXDRDY REG(UART0_BASE + 0x108u)
#define UART_EVENTS_TXDRDY REG(UART0_BASE + 0x11Cu)
#define UART_EVENTS_ERROR REG(UART0_BASE + 0x124u)
#define UART_INTENSET REG(UART0_BASE + 0x304u)
#define UART_ERRORSRC REG(UART0_BASE + 0x480u)
#define UART_ENABLE REG(UART0_BASE + 0x500u)
#define UART_PSEL_RTS REG(UART0_BASE + 0x508u)
#define UART_PSEL_TXD REG(UART0_BASE + 0x50Cu)
#define UART_PSEL_CTS REG(UART0_BASE + 0x510u)
#define UART_PSEL_RXD REG(UART0_BASE + 0x514u)
#define UART_RXD REG(UART0_BASE + 0x518u)
#define UART_TXD REG(UART0_BASE + 0x51Cu)
#define UART_BAUDRATE REG(UART0_BASE + 0x524u)
#define UART_CONFIG REG(UART0_BASE + 0x56Cu)
#define UART_ENABLE_UART 4u
#define UART_INTEN_RXDRDY (1u << 2)
#define UART_INTEN_ERROR (1u << 9)

/* UARTE1, base 0x40028000 (PS 6.34.9). */
#define UARTE1_BASE 0x40028000u
#define UARTE_TASKS_STARTTX REG(UARTE1_BASE + 0x008u)
#define UARTE_EVENTS_ENDTX REG(UARTE1_BASE + 0x120u)
#define UARTE_ENABLE REG(UARTE1_BASE + 0x500u)
#define UARTE_PSEL_RTS REG(UARTE1_BASE + 0x508u)
#define UARTE_PSEL_TXD REG(UARTE1_BASE + 0x50Cu)
#define UARTE_PSEL_CTS REG(UARTE1_BASE + 0x510u)
#define UARTE_PSEL_RXD REG(UARTE1_BASE + 0x514u)
#define UARTE_BAUDRATE REG(UARTE1_BASE + 0x524u)
#define UARTE_TXD_PTR REG(UARTE1_BASE + 0x544u)
#define UARTE_TXD_MAXCNT REG(UARTE1_BASE + 0x548u)
#define UARTE_CONFIG REG(UARTE1_BASE + 0x56Cu)
#define UARTE_ENABLE_UARTE 8u

#define PSEL_DISCONNECTED 0xFFFFFFFFu
/* PSEL = pin number (bits 4:0) | port (bit 5). */
#define PSEL(port, pin) (((uint32_t)(port) << 5) | (uint32_t)(pin))
#define LINK_TX_PIN 6u /* P0.06: DK VCOM0 TXD (DK user guide, "Virtual COM port") */
#define LINK_RX_PIN 8u /* P0.08: DK VCOM0 RXD */
#ifndef SHOAL_NRF_CONSOLE_TX_PSEL
#define SHOAL_NRF_CONSOLE_TX_PSEL PSEL(1u, 2u) /* P1.02 */
#endif

/* Debug: DEMCR (Armv7-M ARM C1.6.5) and DWT (C1.8). */
#define DEMCR REG(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define DWT_CTRL_CYCCNTENA (1u << 0)

#define READY_POLLS 2000000u

uint32_t shoal_mcu_core_hz = 64000000u;
static shoal_mcu_ring link_rx;
static volatile uint32_t rtc_overflows;
/* EasyDMA reads only from RAM, so console bytes pass through this buffer. */
static volatile uint8_t console_byte;

/*
 * UART BAUDRATE register values (PS 6.33.10 / 6.34.9 BAUDRATE tables; identical for UART and
 * UARTE at these rates). Other rates fall back to 115200.
 */
static uint32_t baud_register(uint32_t baud)
{
    switch (baud) {
    case 9600u:
        return 0x00275000u;
    case 19200u:
        return 0x004EA000u;
    case 38400u:
        return 0x009D5000u;
    case 57600u:
        return 0x00EBF000u;
    case 230400u:
        return 0x03AFB000u;
    case 460800u:
        return 0x075F7000u;
    case 921600u:
        return 0x0EBED000u;
    case 1000000u:
        return 0x10000000u;
    default:
        return 0x01D7E000u; /* 115200 */
    }
}

static int wait_event(volatile uint32_t *event)
{
    uint32_t polls;
    for (polls = 0; polls < READY_POLLS; ++polls) {
        if (*event != 0u) {
            return 1;
        }
    }
    return 0;
}

static void start_clocks(void)
{
    CLOCK_EVENTS_HFCLKSTARTED = 0u;
    CLOCK_TASKS_HFCLKSTART = 1u;
    (void)wait_event(&CLOCK_EVENTS_HFCLKSTARTED); /* else the UARTs run on HFINT */

    CLOCK_EVENTS_LFCLKSTARTED = 0u;
    CLOCK_LFCLKSRC = CLOCK_LFCLKSRC_XTAL;
    CLOCK_TASKS_LFCLKSTART = 1u;
    if (!wait_event(&CLOCK_EVENTS_LFCLKSTARTED)) {
        CLOCK_TASKS_LFCLKSTOP = 1u;
        CLOCK_EVENTS_LFCLKSTARTED = 0u;
        CLOCK_LFCLKSRC = CLOCK_LFCLKSRC_RC;
        CLOCK_TASKS_LFCLKSTART = 1u;
        (void)wait_event(&CLOCK_EVENTS_LFCLKSTARTED);
    }
}

static void start_link_uart(void)
{
    GPIO_OUTSET(P0_BASE) = 1u << LINK_TX_PIN; /* idle high before the UART drives it */
    GPIO_PIN_CNF(P0_BASE, LINK_TX_PIN) = PIN_CNF_OUTPUT_DISCONNECTED;
    GPIO_PIN_CNF(P0_BASE, LINK_RX_PIN) = PIN_CNF_INPUT_PULLUP;
    UART_ENABLE = 0u;
    UART_PSEL_RTS = PSEL_DISCONNECTED;
    UART_PSEL_CTS = PSEL_DISCONNECTED;
    UART_PSEL_TXD = PSEL(0u, LINK_TX_PIN);
    UART_PSEL_RXD = PSEL(0u, LINK_RX_PIN);
    UART_BAUDRATE = baud_register(SHOAL_HAL_LINK_BAUD);
    UART_CONFIG = 0u; /* no parity, one stop bit, no flow control */
    UART_ENABLE = UART_ENABLE_UART;
    UART_EVENTS_RXDRDY = 0u;
    UART_EVENTS_ERROR = 0u;
    UART_INTENSET = UART_INTEN_RXDRDY | UART_INTEN_ERROR;
    UART_TASKS_STARTTX = 1u;
    UART_TASKS_STARTRX = 1u;
    shoal_mcu_nvic_enable(UART0_IRQ);
}

static void start_console_uart(void)
{
    uint32_t port = (SHOAL_NRF_CONSOLE_TX_PSEL >> 5) & 1u ? P1_BASE : P0_BASE;
    uint32_t pin = SHOAL_NRF_CONSOLE_TX_PSEL & 0x1Fu;

    GPIO_OUTSET(port) = 1u << pin;
    GPIO_PIN_CNF(port, pin) = PIN_CNF_OUTPUT_DISCONNECTED;
    UARTE_ENABLE = 0u;
    UARTE_PSEL_RTS = PSEL_DISCONNECTED;
    UARTE_PSEL_CTS = PSEL_DISCONNECTED;
    UARTE_PSEL_RXD = PSEL_DISCONNECTED;
    UARTE_PSEL_TXD = SHOAL_NRF_CONSOLE_TX_PSEL;
    UARTE_BAUDRATE = baud_register(SHOAL_HAL_CONSOLE_BAUD);
    UARTE_CONFIG = 0u;
    UARTE_ENABLE = UARTE_ENABLE_UARTE;
}

void shoal_mcu_board_init(void)
{
    start_clocks();
    start_link_uart();
    start_console_uart();
}

void shoal_hal_init(void)
{
    RTC_TASKS_STOP = 1u;
    RTC_TASKS_CLEAR = 1u;
    RTC_PRESCALER = RTC_PRESCALE; /* writable only while stopped */
    rtc_overflows = 0u;
    RTC_EVENTS_TICK = 0u;
    RTC_EVENTS_OVRFLW = 0u;
    RTC_INTENSET = RTC_INTEN_TICK | RTC_INTEN_OVRFLW;
    shoal_mcu_nvic_enable(RTC1_IRQ);
    RTC_TASKS_START = 1u;
    DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
}

/* Unused on this family (RTC1 keeps time), but named in the vector table. */
void shoal_systick_handler(void)
{
}

uint32_t shoal_hal_now_ms(void)
{
    uint32_t before;
    uint32_t after;
    uint32_t counter;
    uint32_t pending;
    uint64_t ticks;

    /* Re-read when the overflow handler ran meanwhile, so count and counter agree. */
    do {
        before = rtc_overflows;
        counter = RTC_COUNTER;
        pending = RTC_EVENTS_OVRFLW;
        after = rtc_overflows;
    } while (before != after);
    /* An overflow not yet served (interrupts masked, or just now): count it here. */
    if (pending != 0u && counter < (1u << (RTC_COUNTER_BITS - 1u))) {
        before += 1u;
    }
    ticks = ((uint64_t)before << RTC_COUNTER_BITS) | counter;
    return (uint32_t)((ticks * ((RTC_PRESCALE + 1u) * 1000u)) >> 15);
}

/* Core clock cycles (DWT CYCCNT, 64 MHz: wraps every 67 s). */
uint32_t shoal_hal_cycles(void)
{
    return DWT_CYCCNT;
}

int shoal_mcu_irq(uint32_t irq)
{
    if (irq == RTC1_IRQ) {
        if (RTC_EVENTS_OVRFLW != 0u) {
            RTC_EVENTS_OVRFLW = 0u;
            rtc_overflows = rtc_overflows + 1u;
        }
        RTC_EVENTS_TICK = 0u; /* the tick only wakes shoal_hal_idle() */
        (void)RTC_EVENTS_TICK; /* read back: the clear lands before the handler returns */
        return 1;
    }
    if (irq == UART0_IRQ) {
        if (UART_EVENTS_ERROR != 0u) {
            UART_EVENTS_ERROR = 0u;
            UART_ERRORSRC = UART_ERRORSRC; /* write-one-to-clear what was flagged */
            link_rx.dropped = link_rx.dropped + 1u;
        }
        /* Clear the event before reading RXD, so a byte still in the FIFO raises it again. */
        while (UART_EVENTS_RXDRDY != 0u) {
            UART_EVENTS_RXDRDY = 0u;
            shoal_mcu_ring_push(&link_rx, (uint8_t)(UART_RXD & 0xFFu));
        }
        (void)UART_EVENTS_RXDRDY;
        return 1;
    }
    return 0;
}

void shoal_hal_uart_putc(uint8_t byte)
{
    UART_EVENTS_TXDRDY = 0u;
    UART_TXD = byte;
    while (UART_EVENTS_TXDRDY == 0u) {
    }
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
    console_byte = byte;
    UARTE_EVENTS_ENDTX = 0u;
    UARTE_TXD_PTR = (uint32_t)(uintptr_t)&console_byte;
    UARTE_TXD_MAXCNT = 1u;
    UARTE_TASKS_STARTTX = 1u;
    while (UARTE_EVENTS_ENDTX == 0u) {
    }
}
