"""DEPTHWISE_CONV_2D (int8, depth multiplier, per-channel weights [1, H, W, C*M]).

Responsible for: validation, padding, folded bias, per-channel requantization, activation
range, MACs. Kernel: `depthwise_conv_2d_s8`.

Must not: place tensors in memory.
"""

from __future__ import annotations

import numpy as np

from codegen.ir.model import DepthwiseConv2DOptions, Model, Operator
from codegen.ops.base import (
    ArrayRef,
    ConstArray,
    OpPlan,
    operand,
    per_tensor_problems,
    tensor_problems,
)
from codegen.ops.common import bias_problems, requant_arrays, tensor_array, weight_problems
from codegen.ops.quantization import (
    SUPPORTED_ACTIVATIONS,
    activation_range,
    conv_output_size,
    conv_padding,
)

OP = "DEPTHWISE_CONV_2D"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    assert isinstance(op.options, DepthwiseConv2DOptions)
    opts = op.options
    x, w = operand(model, op, 0), operand(model, op, 1)
    if x is None or w is None:
        return ["input or weights missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    problems += tensor_problems(out, "output", ("int8",)) + per_tensor_problems(out, "output")
    if len(x.shape) != 4 or len(w.shape) != 4 or len(out.shape) != 4:
        return [*problems, "input, weights and output must be 4-D (NHWC, 1HWC)"]
    out_c = w.shape[3]
    problems += weight_problems(w, "weights", out_c, channel_axis=3)
    problems += bias_problems(operand(model, op, 2), out_c)
    if opts.fused_activation not in SUPPORTED_ACTIVATIONS:
        problems.append(f"fused activation {opts.fused_activation}")
    if opts.padding not in ("SAME", "VALID"):
        problems.append(f"padding {opts.padding}")
    if min(opts.stride_h, opts.stride_w, opts.dilation_h, opts.dilation_w) < 1:
        problems.append("strides and dilations must be >= 1")
    if problems:
        return problems
    if w.shape[0] != 1 or out_c % x.shape[3] != 0:
        problems.append(f"weights shape {list(w.shape)} does not fit input {list(x.shape)}")
        return problems
    expected = (
        x.shape[0],
        conv_output_size(opts.padding, x.shape[1], w.shape[1], opts.stride_h, opts.dilation_h),
        conv_output_size(opts.padding, x.shape[2], w.shape[2], opts.stride_w, opts.dilation_w),
        out_c,
    )
    if tuple(out.shape) != expected:
        problems.append(f"output shape {list(out.shape)}, expected {list(expected)}")
    return problems


def _folded_bias(model: Model, op: Operator, input_zero_point: int, out_c: int) -> ConstArray:
    w = tensor_array(model.tensors[op.inputs[1]]).reshape(-1, out_c).astype(np.int64)
    sums = w.sum(axis=0)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = tensor_array(model.tensors[op.inputs[2]]).astype(np.int64).reshape(-1)
    else:
        bias = np.zeros(out_c, dtype=np.int64)
    folded = ((bias - input_zero_point * sums + 2**31) % 2**32) - 2**31
    return ConstArray("bias", "int32", tuple(int(v) for v in folded))


def plan(model: Model, op: Operator) -> OpPlan:
    assert isinstance(op.options, DepthwiseConv2DOptions)
    opts = op.options
    x, w = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]]
    out = model.tensors[op.outputs[0]]
    assert x.quantization and out.quantization
    batches, in_h, in_w, in_c = x.shape
    _, filter_h, filter_w, out_c = w.shape
    out_h, out_w = out.shape[1], out.shape[2]
    pad_h = conv_padding(in_h, filter_h, opts.stride_h, opts.dilation_h, out_h)
    pad_w = conv_padding(in_w, filter_w, opts.stride_w, opts.dilation_w, out_w)
    bias = _folded_bias(model, op, x.quantization.zero_point, out_c)
    multiplier, shift = requant_arrays(x.quantization.scale, w, out.quantization.scale, out_c)
    act_min, act_max = activation_range(
        opts.fused_activation, out.quantization.scale, out.quantization.zero_point
    )
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="depthwise_conv_2d_s8",
        inputs=(op.inputs[0], op.inputs[1]),
        outputs=(op.outputs[0],),
        params=(
            ("batches", batches),
            ("in_h", in_h),
            ("in_w", in_w),
            ("in_c", in_c),
            ("out_h", out_h),
            ("out_w", out_w),
            ("out_c", out_c),
            ("depth_multiplier", out_c // in_c),
            ("filter_h", filter_h),
            ("filter_w", filter_w),
            ("stride_h", opts.stride_h),
            ("stride_w", opts.stride_w),
            ("dilation_h", opts.dilation_h),
            ("dilation_w", opts.dilation_w),
            ("pad_h", pad_h),
            ("pad_w", pad_w),
            ("input_zero_point", x.quantization.zero_point),
            ("output_offset", out.quantization.zero_point),
            ("act_min", act_min),
            ("act_max", act_max),
            ("bias", ArrayRef("bias")),
            ("multiplier", ArrayRef("multiplier")),
            ("shift", ArrayRef("shift")),
        ),
        arrays=(bias, multiplier, shift),
        macs=batches * out_h * out_w * out_c * filter_h * filter_w,
    )
