"""Shoal's MicroPython fixed-point arithmetic agrees with the reference model of TFLite's
MultiplyByQuantizedMultiplier (codegen.ops.quantization) on the real MicroPython unix port,
over the whole int32 range: the bytecode helper exactly, and the viper kernels' 16-bit-split
multiply through a one-weight FULLY_CONNECTED whose accumulator is the drawn value.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mp_harness import generate

from codegen.ops.quantization import multiply_by_quantized_multiplier
from host_sdk.micropython import run_micropython

pytestmark = [pytest.mark.gen, pytest.mark.slow]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# The viper kernels sign-extend the activation range from 16 bits; this is its widest.
WIDE_MIN, WIDE_MAX = -32768, 32767

PROBE = """
import sys
from array import array
import shoal_nn
import shoal_nn_viper

p = array("i", (1, 1, 1, 0, {lo}, {hi}))
one = bytes((1,))
y = bytearray(1)
with open(sys.argv[1], "rb") as cases:
    data = cases.read()
for k in range(0, len(data), 12):
    q = data[k : k + 12]
    acc = int.from_bytes(q[0:4], "little")
    acc = acc - (1 << 32) if acc >= (1 << 31) else acc
    m = int.from_bytes(q[4:8], "little")
    s = int.from_bytes(q[8:12], "little")
    s = s - (1 << 32) if s >= (1 << 31) else s
    # acc = bias + 1 * 0: the kernel requantizes exactly the drawn value.
    shoal_nn_viper.fully_connected_s8(p, q, one, bytes(1), y)
    print(shoal_nn.requantize(acc, m, s), y[0])
"""


@st.composite
def requant_cases(draw: st.DrawFn) -> tuple[int, int, int]:
    multiplier = draw(
        st.one_of(st.integers(2**30, INT32_MAX), st.sampled_from((0, 2**30, INT32_MAX)))
    )
    shift = draw(st.integers(-31, 8))
    if shift > 0:
        # TFLite's left shift must not overflow int32 (undefined behaviour in C).
        limit = (2**31 - 1) >> shift
        acc = draw(st.integers(-limit, limit))
    else:
        acc = draw(st.one_of(st.integers(INT32_MIN, INT32_MAX), st.integers(-70000, 70000),
                             st.sampled_from((INT32_MIN, INT32_MAX, -1, 0, 1))))  # fmt: skip
    return acc, multiplier, shift


@st.composite
def near_tie_cases(draw: st.DrawFn) -> tuple[int, int, int]:
    """|acc| * multiplier lands within 2**17 of a rounding tie of the high multiply (a
    product that is 2**30 modulo 2**31), where the rounding nudges of positive and negative
    products differ; random draws almost never get there. |acc| < 2**15 keeps the result
    inside the probe's 16-bit window, so the viper kernel's output shows it exactly."""
    magnitude = 2 * draw(st.integers(0, 2**14 - 1)) + 1  # odd: invertible modulo 2**31
    delta = draw(st.integers(-(2**17), 2**17))
    inverse = pow(magnitude, -1, 2**31)
    # About half of the targets give a multiplier in [2**30, 2**31); the last resort (2**30)
    # still makes a valid, if ordinary, case.
    candidates = ((2**30 + delta + step) * inverse % 2**31 for step in range(64))
    multiplier = next((m for m in candidates if m >= 2**30), 2**30)
    acc = -magnitude if draw(st.booleans()) else magnitude
    return acc, multiplier, 0


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
        HealthCheck.too_slow,
    ],
)
@given(cases=st.lists(st.one_of(requant_cases(), near_tie_cases()), min_size=300, max_size=300))
def test_requantize_matches_reference_on_micropython(
    cases: list[tuple[int, int, int]], tmp_path: Path, shared_models_dir: Path
) -> None:
    # Any model gives us the runtime files; the probe calls the kernels directly.
    generate((shared_models_dir / "tflm_hello.tflite").read_bytes(), tmp_path, "hello")
    (tmp_path / "cases.bin").write_bytes(b"".join(struct.pack("<iii", *c) for c in cases))
    script = tmp_path / "probe.py"
    script.write_text(PROBE.format(lo=WIDE_MIN, hi=WIDE_MAX))
    result = run_micropython(script, path=[tmp_path], args=[str(tmp_path / "cases.bin")])
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().split("\n")
    for (acc, m, s), line in zip(cases, lines, strict=False):
        expected = multiply_by_quantized_multiplier(acc, m, s)
        bytecode, viper = (int(v) for v in line.split())
        assert bytecode == expected, f"bytecode requantize({acc}, {m}, {s})"
        clamped = min(max(expected, WIDE_MIN), WIDE_MAX)
        assert viper == clamped & 0xFF, f"viper requantize({acc}, {m}, {s})"
    assert len([line for line in lines if line]) == len(cases)
