"""Data-movement ops on int8 tensors: PAD, PADV2, TRANSPOSE, STRIDED_SLICE, CONCATENATION.

Responsible for: validating operands (constant paddings/permutations, equal quantization
where TFLM copies bytes without requantizing) and the 4-D geometry the kernels walk: padded
dims and leading pads, permuted or sliced input strides, per-input copy sizes. Kernels:
`pad_s8`, `gather_s8`, `concat_s8`.

Must not: place tensors in memory.
"""

from __future__ import annotations

from math import prod

from codegen.ir.model import ConcatenationOptions, Model, Operator, StridedSliceOptions, Tensor
from codegen.ops.base import (
    ArrayRef,
    ConstArray,
    OpPlan,
    operand,
    per_tensor_problems,
    tensor_problems,
)
from codegen.ops.common import tensor_array

MAX_RANK = 4


def _same_quant(a: Tensor, b: Tensor) -> bool:
    qa, qb = a.quantization, b.quantization
    if qa is None or qb is None:
        return qa is qb
    return (qa.scale, qa.zero_point) == (qb.scale, qb.zero_point)


def _padded(shape: tuple[int, ...], fill: int = 1) -> tuple[int, ...]:
    return (fill,) * (MAX_RANK - len(shape)) + shape


def check_pad(model: Model, op: Operator) -> list[str]:
    """PAD/PADV2: int8, constant int32/int64 paddings [rank, 2], rank <= 4."""
    x, paddings = operand(model, op, 0), operand(model, op, 1)
    if x is None or paddings is None:
        return ["input or paddings missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    problems += tensor_problems(out, "output", ("int8",))
    if paddings.data is None or paddings.dtype not in ("int32", "int64"):
        problems.append("paddings must be a constant int32/int64 tensor")
    if len(x.shape) > MAX_RANK:
        problems.append(f"rank {len(x.shape)} (supported: up to {MAX_RANK})")
    if op.op == "PADV2":
        value = operand(model, op, 2)
        if value is None or value.data is None or value.dtype != "int8":
            problems.append("constant_values must be a constant int8 tensor")
    if not problems and not _same_quant(x, out):
        problems.append("input and output quantization differ (TFLite requires them equal)")
    return problems


def plan_pad(model: Model, op: Operator) -> OpPlan:
    x = model.tensors[op.inputs[0]]
    out = model.tensors[op.outputs[0]]
    pads = tensor_array(model.tensors[op.inputs[1]]).reshape(-1, 2)
    before = _padded(tuple(int(v) for v in pads[:, 0]), 0)
    if op.op == "PADV2":
        value = int(tensor_array(model.tensors[op.inputs[2]]).reshape(-1)[0])
    else:
        assert out.quantization is not None
        value = out.quantization.zero_point
    in_dims, out_dims = _padded(x.shape), _padded(out.shape)
    params: list[tuple[str, int | float | ArrayRef]] = []
    params += [(f"in_dim{i}", in_dims[i]) for i in range(MAX_RANK)]
    params += [(f"out_dim{i}", out_dims[i]) for i in range(MAX_RANK)]
    params += [(f"before{i}", before[i]) for i in range(MAX_RANK)]
    params.append(("value", value))
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="pad_s8",
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=tuple(params),
    )


def check_transpose(model: Model, op: Operator) -> list[str]:
    x, perm = operand(model, op, 0), operand(model, op, 1)
    if x is None or perm is None:
        return ["input or permutation missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + tensor_problems(out, "output", ("int8",))
    if perm.data is None:
        problems.append("permutation must be constant")
    if len(x.shape) > MAX_RANK:
        problems.append(f"rank {len(x.shape)} (supported: up to {MAX_RANK})")
    if not problems and not _same_quant(x, out):
        problems.append("input and output quantization differ (TFLite requires them equal)")
    return problems


def plan_transpose(model: Model, op: Operator) -> OpPlan:
    x = model.tensors[op.inputs[0]]
    out = model.tensors[op.outputs[0]]
    perm = [int(v) for v in tensor_array(model.tensors[op.inputs[1]]).reshape(-1)]
    rank = len(x.shape)
    in_strides = [prod(x.shape[axis + 1 :]) for axis in range(rank)]
    # Output axis k walks input axis perm[k]; pad to 4-D with leading unit axes.
    strides = (0,) * (MAX_RANK - rank) + tuple(in_strides[perm[k]] for k in range(rank))
    out_dims = _padded(out.shape)
    params: list[tuple[str, int | float | ArrayRef]] = []
    params += [(f"dim{i}", out_dims[i]) for i in range(MAX_RANK)]
    params += [(f"stride{i}", strides[i]) for i in range(MAX_RANK)]
    params.append(("base", 0))
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="gather_s8",
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=tuple(params),
    )


def check_concatenation(model: Model, op: Operator) -> list[str]:
    assert isinstance(op.options, ConcatenationOptions)
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(out, "output", ("int8",)) + per_tensor_problems(out, "output")
    if op.options.fused_activation != "NONE":
        problems.append(f"fused activation {op.options.fused_activation} (supported: NONE)")
    axis = op.options.axis % max(len(out.shape), 1)
    for k, t in enumerate(op.inputs):
        if t < 0:
            problems.append(f"input {k} missing")
            continue
        x = model.tensors[t]
        problems += tensor_problems(x, f"input {k}", ("int8",))
        if not problems and not _same_quant(x, out):
            problems.append(f"input {k} quantization differs from the output's")
        if len(x.shape) != len(out.shape) or any(
            a != b for i, (a, b) in enumerate(zip(x.shape, out.shape, strict=False)) if i != axis
        ):
            problems.append(f"input {k} shape {list(x.shape)} does not fit {list(out.shape)}")
    return problems


def plan_concatenation(model: Model, op: Operator) -> OpPlan:
    assert isinstance(op.options, ConcatenationOptions)
    out = model.tensors[op.outputs[0]]
    axis = op.options.axis % len(out.shape)
    outer = prod(out.shape[:axis])
    inner = prod(out.shape[axis + 1 :])
    sizes = tuple(model.tensors[t].shape[axis] * inner for t in op.inputs)
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="concat_s8",
        inputs=tuple(op.inputs),
        outputs=(op.outputs[0],),
        params=(("count", len(sizes)), ("outer", outer), ("sizes", ArrayRef("sizes"))),
        arrays=(ConstArray("sizes", "int32", sizes),),
        inputs_as_array=True,
    )


def check_strided_slice(model: Model, op: Operator) -> list[str]:
    assert isinstance(op.options, StridedSliceOptions)
    x = operand(model, op, 0)
    if x is None or len(op.inputs) < 4:
        return ["input, begin, end or strides missing"]
    out = model.tensors[op.outputs[0]]
    problems = tensor_problems(x, "input", ("int8",)) + tensor_problems(out, "output", ("int8",))
    for k, role in ((1, "begin"), (2, "end"), (3, "strides")):
        t = operand(model, op, k)
        if t is None or t.data is None or t.dtype != "int32":
            problems.append(f"{role} must be a constant int32 tensor")
    if op.options.ellipsis_mask or op.options.new_axis_mask:
        problems.append("ellipsis and new-axis masks are not supported")
    if len(x.shape) > MAX_RANK:
        problems.append(f"rank {len(x.shape)} (supported: up to {MAX_RANK})")
    if problems:
        return problems
    if not _same_quant(x, out):
        problems.append("input and output quantization differ (TFLite requires them equal)")
    strides = tensor_array(model.tensors[op.inputs[3]]).reshape(-1)
    if any(int(s) == 0 for s in strides):
        problems.append("a stride is 0")
    elif _slice_geometry(model, op)[0] != out.element_count:
        problems.append(f"output shape {list(out.shape)} does not match the slice")
    return problems


def _slice_geometry(model: Model, op: Operator) -> tuple[int, list[int], list[int], int]:
    """(element count, per-axis counts, per-axis element strides, base offset)."""
    assert isinstance(op.options, StridedSliceOptions)
    opts = op.options
    x = model.tensors[op.inputs[0]]
    begin = [int(v) for v in tensor_array(model.tensors[op.inputs[1]]).reshape(-1)]
    end = [int(v) for v in tensor_array(model.tensors[op.inputs[2]]).reshape(-1)]
    steps = [int(v) for v in tensor_array(model.tensors[op.inputs[3]]).reshape(-1)]
    rank = len(x.shape)
    in_strides = [prod(x.shape[axis + 1 :]) for axis in range(rank)]
    counts, strides, base = [], [], 0
    for axis in range(rank):
        dim = x.shape[axis]
        if opts.shrink_axis_mask >> axis & 1:
            start = begin[axis] + dim if begin[axis] < 0 else begin[axis]
            counts.append(1)
            strides.append(in_strides[axis])
            base += start * in_strides[axis]
            continue
        stop_value = begin[axis] + end[axis] if opts.offset else end[axis]
        start_arg = None if opts.begin_mask >> axis & 1 else begin[axis]
        stop_arg = None if opts.end_mask >> axis & 1 else stop_value
        start, stop, step = slice(start_arg, stop_arg, steps[axis]).indices(dim)
        counts.append(len(range(start, stop, step)))
        strides.append(step * in_strides[axis])
        base += start * in_strides[axis]
    return prod(counts), counts, strides, base


def plan_strided_slice(model: Model, op: Operator) -> OpPlan:
    _, counts, strides, base = _slice_geometry(model, op)
    pad = MAX_RANK - len(counts)
    dims = [1] * pad + counts
    all_strides = [0] * pad + strides
    params: list[tuple[str, int | float | ArrayRef]] = []
    params += [(f"dim{i}", dims[i]) for i in range(MAX_RANK)]
    params += [(f"stride{i}", all_strides[i]) for i in range(MAX_RANK)]
    params.append(("base", base))
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="gather_s8",
        inputs=(op.inputs[0],),
        outputs=(op.outputs[0],),
        params=tuple(params),
    )
