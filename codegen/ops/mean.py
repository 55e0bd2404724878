"""MEAN (int8) over constant axes, as TFLM's QuantizedMeanOrSum.

Responsible for: resolving the axes (negative, repeated) onto a 4-D view, and the
requantization TFLM prepares: in_scale/out_scale as (multiplier, shift), then divided by the
reduced element count in 64-bit integer arithmetic with the shift folded in. The kernel sums
raw int8 values, removes zero_point * count, requantizes. Kernel: `mean_s8`.

Must not: place tensors in memory.
"""

from __future__ import annotations

from math import prod

from codegen.ir.model import Model, Operator
from codegen.ops.base import OpPlan, operand, per_tensor_problems, tensor_problems
from codegen.ops.common import tensor_array
from codegen.ops.quantization import quantize_multiplier

OP = "MEAN"
MAX_RANK = 4


def _axes(model: Model, op: Operator) -> list[int]:
    x = model.tensors[op.inputs[0]]
    rank = len(x.shape)
    values = [int(v) for v in tensor_array(model.tensors[op.inputs[1]]).reshape(-1)]
    return sorted({v + rank if v < 0 else v for v in values})


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    x, axes = operand(model, op, 0), operand(model, op, 1)
    if x is None or axes is None:
        return ["input or axes missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    problems += tensor_problems(out, "output", ("int8",)) + per_tensor_problems(out, "output")
    if axes.data is None or axes.dtype != "int32":
        problems.append("axes must be a constant int32 tensor")
    if len(x.shape) > MAX_RANK:
        problems.append(f"rank {len(x.shape)} (supported: up to {MAX_RANK})")
    if not problems and any(a < 0 or a >= len(x.shape) for a in _axes(model, op)):
        problems.append("axis out of range")
    return problems


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM's (multiplier, shift) for a mean over `count` elements."""
    multiplier, shift = quantize_multiplier(float(in_scale) / float(out_scale))
    if count <= 0:
        return multiplier, shift
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << extra) // count if extra >= 0 else (multiplier >> -extra) // count
    return multiplier, shift - extra


def plan(model: Model, op: Operator) -> OpPlan:
    x = model.tensors[op.inputs[0]]
    out = model.tensors[op.outputs[0]]
    assert x.quantization and out.quantization
    axes = _axes(model, op)
    pad = MAX_RANK - len(x.shape)
    dims = (1,) * pad + x.shape
    reduced = [1 if (k - pad) in axes else 0 for k in range(MAX_RANK)]
    count = prod(x.shape[a] for a in axes)
    multiplier, shift = mean_multiplier(x.quantization.scale, out.quantization.scale, count)
    params: list[tuple[str, int | float]] = []
    params += [(f"dim{i}", dims[i]) for i in range(MAX_RANK)]
    params += [(f"reduce{i}", reduced[i]) for i in range(MAX_RANK)]
    params += [
        ("sum_offset", -x.quantization.zero_point * count),
        ("multiplier", multiplier),
        ("shift", shift),
        ("output_zero_point", out.quantization.zero_point),
    ]
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="mean_s8",
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=tuple(params),
        macs=x.element_count,
    )
