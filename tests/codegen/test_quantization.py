"""Compile-time quantization arithmetic and the C fixed-point helpers.

The Python helpers are checked against exact rational arithmetic (hypothesis); the C helpers
in firmware_templates/c/nn/shoal_fixedpoint.h are compiled with gcc and checked against the
Python helpers value by value.
"""

from __future__ import annotations

import ctypes
import subprocess
from fractions import Fraction
from math import floor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.emit.c_model import NN_DIR
from codegen.ops.quantization import (
    INT32_MAX,
    INT32_MIN,
    activation_range,
    conv_output_size,
    conv_padding,
    multiply_by_quantized_multiplier,
    quantize_float32,
    quantize_multiplier,
    round_half_away,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from codegen.ops.softmax import softmax_input_params

int32s = st.integers(INT32_MIN, INT32_MAX)


@pytest.mark.unit
@given(st.floats(min_value=2.0**-30, max_value=2.0**30, allow_nan=False))
def test_quantize_multiplier_is_within_half_an_lsb(real: float) -> None:
    q, shift = quantize_multiplier(real)
    assert 2**30 <= q < 2**31
    error = abs(Fraction(q) * Fraction(2) ** (shift - 31) - Fraction(real))
    assert error <= Fraction(2) ** (shift - 32)


@pytest.mark.unit
def test_quantize_multiplier_edge_cases() -> None:
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1.0) == (2**30, 1)
    assert quantize_multiplier(0.5) == (2**30, 0)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # below 2**-31: flushed to zero, as TFLite
    # A fraction that rounds up to 2**31 moves into the next binade.
    assert quantize_multiplier(1.0 - 2.0**-40) == (2**30, 1)


@pytest.mark.unit
@given(int32s, int32s)
def test_srdhm_is_round_half_up_of_the_doubled_high_product(a: int, b: int) -> None:
    expected = INT32_MAX if a == b == INT32_MIN else floor(Fraction(a * b + 2**30, 2**31))
    assert saturating_rounding_doubling_high_mul(a, b) == expected


@pytest.mark.unit
@given(int32s, st.integers(0, 31))
def test_rounding_divide_by_pot_rounds_half_away_from_zero(x: int, exponent: int) -> None:
    exact = Fraction(x, 2**exponent)
    magnitude = floor(abs(exact) + Fraction(1, 2))
    assert rounding_divide_by_pot(x, exponent) == (magnitude if exact >= 0 else -magnitude)


@pytest.mark.unit
@given(st.integers(-(2**24), 2**24), st.floats(min_value=2.0**-20, max_value=100.0))
def test_requantize_is_within_one_lsb_of_exact(x: int, real: float) -> None:
    q, shift = quantize_multiplier(real)
    exact = Fraction(x) * Fraction(q) * Fraction(2) ** (shift - 31)
    if abs(exact) < 2**30:
        assert abs(multiply_by_quantized_multiplier(x, q, shift) - exact) <= 1


@pytest.mark.unit
def test_round_half_away_and_float32_quantize() -> None:
    assert [round_half_away(v) for v in (0.5, 1.5, -0.5, -2.5, 2.4999)] == [1, 2, -1, -3, 2]
    # 0.1 / 0.1 in float32 is exactly 1.
    assert quantize_float32(0.1, 0.1, 3) == 4


@pytest.mark.unit
def test_activation_ranges() -> None:
    assert activation_range("NONE", 0.05, 3) == (-128, 127)
    assert activation_range("RELU", 0.05, 3) == (3, 127)
    assert activation_range("RELU6", 0.05, -128) == (-128, -8)  # 6 / 0.05 = 120 LSB
    assert activation_range("RELU_N1_TO_1", 0.1, 0) == (-10, 10)
    with pytest.raises(ValueError):
        activation_range("TANH", 0.1, 0)


@pytest.mark.unit
def test_padding_matches_tflite_same_and_valid() -> None:
    assert conv_output_size("SAME", 49, 10, 2, 1) == 25
    assert conv_padding(49, 10, 2, 1, 25) == 4  # total 9: 4 before, 5 after
    assert conv_output_size("VALID", 10, 3, 1, 2) == 6
    assert conv_padding(10, 3, 1, 2, 6) == 0


@pytest.mark.unit
def test_softmax_parameters_for_a_typical_input_scale() -> None:
    multiplier, left_shift, diff_min = softmax_input_params(1.0, 0.1446925)
    real = Fraction(multiplier) * Fraction(2) ** (left_shift - 31)
    assert abs(real - Fraction(0.1446925) * 2**26) < Fraction(2) ** (left_shift - 31)
    assert diff_min < 0


# --- the C helpers ----------------------------------------------------------------------

C_WRAPPERS = r"""
#include "shoal_fixedpoint.h"
int32_t w_srdhm(int32_t a, int32_t b) { return shoal_srdhm(a, b); }
int32_t w_rdbp(int32_t x, int32_t e) { return shoal_rounding_divide_by_pot(x, (int)e); }
int32_t w_requantize(int32_t x, int32_t m, int32_t s) { return shoal_requantize(x, m, s); }
int32_t w_round(float v) { return shoal_round_to_int32(v); }
"""


@pytest.fixture(scope="module")
def fixedpoint_c(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    root = tmp_path_factory.mktemp("fixedpoint")
    source = root / "wrappers.c"
    source.write_text(C_WRAPPERS)
    library = root / "libfixedpoint.so"
    cmd = [
        "gcc",
        "-O2",
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-shared",
        "-fPIC",
        f"-I{NN_DIR}",
        "-o",
        str(library),
        str(source),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    lib = ctypes.CDLL(str(library))
    for name in ("w_srdhm", "w_rdbp", "w_requantize"):
        getattr(lib, name).restype = ctypes.c_int32
        getattr(lib, name).argtypes = [ctypes.c_int32] * (3 if name == "w_requantize" else 2)
    lib.w_round.restype = ctypes.c_int32
    lib.w_round.argtypes = [ctypes.c_float]
    return lib


@pytest.mark.gen
@settings(max_examples=300)
@given(int32s, int32s, st.integers(0, 31), st.integers(-31, 8))
def test_c_fixedpoint_matches_python(
    fixedpoint_c: ctypes.CDLL, a: int, b: int, exponent: int, shift: int
) -> None:
    assert fixedpoint_c.w_srdhm(a, b) == saturating_rounding_doubling_high_mul(a, b)
    assert fixedpoint_c.w_rdbp(a, exponent) == rounding_divide_by_pot(a, exponent)
    multiplier = abs(b) // 2 + 2**30 if b != INT32_MIN else 2**30
    multiplier = min(multiplier, INT32_MAX)
    assert fixedpoint_c.w_requantize(a, multiplier, shift) == multiply_by_quantized_multiplier(
        a, multiplier, shift
    )


@pytest.mark.gen
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_c_round_matches_round_half_away(fixedpoint_c: ctypes.CDLL, value: float) -> None:
    expected = max(INT32_MIN, min(INT32_MAX, round_half_away(value)))
    if abs(value) >= 2.0**31:
        expected = INT32_MAX if value > 0 else INT32_MIN
    assert fixedpoint_c.w_round(np.float32(value)) == expected


@pytest.mark.unit
def test_nn_dir_holds_the_kernels() -> None:
    assert (Path(NN_DIR) / "shoal_fixedpoint.h").is_file()
