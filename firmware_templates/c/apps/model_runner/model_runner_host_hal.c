/*
 * model_runner_host_hal.c - shoal_hal.h for the model runner built as a host process.
 *
 * Responsible for: the platform contract (shoal_hal.h) on a POSIX host, so model_runner.c
 * builds unchanged for the `native` board: the console UART is stdout/stdin, the clock and
 * the profiling counter are CLOCK_MONOTONIC, exit is exit(3) after flushing stdout.
 * Must not: do networking (hal/posix/shoal_hal_posix.c is the MQTT-SN transport) or anything
 * the runner does not need. Used by host_sdk.build.model_firmware.build_host_runner.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "shoal_hal.h"

static struct timespec s_started;

static uint64_t shoal_host_ns_since_start(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - s_started.tv_sec) * 1000000000u +
           (uint64_t)now.tv_nsec - (uint64_t)s_started.tv_nsec;
}

void shoal_hal_init(void)
{
    /* Line-buffered even into a pipe, so the lines before a crash reach the host. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    clock_gettime(CLOCK_MONOTONIC, &s_started);
}

void shoal_hal_uart_putc(uint8_t byte)
{
    putchar(byte);
}

int shoal_hal_uart_getc(void)
{
    return -1; /* the runner reads nothing: its inputs are compiled in */
}

void shoal_hal_uart_write(const uint8_t *data, size_t len)
{
    fwrite(data, 1, len, stdout);
}

uint32_t shoal_hal_now_ms(void)
{
    return (uint32_t)(shoal_host_ns_since_start() / 1000000u);
}

/* Nanoseconds since shoal_hal_init() (wraps after ~4.3 s; profile deltas stay right). */
uint32_t shoal_hal_cycles(void)
{
    return (uint32_t)shoal_host_ns_since_start();
}

void shoal_hal_idle(void)
{
}

void shoal_hal_exit(int code)
{
    fflush(stdout);
    exit(code);
}
