"""QUANTIZE: float32 -> int8 (float input edge) and int8 -> int8 requantization.

Responsible for: the float scale/zero point (division in float32, round half away from zero,
as TFLite) or the requantization multiplier. Kernels: `quantize_f32_s8`, `requantize_s8`.

Must not: place tensors in memory.
"""

from __future__ import annotations

from codegen.ir.model import Model, Operator
from codegen.ops.base import OpPlan, operand, per_tensor_problems, tensor_problems
from codegen.ops.quantization import quantize_multiplier

OP = "QUANTIZE"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    x = operand(model, op, 0)
    if x is None:
        return ["input missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("float32", "int8"))
    problems += tensor_problems(out, "output", ("int8",)) + per_tensor_problems(out, "output")
    problems += per_tensor_problems(x, "input")
    return problems


def plan(model: Model, op: Operator) -> OpPlan:
    x = model.tensors[op.inputs[0]]
    out = model.tensors[op.outputs[0]]
    assert out.quantization is not None
    if x.dtype == "float32":
        return OpPlan(
            op_index=op.index,
            op=op.op,
            kernel="quantize_f32_s8",
            inputs=(op.inputs[0],),
            outputs=(op.outputs[0],),
            params=(
                ("size", out.element_count),
                ("scale", out.quantization.scale),
                ("zero_point", out.quantization.zero_point),
            ),
        )
    assert x.quantization is not None
    multiplier, shift = quantize_multiplier(
        float(x.quantization.scale) / float(out.quantization.scale)
    )
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="requantize_s8",
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=(
            ("size", out.element_count),
            ("input_zero_point", x.quantization.zero_point),
            ("output_zero_point", out.quantization.zero_point),
            ("multiplier", multiplier),
            ("shift", shift),
        ),
        in_place=True,
    )
