/*
 * hal_selftest.c - smoke firmware for a platform's shoal_hal.h implementation.
 *
 * Responsible for: proving on a (virtual) board that startup, the UART in both directions,
 * the millisecond clock, the profiling counter and exit codes work. Protocol on the UART:
 *   "shoal-selftest board=<name> echo_lines=<N>"      banner, once
 *   for each of N received lines: "echo: <LINE IN UPPER CASE>"
 *   "clock: waiting <W> ms", then after W ms by shoal_hal_now_ms():
 *   "clock: now_ms <a> -> <b>, cycles advanced <c>"
 *   "check <name>: ok|FAILED ..."                    one per built-in check
 *   "<P> passed, <F> failed"
 * and then it exits with status F. Defining SHOAL_SELFTEST_FORCED_FAILURES=k adds k checks that
 * fail on purpose (to prove failures reach the host's exit status).
 * Must not: depend on a particular board; only shoal_hal.h and the C library.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shoal_hal.h"

#ifndef SHOAL_SELFTEST_ECHO_LINES
#define SHOAL_SELFTEST_ECHO_LINES 2
#endif
#ifndef SHOAL_SELFTEST_FORCED_FAILURES
#define SHOAL_SELFTEST_FORCED_FAILURES 0
#endif
#ifndef SHOAL_SELFTEST_CLOCK_WAIT_MS
#define SHOAL_SELFTEST_CLOCK_WAIT_MS 10u
#endif
#ifndef SHOAL_BOARD_NAME
#define SHOAL_BOARD_NAME "unknown"
#endif

#define LINE_CAPACITY 128u
/* Upper bound on clock polls, so a dead SysTick fails a check instead of hanging the test. */
#define CLOCK_POLL_LIMIT 200000000ul

static unsigned checks_passed;
static unsigned checks_failed;

/* Initialised data and zeroed data: wrong values mean the reset handler did not copy/zero. */
static volatile uint32_t initialised_word = 0x5EA1C0DEu;
static volatile uint32_t zeroed_words[4];

static void report(const char *name, int ok, const char *detail)
{
    if (ok) {
        checks_passed++;
        printf("check %s: ok\n", name);
    } else {
        checks_failed++;
        printf("check %s: FAILED %s\n", name, detail);
    }
}

/* Read one line (without its '\n' or '\r') into line; returns its length. Idles between bytes. */
static size_t read_line(char *line, size_t capacity)
{
    size_t length = 0;
    for (;;) {
        int byte = shoal_hal_uart_getc();
        if (byte < 0) {
            shoal_hal_idle();
            continue;
        }
        if (byte == '\n') {
            break;
        }
        if (byte != '\r' && length + 1u < capacity) {
            line[length++] = (char)byte;
        }
    }
    line[length] = '\0';
    return length;
}

static void echo_lines(void)
{
    char line[LINE_CAPACITY];
    int remaining;
    for (remaining = SHOAL_SELFTEST_ECHO_LINES; remaining > 0; --remaining) {
        size_t length = read_line(line, sizeof(line));
        size_t i;
        for (i = 0; i < length; ++i) {
            if (line[i] >= 'a' && line[i] <= 'z') {
                line[i] = (char)(line[i] - 'a' + 'A');
            }
        }
        printf("echo: %s\n", line);
    }
}

static void check_memcpy(void)
{
    uint8_t source[37];
    uint8_t destination[37];
    size_t i;
    for (i = 0; i < sizeof(source); ++i) {
        source[i] = (uint8_t)(i * 7u + 3u);
    }
    memcpy(destination, source, sizeof(source));
    report("memcpy", memcmp(destination, source, sizeof(source)) == 0, "copy differs");
}

static void check_data_bss(void)
{
    int zeroed = zeroed_words[0] == 0u && zeroed_words[1] == 0u && zeroed_words[2] == 0u &&
                 zeroed_words[3] == 0u;
    report("data_bss", initialised_word == 0x5EA1C0DEu && zeroed, ".data or .bss not set up");
}

static void check_float(void)
{
    volatile float a = 1.5f;
    volatile float b = -2.25f;
    float product = a * b;
    /* Exactly representable, so equality is the right test. */
    report("float", product == -3.375f && a / b < -0.66f && a / b > -0.67f, "wrong result");
}

static void check_clock(void)
{
    uint32_t start_ms;
    uint32_t start_cycles;
    uint32_t now_ms;
    uint32_t end_cycles;
    unsigned long polls;

    printf("clock: waiting %lu ms\n", (unsigned long)SHOAL_SELFTEST_CLOCK_WAIT_MS);
    start_ms = shoal_hal_now_ms();
    start_cycles = shoal_hal_cycles();
    now_ms = start_ms;
    for (polls = 0; polls < CLOCK_POLL_LIMIT; ++polls) {
        now_ms = shoal_hal_now_ms();
        if ((uint32_t)(now_ms - start_ms) >= SHOAL_SELFTEST_CLOCK_WAIT_MS) {
            break;
        }
    }
    end_cycles = shoal_hal_cycles();
    printf("clock: now_ms %lu -> %lu, cycles advanced %lu\n", (unsigned long)start_ms,
           (unsigned long)now_ms, (unsigned long)(uint32_t)(end_cycles - start_cycles));
    report("now_ms", (uint32_t)(now_ms - start_ms) >= SHOAL_SELFTEST_CLOCK_WAIT_MS,
           "clock did not advance");
    report("cycles", (uint32_t)(end_cycles - start_cycles) > 0u, "counter did not advance");
}

int main(void)
{
    int forced;

    shoal_hal_init();
    printf("shoal-selftest board=%s echo_lines=%d\n", SHOAL_BOARD_NAME,
           SHOAL_SELFTEST_ECHO_LINES);
    echo_lines();
    check_memcpy();
    check_data_bss();
    check_float();
    check_clock();
    for (forced = 0; forced < SHOAL_SELFTEST_FORCED_FAILURES; ++forced) {
        report("forced", 0, "on purpose (SHOAL_SELFTEST_FORCED_FAILURES)");
    }
    printf("%u passed, %u failed\n", checks_passed, checks_failed);
    shoal_hal_exit((int)checks_failed);
}
