/*
 * shoal_agent_platform.h - what the generated agent (main.c) needs from the platform it runs on.
 *
 * Responsible for: the seam between the platform-neutral agent logic and the two platform
 * layers copied next to it: shoal_agent_platform_posix.c (a native process: clock_gettime,
 * UDP, poll(), argv, re-exec on reboot) and shoal_agent_platform_hal.c (any bare-metal board
 * implementing shoal_hal.h: SysTick clock, the MQTT-SN link on the HAL's UART, WFI, a system
 * reset with boot facts kept in .noinit RAM, configuration compiled in from the role spec).
 * Must not: know the agent protocol or MQTT-SN beyond handing the client a transport.
 *
 * Console: the agent prints its line-oriented console ("SHOAL-AGENT BOOT ...", "CONNECTED",
 * "CMD ...") with printf and calls agent_console_flush() after each line. POSIX: stdout. Bare
 * metal: newlib's stdout, which shoal_syscalls.c sends to shoal_hal_console_write() (on the
 * QEMU boards the second UART, UART1, when built with SHOAL_HAL_CONSOLE_UART=1; the first UART
 * carries the MQTT-SN frames).
 */
#ifndef SHOAL_AGENT_PLATFORM_H
#define SHOAL_AGENT_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "shoal_mqttsn_client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults from the role spec; the platform may override them (POSIX: command line). */
typedef struct {
    const char *client_id;     /* 1..23 bytes */
    const char *gateway_host;  /* POSIX UDP only; "" = none */
    long gateway_port;         /* POSIX UDP only */
    long keepalive_s;          /* 1..65535 */
    int discover;              /* search for a gateway on group:group_port (POSIX UDP only) */
    const char *group;
    long group_port;
} agent_defaults;

/* This boot's configuration, filled by agent_platform_init(). */
typedef struct {
    char client_id[24];
    char gateway_host[128];
    long gateway_port;
    long keepalive_s;
    int search;            /* 1: SEARCHGW first (discovery), then CONNECT to the GWINFO sender */
    uint16_t boot_corr;    /* the reboot command that started this boot (0: none) */
    uint32_t incarnation;  /* this boot's incarnation */
} agent_config;

/* Configure this boot from `defaults` (and argc/argv where the platform has them). Call first:
 * on bare metal it also runs shoal_hal_init() and reads the boot record. On bad arguments it
 * prints "ERROR <what>" and exits with status 2 (agent_platform_fatal). */
void agent_platform_init(int argc, char **argv, const agent_defaults *defaults,
                         agent_config *config);

/* Milliseconds since an arbitrary start (wraps after ~49.7 days). */
uint32_t agent_now_ms(void);

/* Microseconds since an arbitrary start (64-bit: does not wrap in practice). */
uint64_t agent_now_us(void);

/* Bytes of RAM the firmware's statics take as linked (.data + .bss + .noinit), or 0 where the
 * platform cannot tell (POSIX: main.c then counts its own buffers). */
uint32_t agent_platform_static_ram(void);

/* Push the console lines printed so far out (stdout). */
void agent_console_flush(void);

/* Open the MQTT-SN link of `config` and fill *transport. Returns 0; a platform that can
 * tell what went wrong stops with agent_platform_fatal itself (POSIX: no gateway address, the
 * socket, the multicast group); -1 lets the caller report a generic error. */
int agent_transport_open(const agent_config *config, shoal_mqttsn_transport *transport);

/* After a GWINFO/ADVERTISE while searching: talk to the gateway it names (no-op where the
 * link is point to point, e.g. a UART). */
void agent_transport_use_gateway(const uint8_t *gw_add, size_t gw_add_len);

/* Sleep until the link has input or `timeout_ms` passed (POSIX: poll(); bare metal: WFI until
 * a UART byte waits or the deadline). */
void agent_wait(uint32_t timeout_ms);

/* Restart the firmware so that the next boot's config has boot_corr = `corr` and incarnation
 * = `next_incarnation` (POSIX: execv of the same program; Cortex-M: system reset with the
 * facts in .noinit RAM). The caller has disconnected cleanly; returns only on failure. */
void agent_reboot(uint16_t corr, uint32_t next_incarnation);

/* Print "ERROR <what>" on the console and stop with status 2. */
void agent_platform_fatal(const char *what) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_AGENT_PLATFORM_H */
