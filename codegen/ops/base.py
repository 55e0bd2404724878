"""What an op module hands to the planner: a backend-neutral kernel call.

Responsible for: the `OpPlan` record (kernel id, tensor arguments, scalar parameters, derived
constant arrays, MACs and scratch bytes) and small checks every op module shares.

Must not: choose memory locations (that is `codegen.plan`) or print any backend's syntax.
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.ir.model import Model, Operator, Tensor


@dataclass(frozen=True)
class ArrayRef:
    """A parameter that points at one of the op's derived constant arrays, by name."""

    name: str


@dataclass(frozen=True)
class ConstArray:
    """A constant array derived at compile time (e.g. folded bias, per-channel multipliers)."""

    name: str
    dtype: str
    values: tuple[int, ...] | tuple[float, ...]


ParamValue = int | float | ArrayRef


@dataclass(frozen=True)
class OpPlan:
    """One kernel call: `kernel(params, *inputs, *outputs, *states[, scratch])`.

    `inputs` and `outputs` are tensor indices in the order the kernel takes them (constant
    tensors are passed as their data); `states` are variable tensors the kernel reads and
    updates in place (e.g. LSTM hidden and cell state). `aliases_input` marks data-preserving
    ops (RESHAPE) whose output may share the input's memory; `in_place` marks ops whose
    output may overwrite an input that dies at this op.
    """

    op_index: int
    op: str
    kernel: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    params: tuple[tuple[str, ParamValue], ...]
    arrays: tuple[ConstArray, ...] = ()
    states: tuple[int, ...] = ()
    macs: int = 0
    scratch_bytes: int = 0
    aliases_input: bool = False
    in_place: bool = False
    # The kernel takes its inputs as one array of pointers (ops with a variable input count).
    inputs_as_array: bool = False
    # The same op without scratch (slower); the planner uses it when the scratch would grow
    # the arena.
    without_scratch: OpPlan | None = None


def tensor_problems(
    tensor: Tensor, role: str, dtypes: tuple[str, ...], *, quantized: bool = True
) -> list[str]:
    """Problems with one operand: dtype outside `dtypes`, or quantization missing."""
    problems = []
    if tensor.dtype not in dtypes:
        problems.append(f"{role} dtype {tensor.dtype} (supported: {', '.join(dtypes)})")
    elif quantized and tensor.dtype in ("int8", "int16") and tensor.quantization is None:
        problems.append(f"{role} tensor {tensor.index} has no quantization parameters")
    return problems


def operand(model: Model, op: Operator, position: int) -> Tensor | None:
    """Input tensor `position` of `op`, or None when absent (-1 or beyond the list)."""
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    return model.tensors[op.inputs[position]]


def per_tensor_problems(tensor: Tensor, role: str) -> list[str]:
    q = tensor.quantization
    if q is not None and q.is_per_channel:
        return [f"{role} has per-channel quantization; only per-tensor is supported here"]
    return []
