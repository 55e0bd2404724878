/*
 * shoal_model_runner.h - what model_runner.c and its generated vectors file share.
 *
 * Responsible for: the schedule step type, the padded input row length and the declarations
 * of the two arrays the vectors file (written by host_sdk.build.model_firmware) defines.
 * Must not: name a particular model; shoal_model_runner_config.h (generated) does that.
 * Ownership: the vectors are const (flash); the runner only reads them.
 */
#ifndef SHOAL_MODEL_RUNNER_H
#define SHOAL_MODEL_RUNNER_H

#include <stdint.h>

#include "shoal_model_runner_config.h"

typedef struct {
    uint16_t input_index; /* row of shoal_runner_inputs to invoke on */
    uint8_t reset_before; /* 1: call the model's reset first */
} shoal_runner_step_t;

/* Row length rounded up to 16 bytes so every vector starts aligned (float inputs). */
#define SHOAL_RUNNER_INPUT_STRIDE (((SHOAL_RUNNER_INPUT_BYTES) + 15u) / 16u * 16u)

extern const uint8_t shoal_runner_inputs[SHOAL_RUNNER_INPUT_COUNT][SHOAL_RUNNER_INPUT_STRIDE];
extern const shoal_runner_step_t shoal_runner_steps[SHOAL_RUNNER_STEP_COUNT];

#endif /* SHOAL_MODEL_RUNNER_H */
