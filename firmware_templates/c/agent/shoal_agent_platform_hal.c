/*
 * shoal_agent_platform_hal.c - the agent platform layer for bare-metal boards (shoal_hal.h).
 *
 * Responsible for: configuration compiled in from the role spec (no command line), the
 * clocks (milliseconds from shoal_hal_now_ms, microseconds from the free-running
 * shoal_hal_cycles counter extended to 64 bits), the MQTT-SN link as shoal_frame frames on the
 * HAL's UART (shoal_uart_transport), waiting in WFI (shoal_hal_idle) until a UART byte waits or
 * the deadline passes, reboot by a system reset (shoal_hal_reset) and the fatal stop
 * (shoal_hal_exit). Must not: touch registers (the HAL does) or know the agent protocol.
 *
 * Boot facts across a reset: a small record in .noinit RAM (not zeroed by the startup code,
 * kept by a system reset, random or zero after power-on) holds a magic word, the incarnation
 * the next boot takes and the corr of the reboot command that asked for it. A record whose
 * magic or check word is wrong means power-on: incarnation 1, no corr. Every boot writes the
 * record for the next one at once, so any reset (a fault, a watchdog) also counts a boot.
 *
 * Console: newlib's stdout, line-buffered in a static buffer (no heap), which shoal_syscalls.c
 * (or the board's own _write) sends to shoal_hal_console_write().
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shoal_agent_platform.h"
#include "shoal_hal.h"
#include "shoal_uart_transport.h"

#define AGENT_BOOT_MAGIC 0x5A0A1B07u

typedef struct {
    uint32_t magic;
    uint32_t next_incarnation;
    uint32_t boot_corr;
    uint32_t check; /* magic ^ next_incarnation ^ boot_corr ^ 0xFFFFFFFF */
} agent_boot_record;

static agent_boot_record s_boot_record __attribute__((section(".noinit")));
static shoal_uart_transport s_uart;
static char s_console_buf[128];
static uint64_t s_cycles_total;
static uint32_t s_cycles_last;

static uint32_t record_check(const agent_boot_record *r)
{
    return r->magic ^ r->next_incarnation ^ r->boot_corr ^ 0xFFFFFFFFu;
}

static void record_write(uint32_t next_incarnation, uint16_t corr)
{
    s_boot_record.magic = AGENT_BOOT_MAGIC;
    s_boot_record.next_incarnation = next_incarnation;
    s_boot_record.boot_corr = corr;
    s_boot_record.check = record_check(&s_boot_record);
}

void agent_platform_fatal(const char *what)
{
    printf("ERROR %s\n", what);
    fflush(stdout);
    shoal_hal_exit(2);
}

uint32_t agent_now_ms(void)
{
    return shoal_hal_now_ms();
}

uint64_t agent_now_us(void)
{
    /* The counter wraps (2^32 cycles: 343 s at 12.5 MHz); the agent reads it every loop turn
     * (at most 50 ms apart), so adding the wrapped differences never misses a wrap. */
    uint32_t cycles = shoal_hal_cycles();
    s_cycles_total += (uint32_t)(cycles - s_cycles_last);
    s_cycles_last = cycles;
    return s_cycles_total * 1000000u / shoal_hal_cycles_hz();
}

/* From the board's linker script (qemu/common/shoal_sections.ld, which the real Cortex-M
 * boards' scripts include too): start of .data, end of .noinit (where the heap begins). */
extern uint8_t _sdata[];
extern uint8_t end[];

uint32_t agent_platform_static_ram(void)
{
    return (uint32_t)((uintptr_t)end - (uintptr_t)_sdata);
}

void agent_console_flush(void)
{
    fflush(stdout);
}

void agent_platform_init(int argc, char **argv, const agent_defaults *defaults,
                         agent_config *config)
{
    size_t len = strlen(defaults->client_id);
    (void)argc;
    (void)argv;
    shoal_hal_init();
    s_cycles_last = shoal_hal_cycles();
    (void)setvbuf(stdout, s_console_buf, _IOLBF, sizeof(s_console_buf));
    memset(config, 0, sizeof(*config));
    if (len < 1u || len > 23u) {
        agent_platform_fatal("client id must be 1..23 bytes");
    }
    memcpy(config->client_id, defaults->client_id, len + 1u);
    config->keepalive_s = defaults->keepalive_s;
    config->search = 0; /* a UART is point to point: the gateway is at the other end */
    if (s_boot_record.magic == AGENT_BOOT_MAGIC &&
        s_boot_record.check == record_check(&s_boot_record)) {
        config->incarnation = s_boot_record.next_incarnation;
        config->boot_corr = (uint16_t)s_boot_record.boot_corr;
    } else {
        config->incarnation = 1u; /* power-on */
        config->boot_corr = 0u;
    }
    record_write(config->incarnation + 1u, 0u);
}

int agent_transport_open(const agent_config *config, shoal_mqttsn_transport *transport)
{
    (void)config;
    shoal_uart_transport_init(&s_uart, transport);
    return 0;
}

void agent_transport_use_gateway(const uint8_t *gw_add, size_t gw_add_len)
{
    (void)gw_add;
    (void)gw_add_len;
}

void agent_wait(uint32_t timeout_ms)
{
    uint32_t start = shoal_hal_now_ms();
    /* A byte arriving between the check and WFI is taken by its interrupt first, and the
     * next interrupt (at the latest the 1 ms tick) ends the WFI. */
    while (!shoal_hal_uart_rx_ready() && (uint32_t)(shoal_hal_now_ms() - start) < timeout_ms) {
        shoal_hal_idle();
    }
}

void agent_reboot(uint16_t corr, uint32_t next_incarnation)
{
    record_write(next_incarnation, corr);
    fflush(stdout);
    shoal_hal_reset();
}
