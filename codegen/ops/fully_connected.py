"""FULLY_CONNECTED (int8 x int8 -> int8, int32 bias, per-tensor or per-channel weights).

Responsible for: validating the operands, the folded bias and requantization arrays, the
activation range and the MAC count. Kernel: `fully_connected_s8`.

Must not: place tensors in memory.
"""

from __future__ import annotations

from codegen.ir.model import FullyConnectedOptions, Model, Operator
from codegen.ops.base import (
    ArrayRef,
    ConstArray,
    OpPlan,
    operand,
    per_tensor_problems,
    tensor_problems,
)
from codegen.ops.common import bias_problems, folded_bias, requant_arrays, weight_problems
from codegen.ops.quantization import SUPPORTED_ACTIVATIONS, activation_range

OP = "FULLY_CONNECTED"


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    assert isinstance(op.options, FullyConnectedOptions)
    x = operand(model, op, 0)
    w = operand(model, op, 1)
    if x is None or w is None:
        return ["input or weights missing"]
    problems = tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    out = model.tensors[op.outputs[0]]
    problems += tensor_problems(out, "output", ("int8",)) + per_tensor_problems(out, "output")
    if len(w.shape) != 2:
        return [*problems, f"weights shape {list(w.shape)} is not 2-D"]
    problems += weight_problems(w, "weights", w.shape[0])
    problems += bias_problems(operand(model, op, 2), w.shape[0])
    if op.options.fused_activation not in SUPPORTED_ACTIVATIONS:
        problems.append(f"fused activation {op.options.fused_activation}")
    if op.options.weights_format != "DEFAULT":
        problems.append(f"weights format {op.options.weights_format}")
    if not problems and x.element_count % w.shape[1] != 0:
        problems.append(f"input size {x.element_count} is not a multiple of {w.shape[1]}")
    return problems


def plan(model: Model, op: Operator) -> OpPlan:
    assert isinstance(op.options, FullyConnectedOptions)
    x, w = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]]
    out = model.tensors[op.outputs[0]]
    assert x.quantization and out.quantization
    out_depth, in_depth = w.shape
    batches = x.element_count // in_depth
    bias_index = op.inputs[2] if len(op.inputs) > 2 else None
    bias = folded_bias(model, w, bias_index, x.quantization.zero_point, out_depth)
    multiplier, shift = requant_arrays(x.quantization.scale, w, out.quantization.scale, out_depth)
    act_min, act_max = activation_range(
        op.options.fused_activation, out.quantization.scale, out.quantization.zero_point
    )
    return fully_connected_plan(
        op,
        op.inputs[0],
        op.inputs[1],
        op.outputs[0],
        batches,
        in_depth,
        out_depth,
        out.quantization.zero_point,
        act_min,
        act_max,
        (bias, multiplier, shift),
    )


def fully_connected_plan(
    op: Operator,
    input_index: int,
    weights_index: int,
    output_index: int,
    batches: int,
    in_depth: int,
    out_depth: int,
    output_zero_point: int,
    act_min: int,
    act_max: int,
    arrays: tuple[ConstArray, ...],
) -> OpPlan:
    """The `fully_connected_s8` call; CONV_2D reuses it for 1x1 stride-1 unpadded convs."""
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="fully_connected_s8",
        inputs=(input_index, weights_index),
        outputs=(output_index,),
        params=(
            ("batches", batches),
            ("in_depth", in_depth),
            ("out_depth", out_depth),
            ("output_offset", output_zero_point),
            ("act_min", act_min),
            ("act_max", act_max),
            ("bias", ArrayRef("bias")),
            ("multiplier", ArrayRef("multiplier")),
            ("shift", ArrayRef("shift")),
        ),
        arrays=arrays,
        macs=batches * in_depth * out_depth,
    )
