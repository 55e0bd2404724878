"""Write TFLite flatbuffer models (schema v3) from numpy arrays and quantisation parameters.

Responsible for: turning a small graph description (tensors, constant data, operators with
their options) into the bytes of a valid `.tflite` file that TFLite Micro and tflite-runtime
load, plus helpers that apply TFLite's int8 quantisation conventions (per-channel int8
weights with zero point 0, int32 bias with scale = input_scale * weight_scale[c], the fixed
output quantisation of SOFTMAX/LOGISTIC/TANH).

Not responsible for: reading models (that is `codegen.loaders`), computing op outputs, or
checking that a graph is numerically sensible. It checks only what it needs to write a
well-formed file: names, shapes, data types, quantisation vector lengths, tensor indices and
option names; anything else is left to the runtime that loads the model.

Layout decisions (so that readers can rely on them):
- buffer 0 is the empty sentinel; every constant tensor gets its own buffer, in the order the
  tensors were added; activations and graph inputs point at buffer 0;
- constant data is placed 16-byte aligned from the start of the file (TFLM reads weights in
  place and its optimised kernels assume aligned data);
- one subgraph named "main"; operator codes are deduplicated per (op, version) in first-use
  order; the file identifier is "TFL3" and the schema version 3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
import tflite

from codegen.errors import ShoalInputError

# Quantisation parameters: one value (per tensor) or one per channel.
Scales = float | Sequence[float] | np.ndarray
ZeroPoints = int | Sequence[int] | np.ndarray

SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT_BYTES = 16

# numpy dtype name -> TFLite TensorType value.
TENSOR_TYPES: dict[str, int] = {
    "float32": tflite.TensorType.FLOAT32,
    "int32": tflite.TensorType.INT32,
    "uint8": tflite.TensorType.UINT8,
    "int64": tflite.TensorType.INT64,
    "bool": tflite.TensorType.BOOL,
    "int16": tflite.TensorType.INT16,
    "int8": tflite.TensorType.INT8,
}
ACTIVATIONS: dict[str, int] = {
    "NONE": tflite.ActivationFunctionType.NONE,
    "RELU": tflite.ActivationFunctionType.RELU,
    "RELU_N1_TO_1": tflite.ActivationFunctionType.RELU_N1_TO_1,
    "RELU6": tflite.ActivationFunctionType.RELU6,
}
PADDINGS: dict[str, int] = {"SAME": tflite.Padding.SAME, "VALID": tflite.Padding.VALID}

# The version TFLite's converter assigns to each op in a full-integer int8 model (from TFLite's
# op versioning rules). TFLM ignores versions; tflite-runtime rejects versions it lacks.
INT8_OP_VERSIONS: dict[str, int] = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 3,
    "FULLY_CONNECTED": 4,  # 5 with keep_num_dims, 6 without a bias input (see op_version())
    "AVERAGE_POOL_2D": 2,
    "MAX_POOL_2D": 2,
    "ADD": 2,
    "MUL": 2,  # 3 when input1_scale * input2_scale / output_scale >= 1 (see op_version())
    "SUB": 2,
    "SOFTMAX": 2,
    "LOGISTIC": 2,
    "TANH": 2,
    "HARD_SWISH": 1,
    "RELU": 2,
    "RELU6": 2,
    "LEAKY_RELU": 1,
    "RESHAPE": 1,
    "SQUEEZE": 1,
    "EXPAND_DIMS": 1,
    "PAD": 2,
    "PADV2": 2,
    "TRANSPOSE": 2,
    "MEAN": 2,
    "CONCATENATION": 2,
    "STRIDED_SLICE": 2,
    "QUANTIZE": 1,  # float32 -> int8 per tensor
    "DEQUANTIZE": 2,  # int8 -> float32
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 1,
}


# One option of one op: the dict key, how its value is encoded, and the generated setter
# suffixes it writes (two for (height, width) pairs, none for vectors written separately).
@dataclass(frozen=True)
class _OptionField:
    key: str
    kind: str  # "padding" | "activation" | "hw" | "int" | "bool" | "float" | "int_vector"
    setters: tuple[str, ...]
    default: Any


@dataclass(frozen=True)
class _OptionsSpec:
    table: str  # name of the flatbuffer options table, e.g. "Conv2DOptions"
    fields: tuple[_OptionField, ...]


def _f(key: str, kind: str, *setters: str, default: Any) -> _OptionField:
    return _OptionField(key, kind, setters, default)


_ACT = _f("activation", "activation", "FusedActivationFunction", default="NONE")
_PAD = _f("padding", "padding", "Padding", default="VALID")
_STRIDE = _f("stride", "hw", "StrideH", "StrideW", default=(1, 1))
_DILATION = _f("dilation", "hw", "DilationHFactor", "DilationWFactor", default=(1, 1))

OPTIONS_SPECS: dict[str, _OptionsSpec] = {
    "CONV_2D": _OptionsSpec("Conv2DOptions", (_PAD, _STRIDE, _DILATION, _ACT)),
    "DEPTHWISE_CONV_2D": _OptionsSpec(
        "DepthwiseConv2DOptions",
        (
            _PAD,
            _STRIDE,
            _DILATION,
            _f("depth_multiplier", "int", "DepthMultiplier", default=1),
            _ACT,
        ),
    ),
    "FULLY_CONNECTED": _OptionsSpec(
        "FullyConnectedOptions", (_ACT, _f("keep_num_dims", "bool", "KeepNumDims", default=False))
    ),
    "AVERAGE_POOL_2D": _OptionsSpec(
        "Pool2DOptions",
        (_PAD, _STRIDE, _f("filter", "hw", "FilterHeight", "FilterWidth", default=(1, 1)), _ACT),
    ),
    "MAX_POOL_2D": _OptionsSpec(
        "Pool2DOptions",
        (_PAD, _STRIDE, _f("filter", "hw", "FilterHeight", "FilterWidth", default=(1, 1)), _ACT),
    ),
    "ADD": _OptionsSpec("AddOptions", (_ACT,)),
    "MUL": _OptionsSpec("MulOptions", (_ACT,)),
    "SUB": _OptionsSpec("SubOptions", (_ACT,)),
    "SOFTMAX": _OptionsSpec("SoftmaxOptions", (_f("beta", "float", "Beta", default=1.0),)),
    "LEAKY_RELU": _OptionsSpec("LeakyReluOptions", (_f("alpha", "float", "Alpha", default=0.2),)),
    "RESHAPE": _OptionsSpec(
        "ReshapeOptions", (_f("new_shape", "int_vector", "NewShape", default=None),)
    ),
    "SQUEEZE": _OptionsSpec(
        "SqueezeOptions", (_f("squeeze_dims", "int_vector", "SqueezeDims", default=()),)
    ),
    "CONCATENATION": _OptionsSpec(
        "ConcatenationOptions", (_f("axis", "int", "Axis", default=0), _ACT)
    ),
    "STRIDED_SLICE": _OptionsSpec(
        "StridedSliceOptions",
        (
            _f("begin_mask", "int", "BeginMask", default=0),
            _f("end_mask", "int", "EndMask", default=0),
            _f("ellipsis_mask", "int", "EllipsisMask", default=0),
            _f("new_axis_mask", "int", "NewAxisMask", default=0),
            _f("shrink_axis_mask", "int", "ShrinkAxisMask", default=0),
            _f("offset", "bool", "Offset", default=False),
        ),
    ),
    "MEAN": _OptionsSpec("ReducerOptions", (_f("keep_dims", "bool", "KeepDims", default=False),)),
    "PAD": _OptionsSpec("PadOptions", ()),
    "PADV2": _OptionsSpec("PadV2Options", ()),
    "TRANSPOSE": _OptionsSpec("TransposeOptions", ()),
    "EXPAND_DIMS": _OptionsSpec("ExpandDimsOptions", ()),
    "HARD_SWISH": _OptionsSpec("HardSwishOptions", ()),
    "QUANTIZE": _OptionsSpec("QuantizeOptions", ()),
    "DEQUANTIZE": _OptionsSpec("DequantizeOptions", ()),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _OptionsSpec(
        "UnidirectionalSequenceLSTMOptions",
        (
            _f("activation", "activation", "FusedActivationFunction", default="TANH"),
            _f("cell_clip", "float", "CellClip", default=0.0),
            _f("proj_clip", "float", "ProjClip", default=0.0),
            _f("time_major", "bool", "TimeMajor", default=False),
            _f("asymmetric_quantize_inputs", "bool", "AsymmetricQuantizeInputs", default=False),
        ),
    ),
    # Ops whose schema has no options table: LOGISTIC, TANH, RELU, RELU6.
    "LOGISTIC": _OptionsSpec("", ()),
    "TANH": _OptionsSpec("", ()),
    "RELU": _OptionsSpec("", ()),
    "RELU6": _OptionsSpec("", ()),
}
SUPPORTED_OPS: tuple[str, ...] = tuple(OPTIONS_SPECS)

# LSTM is the one op whose fused activation may be TANH (a full ActivationFunctionType).
_LSTM_ACTIVATIONS = {**ACTIVATIONS, "TANH": tflite.ActivationFunctionType.TANH}


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: tuple[float, ...] | None
    zero_point: tuple[int, ...] | None
    quantized_dimension: int
    data: bytes | None
    is_variable: bool


@dataclass(frozen=True)
class _Operator:
    op_name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]
    version: int
    intermediates: tuple[int, ...]


class ModelBuilder:
    """Collects tensors and operators of one subgraph and serialises them to TFLite bytes.

    Tensor and operator indices are returned in insertion order and are the indices the
    written model uses. An optional input (e.g. a missing LSTM weight) is written as -1.
    """

    def __init__(self, description: str = "shoal tflite_writer") -> None:
        self._description = description
        self._tensors: list[_Tensor] = []
        self._operators: list[_Operator] = []
        self._inputs: tuple[int, ...] | None = None
        self._outputs: tuple[int, ...] | None = None

    @property
    def tensor_count(self) -> int:
        return len(self._tensors)

    def add_tensor(
        self,
        name: str,
        shape: Sequence[int],
        dtype: str,
        *,
        scale: Scales | None = None,
        zero_point: ZeroPoints | None = None,
        quantized_dimension: int = 0,
        data: np.ndarray | None = None,
        is_variable: bool = False,
    ) -> int:
        """Add a tensor and return its index.

        `shape` is in elements per dimension (NHWC for images, OHWI for conv filters,
        1HWO for depthwise filters). `dtype` is a numpy dtype name from `TENSOR_TYPES`.
        `scale` (real value per LSB) and `zero_point` (LSB) are one value for per-tensor
        quantisation or one per channel along `quantized_dimension`; `scale=None` writes no
        quantisation. `data`, when given, makes the tensor constant: its shape must equal
        `shape` and it is converted to `dtype` (values must fit). `is_variable` marks state
        tensors (e.g. LSTM state) that the runtime keeps across invocations.
        """
        where = f"tensor {len(self._tensors)} '{name}'"
        shape_t = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape_t):
            raise ShoalInputError(
                f"{where}: shape {shape_t} has a negative dimension; dimensions must be >= 0"
            )
        if dtype not in TENSOR_TYPES:
            raise ShoalInputError(
                f"{where}: dtype '{dtype}' is not supported; accepted: {', '.join(TENSOR_TYPES)}"
            )
        scale_t, zero_t = _quantisation(where, shape_t, scale, zero_point, quantized_dimension)
        raw: bytes | None = None
        if data is not None:
            raw = _constant_bytes(where, shape_t, dtype, data)
            if is_variable:
                raise ShoalInputError(
                    f"{where}: a variable tensor cannot also carry constant data; "
                    "give data=None for state tensors"
                )
        self._tensors.append(
            _Tensor(name, shape_t, dtype, scale_t, zero_t, quantized_dimension, raw, is_variable)
        )
        return len(self._tensors) - 1

    def add_operator(
        self,
        op_name: str,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options: Mapping[str, Any] | None = None,
        version: int | None = None,
        *,
        intermediates: Sequence[int] = (),
    ) -> int:
        """Add an operator and return its index in execution order.

        `op_name` is a TFLite builtin name from `SUPPORTED_OPS`. `inputs`/`outputs` are tensor
        indices (-1 for an omitted optional input). `options` keys per op are listed in
        `OPTIONS_SPECS`: e.g. CONV_2D takes padding ("SAME"/"VALID"), stride (int or (h, w)),
        dilation (int or (h, w)) and activation ("NONE"/"RELU"/"RELU_N1_TO_1"/"RELU6");
        missing keys take TFLite's defaults. `version=None` picks the version TFLite's
        converter gives the op in an int8 model (see `op_version`).
        """
        where = f"operator {len(self._operators)} {op_name}"
        if op_name not in OPTIONS_SPECS:
            raise ShoalInputError(
                f"{where}: op is not supported by the writer; accepted: {', '.join(SUPPORTED_OPS)}"
            )
        for role, indices in (
            ("input", inputs),
            ("output", outputs),
            ("intermediate", intermediates),
        ):
            for i in indices:
                optional_ok = role == "input" and i == -1
                if not optional_ok and not 0 <= i < len(self._tensors):
                    raise ShoalInputError(
                        f"{where}: {role} tensor index {i} does not exist; "
                        f"accepted: 0..{len(self._tensors) - 1}"
                        + (" or -1 for an omitted optional input" if role == "input" else "")
                    )
        resolved = _resolve_options(where, op_name, dict(options or {}))
        if version is None:
            version = self.op_version(op_name, inputs, outputs, resolved)
        if version < 1:
            raise ShoalInputError(f"{where}: version {version} is invalid; versions start at 1")
        self._operators.append(
            _Operator(
                op_name, tuple(inputs), tuple(outputs), resolved, version, tuple(intermediates)
            )
        )
        return len(self._operators) - 1

    def op_version(
        self,
        op_name: str,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options: Mapping[str, Any],
    ) -> int:
        """The version TFLite's op-versioning rules give this int8 op (FC and MUL vary)."""
        version = INT8_OP_VERSIONS[op_name]
        if op_name == "FULLY_CONNECTED":
            if len(inputs) == 2 or (len(inputs) == 3 and inputs[2] == -1):
                return 6
            if options.get("keep_num_dims"):
                return 5
        if op_name == "MUL" and len(inputs) == 2 and len(outputs) == 1:
            scales = [self._tensors[i].scale for i in (*inputs, outputs[0])]
            if all(s is not None for s in scales):
                s1, s2, so = (s[0] for s in scales if s is not None)
                if so != 0 and s1 * s2 / so >= 1.0:
                    return 3
        if op_name in ("QUANTIZE", "DEQUANTIZE"):
            dtypes = {self._tensors[i].dtype for i in (*inputs, *outputs)}
            if "int16" in dtypes:
                return 2 if op_name == "QUANTIZE" else 3
        return version

    def set_io(self, inputs: Sequence[int], outputs: Sequence[int]) -> None:
        """Declare the subgraph's input and output tensor indices, in the model's order."""
        for role, indices in (("input", inputs), ("output", outputs)):
            for i in indices:
                if not 0 <= i < len(self._tensors):
                    raise ShoalInputError(
                        f"model {role}s: tensor index {i} does not exist; "
                        f"accepted: 0..{len(self._tensors) - 1}"
                    )
        self._inputs = tuple(inputs)
        self._outputs = tuple(outputs)

    def build(self) -> bytes:
        """Serialise the model; the same builder calls always give the same bytes."""
        if self._inputs is None or self._outputs is None:
            raise ShoalInputError("model: call set_io(inputs, outputs) before build()")
        if not self._operators:
            raise ShoalInputError("model: no operators; add at least one with add_operator()")
        fb = flatbuffers.Builder(1024)
        # Flatbuffers are written back to front; the big constant data goes first so that it
        # ends up at the end of the file, and alignment is relative to the buffer's end,
        # which Finish() pads to a multiple of the largest alignment used (16 bytes).
        buffer_offsets, tensor_buffer = self._write_buffers(fb)
        opcode_keys: list[tuple[str, int]] = []
        for op in self._operators:
            if (op.op_name, op.version) not in opcode_keys:
                opcode_keys.append((op.op_name, op.version))
        opcode_offsets = [_write_opcode(fb, name, version) for name, version in opcode_keys]
        tensor_offsets = [
            _write_tensor(fb, t, tensor_buffer[i]) for i, t in enumerate(self._tensors)
        ]
        operator_offsets = [
            _write_operator(fb, op, opcode_keys.index((op.op_name, op.version)))
            for op in self._operators
        ]
        tensors_vec = _offset_vector(fb, tensor_offsets)
        inputs_vec = _int32_vector(fb, self._inputs)
        outputs_vec = _int32_vector(fb, self._outputs)
        operators_vec = _offset_vector(fb, operator_offsets)
        name = fb.CreateString("main")
        tflite.SubGraphStart(fb)
        tflite.SubGraphAddTensors(fb, tensors_vec)
        tflite.SubGraphAddInputs(fb, inputs_vec)
        tflite.SubGraphAddOutputs(fb, outputs_vec)
        tflite.SubGraphAddOperators(fb, operators_vec)
        tflite.SubGraphAddName(fb, name)
        subgraph = tflite.SubGraphEnd(fb)

        opcodes_vec = _offset_vector(fb, opcode_offsets)
        subgraphs_vec = _offset_vector(fb, [subgraph])
        buffers_vec = _offset_vector(fb, buffer_offsets)
        description = fb.CreateString(self._description)
        tflite.ModelStart(fb)
        tflite.ModelAddVersion(fb, SCHEMA_VERSION)
        tflite.ModelAddOperatorCodes(fb, opcodes_vec)
        tflite.ModelAddSubgraphs(fb, subgraphs_vec)
        tflite.ModelAddDescription(fb, description)
        tflite.ModelAddBuffers(fb, buffers_vec)
        model = tflite.ModelEnd(fb)
        fb.Finish(model, file_identifier=FILE_IDENTIFIER)
        return bytes(fb.Output())

    def _write_buffers(self, fb: flatbuffers.Builder) -> tuple[list[int], list[int]]:
        """Write buffer tables; return their offsets and each tensor's buffer index."""
        tensor_buffer: list[int] = []
        datas: list[bytes] = []
        for t in self._tensors:
            if t.data is None:
                tensor_buffer.append(0)
            else:
                datas.append(t.data)
                tensor_buffer.append(len(datas))
        # Data vectors must be finished before the Buffer tables that point at them.
        data_offsets = [_aligned_bytes(fb, d) for d in reversed(datas)][::-1]
        offsets = []
        tflite.BufferStart(fb)
        offsets.append(tflite.BufferEnd(fb))
        for data_offset in data_offsets:
            tflite.BufferStart(fb)
            tflite.BufferAddData(fb, data_offset)
            offsets.append(tflite.BufferEnd(fb))
        return offsets, tensor_buffer


def _quantisation(
    where: str,
    shape: tuple[int, ...],
    scale: Scales | None,
    zero_point: ZeroPoints | None,
    quantized_dimension: int,
) -> tuple[tuple[float, ...] | None, tuple[int, ...] | None]:
    if scale is None:
        if zero_point is not None:
            raise ShoalInputError(f"{where}: zero_point given without scale; give both or neither")
        return None, None
    scales = tuple(float(s) for s in np.atleast_1d(np.asarray(scale, dtype=np.float64)))
    if zero_point is None:
        zeros: tuple[int, ...] = (0,) * len(scales)
    else:
        zero_array = np.atleast_1d(np.asarray(zero_point))
        if zero_array.dtype.kind not in "iu" and not np.all(zero_array == np.round(zero_array)):
            raise ShoalInputError(f"{where}: zero points {zero_point} must be integers (LSB)")
        zeros = tuple(int(z) for z in zero_array)
    if not scales or len(scales) != len(zeros):
        raise ShoalInputError(
            f"{where}: {len(scales)} scale(s) but {len(zeros)} zero point(s); "
            "give one of each (per tensor) or one of each per channel"
        )
    if not all(np.isfinite(s) and s > 0 for s in scales):
        raise ShoalInputError(f"{where}: scales {scales} must be finite and > 0")
    if len(scales) > 1:
        if not 0 <= quantized_dimension < len(shape):
            raise ShoalInputError(
                f"{where}: quantized_dimension {quantized_dimension} does not exist in shape "
                f"{shape}; accepted: 0..{len(shape) - 1}"
            )
        if shape[quantized_dimension] != len(scales):
            raise ShoalInputError(
                f"{where}: {len(scales)} per-channel scales but dimension "
                f"{quantized_dimension} of shape {shape} has {shape[quantized_dimension]} channels"
            )
    return scales, zeros


def _constant_bytes(where: str, shape: tuple[int, ...], dtype: str, data: np.ndarray) -> bytes:
    array = np.asarray(data)
    if tuple(array.shape) != shape:
        raise ShoalInputError(
            f"{where}: data has shape {tuple(array.shape)} but the tensor shape is {shape}"
        )
    target = np.dtype(dtype)
    if array.dtype != target:
        if target.kind in "iu" and array.size:
            info = np.iinfo(target)
            if array.min() < info.min or array.max() > info.max:
                raise ShoalInputError(
                    f"{where}: data values {array.min()}..{array.max()} do not fit {dtype} "
                    f"({info.min}..{info.max})"
                )
        array = array.astype(target)
    return np.ascontiguousarray(array).astype(target.newbyteorder("<")).tobytes()


def _hw_pair(where: str, key: str, value: Any) -> tuple[int, int]:
    if isinstance(value, int | np.integer):
        return int(value), int(value)
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ShoalInputError(
        f"{where}: option '{key}' = {value!r}; accepted: an int or (height, width)"
    )


def _resolve_options(where: str, op_name: str, options: dict[str, Any]) -> dict[str, Any]:
    spec = OPTIONS_SPECS[op_name]
    accepted = {f.key for f in spec.fields}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ShoalInputError(
            f"{where}: unknown option(s) {', '.join(unknown)}; accepted: "
            + (", ".join(sorted(accepted)) if accepted else "none")
        )
    resolved: dict[str, Any] = {}
    for field in spec.fields:
        value = options.get(field.key, field.default)
        if field.kind == "activation":
            table = _LSTM_ACTIVATIONS if op_name == "UNIDIRECTIONAL_SEQUENCE_LSTM" else ACTIVATIONS
            if value not in table:
                raise ShoalInputError(
                    f"{where}: option 'activation' = {value!r}; accepted: {', '.join(table)}"
                )
        elif field.kind == "padding":
            if value not in PADDINGS:
                raise ShoalInputError(
                    f"{where}: option 'padding' = {value!r}; accepted: {', '.join(PADDINGS)}"
                )
        elif field.kind == "hw":
            value = _hw_pair(where, field.key, value)
            if min(value) < 1:
                raise ShoalInputError(f"{where}: option '{field.key}' = {value}; must be >= 1")
        elif field.kind == "int_vector" and value is not None:
            value = tuple(int(v) for v in value)
        elif field.kind == "int":
            value = int(value)
        elif field.kind == "bool":
            value = bool(value)
        elif field.kind == "float":
            value = float(value)
        resolved[field.key] = value
    return resolved


def _aligned_bytes(fb: flatbuffers.Builder, data: bytes) -> int:
    fb.StartVector(1, len(data), BUFFER_ALIGNMENT_BYTES)
    fb.head = fb.Head() - len(data)
    fb.Bytes[fb.Head() : fb.Head() + len(data)] = data
    return int(fb.EndVector())


def _int32_vector(fb: flatbuffers.Builder, values: Sequence[int]) -> int:
    return int(fb.CreateNumpyVector(np.asarray(values, dtype="<i4")))


def _offset_vector(fb: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    fb.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        fb.PrependUOffsetTRelative(offset)
    return int(fb.EndVector())


def _write_opcode(fb: flatbuffers.Builder, op_name: str, version: int) -> int:
    code = getattr(tflite.BuiltinOperator, op_name)
    tflite.OperatorCodeStart(fb)
    # Codes above 127 live only in builtin_code; deprecated_builtin_code holds the
    # placeholder 127 for them, as TFLite's schema prescribes.
    tflite.OperatorCodeAddDeprecatedBuiltinCode(fb, min(code, 127))
    tflite.OperatorCodeAddBuiltinCode(fb, code)
    tflite.OperatorCodeAddVersion(fb, version)
    return int(tflite.OperatorCodeEnd(fb))


def _write_tensor(fb: flatbuffers.Builder, tensor: _Tensor, buffer_index: int) -> int:
    shape_vec = _int32_vector(fb, tensor.shape)
    name = fb.CreateString(tensor.name)
    quant = None
    if tensor.scale is not None and tensor.zero_point is not None:
        scale_vec = fb.CreateNumpyVector(np.asarray(tensor.scale, dtype="<f4"))
        zero_vec = fb.CreateNumpyVector(np.asarray(tensor.zero_point, dtype="<i8"))
        tflite.QuantizationParametersStart(fb)
        tflite.QuantizationParametersAddScale(fb, scale_vec)
        tflite.QuantizationParametersAddZeroPoint(fb, zero_vec)
        tflite.QuantizationParametersAddQuantizedDimension(fb, tensor.quantized_dimension)
        quant = tflite.QuantizationParametersEnd(fb)
    tflite.TensorStart(fb)
    tflite.TensorAddShape(fb, shape_vec)
    tflite.TensorAddType(fb, TENSOR_TYPES[tensor.dtype])
    tflite.TensorAddBuffer(fb, buffer_index)
    tflite.TensorAddName(fb, name)
    if quant is not None:
        tflite.TensorAddQuantization(fb, quant)
    if tensor.is_variable:
        tflite.TensorAddIsVariable(fb, True)
    return int(tflite.TensorEnd(fb))


def _write_options(fb: flatbuffers.Builder, op: _Operator) -> tuple[int, int | None]:
    """Write the op's options table; return (BuiltinOptions type, offset or None)."""
    spec = OPTIONS_SPECS[op.op_name]
    if not spec.table:
        return tflite.BuiltinOptions.NONE, None
    vectors = {
        f.key: _int32_vector(fb, op.options[f.key])
        for f in spec.fields
        if f.kind == "int_vector" and op.options[f.key] is not None
    }
    table = spec.table

    def setter(suffix: str) -> Callable[..., None]:
        fn: Callable[..., None] = getattr(tflite, f"{table}Add{suffix}")
        return fn

    getattr(tflite, f"{table}Start")(fb)
    for field in spec.fields:
        value = op.options[field.key]
        if field.kind == "activation":
            setter(field.setters[0])(fb, _LSTM_ACTIVATIONS[value])
        elif field.kind == "padding":
            setter(field.setters[0])(fb, PADDINGS[value])
        elif field.kind == "hw":
            setter(field.setters[0])(fb, value[0])
            setter(field.setters[1])(fb, value[1])
        elif field.kind == "int_vector":
            if field.key in vectors:
                setter(field.setters[0])(fb, vectors[field.key])
        else:
            setter(field.setters[0])(fb, value)
    offset = int(getattr(tflite, f"{table}End")(fb))
    return getattr(tflite.BuiltinOptions, table), offset


def _write_operator(fb: flatbuffers.Builder, op: _Operator, opcode_index: int) -> int:
    options_type, options_offset = _write_options(fb, op)
    inputs_vec = _int32_vector(fb, op.inputs)
    outputs_vec = _int32_vector(fb, op.outputs)
    intermediates_vec = _int32_vector(fb, op.intermediates) if op.intermediates else None
    tflite.OperatorStart(fb)
    tflite.OperatorAddOpcodeIndex(fb, opcode_index)
    tflite.OperatorAddInputs(fb, inputs_vec)
    tflite.OperatorAddOutputs(fb, outputs_vec)
    if options_offset is not None:
        tflite.OperatorAddBuiltinOptionsType(fb, options_type)
        tflite.OperatorAddBuiltinOptions(fb, options_offset)
    if intermediates_vec is not None:
        tflite.OperatorAddIntermediates(fb, intermediates_vec)
    return int(tflite.OperatorEnd(fb))


# --- int8 quantisation conventions -------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a small model: shape (elements), dtype, quantisation, optional constant.

    `scale` is the real value of one LSB, `zero_point` in LSB; tuples with one entry per
    channel along `quantized_dimension` for per-channel quantisation.
    """

    shape: tuple[int, ...]
    dtype: str = "int8"
    scale: tuple[float, ...] | None = None
    zero_point: tuple[int, ...] | None = None
    quantized_dimension: int = 0
    data: np.ndarray | None = None
    name: str = ""
    is_variable: bool = False


# Output quantisation TFLite requires for int8 ops with a fixed output range:
# (scale, zero_point). SOFTMAX and LOGISTIC map [0, 1); TANH maps [-1, 1).
FIXED_INT8_OUTPUT_QUANT: dict[str, tuple[float, int]] = {
    "SOFTMAX": (1.0 / 256.0, -128),
    "LOGISTIC": (1.0 / 256.0, -128),
    "TANH": (1.0 / 128.0, 0),
}


def activation_spec(
    shape: Sequence[int], scale: float, zero_point: int, name: str = ""
) -> TensorSpec:
    """A per-tensor int8 activation (a graph input, output or intermediate)."""
    return TensorSpec(tuple(shape), "int8", (float(scale),), (int(zero_point),), 0, None, name)


def weights_spec(
    data: np.ndarray, scales: Scales, quantized_dimension: int, name: str = "weights"
) -> TensorSpec:
    """Constant int8 weights, symmetric (zero point 0) per channel or per tensor."""
    array = np.asarray(data)
    scales_t = tuple(float(s) for s in np.atleast_1d(np.asarray(scales, dtype=np.float64)))
    return TensorSpec(
        tuple(array.shape), "int8", scales_t, (0,) * len(scales_t), quantized_dimension, array, name
    )


def bias_spec(
    data: np.ndarray, input_scale: float, weight_scales: Scales, name: str = "bias"
) -> TensorSpec:
    """Constant int32 bias with TFLite's scale: input_scale * weight_scale[c], zero point 0."""
    array = np.asarray(data)
    scales = tuple(
        float(np.float32(input_scale) * np.float32(s))
        for s in np.atleast_1d(np.asarray(weight_scales, dtype=np.float64))
    )
    return TensorSpec(tuple(array.shape), "int32", scales, (0,) * len(scales), 0, array, name)


def constant_spec(data: np.ndarray, name: str = "constant") -> TensorSpec:
    """An unquantised constant (shape, axis, padding or permutation operand)."""
    array = np.asarray(data)
    return TensorSpec(tuple(array.shape), array.dtype.name, None, None, 0, array, name)


def add_spec(builder: ModelBuilder, spec: TensorSpec, default_name: str) -> int:
    """Add a `TensorSpec` to a builder and return the tensor index."""
    return builder.add_tensor(
        spec.name or default_name,
        spec.shape,
        spec.dtype,
        scale=spec.scale,
        zero_point=spec.zero_point,
        quantized_dimension=spec.quantized_dimension,
        data=spec.data,
        is_variable=spec.is_variable,
    )


def single_op_model(
    op_name: str,
    inputs: Sequence[TensorSpec | None],
    outputs: Sequence[TensorSpec],
    options: Mapping[str, Any] | None = None,
    version: int | None = None,
) -> bytes:
    """A model of one operator. Inputs without data (and not variable) become graph inputs,
    in order; constant inputs are stored in the model; `None` is an omitted optional input.
    """
    builder = ModelBuilder(f"shoal single {op_name}")
    input_indices: list[int] = []
    graph_inputs: list[int] = []
    for i, spec in enumerate(inputs):
        if spec is None:
            input_indices.append(-1)
            continue
        index = add_spec(builder, spec, f"input_{i}")
        input_indices.append(index)
        if spec.data is None and not spec.is_variable:
            graph_inputs.append(index)
    output_indices = [add_spec(builder, spec, f"output_{i}") for i, spec in enumerate(outputs)]
    builder.add_operator(op_name, input_indices, output_indices, options, version)
    builder.set_io(graph_inputs, output_indices)
    return builder.build()
