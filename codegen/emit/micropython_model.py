"""MicroPython backend: render one model as `<prefix>.py` plus Shoal's MicroPython kernels.

Responsible for: turning the IR and the `ModelPlan` into the values the MicroPython template
prints (bytes literals for weights and per-channel parameters, parameter arrays in the order
each runtime kernel reads them, buffer views into the one static arena) and copying the
kernel runtime (`firmware_templates/micropython/nn/`) beside the model.

Must not: compute offsets, multipliers or shapes (the plan does), write files (the caller
does), or decide semantics (the runtime kernels mirror the C kernels).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from codegen import __version__
from codegen.emit.environment import TEMPLATES_DIR, environment
from codegen.errors import ShoalInputError
from codegen.ir.model import Model
from codegen.ops.base import ArrayRef, ConstArray, OpPlan
from codegen.plan.model_plan import (
    ARENA,
    CONSTANT,
    GRAPH_INPUT,
    GRAPH_OUTPUT,
    EdgeInfo,
    ModelPlan,
)

NN_DIR = TEMPLATES_DIR / "micropython" / "nn"
RUNTIME_FILES = ("shoal_nn.py", "shoal_nn_viper.py")
BYTES_PER_LINE = 48
INT_PARAMS_PER_LINE = 8

# How an array of the plan reaches a MicroPython kernel.
PER_CHANNEL = "per_channel"  # int32 triples interleaved into one bytes object (flash)
TUPLE = "tuple"  # a tuple of bytes (int8) and array('i') (int32) objects
SINGLE = "single"  # one array: bytes (int8) or array('i') (int32)


@dataclass(frozen=True)
class KernelSignature:
    """The scalar parameters a runtime kernel reads from `p`, in order, and its arrays.

    `int16_params` are read by the viper kernels with a 16-bit sign extension (viper's
    32-bit loads zero-extend on 64-bit ports), so their values must fit int16. `function`
    is the shoal_nn function that runs the kernel id (default: the id itself);
    `takes_scratch` is False when that function needs none of the scratch the plan reserved
    for the C kernel.
    """

    scalars: tuple[str, ...]
    arrays: tuple[str, ...] = ()
    array_form: str = PER_CHANNEL
    int16_params: tuple[str, ...] = ()
    function: str = ""
    takes_scratch: bool = True


def _axes(name: str) -> tuple[str, ...]:
    return tuple(f"{name}{i}" for i in range(4))


_DIMS = _axes("dim")
_CONV_TAIL = ("input_zero_point", "output_offset", "act_min", "act_max")
_WINDOW = ("filter_h", "filter_w", "stride_h", "stride_w", "dilation_h", "dilation_w")
_REQUANT = ("bias", "multiplier", "shift")
_BINARY_QUANT = (
    "input1_offset", "input2_offset", "left_shift", "input1_multiplier", "input1_shift",
    "input2_multiplier", "input2_shift", "output_multiplier", "output_shift", "output_offset",
    "act_min", "act_max",
)  # fmt: skip
_CONV = KernelSignature(
    ("batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", *_WINDOW, "pad_h", "pad_w",
     *_CONV_TAIL),
    _REQUANT,
    int16_params=_CONV_TAIL,
    function="conv_2d_s8",
    takes_scratch=False,
)  # fmt: skip
KERNELS: dict[str, KernelSignature] = {
    "fully_connected_s8": KernelSignature(
        ("batches", "in_depth", "out_depth", "output_offset", "act_min", "act_max"),
        _REQUANT,
        int16_params=("output_offset", "act_min", "act_max"),
    ),
    # The C conv_2d_s8 gathers the receptive field into scratch first; MicroPython runs both
    # ids with the direct kernel, whose results are identical.
    "conv_2d_s8": _CONV,
    "conv_2d_direct_s8": _CONV,
    "depthwise_conv_2d_s8": KernelSignature(
        (
            "batches",
            "in_h",
            "in_w",
            "in_c",
            "out_h",
            "out_w",
            "out_c",
            "depth_multiplier",
            *_WINDOW,
            "pad_h",
            "pad_w",
            *_CONV_TAIL,
        ),
        _REQUANT,
        int16_params=_CONV_TAIL,
    ),
    "average_pool_2d_s8": KernelSignature(
        (
            "batches",
            "in_h",
            "in_w",
            "channels",
            "out_h",
            "out_w",
            "filter_h",
            "filter_w",
            "stride_h",
            "stride_w",
            "pad_h",
            "pad_w",
            "act_min",
            "act_max",
        ),
    ),
    "max_pool_2d_s8": KernelSignature(
        (
            "batches",
            "in_h",
            "in_w",
            "channels",
            "out_h",
            "out_w",
            "filter_h",
            "filter_w",
            "stride_h",
            "stride_w",
            "pad_h",
            "pad_w",
            "act_min",
            "act_max",
        ),
    ),
    "binary_s8": KernelSignature(
        ("op", *_DIMS, *_axes("stride1_"), *_axes("stride2_"), *_BINARY_QUANT),
        int16_params=tuple(n for n in _BINARY_QUANT if not n.endswith("multiplier")),
    ),
    "lut_s8": KernelSignature(("size",), ("table",), array_form=SINGLE),
    "mean_s8": KernelSignature(
        (*_DIMS, *_axes("reduce"), "sum_offset", "multiplier", "shift", "output_zero_point")
    ),
    "pad_s8": KernelSignature((*_axes("in_dim"), *_axes("out_dim"), *_axes("before"), "value")),
    "gather_s8": KernelSignature((*_DIMS, *_axes("stride"), "base")),
    "concat_s8": KernelSignature(("count", "outer"), ("sizes",), array_form=SINGLE),
    "softmax_s8": KernelSignature(
        ("rows", "depth", "input_multiplier", "input_left_shift", "diff_min")
    ),
    "requantize_s8": KernelSignature(
        ("size", "input_zero_point", "output_zero_point", "multiplier", "shift")
    ),
    "quantize_f32_s8": KernelSignature(("size", "scale", "zero_point")),
    "dequantize_s8_f32": KernelSignature(("size", "scale", "zero_point")),
    "copy": KernelSignature(("bytes",)),
    "lstm_s8": KernelSignature(
        (
            "outer_batches",
            "step_batches",
            "time_steps",
            "input_dim",
            "state_dim",
            "forget_cell_multiplier",
            "forget_cell_shift",
            "input_cell_multiplier",
            "input_cell_shift",
            "hidden_multiplier",
            "hidden_shift",
            "hidden_zero_point",
            "tanh_multiplier",
            "tanh_right_shift",
            "cell_clip",
        ),
        (
            "w_in",
            "w_rec",
            "bias_in",
            "bias_rec",
            "in_multiplier",
            "in_shift",
            "rec_multiplier",
            "rec_shift",
        ),
        array_form=TUPLE,
    ),
}


@dataclass(frozen=True)
class Constant:
    """A module-level constant of the generated module: `name = <lines joined>`."""

    name: str
    comment: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class View:
    """A memoryview of bytes [offset, end) of a static buffer (`_a` arena, `_o` output)."""

    name: str
    buffer: str
    offset: int
    end: int


@dataclass(frozen=True)
class Call:
    """One kernel call of `invoke`: `_nn.<function>(*args)`, or a comment when elided."""

    index: int
    op: str
    elided: bool
    function: str
    args: tuple[str, ...]
    macs: int


def bytes_lines(data: bytes) -> tuple[str, ...]:
    """`data` as bytes literals of `BYTES_PER_LINE` bytes, one per line (concatenated by the
    parser), so large weights stay readable and frozen modules keep them in flash."""
    if not data:
        return ('b""',)
    return tuple(repr(data[i : i + BYTES_PER_LINE]) for i in range(0, len(data), BYTES_PER_LINE))


def _int32_bytes(values: tuple[int, ...] | tuple[float, ...]) -> bytes:
    return struct.pack(f"<{len(values)}i", *(int(v) for v in values))


def _array_bytes(array: ConstArray) -> bytes:
    if array.dtype == "int8":
        return struct.pack(f"<{len(array.values)}b", *(int(v) for v in array.values))
    if array.dtype == "int32":
        return _int32_bytes(array.values)
    raise AssertionError(f"array {array.name} has dtype {array.dtype}")


def _float32_literal(value: float) -> str:
    """An expression giving exactly the float32 value on every port (float32 or double)."""
    return f"_f32({struct.pack('<f', value)!r})"


def supports_kernel(kernel: str) -> bool:
    """True when the MicroPython runtime implements the plan's kernel id `kernel`."""
    return kernel in KERNELS


def _signature(step_plan: OpPlan) -> KernelSignature:
    signature = KERNELS.get(step_plan.kernel)
    if signature is None:
        raise ShoalInputError(
            f"operator {step_plan.op_index} {step_plan.op}: kernel '{step_plan.kernel}' has no "
            f"MicroPython implementation (MicroPython kernels: {', '.join(sorted(KERNELS))})"
        )
    return signature


def _check_params_match(step_plan: OpPlan, signature: KernelSignature) -> None:
    """The plan's parameters are exactly the ones the runtime kernel reads.

    A parameter added to (or renamed in) an op's plan must not be silently ignored here:
    that would compute something else than the C kernel.
    """
    planned = [name for name, _ in step_plan.params]
    expected = [*signature.scalars, *signature.arrays]
    if sorted(planned) != sorted(expected):
        raise AssertionError(
            f"operator {step_plan.op_index} {step_plan.op}: kernel {step_plan.kernel} is planned "
            f"with parameters {planned}, but the MicroPython kernel reads {expected}"
        )


def _param_constant(step_plan: OpPlan, signature: KernelSignature, name: str) -> Constant:
    params = dict(step_plan.params)
    values = []
    for key in signature.scalars:
        value = params[key]
        assert not isinstance(value, ArrayRef), f"{step_plan.kernel}: {key} is an array"
        if key in signature.int16_params:
            assert -32768 <= value <= 32767, f"{step_plan.kernel}: {key}={value} exceeds int16"
        values.append(value)
    comment = ", ".join(signature.scalars)
    if any(isinstance(v, float) for v in values):
        items = [_float32_literal(v) if isinstance(v, float) else str(int(v)) for v in values]
        return Constant(name, comment, ("(" + ", ".join(items) + ",)",))
    text = [str(int(v)) for v in values]
    rows = [
        ", ".join(text[i : i + INT_PARAMS_PER_LINE]) + ","
        for i in range(0, len(text), INT_PARAMS_PER_LINE)
    ]
    return Constant(name, comment, ('array("i", (', *(f"    {r}" for r in rows), "))"))


def _array_constants(
    step_plan: OpPlan, signature: KernelSignature, prefix_name: str
) -> tuple[list[Constant], str | None]:
    """The constants holding the op's derived arrays, and the argument naming them."""
    if not signature.arrays:
        return [], None
    arrays = {a.name: a for a in step_plan.arrays}
    params = dict(step_plan.params)
    for key in signature.arrays:
        ref = params.get(key)
        if not isinstance(ref, ArrayRef) or ref.name not in arrays:
            raise AssertionError(f"{step_plan.kernel}: array parameter {key} missing")
    chosen = [
        arrays[ref.name]
        for ref in (params[k] for k in signature.arrays)
        if isinstance(ref, ArrayRef)
    ]
    if signature.array_form == PER_CHANNEL:
        channels = len(chosen[0].values)
        assert all(len(a.values) == channels for a in chosen)
        interleaved = tuple(int(a.values[c]) for c in range(channels) for a in chosen)
        constant = Constant(
            prefix_name + "_q",
            f"per channel: {', '.join(a.name for a in chosen)} (int32 little-endian)",
            ("(", *(f"    {line}" for line in bytes_lines(_int32_bytes(interleaved))), ")"),
        )
        return [constant], constant.name
    constants = []
    for array in chosen:
        if array.dtype not in ("int8", "int32"):
            raise AssertionError(f"{step_plan.kernel}: array {array.name} is {array.dtype}")
        data_lines = tuple(f"    {line}" for line in bytes_lines(_array_bytes(array)))
        if array.dtype == "int8":
            lines = ("(", *data_lines, ")")
        else:
            # array('i', bytes) copies raw little-endian words on MicroPython.
            lines = ('array("i", (', *data_lines, "))")
        constants.append(Constant(f"{prefix_name}_{array.name}", array.dtype, lines))
    if signature.array_form == SINGLE:
        return constants, constants[0].name
    # One tuple built at import, so invoke() does not allocate it per call.
    group = Constant(
        f"{prefix_name}_arrays", "", ("(" + ", ".join(c.name for c in constants) + ",)",)
    )
    return [*constants, group], group.name


class _Buffers:
    """Python expressions for tensor buffers.

    Arena and output views are created once at import. A graph input that is not the whole
    input buffer (several packed inputs) is a view made per invoke.
    """

    def __init__(self, model: Model, plan: ModelPlan) -> None:
        self.model = model
        self.plan = plan
        self.views: dict[tuple[str, int, int], View] = {}
        self.groups: list[tuple[str, str]] = []

    def group(self, name: str, members: list[str]) -> str:
        """A tuple of buffers: a module constant when every member is static, else built
        in invoke() (a member is a view of the caller's input)."""
        text = "(" + ", ".join(members) + ",)"
        if any(m == "input" or m.startswith("_in[") for m in members):
            return text
        self.groups.append((name, text))
        return name

    def view(self, buffer: str, offset: int, byte_size: int) -> str:
        key = (buffer, offset, byte_size)
        if key not in self.views:
            self.views[key] = View(
                f"{buffer}{offset}_{byte_size}", buffer, offset, offset + byte_size
            )
        return self.views[key].name

    def tensor(self, index: int) -> str:
        location = self.plan.location(index)
        size = self.model.tensors[index].byte_size
        if location.kind == ARENA:
            return self.view("_a", location.offset, size)
        if location.kind == GRAPH_INPUT:
            if location.offset == 0 and size == self.plan.input.byte_size:
                return "input"
            return f"_in[{location.offset}:{location.offset + size}]"
        if location.kind == GRAPH_OUTPUT:
            if location.offset == 0 and size == self.plan.output.byte_size:
                return "_output"
            return self.view("_o", location.offset, size)
        assert location.kind == CONSTANT
        return f"_t{index}"


def _edge_text(edge: EdgeInfo) -> str:
    """(offset, byte_size, dtype, shape, scale, zero_point) of one packed edge."""
    return repr(
        (edge.offset, edge.byte_size, edge.dtype, edge.shape, float(edge.scale), edge.zero_point)
    )


def stamp(model: Model, source_name: str) -> str:
    """The first line of every generated MicroPython file."""
    return (
        f"# Generated by Shoal {__version__} from {source_name} "
        f"(sha256 {model.source_sha256}). Do not edit."
    )


def _weights(model: Model, plan: ModelPlan) -> list[Constant]:
    constants = []
    for t in plan.constant_tensors:
        tensor = model.tensors[t]
        assert tensor.data is not None
        if tensor.dtype != "int8":
            raise ShoalInputError(
                f"tensor {t} ({tensor.name}): constant {tensor.dtype} operands have no "
                "MicroPython kernel (supported: int8 weights)"
            )
        constants.append(
            Constant(
                f"_t{t}",
                f"tensor {t} {tensor.name}: int8 {list(tensor.shape)}",
                ("(", *(f"    {line}" for line in bytes_lines(tensor.data)), ")"),
            )
        )
    return constants


def emit_micropython(
    model: Model, plan: ModelPlan, prefix: str, source_name: str
) -> dict[str, str]:
    """Render the MicroPython model: name -> text (`<prefix>.py` and the kernel runtime).

    The module has INPUT_BYTES, OUTPUT_BYTES, ARENA_BYTES (bytes), the edge scale and zero
    point, `invoke(input) -> bytearray` and `reset()`; see the template for the contract.
    `reset()` sets every state tensor to its plan `fill_value` (an int8 tensor's zero point,
    not 0) and runs once at import, so a fresh import matches a fresh TFLM interpreter.
    """
    buffers = _Buffers(model, plan)
    params: list[Constant] = []
    arrays: list[Constant] = []
    calls: list[Call] = []
    for step in plan.steps:
        p = step.plan
        if step.elided:
            calls.append(Call(p.op_index, p.op, True, p.kernel, (), p.macs))
            continue
        signature = _signature(p)
        _check_params_match(p, signature)
        name = f"_op{p.op_index}"
        param = _param_constant(p, signature, name + "_p")
        params.append(param)
        array_constants, array_arg = _array_constants(p, signature, name)
        arrays += array_constants
        args = [param.name]
        if array_arg is not None:
            args.append(array_arg)
        inputs = [buffers.tensor(t) for t in p.inputs]
        if p.inputs_as_array:
            inputs = [buffers.group(f"{name}_inputs", inputs)]
        args += inputs
        args += [buffers.tensor(t) for t in (*p.outputs, *p.states)]
        if step.scratch_offset is not None and signature.takes_scratch:
            args.append(buffers.view("_a", step.scratch_offset, p.scratch_bytes))
        function = signature.function or p.kernel
        calls.append(Call(p.op_index, p.op, False, function, tuple(args), p.macs))
    resets = [
        (buffers.view("_a", v.offset, v.byte_size), v.fill_value, v.tensor) for v in plan.variables
    ]
    context = {
        "stamp": stamp(model, source_name),
        "prefix": prefix,
        "source_name": source_name,
        "plan": plan,
        "input_scale": repr(float(plan.input.scale)),
        "output_scale": repr(float(plan.output.scale)),
        "weights": _weights(model, plan),
        "params": params,
        "arrays": arrays,
        "views": sorted(buffers.views.values(), key=lambda v: (v.buffer, v.offset, v.end)),
        "groups": buffers.groups,
        "split_input": any("_in[" in arg for call in calls for arg in call.args),
        "input_edges": [_edge_text(e) for e in plan.inputs],
        "output_edges": [_edge_text(e) for e in plan.outputs],
        "calls": calls,
        "resets": resets,
        "total_macs": sum(plan.macs),
    }
    files = {
        f"{prefix}.py": environment().get_template("micropython/model/model.py.j2").render(context)
    }
    for name in RUNTIME_FILES:
        files[name] = stamp(model, source_name) + "\n" + (NN_DIR / name).read_text()
    return files
