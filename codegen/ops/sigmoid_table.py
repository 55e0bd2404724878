"""The sigmoid table the int16 LSTM gates interpolate, derived from the function itself.

TFLite's int16 logistic and tanh (which the int8 LSTM uses for its gates) interpolate linearly
between 256 samples of sigmoid(x), x = i / 24, in unsigned Q0.16. Linear interpolation of a
concave curve falls below it between samples, so each sample is raised by half the
interpolation error at its interval's midpoint; the last entry is the saturation value 65535.
The C kernel (`firmware_templates/c/nn/shoal_nn_lstm_impl.h`) holds these values as a constant
array; a unit test checks that the array equals `sigmoid_table_q16()`.
"""

from __future__ import annotations

import math

ENTRIES = 256
STEP = 1.0 / 24.0  # x distance between samples
SCALE = 65536.0  # Q0.16


def _scaled_sigmoid(x: float) -> float:
    return SCALE / (1.0 + math.exp(-x))


def _round_half_away(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def sigmoid_table_q16() -> tuple[int, ...]:
    """256 unsigned Q0.16 samples of sigmoid(i / 24), midpoint-corrected for interpolation."""
    table = []
    for index in range(ENTRIES - 1):
        x = index * STEP
        here, after = _scaled_sigmoid(x), _scaled_sigmoid(x + STEP)
        midpoint_error = _scaled_sigmoid(x + STEP / 2) - (here + after) / 2
        table.append(min(_round_half_away(here + midpoint_error / 2), 65535))
    table.append(65535)
    return tuple(table)
