"""Bit-exact Python models of the gemmlowp fixed-point functions TFLite's int8 kernels use.

Responsible for: exp on negative values, 1/(1+x), (1-x)/(1+x), logistic and tanh on raw
int32 fixed-point values with a given number of integer bits, wrapping and saturating exactly
like the C++ templates, so that compile-time lookup tables match TFLM entry for entry.

Must not: know about tensors or operators.
"""

from __future__ import annotations

from codegen.ops.quantization import (
    INT32_MAX,
    INT32_MIN,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)

_EXP_BARREL = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def _mul(a: int, b: int) -> int:
    return saturating_rounding_doubling_high_mul(a, b)


def saturating_shift_left(x: int, exponent: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent."""
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap_int32(x << exponent)


def _rounding_half_sum(a: int, b: int) -> int:
    total = a + b
    sign = 1 if total >= 0 else -1
    quotient = abs(total + sign) // 2
    return quotient if total + sign >= 0 else -quotient


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """exp(a) for Q0.31 `a` in [-1/4, 0)."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = wrap_int32(a + (1 << 28))
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(
        wrap_int32(_mul(wrap_int32(x4_over_4 + x3), constant_1_over_3) + x2), 1
    )
    return wrap_int32(constant_term + _mul(constant_term, wrap_int32(x + poly)))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """exp(a) for raw `a` <= 0 with `integer_bits` integer bits; result in Q0.31."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod = wrap_int32((a & (one_quarter - 1)) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod, integer_bits) if integer_bits else a_mod
    )
    remainder = wrap_int32(a_mod - a)
    for k, exponent in enumerate(range(-2, 5)):
        if integer_bits > exponent and remainder & (1 << (fractional_bits + exponent)):
            result = _mul(result, _EXP_BARREL[k])
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0 in this format
        if a < clamp:
            result = 0
    return INT32_MAX if a == 0 else result


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = wrap_int32(1515870810 + _mul(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = wrap_int32((1 << 29) - _mul(half_denominator, x))
        x = wrap_int32(x + saturating_shift_left(_mul(x, one_minus), 2))
    return saturating_shift_left(x, 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = wrap_int32(1515870810 + _mul(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = wrap_int32((1 << 29) - _mul(half_denominator, x))
        x = wrap_int32(x + saturating_shift_left(_mul(x, one_minus), 2))
    return saturating_shift_left(wrap_int32(x - (1 << 29)), 2)


def logistic(a: int, integer_bits: int) -> int:
    """gemmlowp::logistic: raw input with `integer_bits`, result in Q0.31."""
    if a == 0:
        return 1 << 30
    positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap_int32(-abs(a)), integer_bits)
    )
    return positive if a > 0 else wrap_int32(INT32_MAX - positive)


def tanh(a: int, integer_bits: int) -> int:
    """gemmlowp::tanh: raw input with `integer_bits`, result in Q0.31."""
    if a == 0:
        return 0
    n = a if a < 0 else wrap_int32(-a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return wrap_int32(-t) if a < 0 else t
