"""HARD_SWISH (int8): TFLite's 16-bit fixed-point reference, as a lookup table."""

from __future__ import annotations

from codegen.ir.model import Model, Operator
from codegen.ops.activations import check_unary, hard_swish_table, lut_plan
from codegen.ops.base import OpPlan

OP = "HARD_SWISH"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    problems = check_unary(model, op)
    if not problems:
        q_in = model.tensors[op.inputs[0]].quantization
        q_out = model.tensors[op.outputs[0]].quantization
        assert q_in is not None and q_out is not None
        if q_in.scale / 128.0 / q_out.scale >= 1.0:
            problems.append("input scale / 128 must be below the output scale (as TFLite)")
    return problems


def plan(model: Model, op: Operator) -> OpPlan:
    x = model.tensors[op.inputs[0]]
    out = model.tensors[op.outputs[0]]
    return lut_plan(op, out, hard_swish_table(x, out))
