"""MAX_POOL_2D (int8): largest in-bounds tap, clamped to the fused activation range.

Validation and geometry are shared with AVERAGE_POOL_2D. Kernel: `max_pool_2d_s8`.
"""

from __future__ import annotations

from codegen.ir.model import Model, Operator
from codegen.ops import average_pool_2d
from codegen.ops.base import OpPlan

OP = "MAX_POOL_2D"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    return average_pool_2d.check(model, op)


def plan(model: Model, op: Operator) -> OpPlan:
    return average_pool_2d.plan(model, op, kernel="max_pool_2d_s8")
