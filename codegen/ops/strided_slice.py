"""STRIDED_SLICE (int8): a strided gather; geometry and checks in `codegen.ops.layout`."""

from __future__ import annotations

from codegen.ir.model import Model, Operator
from codegen.ops.base import OpPlan
from codegen.ops.layout import check_strided_slice, plan_strided_slice

OP = "STRIDED_SLICE"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    return check_strided_slice(model, op)


def plan(model: Model, op: Operator) -> OpPlan:
    return plan_strided_slice(model, op)
