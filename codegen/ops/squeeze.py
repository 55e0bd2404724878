"""SQUEEZE (any dtype): a reshape; the planner lets the output alias the input."""

from __future__ import annotations

from codegen.ops.reshape import check, plan

OP = "SQUEEZE"
__all__ = ["OP", "check", "plan"]
