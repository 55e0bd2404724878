"""LEAKY_RELU (int8): identity/alpha requantization by sign, as TFLM; a lookup table."""

from __future__ import annotations

from codegen.ir.model import LeakyReluOptions, Model, Operator
from codegen.ops.activations import check_unary, leaky_relu_table, lut_plan
from codegen.ops.base import OpPlan

OP = "LEAKY_RELU"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    problems = check_unary(model, op)
    return problems


def plan(model: Model, op: Operator) -> OpPlan:
    assert isinstance(op.options, LeakyReluOptions)
    x = model.tensors[op.inputs[0]]
    out = model.tensors[op.outputs[0]]
    return lut_plan(op, out, leaky_relu_table(x, out, op.options.alpha))
