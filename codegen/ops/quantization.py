"""Compile-time fixed-point arithmetic, computed exactly as TFLite/TFLM prepare it.

Responsible for: turning real multipliers into (int32 multiplier, shift) pairs in double
precision, fused-activation ranges in LSB, SAME/VALID padding, and a bit-exact Python model of
the runtime fixed-point helpers (used by tests and available to other backends).

Must not: know about operators, tensors or output files.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def round_half_away(value: float) -> int:
    """Round to nearest, ties away from zero (C `round`), as TfLiteRound does."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value)) if value == value else 0


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """Split a real multiplier into (q31 multiplier, shift) with real = q * 2**(shift - 31).

    Positive shift means left shift. Done in double precision like TFLite's QuantizeMultiplier;
    multipliers too small to represent become (0, 0).
    """
    if real_multiplier == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(fraction * float(1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_greater_than_one(real_multiplier: float) -> tuple[int, int]:
    """`quantize_multiplier` for multipliers > 1: the shift is a non-negative left shift."""
    q_fixed, shift = quantize_multiplier(real_multiplier)
    if shift < 0:
        raise ValueError(f"multiplier {real_multiplier} is not greater than one")
    return q_fixed, shift


def quantize_float32(value: float, scale: float, zero_point: int) -> int:
    """zero_point + round(value / scale) with the division in float32, as TFLite does."""
    quotient = float(np.float32(value) / np.float32(scale))
    return zero_point + round_half_away(quotient)


def activation_range(
    activation: str, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127
) -> tuple[int, int]:
    """The [min, max] output range in LSB for a fused activation on a quantized output."""
    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize_float32(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        return (
            max(qmin, quantize_float32(0.0, scale, zero_point)),
            min(qmax, quantize_float32(6.0, scale, zero_point)),
        )
    if activation == "RELU_N1_TO_1":
        return (
            max(qmin, quantize_float32(-1.0, scale, zero_point)),
            min(qmax, quantize_float32(1.0, scale, zero_point)),
        )
    raise ValueError(f"unsupported fused activation {activation}")


SUPPORTED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def conv_output_size(
    padding: str, in_size: int, filter_size: int, stride: int, dilation: int
) -> int:
    """Output length along one axis for SAME/VALID padding (elements)."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective) // stride


def conv_padding(in_size: int, filter_size: int, stride: int, dilation: int, out_size: int) -> int:
    """Leading padding (elements) along one axis, as TFLite computes it from the output size."""
    effective = (filter_size - 1) * dilation + 1
    total = (out_size - 1) * stride + effective - in_size
    return max(total, 0) // 2


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    # C integer division truncates toward zero.
    quotient = abs(total) >> 31
    return quotient if total >= 0 else -quotient


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp's RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def wrap_int32(value: int) -> int:
    return ((value + 2**31) % 2**32) - 2**31


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier (double rounding), on int32 values."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(wrap_int32(x * (1 << left)), multiplier), right
    )
