"""SOFTMAX (int8 -> int8 with output scale 1/256 and zero point -128), gemmlowp fixed point.

Responsible for: the input-beta multiplier/left shift (5 integer bits, as TFLite) and the
`diff_min` cut-off below which exp() is treated as zero. Kernel: `softmax_s8`.

Must not: place tensors in memory.
"""

from __future__ import annotations

import math

from codegen.ir.model import Model, Operator, SoftmaxOptions
from codegen.ops.base import OpPlan, operand, per_tensor_problems, tensor_problems
from codegen.ops.quantization import quantize_multiplier_greater_than_one

OP = "SOFTMAX"
SCALED_DIFF_INTEGER_BITS = 5


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    x = operand(model, op, 0)
    if x is None:
        return ["input missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    problems += tensor_problems(out, "output", ("int8",))
    if not problems:
        q = out.quantization
        assert q is not None
        if q.zero_point != -128 or abs(q.scale - 1.0 / 256) > 1e-8 * 256:
            problems.append(
                f"output scale {q.scale} / zero point {q.zero_point} (TFLite requires 1/256, -128)"
            )
    return problems


def softmax_input_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) exactly as TFLite's softmax Prepare."""
    real = min(
        float(beta) * float(input_scale) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
        float((1 << 31) - 1),
    )
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    max_input_rescaled = (
        1.0
        * ((1 << SCALED_DIFF_INTEGER_BITS) - 1)
        * float(1 << (31 - SCALED_DIFF_INTEGER_BITS))
        / float(1 << left_shift)
    )
    diff_min = -math.floor(max_input_rescaled)
    return multiplier, left_shift, diff_min


def plan(model: Model, op: Operator) -> OpPlan:
    assert isinstance(op.options, SoftmaxOptions)
    x = model.tensors[op.inputs[0]]
    assert x.quantization is not None
    depth = x.shape[-1]
    multiplier, left_shift, diff_min = softmax_input_params(op.options.beta, x.quantization.scale)
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="softmax_s8",
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=(
            ("rows", x.element_count // depth),
            ("depth", depth),
            ("input_multiplier", multiplier),
            ("input_left_shift", left_shift),
            ("diff_min", diff_min),
        ),
        in_place=True,
    )
