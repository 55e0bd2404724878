"""Elementwise int8 activations compiled to 256-entry lookup tables.

Responsible for: RELU, RELU6, LEAKY_RELU, LOGISTIC, TANH and HARD_SWISH on int8 tensors. An
int8 input has only 256 values, so each op's output for every input is computed here, at
compile time, with exactly TFLM's integer arithmetic (requantization, gemmlowp fixed point),
and the device only looks it up. Kernel: `lut_s8` (in place when the input dies here).

Must not: place tensors in memory.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.ir.model import Model, Operator, Tensor
from codegen.ops.base import (
    ArrayRef,
    ConstArray,
    OpPlan,
    operand,
    per_tensor_problems,
    tensor_problems,
)
from codegen.ops.gemmlowp import logistic, tanh
from codegen.ops.quantization import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away,
    rounding_divide_by_pot,
)

INPUT_INTEGER_BITS = 4  # TFLM's int8 LOGISTIC/TANH work on Q4.27 inputs
INT8_VALUES = range(-128, 128)


def _clamp8(v: int) -> int:
    return max(-128, min(127, v))


def check_unary(model: Model, op: Operator) -> list[str]:
    """int8 in, int8 out, per-tensor quantization."""
    x = operand(model, op, 0)
    if x is None:
        return ["input missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    problems += tensor_problems(out, "output", ("int8",)) + per_tensor_problems(out, "output")
    if not problems and x.element_count != out.element_count:
        problems.append("input and output sizes differ")
    return problems


def _quant(t: Tensor) -> tuple[float, int]:
    assert t.quantization is not None
    return float(t.quantization.scale), t.quantization.zero_point


def relu_table(x: Tensor, out: Tensor) -> list[int]:
    """TFLM ReluQuantized: requantize (x - zp_in) by s_in/s_out, clamp below at zp_out."""
    s_in, zp_in = _quant(x)
    s_out, zp_out = _quant(out)
    m, e = quantize_multiplier(s_in / s_out)
    low = max(-128, zp_out)  # roundf(0 / scale) == 0
    return [
        max(low, min(127, zp_out + multiply_by_quantized_multiplier(v - zp_in, m, e)))
        for v in INT8_VALUES
    ]


def relu6_table(x: Tensor) -> list[int]:
    """TFLM Relu6Quantized: clamp the raw input to [zp, quantize(6.0)] (no requantization)."""
    s_in, zp_in = _quant(x)
    six = _clamp8(zp_in + round_half_away(float(np.float32(6.0) / np.float32(s_in))))
    return [min(six, max(zp_in, v)) for v in INT8_VALUES]


def leaky_relu_table(x: Tensor, out: Tensor, alpha: float) -> list[int]:
    """TFLM QuantizeLeakyRelu: identity or alpha multiplier chosen by the input's sign."""
    s_in, zp_in = _quant(x)
    s_out, zp_out = _quant(out)
    m_alpha, e_alpha = quantize_multiplier(s_in * float(alpha) / s_out)
    m_id, e_id = quantize_multiplier(s_in / s_out)
    table = []
    for v in INT8_VALUES:
        d = v - zp_in
        m, e = (m_id, e_id) if d >= 0 else (m_alpha, e_alpha)
        table.append(_clamp8(zp_out + multiply_by_quantized_multiplier(d, m, e)))
    return table


def _q4_input_params(s_in: float) -> tuple[int, int, int]:
    """(multiplier, left shift, input range radius) as TFLM's int8 LOGISTIC/TANH Prepare."""
    real = float(s_in) * float(1 << (31 - INPUT_INTEGER_BITS))
    fraction, left_shift = math.frexp(real)
    multiplier = round_half_away(fraction * float(1 << 31))
    radius = math.floor(
        ((1 << INPUT_INTEGER_BITS) - 1) * float(1 << (31 - INPUT_INTEGER_BITS)) / (1 << left_shift)
    )
    return multiplier, left_shift, radius


def logistic_table(x: Tensor) -> list[int]:
    s_in, zp_in = _quant(x)
    multiplier, left_shift, radius = _q4_input_params(s_in)
    table = []
    for v in INT8_VALUES:
        d = v - zp_in
        if d <= -radius:
            table.append(-128)
        elif d >= radius:
            table.append(127)
        else:
            q4 = multiply_by_quantized_multiplier(d, multiplier, left_shift)
            q0 = logistic(q4, INPUT_INTEGER_BITS)
            table.append(_clamp8(rounding_divide_by_pot(q0, 31 - 8) - 128))
    return table


def tanh_table(x: Tensor) -> list[int]:
    s_in, zp_in = _quant(x)
    multiplier, left_shift, radius = _q4_input_params(s_in)
    table = []
    for v in INT8_VALUES:
        d = v - zp_in
        if d <= -radius:
            table.append(-128)
        elif d >= radius:
            table.append(127)
        else:
            q4 = multiply_by_quantized_multiplier(d, multiplier, left_shift)
            table.append(_clamp8(rounding_divide_by_pot(tanh(q4, INPUT_INTEGER_BITS), 31 - 7)))
    return table


def _srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16."""
    if a == b == -32768:
        return 32767
    ab = a * b
    total = ab + ((1 << 14) if ab >= 0 else 1 - (1 << 14))
    quotient = abs(total) >> 15
    return quotient if total >= 0 else -quotient


def _sdhm16(a: int, b: int) -> int:
    """TFLite SaturatingDoublingHighMul on int16 (truncating, no rounding nudge)."""
    if a == b == -32768:
        return 32767
    ab = a * b
    quotient = abs(ab) >> 15
    return quotient if ab >= 0 else -quotient


def _saturating_left_shift16(value: int, amount: int) -> int:
    return max(-32768, min(32767, value * (1 << amount)))


def _int16_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier then TFLite's DownScaleInt32ToInt16Multiplier."""
    q, exponent = quantize_multiplier(real)
    if q >= 2**31 - 1 - (1 << 15):
        return 32767, exponent
    return (q + (1 << 15)) >> 16, exponent


def hard_swish_table(x: Tensor, out: Tensor) -> list[int]:
    """TFLite's reference int8 HardSwish (16-bit fixed point), scales prepared in float32."""
    s_in, zp_in = _quant(x)
    s_out, zp_out = _quant(out)
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(s_in)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_mult, out_exp = _int16_multiplier(float(hires_input_scale / np.float32(s_out)))
    relu_mult, relu_exp = _int16_multiplier(float(hires_input_scale / reluish_scale))
    table = []
    for v in INT8_VALUES:
        hires = (v - zp_in) * 128
        preshift_output = _srdhm16(hires, out_mult)
        reluish = hires
        if relu_exp > 0:
            reluish = _saturating_left_shift16(reluish, relu_exp - 1)
        reluish = _srdhm16(reluish, relu_mult)
        if relu_exp > 0:
            reluish = _saturating_left_shift16(reluish, 1)
        if relu_exp < 0:
            reluish = rounding_divide_by_pot(reluish, -relu_exp)
        reluish = (reluish + (1 << 15)) >> 1
        value = rounding_divide_by_pot(_sdhm16(reluish, preshift_output), -out_exp)
        table.append(_clamp8(value + zp_out))
    return table


def lut_plan(op: Operator, out: Tensor, table: list[int], macs: int = 0) -> OpPlan:
    """The `lut_s8` call: output[i] = table[input[i] + 128]."""
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="lut_s8",
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=(("size", out.element_count), ("table", ArrayRef("table"))),
        arrays=(ConstArray("table", "int8", tuple(table)),),
        macs=macs,
        in_place=True,
    )
