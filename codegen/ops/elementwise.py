"""ADD, SUB and MUL on int8 tensors with numpy-style broadcasting (rank <= 4).

Responsible for: validation, broadcast geometry (output dims and per-input strides padded to
4-D), and the multipliers exactly as TFLite prepares them: ADD/SUB rescale both inputs onto
twice the larger input scale with a 20-bit left shift; MUL uses in1*in2/out. Kernel:
`binary_s8`; the output may overwrite a same-shaped input that dies here.

Must not: place tensors in memory.
"""

from __future__ import annotations

from codegen.ir.model import Model, Operator, Tensor
from codegen.ops.base import OpPlan, operand, per_tensor_problems, tensor_problems
from codegen.ops.quantization import SUPPORTED_ACTIVATIONS, activation_range, quantize_multiplier

LEFT_SHIFT = 20
OP_CODES = {"ADD": 0, "SUB": 1, "MUL": 2}
MAX_RANK = 4


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The numpy broadcast of two shapes, or None when they are incompatible."""
    rank = max(len(a), len(b))
    a4 = (1,) * (rank - len(a)) + a
    b4 = (1,) * (rank - len(b)) + b
    out = []
    for x, y in zip(a4, b4, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y))
    return tuple(out)


def broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of `shape` against the 4-D padded `out` (0 on broadcast dims)."""
    padded = (1,) * (MAX_RANK - len(shape)) + shape
    out4 = (1,) * (MAX_RANK - len(out)) + out
    strides = [0] * MAX_RANK
    step = 1
    for axis in reversed(range(MAX_RANK)):
        strides[axis] = step if padded[axis] == out4[axis] and padded[axis] > 1 else 0
        step *= padded[axis]
    return tuple(strides)


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    a, b = operand(model, op, 0), operand(model, op, 1)
    if a is None or b is None:
        return ["an input is missing"]
    out = model.tensors[op.outputs[0]]
    problems = []
    for tensor, role in ((a, "input 1"), (b, "input 2"), (out, "output")):
        problems += tensor_problems(tensor, role, ("int8",)) + per_tensor_problems(tensor, role)
    activation = getattr(op.options, "fused_activation", "NONE")
    if activation not in SUPPORTED_ACTIVATIONS:
        problems.append(f"fused activation {activation}")
    if problems:
        return problems
    shape = broadcast_shape(a.shape, b.shape)
    if shape is None or shape != out.shape:
        problems.append(
            f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast to output "
            f"{list(out.shape)}"
        )
    elif len(shape) > MAX_RANK:
        problems.append(f"rank {len(shape)} (supported: up to {MAX_RANK})")
    return problems


def _multipliers(op: str, a: Tensor, b: Tensor, out: Tensor) -> dict[str, int]:
    assert a.quantization and b.quantization and out.quantization
    sa, sb, so = (float(t.quantization.scale) for t in (a, b, out))  # type: ignore[union-attr]
    if op == "MUL":
        mo, eo = quantize_multiplier(sa * sb / so)
        return {"left_shift": 0, "input1_multiplier": 0, "input1_shift": 0,
                "input2_multiplier": 0, "input2_shift": 0,
                "output_multiplier": mo, "output_shift": eo}  # fmt: skip
    twice_max = 2.0 * max(sa, sb)
    m1, e1 = quantize_multiplier(sa / twice_max)
    m2, e2 = quantize_multiplier(sb / twice_max)
    mo, eo = quantize_multiplier(twice_max / (float(1 << LEFT_SHIFT) * so))
    return {"left_shift": LEFT_SHIFT, "input1_multiplier": m1, "input1_shift": e1,
            "input2_multiplier": m2, "input2_shift": e2,
            "output_multiplier": mo, "output_shift": eo}  # fmt: skip


def plan(model: Model, op: Operator) -> OpPlan:
    a, b = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]]
    out = model.tensors[op.outputs[0]]
    assert a.quantization and b.quantization and out.quantization
    activation = getattr(op.options, "fused_activation", "NONE")
    act_min, act_max = activation_range(
        activation, out.quantization.scale, out.quantization.zero_point
    )
    dims = (1,) * (MAX_RANK - len(out.shape)) + out.shape
    s1 = broadcast_strides(a.shape, out.shape)
    s2 = broadcast_strides(b.shape, out.shape)
    params: list[tuple[str, int | float]] = [("op", OP_CODES[op.op])]
    params += [(f"dim{i}", dims[i]) for i in range(MAX_RANK)]
    params += [(f"stride1_{i}", s1[i]) for i in range(MAX_RANK)]
    params += [(f"stride2_{i}", s2[i]) for i in range(MAX_RANK)]
    params += [
        ("input1_offset", -a.quantization.zero_point),
        ("input2_offset", -b.quantization.zero_point),
        *_multipliers(op.op, a, b, out).items(),
        ("output_offset", out.quantization.zero_point),
        ("act_min", act_min),
        ("act_max", act_max),
    ]
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="binary_s8",
        inputs=(op.inputs[0], op.inputs[1]),
        outputs=(op.outputs[0],),
        params=tuple(params),
        macs=out.element_count,
        in_place=True,
    )
