"""CONV_2D (int8 NHWC input, int8 OHWI weights per-channel, int32 bias, int8 output).

Responsible for: validation, SAME/VALID padding, folded bias, per-channel requantization,
activation range, MACs. A 1x1, stride-1, unpadded convolution is a matrix product and is
compiled to `fully_connected_s8`; everything else runs `conv_2d_s8` (im2col scratch of one
receptive field) or, when the planner has no room for that scratch, `conv_2d_direct_s8`.

Must not: place tensors in memory.
"""

from __future__ import annotations

from dataclasses import replace

from codegen.ir.model import Conv2DOptions, Model, Operator
from codegen.ops.base import ArrayRef, OpPlan, operand, per_tensor_problems, tensor_problems
from codegen.ops.common import bias_problems, folded_bias, requant_arrays, weight_problems
from codegen.ops.fully_connected import fully_connected_plan
from codegen.ops.quantization import (
    SUPPORTED_ACTIVATIONS,
    activation_range,
    conv_output_size,
    conv_padding,
)

OP = "CONV_2D"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    assert isinstance(op.options, Conv2DOptions)
    opts = op.options
    x, w = operand(model, op, 0), operand(model, op, 1)
    if x is None or w is None:
        return ["input or weights missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    problems += tensor_problems(out, "output", ("int8",)) + per_tensor_problems(out, "output")
    if len(x.shape) != 4 or len(w.shape) != 4 or len(out.shape) != 4:
        return [*problems, "input, weights and output must be 4-D (NHWC, OHWI)"]
    problems += weight_problems(w, "weights", w.shape[0])
    problems += bias_problems(operand(model, op, 2), w.shape[0])
    if opts.fused_activation not in SUPPORTED_ACTIVATIONS:
        problems.append(f"fused activation {opts.fused_activation}")
    if opts.padding not in ("SAME", "VALID"):
        problems.append(f"padding {opts.padding}")
    if min(opts.stride_h, opts.stride_w, opts.dilation_h, opts.dilation_w) < 1:
        problems.append("strides and dilations must be >= 1")
    if problems:
        return problems
    if w.shape[3] != x.shape[3]:
        problems.append(f"grouped convolution (input channels {x.shape[3]}, weights {w.shape[3]})")
    expected = (
        x.shape[0],
        conv_output_size(opts.padding, x.shape[1], w.shape[1], opts.stride_h, opts.dilation_h),
        conv_output_size(opts.padding, x.shape[2], w.shape[2], opts.stride_w, opts.dilation_w),
        w.shape[0],
    )
    if tuple(out.shape) != expected:
        problems.append(f"output shape {list(out.shape)}, expected {list(expected)}")
    return problems


def plan(model: Model, op: Operator) -> OpPlan:
    assert isinstance(op.options, Conv2DOptions)
    opts = op.options
    x, w = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]]
    out = model.tensors[op.outputs[0]]
    assert x.quantization and out.quantization
    batches, in_h, in_w, in_c = x.shape
    out_c, filter_h, filter_w, _ = w.shape
    out_h, out_w = out.shape[1], out.shape[2]
    pad_h = conv_padding(in_h, filter_h, opts.stride_h, opts.dilation_h, out_h)
    pad_w = conv_padding(in_w, filter_w, opts.stride_w, opts.dilation_w, out_w)
    bias_index = op.inputs[2] if len(op.inputs) > 2 else None
    bias = folded_bias(model, w, bias_index, x.quantization.zero_point, out_c)
    multiplier, shift = requant_arrays(x.quantization.scale, w, out.quantization.scale, out_c)
    act_min, act_max = activation_range(
        opts.fused_activation, out.quantization.scale, out.quantization.zero_point
    )
    if (filter_h, filter_w, opts.stride_h, opts.stride_w, pad_h, pad_w) == (1, 1, 1, 1, 0, 0):
        return fully_connected_plan(
            op,
            op.inputs[0],
            op.inputs[1],
            op.outputs[0],
            batches * in_h * in_w,
            in_c,
            out_c,
            out.quantization.zero_point,
            act_min,
            act_max,
            (bias, multiplier, shift),
        )
    direct = OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="conv_2d_direct_s8",
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
        macs=batches * out_h * out_w * out_c * filter_h * filter_w * in_c,
    )
    # The fast kernel gathers each receptive field into scratch first.
    return replace(
        direct,
        kernel="conv_2d_s8",
        scratch_bytes=filter_h * filter_w * in_c,
        without_scratch=direct,
    )
