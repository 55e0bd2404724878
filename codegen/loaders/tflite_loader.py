"""Read a `.tflite` flatbuffer into the model IR (`codegen.ir.model`).

Responsible for: decoding the flatbuffer with the PyPI `tflite` bindings, accepting the quirks
real models carry (a bias `quantized_dimension` beyond the tensor's rank, opcodes listed but
used by no operator, variable state tensors) and rejecting what Shoal cannot compile with ONE
`ShoalInputError` that lists every offending operator at once.

Must not: compute kernel parameters or memory plans, or write anything.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import tflite
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from codegen.errors import ShoalInputError
from codegen.ir.model import (
    ConcatenationOptions,
    Conv2DOptions,
    DepthwiseConv2DOptions,
    ElementwiseOptions,
    FullyConnectedOptions,
    LeakyReluOptions,
    LstmOptions,
    Model,
    NoOptions,
    Operator,
    OperatorOptions,
    Pool2DOptions,
    Quantization,
    ReshapeOptions,
    SoftmaxOptions,
    StridedSliceOptions,
    Tensor,
)

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_DTYPE_NAMES = {v: k.lower() for k, v in vars(TensorType).items() if not k.startswith("_")}
_ACTIVATIONS = {v: k for k, v in vars(ActivationFunctionType).items() if not k.startswith("_")}
_PADDINGS = {v: k for k, v in vars(Padding).items() if not k.startswith("_")}
_FILE_IDENTIFIER = b"TFL3"


def load_tflite(data: bytes, source: str = "<bytes>") -> Model:
    """Decode `.tflite` bytes into a `Model` and check every operator is supported.

    `source` names the file in error messages. Raises `ShoalInputError` for a truncated or
    non-TFLite file, a multi-subgraph model, or unsupported operators/dtypes (all listed).
    """
    model = decode_tflite(data, source)
    # Imported here: the op registry imports the IR, and the loader must stay importable alone.
    from codegen.ops.registry import check_supported

    check_supported(model, source)
    return model


def load_tflite_file(path: Path) -> Model:
    """Read and decode a `.tflite` file (see `load_tflite`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ShoalInputError(f"{path}: cannot read model file: {exc.strerror}") from exc
    return load_tflite(data, str(path))


def decode_tflite(data: bytes, source: str = "<bytes>") -> Model:
    """Decode the flatbuffer into the IR without checking operator support."""
    if len(data) < 8 or data[4:8] != _FILE_IDENTIFIER:
        raise ShoalInputError(
            f"{source}: not a TFLite model (expected a flatbuffer with file identifier 'TFL3' "
            f"at bytes 4..8, got {data[4:8]!r} in {len(data)} bytes)"
        )
    try:
        return _decode(data, source)
    except ShoalInputError:
        raise
    except Exception as exc:  # a damaged flatbuffer fails in arbitrary ways deep in the bindings
        raise ShoalInputError(
            f"{source}: damaged or truncated TFLite model ({len(data)} bytes): "
            f"{type(exc).__name__}: {exc}; expected a complete .tflite file"
        ) from exc


def _decode(data: bytes, source: str) -> Model:
    fb = tflite.Model.GetRootAsModel(data, 0)
    if fb.SubgraphsLength() != 1:
        raise ShoalInputError(
            f"{source}: model has {fb.SubgraphsLength()} subgraphs; Shoal compiles "
            "single-subgraph models only"
        )
    graph = fb.Subgraphs(0)
    buffers = [_buffer_bytes(data, fb.Buffers(i)) for i in range(fb.BuffersLength())]
    tensors = tuple(
        _decode_tensor(graph.Tensors(i), i, buffers) for i in range(graph.TensorsLength())
    )
    for tensor in tensors:
        if tensor.data is not None and len(tensor.data) != tensor.byte_size:
            raise ShoalInputError(
                f"{source}: tensor {tensor.index} '{tensor.name}' holds {len(tensor.data)} bytes "
                f"of constant data, expected {tensor.byte_size} for shape {list(tensor.shape)} "
                f"{tensor.dtype}; the file is damaged"
            )
    operators = []
    for i in range(graph.OperatorsLength()):
        fb_op = graph.Operators(i)
        code = fb.OperatorCodes(fb_op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
        operators.append(
            Operator(
                index=i,
                op=name,
                version=code.Version(),
                inputs=_int_tuple(fb_op.InputsAsNumpy() if fb_op.InputsLength() else ()),
                outputs=_int_tuple(fb_op.OutputsAsNumpy() if fb_op.OutputsLength() else ()),
                intermediates=_int_tuple(
                    fb_op.IntermediatesAsNumpy() if fb_op.IntermediatesLength() else ()
                ),
                options=_decode_options(fb_op),
            )
        )
    for op in operators:
        for t in (*op.inputs, *op.outputs):
            if t >= len(tensors) or t < -1:
                raise ShoalInputError(
                    f"{source}: operator {op.index} {op.op} refers to tensor {t}, but the model "
                    f"has {len(tensors)} tensors; the file is damaged"
                )
    description = fb.Description().decode(errors="replace") if fb.Description() else ""
    return Model(
        tensors=tensors,
        operators=tuple(operators),
        inputs=_int_tuple(graph.InputsAsNumpy() if graph.InputsLength() else ()),
        outputs=_int_tuple(graph.OutputsAsNumpy() if graph.OutputsLength() else ()),
        source_sha256=hashlib.sha256(data).hexdigest(),
        description=description,
    )


def _int_tuple(values: object) -> tuple[int, ...]:
    return tuple(int(v) for v in values)  # type: ignore[attr-defined]


def _buffer_bytes(data: bytes, buffer: tflite.Buffer) -> bytes | None:
    # Models over 2 GB keep buffers after the flatbuffer, addressed by offset/size.
    if buffer.Offset() > 1:
        start, size = buffer.Offset(), buffer.Size()
        if start + size > len(data):
            raise ShoalInputError(
                f"buffer at offset {start} (+{size} bytes) lies beyond the end of the file"
            )
        return bytes(data[start : start + size])
    if buffer.DataLength() == 0:
        return None
    return buffer.DataAsNumpy().tobytes()


def _decode_tensor(fb_tensor: tflite.Tensor, index: int, buffers: list[bytes | None]) -> Tensor:
    shape = _int_tuple(fb_tensor.ShapeAsNumpy() if fb_tensor.ShapeLength() else ())
    dtype = _DTYPE_NAMES.get(fb_tensor.Type(), f"type{fb_tensor.Type()}")
    quant = None
    q = fb_tensor.Quantization()
    if q is not None and q.ScaleLength() > 0:
        scales = tuple(float(s) for s in q.ScaleAsNumpy())
        zero_points = _int_tuple(q.ZeroPointAsNumpy() if q.ZeroPointLength() else ())
        if not zero_points:
            zero_points = (0,) * len(scales)
        quant = Quantization(scales, zero_points, int(q.QuantizedDimension()))
    buffer_index = fb_tensor.Buffer()
    data = buffers[buffer_index] if 0 < buffer_index < len(buffers) else None
    return Tensor(
        index=index,
        name=(fb_tensor.Name() or b"").decode(errors="replace"),
        shape=shape,
        dtype=dtype,
        quantization=quant,
        data=data,
        is_variable=bool(fb_tensor.IsVariable()),
    )


def _activation(code: int) -> str:
    return _ACTIVATIONS.get(code, f"ACTIVATION_{code}")


def _decode_options(fb_op: tflite.Operator) -> OperatorOptions:
    kind = fb_op.BuiltinOptionsType()
    table = fb_op.BuiltinOptions()
    if table is None:
        return NoOptions()
    if kind == BuiltinOptions.FullyConnectedOptions:
        fc = tflite.FullyConnectedOptions()
        fc.Init(table.Bytes, table.Pos)
        return FullyConnectedOptions(
            fused_activation=_activation(fc.FusedActivationFunction()),
            keep_num_dims=bool(fc.KeepNumDims()),
            weights_format="DEFAULT" if fc.WeightsFormat() == 0 else f"FORMAT_{fc.WeightsFormat()}",
        )
    if kind == BuiltinOptions.Conv2DOptions:
        conv = tflite.Conv2DOptions()
        conv.Init(table.Bytes, table.Pos)
        return Conv2DOptions(
            padding=_PADDINGS.get(conv.Padding(), "UNKNOWN"),
            stride_h=conv.StrideH(),
            stride_w=conv.StrideW(),
            dilation_h=conv.DilationHFactor(),
            dilation_w=conv.DilationWFactor(),
            fused_activation=_activation(conv.FusedActivationFunction()),
        )
    if kind == BuiltinOptions.DepthwiseConv2DOptions:
        dw = tflite.DepthwiseConv2DOptions()
        dw.Init(table.Bytes, table.Pos)
        return DepthwiseConv2DOptions(
            padding=_PADDINGS.get(dw.Padding(), "UNKNOWN"),
            stride_h=dw.StrideH(),
            stride_w=dw.StrideW(),
            dilation_h=dw.DilationHFactor(),
            dilation_w=dw.DilationWFactor(),
            depth_multiplier=dw.DepthMultiplier(),
            fused_activation=_activation(dw.FusedActivationFunction()),
        )
    if kind == BuiltinOptions.Pool2DOptions:
        pool = tflite.Pool2DOptions()
        pool.Init(table.Bytes, table.Pos)
        return Pool2DOptions(
            padding=_PADDINGS.get(pool.Padding(), "UNKNOWN"),
            stride_h=pool.StrideH(),
            stride_w=pool.StrideW(),
            filter_h=pool.FilterHeight(),
            filter_w=pool.FilterWidth(),
            fused_activation=_activation(pool.FusedActivationFunction()),
        )
    if kind in (BuiltinOptions.AddOptions, BuiltinOptions.SubOptions, BuiltinOptions.MulOptions):
        cls = {
            BuiltinOptions.AddOptions: tflite.AddOptions,
            BuiltinOptions.SubOptions: tflite.SubOptions,
            BuiltinOptions.MulOptions: tflite.MulOptions,
        }[kind]
        elementwise = cls()
        elementwise.Init(table.Bytes, table.Pos)
        return ElementwiseOptions(
            fused_activation=_activation(elementwise.FusedActivationFunction())
        )
    if kind == BuiltinOptions.SoftmaxOptions:
        softmax = tflite.SoftmaxOptions()
        softmax.Init(table.Bytes, table.Pos)
        return SoftmaxOptions(beta=float(softmax.Beta()))
    if kind == BuiltinOptions.ReshapeOptions:
        reshape = tflite.ReshapeOptions()
        reshape.Init(table.Bytes, table.Pos)
        new_shape = _int_tuple(reshape.NewShapeAsNumpy()) if reshape.NewShapeLength() else None
        return ReshapeOptions(new_shape=new_shape)
    if kind == BuiltinOptions.ConcatenationOptions:
        concat = tflite.ConcatenationOptions()
        concat.Init(table.Bytes, table.Pos)
        return ConcatenationOptions(
            axis=concat.Axis(), fused_activation=_activation(concat.FusedActivationFunction())
        )
    if kind == BuiltinOptions.StridedSliceOptions:
        ss = tflite.StridedSliceOptions()
        ss.Init(table.Bytes, table.Pos)
        return StridedSliceOptions(
            begin_mask=ss.BeginMask(),
            end_mask=ss.EndMask(),
            ellipsis_mask=ss.EllipsisMask(),
            new_axis_mask=ss.NewAxisMask(),
            shrink_axis_mask=ss.ShrinkAxisMask(),
            offset=bool(ss.Offset()),
        )
    if kind == BuiltinOptions.LeakyReluOptions:
        leaky = tflite.LeakyReluOptions()
        leaky.Init(table.Bytes, table.Pos)
        return LeakyReluOptions(alpha=float(leaky.Alpha()))
    if kind == BuiltinOptions.UnidirectionalSequenceLSTMOptions:
        lstm = tflite.UnidirectionalSequenceLSTMOptions()
        lstm.Init(table.Bytes, table.Pos)
        return LstmOptions(
            fused_activation=_activation(lstm.FusedActivationFunction()),
            cell_clip=float(lstm.CellClip()),
            proj_clip=float(lstm.ProjClip()),
            time_major=bool(lstm.TimeMajor()),
            asymmetric_quantize_inputs=bool(lstm.AsymmetricQuantizeInputs()),
        )
    return NoOptions()
