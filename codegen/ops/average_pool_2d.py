"""AVERAGE_POOL_2D (int8): rounded average over the in-bounds window taps.

Responsible for: validation, padding, activation range. Kernel: `average_pool_2d_s8`.

Must not: place tensors in memory.
"""

from __future__ import annotations

from codegen.ir.model import Model, Operator, Pool2DOptions
from codegen.ops.base import OpPlan, operand, per_tensor_problems, tensor_problems
from codegen.ops.quantization import (
    SUPPORTED_ACTIVATIONS,
    activation_range,
    conv_output_size,
    conv_padding,
)

OP = "AVERAGE_POOL_2D"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    assert isinstance(op.options, Pool2DOptions)
    opts = op.options
    x = operand(model, op, 0)
    if x is None:
        return ["input missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    problems += tensor_problems(out, "output", ("int8",)) + per_tensor_problems(out, "output")
    if opts.fused_activation not in SUPPORTED_ACTIVATIONS:
        problems.append(f"fused activation {opts.fused_activation}")
    if opts.padding not in ("SAME", "VALID"):
        problems.append(f"padding {opts.padding}")
    if min(opts.stride_h, opts.stride_w, opts.filter_h, opts.filter_w) < 1:
        problems.append("strides and filter sizes must be >= 1")
    if problems:
        return problems
    if len(x.shape) != 4 or len(out.shape) != 4:
        return ["input and output must be 4-D (NHWC)"]
    assert x.quantization and out.quantization
    if (x.quantization.scale, x.quantization.zero_point) != (
        out.quantization.scale,
        out.quantization.zero_point,
    ):
        problems.append("input and output quantization differ (TFLite requires them equal)")
    expected = (
        x.shape[0],
        conv_output_size(opts.padding, x.shape[1], opts.filter_h, opts.stride_h, 1),
        conv_output_size(opts.padding, x.shape[2], opts.filter_w, opts.stride_w, 1),
        x.shape[3],
    )
    if tuple(out.shape) != expected:
        problems.append(f"output shape {list(out.shape)}, expected {list(expected)}")
    return problems


def plan(model: Model, op: Operator, kernel: str = "average_pool_2d_s8") -> OpPlan:
    assert isinstance(op.options, Pool2DOptions)
    opts = op.options
    x = model.tensors[op.inputs[0]]
    out = model.tensors[op.outputs[0]]
    assert out.quantization is not None
    batches, in_h, in_w, channels = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    act_min, act_max = activation_range(
        opts.fused_activation, out.quantization.scale, out.quantization.zero_point
    )
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel=kernel,
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=(
            ("batches", batches),
            ("in_h", in_h),
            ("in_w", in_w),
            ("channels", channels),
            ("out_h", out_h),
            ("out_w", out_w),
            ("filter_h", opts.filter_h),
            ("filter_w", opts.filter_w),
            ("stride_h", opts.stride_h),
            ("stride_w", opts.stride_w),
            ("pad_h", conv_padding(in_h, opts.filter_h, opts.stride_h, 1, out_h)),
            ("pad_w", conv_padding(in_w, opts.filter_w, opts.stride_w, 1, out_w)),
            ("act_min", act_min),
            ("act_max", act_max),
        ),
        macs=batches * out_h * out_w * channels * opts.filter_h * opts.filter_w,
    )
