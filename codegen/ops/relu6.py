"""RELU6 (int8): clamp to [0, 6] in the input's quantization, as TFLM; a lookup table."""

from __future__ import annotations

from codegen.ir.model import Model, Operator
from codegen.ops.activations import check_unary, lut_plan, relu6_table
from codegen.ops.base import OpPlan

OP = "RELU6"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    problems = check_unary(model, op)
    return problems


def plan(model: Model, op: Operator) -> OpPlan:
    x = model.tensors[op.inputs[0]]
    out = model.tensors[op.outputs[0]]
    return lut_plan(op, out, relu6_table(x))
