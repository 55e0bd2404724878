"""SUB (int8 - int8 -> int8, broadcasting); arithmetic in `codegen.ops.elementwise`."""

from __future__ import annotations

from codegen.ops.elementwise import check, plan

OP = "SUB"
__all__ = ["OP", "check", "plan"]
