"""RESHAPE (any dtype): data-preserving; the planner lets the output alias the input.

Responsible for: checking the element counts agree. Kernel `copy` runs only when the planner
cannot alias (e.g. the output is the graph output).

Must not: place tensors in memory.
"""

from __future__ import annotations

from codegen.ir.model import Model, Operator
from codegen.ops.base import OpPlan, operand

OP = "RESHAPE"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    x = operand(model, op, 0)
    if x is None:
        return ["input missing"]
    out = model.tensors[op.outputs[0]]
    if x.element_count != out.element_count or x.dtype != out.dtype:
        return [
            f"input {list(x.shape)} {x.dtype} and output {list(out.shape)} {out.dtype} differ "
            "in size or dtype"
        ]
    return []


def plan(model: Model, op: Operator) -> OpPlan:
    out = model.tensors[op.outputs[0]]
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="copy",
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=(("bytes", out.byte_size),),
        aliases_input=True,
    )
