"""The whole-model plan: kernel calls in order, where every tensor lives, and the budgets.

Responsible for: asking each op module for its kernel call, aliasing data-preserving ops
(RESHAPE, SQUEEZE, EXPAND_DIMS) onto their input, running elementwise ops in place when their
input dies, lifetimes of every activation/state/scratch buffer, keeping an op's optional
scratch (e.g. the CONV_2D im2col patch) only where it does not grow the arena, the arena
offsets, the liveness lower bound and the weight bytes. Graph inputs and outputs are
read/written in the caller's buffers (several packed back to back), never copied into the
arena.

Must not: print any backend syntax (the emitters do), or read files.
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.ir.model import DTYPE_BYTES, Model, Tensor
from codegen.ops.base import OpPlan
from codegen.ops.registry import plan_op
from codegen.plan.arena import ArenaPlan, BufferRequest, plan_arena

# Where a tensor's bytes are at run time.
ARENA = "arena"
GRAPH_INPUT = "input"
GRAPH_OUTPUT = "output"
CONSTANT = "const"


@dataclass(frozen=True)
class Location:
    """`kind` is one of arena/input/output/const; `offset` is bytes into that buffer."""

    kind: str
    offset: int = 0


@dataclass(frozen=True)
class Step:
    """One op in execution order; `elided` when aliasing made the kernel call unnecessary."""

    plan: OpPlan
    elided: bool
    scratch_offset: int | None


@dataclass(frozen=True)
class EdgeInfo:
    """A graph input or output as the caller sees it (bytes include float edges).

    Several inputs (outputs) are packed back to back into the one caller buffer, each at
    `offset` bytes (aligned to its element size).
    """

    tensor: int
    dtype: str
    shape: tuple[int, ...]
    byte_size: int
    scale: float
    zero_point: int
    offset: int = 0


@dataclass(frozen=True)
class VariableInfo:
    """A state tensor kept in the arena across invocations; reset fills it with `fill_value`."""

    tensor: int
    offset: int
    byte_size: int
    fill_value: int


@dataclass(frozen=True)
class ModelPlan:
    steps: tuple[Step, ...]
    locations: tuple[tuple[int, Location], ...]
    arena_bytes: int
    liveness_lower_bound_bytes: int
    weights_bytes: int
    macs: tuple[int, ...]
    inputs: tuple[EdgeInfo, ...]
    outputs: tuple[EdgeInfo, ...]
    variables: tuple[VariableInfo, ...]
    constant_tensors: tuple[int, ...]
    input_bytes: int
    output_bytes: int

    def location(self, tensor: int) -> Location:
        return dict(self.locations)[tensor]

    @property
    def input(self) -> EdgeInfo:
        """The caller's input buffer: the first input's quantization, the packed byte size."""
        return _packed(self.inputs[0], self.input_bytes)

    @property
    def output(self) -> EdgeInfo:
        """The caller's output buffer: the first output's quantization, the packed byte size."""
        return _packed(self.outputs[0], self.output_bytes)


def _packed(first: EdgeInfo, total_bytes: int) -> EdgeInfo:
    return EdgeInfo(
        first.tensor, first.dtype, first.shape, total_bytes, first.scale, first.zero_point, 0
    )


def _last_uses(model: Model) -> dict[int, int]:
    last: dict[int, int] = {}
    for op in model.operators:
        for t in op.inputs:
            if t >= 0:
                last[t] = op.index
    return last


def liveness_lower_bound(model: Model) -> int:
    """Largest sum of simultaneously live non-constant tensors at any op (bytes).

    Plain sequential execution with no aliasing, no in-place reuse and no scratch; graph
    inputs live from the first op, graph outputs and state tensors to the last.
    """
    n = len(model.operators)
    if n == 0:
        return 0
    first: dict[int, int] = {t: 0 for t in model.inputs}
    last = _last_uses(model)
    for op in model.operators:
        for t in op.outputs:
            first.setdefault(t, op.index)
            last.setdefault(t, op.index)
    for t in model.outputs:
        last[t] = n - 1
    live_sizes = [0] * n
    for tensor in model.tensors:
        if tensor.is_constant or not tensor.shape:
            continue
        if tensor.is_variable:
            span = range(n)
        elif tensor.index in first:
            span = range(first[tensor.index], last.get(tensor.index, first[tensor.index]) + 1)
        else:
            continue
        for k in span:
            live_sizes[k] += tensor.byte_size
    return max(live_sizes)


def _edges(model: Model, tensors: tuple[int, ...], is_input: bool) -> tuple[EdgeInfo, ...]:
    edges = []
    offset = 0
    for t in tensors:
        element = DTYPE_BYTES[model.tensors[t].dtype]
        offset = (offset + element - 1) // element * element
        edge = _edge(model, t, is_input)
        edges.append(
            EdgeInfo(
                edge.tensor,
                edge.dtype,
                edge.shape,
                edge.byte_size,
                edge.scale,
                edge.zero_point,
                offset,
            )
        )
        offset += edge.byte_size
    return tuple(edges)


def _edge(model: Model, tensor_index: int, is_input: bool) -> EdgeInfo:
    tensor = model.tensors[tensor_index]
    quant_source: Tensor = tensor
    if tensor.dtype == "float32":
        # A float edge: report the quantization on the integer side of its QUANTIZE/DEQUANTIZE.
        for op in model.operators:
            if is_input and op.op == "QUANTIZE" and op.inputs[0] == tensor_index:
                quant_source = model.tensors[op.outputs[0]]
            if not is_input and op.op == "DEQUANTIZE" and op.outputs[0] == tensor_index:
                quant_source = model.tensors[op.inputs[0]]
    q = quant_source.quantization
    return EdgeInfo(
        tensor=tensor_index,
        dtype=tensor.dtype,
        shape=tensor.shape,
        byte_size=tensor.byte_size,
        scale=q.scale if q else 1.0,
        zero_point=q.zero_point if q else 0,
    )


def plan_model(model: Model) -> ModelPlan:
    """Plan a model that passed `check_supported`: kernel calls, memory, budgets."""
    n = len(model.operators)
    fast_plans = [plan_op(model, op) for op in model.operators]
    op_plans = list(fast_plans)
    graph_ins, graph_outs = set(model.inputs), set(model.outputs)
    last_use = _last_uses(model)
    producer: dict[int, int] = {}
    for op in model.operators:
        for t in op.outputs:
            producer[t] = op.index

    # Union of tensors sharing one buffer; root -> members.
    root: dict[int, int] = {}
    members: dict[int, list[int]] = {}

    def find(t: int) -> int:
        return root.get(t, t)

    def join(into: int, t: int) -> None:
        r = find(into)
        root[t] = r
        members.setdefault(r, [r]).append(t)

    def group_last_use(r: int) -> int:
        return max(last_use.get(m, producer.get(m, 0)) for m in members.get(r, [r]))

    def is_plain_activation(t: int) -> bool:
        tensor = model.tensors[t]
        return not tensor.is_constant and not tensor.is_variable

    elided: set[int] = set()
    for op_plan in op_plans:
        out = op_plan.outputs[0]
        if out in graph_outs:
            continue
        if op_plan.aliases_input:
            src = op_plan.inputs[0]
            if is_plain_activation(src) and find(src) not in graph_outs:
                join(src, out)
                elided.add(op_plan.op_index)
            continue
        if not op_plan.in_place:
            continue
        out_tensor = model.tensors[out]
        for src in op_plan.inputs:
            r = find(src)
            if (
                is_plain_activation(src)
                and r not in graph_ins
                and r not in graph_outs
                and model.tensors[src].byte_size == out_tensor.byte_size
                and group_last_use(r) == op_plan.op_index
                and op_plan.inputs.count(src) == 1
            ):
                join(src, out)
                break

    locations: dict[int, Location] = {}
    requests: list[BufferRequest] = []
    group_members: dict[int, list[int]] = {}
    for t in range(len(model.tensors)):
        tensor = model.tensors[t]
        if tensor.is_constant:
            continue
        used = t in producer or t in last_use or t in graph_ins or tensor.is_variable
        if used:
            group_members.setdefault(find(t), []).append(t)
    inputs = _edges(model, model.inputs, True)
    outputs = _edges(model, model.outputs, False)
    edge_location = {e.tensor: Location(GRAPH_INPUT, e.offset) for e in inputs}
    edge_location.update({e.tensor: Location(GRAPH_OUTPUT, e.offset) for e in outputs})
    for r, group in group_members.items():
        edge = next((t for t in group if t in edge_location), None)
        if edge is not None:
            for t in group:
                locations[t] = edge_location[edge]
            continue
        if any(model.tensors[t].is_variable for t in group):
            first, last = 0, n - 1
        else:
            first = min(producer.get(t, 0) for t in group)
            last = max(last_use.get(t, producer.get(t, 0)) for t in group)
        size = max(model.tensors[t].byte_size for t in group)
        requests.append(BufferRequest(key=r, byte_size=size, first_op=first, last_op=last))
    scratch_key_base = len(model.tensors)

    def arena_for(plans: list[OpPlan]) -> ArenaPlan:
        scratch = [
            BufferRequest(
                key=scratch_key_base + p.op_index,
                byte_size=p.scratch_bytes,
                first_op=p.op_index,
                last_op=p.op_index,
            )
            for p in plans
            if p.scratch_bytes and p.op_index not in elided
        ]
        return plan_arena([*requests, *scratch])

    # Scratch that speeds an op up is kept only where it does not grow the arena.
    op_plans = [p.without_scratch or p for p in op_plans]
    arena = arena_for(op_plans)
    for index, fast in enumerate(fast_plans):
        if fast.without_scratch is None:
            continue
        trial = [*op_plans[:index], fast, *op_plans[index + 1 :]]
        trial_arena = arena_for(trial)
        if trial_arena.arena_bytes <= arena.arena_bytes:
            op_plans, arena = trial, trial_arena
    offsets = dict(arena.offsets)
    for r, group in group_members.items():
        if r in offsets:
            for t in group:
                locations[t] = Location(ARENA, offsets[r])

    constant_tensors: list[int] = []
    for op_plan in op_plans:
        for t in op_plan.inputs:
            if model.tensors[t].is_constant:
                locations[t] = Location(CONSTANT)
                if t not in constant_tensors:
                    constant_tensors.append(t)
    weights_bytes = sum(model.tensors[t].byte_size for t in constant_tensors) + sum(
        len(a.values) * DTYPE_BYTES[a.dtype] for p in op_plans for a in p.arrays
    )
    variables = tuple(
        VariableInfo(
            tensor=t.index,
            offset=locations[t.index].offset,
            byte_size=t.byte_size,
            # TFLM resets int8 state to its zero point and everything else to 0.
            fill_value=(t.quantization.zero_point if t.quantization and t.dtype == "int8" else 0)
            & 0xFF,
        )
        for t in model.tensors
        if t.is_variable and t.index in locations
    )
    steps = tuple(
        Step(
            plan=p,
            elided=p.op_index in elided,
            scratch_offset=offsets.get(scratch_key_base + p.op_index)
            if p.scratch_bytes and p.op_index not in elided
            else None,
        )
        for p in op_plans
    )
    return ModelPlan(
        steps=steps,
        locations=tuple(sorted(locations.items())),
        arena_bytes=arena.arena_bytes,
        liveness_lower_bound_bytes=liveness_lower_bound(model),
        weights_bytes=weights_bytes,
        macs=tuple(p.macs for p in op_plans),
        inputs=inputs,
        outputs=outputs,
        variables=variables,
        constant_tensors=tuple(constant_tensors),
        input_bytes=max((e.offset + e.byte_size for e in inputs), default=0),
        output_bytes=max((e.offset + e.byte_size for e in outputs), default=0),
    )
