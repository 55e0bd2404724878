/*
 * model_runner.c - run a Shoal-generated model on a board over embedded test vectors.
 *
 * Responsible for: calling the generated model's reset/invoke on the input vectors that
 * host_sdk.build.model_firmware embedded at build time, and printing each output in hex, then
 * exiting with 0 (or 1 when an invoke fails). Vectors are compiled in rather than sent over the
 * UART, so large inputs cost no UART round trips and the run needs no host interaction.
 * Must not: know a particular model; everything model-specific comes from
 * shoal_model_runner_config.h (generated next to the vectors), which includes the generated
 * model header and defines:
 *   SHOAL_RUNNER_ARENA_BYTES, SHOAL_RUNNER_INPUT_BYTES, SHOAL_RUNNER_OUTPUT_BYTES (bytes)
 *   SHOAL_RUNNER_INPUT_COUNT, SHOAL_RUNNER_STEP_COUNT
 *   shoal_runner_model_invoke, shoal_runner_model_reset, shoal_runner_model_set_profiler
 *   (the model's <prefix>_invoke, <prefix>_reset, <prefix>_set_profiler)
 * and the vectors file, which defines shoal_runner_inputs and shoal_runner_steps
 * (declared in shoal_model_runner.h).
 *
 * UART protocol (one line each, '\n' terminated):
 *   "shoal-model-runner board=<name> steps=<N> arena=<bytes>"     banner
 *   "reset <k>"                                                     before step k when asked
 *   "out <k> <hex of SHOAL_RUNNER_OUTPUT_BYTES bytes>"              after step k
 *   "prof <k> op=<op index> ticks=<shoal_hal_cycles delta>"         per operator of step k
 *   "error <k> status=<s>"                                          a failed invoke, then exit 1
 *   "done steps=<N>"                                                then exit 0
 * Profile ticks are the HAL's profiling counter (on QEMU: SysTick input clock ticks, which
 * follow host time, or executed instructions under -icount): they show which layer dominates.
 *
 * When built with -DSHOAL_RUNNER_ARENA_FILL=<seed>, the arena is first filled with pseudo-random
 * bytes (xorshift32 from <seed>): outputs then prove the model does not rely on a zeroed arena,
 * only on its reset (shoal verify builds it so).
 *
 * shoal_runner_bench_reset() and shoal_runner_bench_reset_invoke() touch no peripheral, so
 * host_sdk.hil.icount can count the instructions of one reset + inference (subtract the two).
 */
#include <stdint.h>
#include <stdio.h>

#include "shoal_hal.h"
#include "shoal_model_runner.h"

#ifndef SHOAL_BOARD_NAME
#define SHOAL_BOARD_NAME "unknown"
#endif

/* Operators above this index are still run, only not profiled. */
#define SHOAL_RUNNER_MAX_PROFILED_OPS 256

#define SHOAL_RUNNER_ARENA_ALLOC ((SHOAL_RUNNER_ARENA_BYTES) > 0 ? (SHOAL_RUNNER_ARENA_BYTES) : 1)
#define SHOAL_RUNNER_OUTPUT_ALLOC \
    ((SHOAL_RUNNER_OUTPUT_BYTES) > 0 ? (SHOAL_RUNNER_OUTPUT_BYTES) : 1)

int shoal_runner_bench_reset(void);
int shoal_runner_bench_reset_invoke(void);

static uint8_t s_arena[SHOAL_RUNNER_ARENA_ALLOC] __attribute__((aligned(16)));
static uint8_t s_output[SHOAL_RUNNER_OUTPUT_ALLOC] __attribute__((aligned(16)));

typedef struct {
    uint32_t started_at;
    uint32_t ticks[SHOAL_RUNNER_MAX_PROFILED_OPS];
    uint8_t ran[SHOAL_RUNNER_MAX_PROFILED_OPS];
} shoal_runner_profile_t;

static shoal_runner_profile_t s_profile;

static void shoal_runner_on_op(int op_index, int phase, void *user)
{
    shoal_runner_profile_t *profile = (shoal_runner_profile_t *)user;
    const uint32_t now = shoal_hal_cycles();
    if (op_index < 0 || op_index >= SHOAL_RUNNER_MAX_PROFILED_OPS) {
        return;
    }
    if (phase == 0) {
        profile->started_at = now;
    } else {
        profile->ticks[op_index] = now - profile->started_at;
        profile->ran[op_index] = 1u;
    }
}

static void shoal_runner_print_hex(const uint8_t *data, uint32_t length)
{
    static const char digits[] = "0123456789abcdef";
    uint32_t i;
    for (i = 0; i < length; ++i) {
        putchar(digits[data[i] >> 4]);
        putchar(digits[data[i] & 15u]);
    }
}

static void shoal_runner_print_profile(uint32_t step)
{
    int op;
    for (op = 0; op < SHOAL_RUNNER_MAX_PROFILED_OPS; ++op) {
        if (s_profile.ran[op]) {
            printf("prof %lu op=%d ticks=%lu\n", (unsigned long)step, op,
                   (unsigned long)s_profile.ticks[op]);
            s_profile.ran[op] = 0u;
        }
    }
}

int shoal_runner_bench_reset(void)
{
    shoal_runner_model_reset(s_arena);
    return 0;
}

int shoal_runner_bench_reset_invoke(void)
{
    shoal_runner_model_reset(s_arena);
    return shoal_runner_model_invoke(shoal_runner_inputs[0], s_output, s_arena);
}

#ifdef SHOAL_RUNNER_ARENA_FILL
static void shoal_runner_fill_arena(uint32_t seed)
{
    uint32_t x = seed | 1u; /* xorshift32 must not start at 0 */
    uint32_t i;
    for (i = 0; i < (uint32_t)sizeof(s_arena); ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s_arena[i] = (uint8_t)(x >> 24);
    }
}
#endif

int main(void)
{
    uint32_t step;
    shoal_hal_init();
#ifdef SHOAL_RUNNER_ARENA_FILL
    shoal_runner_fill_arena((uint32_t)(SHOAL_RUNNER_ARENA_FILL));
#endif
    printf("shoal-model-runner board=%s steps=%lu arena=%lu\n", SHOAL_BOARD_NAME,
           (unsigned long)SHOAL_RUNNER_STEP_COUNT, (unsigned long)SHOAL_RUNNER_ARENA_BYTES);
    shoal_runner_model_set_profiler(shoal_runner_on_op, &s_profile);
    for (step = 0; step < SHOAL_RUNNER_STEP_COUNT; ++step) {
        const shoal_runner_step_t *current = &shoal_runner_steps[step];
        int status;
        if (current->reset_before) {
            shoal_runner_model_reset(s_arena);
            printf("reset %lu\n", (unsigned long)step);
        }
        status = shoal_runner_model_invoke(shoal_runner_inputs[current->input_index], s_output,
                                           s_arena);
        if (status != 0) {
            printf("error %lu status=%d\n", (unsigned long)step, status);
            shoal_hal_exit(1);
        }
        printf("out %lu ", (unsigned long)step);
        shoal_runner_print_hex(s_output, SHOAL_RUNNER_OUTPUT_BYTES);
        putchar('\n');
        shoal_runner_print_profile(step);
    }
    printf("done steps=%lu\n", (unsigned long)SHOAL_RUNNER_STEP_COUNT);
    shoal_hal_exit(0);
}
