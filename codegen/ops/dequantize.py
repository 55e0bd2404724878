"""DEQUANTIZE: int8 -> float32 (float output edge). Kernel: `dequantize_s8_f32`.

Responsible for: the scale and zero point; the product is rounded once to float32, which
equals TFLite's double-precision product cast to float for int8 inputs.

Must not: place tensors in memory.
"""

from __future__ import annotations

from codegen.ir.model import Model, Operator
from codegen.ops.base import OpPlan, operand, per_tensor_problems, tensor_problems

OP = "DEQUANTIZE"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    x = operand(model, op, 0)
    if x is None:
        return ["input missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    problems += tensor_problems(out, "output", ("float32",), quantized=False)
    return problems


def plan(model: Model, op: Operator) -> OpPlan:
    x = model.tensors[op.inputs[0]]
    assert x.quantization is not None
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="dequantize_s8_f32",
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=(
            ("size", x.element_count),
            ("scale", x.quantization.scale),
            ("zero_point", x.quantization.zero_point),
        ),
    )
