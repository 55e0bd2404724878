"""EXPAND_DIMS (any dtype): a reshape; the planner lets the output alias the input."""

from __future__ import annotations

from codegen.ops.reshape import check, plan

OP = "EXPAND_DIMS"
__all__ = ["OP", "check", "plan"]
