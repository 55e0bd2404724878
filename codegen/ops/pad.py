"""PAD (int8): data movement; geometry and checks in `codegen.ops.layout`."""

from __future__ import annotations

from codegen.ir.model import Model, Operator
from codegen.ops.base import OpPlan
from codegen.ops.layout import check_pad, plan_pad

OP = "PAD"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    return check_pad(model, op)


def plan(model: Model, op: Operator) -> OpPlan:
    return plan_pad(model, op)
