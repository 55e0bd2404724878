"""TANH (int8, output 1/128 and 0): gemmlowp fixed point, as TFLM; a lookup table."""

from __future__ import annotations

from codegen.ir.model import Model, Operator
from codegen.ops.activations import check_unary, lut_plan, tanh_table
from codegen.ops.base import OpPlan

OP = "TANH"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    problems = check_unary(model, op)
    if not problems:
        q = model.tensors[op.outputs[0]].quantization
        assert q is not None
        if q.zero_point != 0 or abs(q.scale - 1 / 128) > 1e-9:
            problems.append(
                f"output scale {q.scale} / zero point {q.zero_point} (TFLite requires 1/128, 0)"
            )
    return problems


def plan(model: Model, op: Operator) -> OpPlan:
    x = model.tensors[op.inputs[0]]
    out = model.tensors[op.outputs[0]]
    return lut_plan(op, out, tanh_table(x))
