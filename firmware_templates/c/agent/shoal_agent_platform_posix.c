/*
 * shoal_agent_platform_posix.c - the agent platform layer for a native POSIX process.
 *
 * Responsible for: the command line (--gateway HOST:PORT, --client-id ID, --keepalive S, and
 * --boot-corr/--incarnation that a reboot adds), the monotonic clock, the UDP transport
 * (shoal_hal_posix), waiting in poll(), and reboot by execv() of the same program (same
 * process id). Must not: know the agent protocol.
 * Incarnation: a native agent has no storage, so it is random per process start (time, pid,
 * clock) unless --incarnation is given (by a reboot: the previous one + 1).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shoal_agent_platform.h"
#include "shoal_hal_posix.h"

static shoal_posix_udp s_udp;
static int s_argc;
static char **s_argv;
static int s_gateway_given;
static const agent_defaults *s_defaults;

void agent_platform_fatal(const char *what)
{
    printf("ERROR %s\n", what);
    fflush(stdout);
    exit(2);
}

static long parse_long(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        agent_platform_fatal(what);
    }
    return v;
}

uint32_t agent_now_ms(void)
{
    return shoal_posix_now_ms();
}

uint64_t agent_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint32_t agent_platform_static_ram(void)
{
    return 0u; /* a process's statics are not one range; main.c counts its buffers */
}

void agent_console_flush(void)
{
    fflush(stdout);
}

void agent_platform_init(int argc, char **argv, const agent_defaults *defaults,
                         agent_config *config)
{
    const char *client_id = defaults->client_id;
    int incarnation_given = 0;
    size_t hlen = strlen(defaults->gateway_host);
    int t;

    s_argc = argc;
    s_argv = argv;
    s_defaults = defaults;
    memset(config, 0, sizeof(*config));
    if (hlen >= sizeof(config->gateway_host)) {
        hlen = sizeof(config->gateway_host) - 1u;
    }
    memcpy(config->gateway_host, defaults->gateway_host, hlen);
    config->gateway_port = defaults->gateway_port;
    config->keepalive_s = defaults->keepalive_s;
    for (t = 1; t < argc; t += 2) {
        const char *opt = argv[t];
        const char *val = t + 1 < argc ? argv[t + 1] : NULL;
        if (val == NULL) {
            agent_platform_fatal("missing value after an option (--gateway HOST:PORT, "
                                 "--client-id ID, --keepalive S)");
        }
        if (strcmp(opt, "--gateway") == 0) {
            const char *colon = strrchr(val, ':');
            if (colon == NULL || (hlen = (size_t)(colon - val)) == 0u ||
                hlen >= sizeof(config->gateway_host)) {
                agent_platform_fatal("--gateway expects HOST:PORT");
            }
            memcpy(config->gateway_host, val, hlen);
            config->gateway_host[hlen] = '\0';
            config->gateway_port =
                parse_long(colon + 1, "--gateway port must be a number 1..65535");
            s_gateway_given = 1;
        } else if (strcmp(opt, "--client-id") == 0) {
            client_id = val;
        } else if (strcmp(opt, "--boot-corr") == 0) {
            config->boot_corr = (uint16_t)parse_long(val, "--boot-corr expects a number");
        } else if (strcmp(opt, "--incarnation") == 0) {
            config->incarnation = (uint32_t)strtoul(val, NULL, 10);
            incarnation_given = 1;
        } else if (strcmp(opt, "--keepalive") == 0) {
            config->keepalive_s = parse_long(val, "--keepalive expects seconds 1..65535");
        } else {
            agent_platform_fatal(
                "unknown option (accepted: --gateway HOST:PORT, --client-id ID, --keepalive S)");
        }
    }
    if (strlen(client_id) < 1u || strlen(client_id) > 23u) {
        agent_platform_fatal("--client-id must be 1..23 bytes");
    }
    if (config->keepalive_s < 1 || config->keepalive_s > 65535) {
        agent_platform_fatal("--keepalive expects seconds 1..65535");
    }
    memcpy(config->client_id, client_id, strlen(client_id) + 1u);
    /* Discovery only when the spec asks for it and no --gateway was given. */
    config->search = !s_gateway_given && defaults->discover;
    /* No storage on a native agent: the incarnation is random per boot. */
    if (!incarnation_given) {
        config->incarnation =
            (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16) ^ (uint32_t)agent_now_us();
    }
}

int agent_transport_open(const agent_config *config, shoal_mqttsn_transport *transport)
{
    const char *host = config->gateway_host;
    long port = config->gateway_port;
    if (config->search) {
        host = s_defaults->group;
        port = s_defaults->group_port;
    }
    if (host[0] == '\0' || port <= 0 || port > 65535) {
        agent_platform_fatal("no gateway address: give --gateway HOST:PORT");
    }
    if (shoal_posix_udp_open(&s_udp, host, (uint16_t)port, 0u) < 0) {
        agent_platform_fatal("cannot open the UDP socket or resolve the gateway host");
    }
    if (config->search && shoal_posix_udp_join_multicast(&s_udp, s_defaults->group,
                                                         (uint16_t)s_defaults->group_port,
                                                         "0.0.0.0") < 0) {
        agent_platform_fatal("cannot join the discovery multicast group");
    }
    shoal_posix_udp_transport(&s_udp, transport);
    return 0;
}

void agent_transport_use_gateway(const uint8_t *gw_add, size_t gw_add_len)
{
    shoal_posix_udp_use_gateway(&s_udp, gw_add, gw_add_len);
}

void agent_wait(uint32_t timeout_ms)
{
    (void)shoal_posix_udp_wait(&s_udp, timeout_ms);
}

/* Exec this program again with --boot-corr and --incarnation (previous values dropped). */
void agent_reboot(uint16_t corr, uint32_t next_incarnation)
{
    static char *new_argv[64];
    static char corr_text[12];
    static char incarnation_text[12];
    int n = 0;
    int t;
    shoal_posix_udp_close(&s_udp);
    snprintf(corr_text, sizeof(corr_text), "%u", (unsigned)corr);
    snprintf(incarnation_text, sizeof(incarnation_text), "%lu", (unsigned long)next_incarnation);
    for (t = 0; t < s_argc && n < 58; ++t) {
        if (t > 0 && t + 1 < s_argc &&
            (strcmp(s_argv[t], "--boot-corr") == 0 || strcmp(s_argv[t], "--incarnation") == 0)) {
            ++t; /* drop the previous reboot's values */
            continue;
        }
        new_argv[n++] = s_argv[t];
    }
    new_argv[n++] = "--boot-corr";
    new_argv[n++] = corr_text;
    new_argv[n++] = "--incarnation";
    new_argv[n++] = incarnation_text;
    new_argv[n] = NULL;
    fflush(stdout);
    execv(s_argv[0], new_argv);
    printf("ERROR reboot: cannot exec %s\n", s_argv[0]);
    fflush(stdout);
    exit(2);
}
