"""The TFLite writer's output read back field by field with the `tflite` package's reader."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tflite
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.errors import ShoalInputError
from codegen.tflite_writer import (
    INT8_OP_VERSIONS,
    OPTIONS_SPECS,
    ModelBuilder,
    activation_spec,
    bias_spec,
    single_op_model,
    weights_spec,
)

pytestmark = pytest.mark.unit


def _model(data: bytes) -> Any:
    assert data[4:8] == b"TFL3"
    return tflite.Model.GetRootAsModel(data, 0)


def _options(op: Any, options_class: Any) -> Any:
    table = op.BuiltinOptions()
    assert table is not None
    opts = options_class()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _conv_model() -> tuple[bytes, np.ndarray, np.ndarray]:
    weights = np.arange(-12, 12, dtype=np.int8).reshape(2, 3, 2, 2)
    bias = np.array([100, -7], dtype=np.int32)
    b = ModelBuilder("round trip")
    x = b.add_tensor("x", (1, 5, 5, 2), "int8", scale=0.5, zero_point=-3)
    w = b.add_tensor("w", (2, 3, 2, 2), "int8", scale=[0.01, 0.02], zero_point=[0, 0], data=weights)
    bb = b.add_tensor("b", (2,), "int32", scale=[0.005, 0.01], zero_point=[0, 0], data=bias)
    y = b.add_tensor("y", (1, 3, 2, 2), "int8", scale=0.25, zero_point=7)
    b.add_operator(
        "CONV_2D",
        [x, w, bb],
        [y],
        {"padding": "SAME", "stride": (2, 3), "dilation": (1, 2), "activation": "RELU6"},
    )
    b.set_io([x], [y])
    return b.build(), weights, bias


def test_model_header_buffers_and_tensors_round_trip() -> None:
    data, weights, bias = _conv_model()
    model = _model(data)
    assert model.Version() == 3
    assert model.Description() == b"round trip"
    assert model.SubgraphsLength() == 1
    # Buffer 0 is the empty sentinel; then one buffer per constant, in tensor order.
    assert model.BuffersLength() == 3
    assert model.Buffers(0).DataLength() == 0
    sg = model.Subgraphs(0)
    assert sg.Name() == b"main"
    assert list(sg.InputsAsNumpy()) == [0]
    assert list(sg.OutputsAsNumpy()) == [3]
    assert sg.TensorsLength() == 4
    expected = [
        (b"x", [1, 5, 5, 2], tflite.TensorType.INT8, 0, [0.5], [-3]),
        (b"w", [2, 3, 2, 2], tflite.TensorType.INT8, 1, [0.01, 0.02], [0, 0]),
        (b"b", [2], tflite.TensorType.INT32, 2, [0.005, 0.01], [0, 0]),
        (b"y", [1, 3, 2, 2], tflite.TensorType.INT8, 0, [0.25], [7]),
    ]
    for i, (name, shape, ttype, buffer, scales, zeros) in enumerate(expected):
        t = sg.Tensors(i)
        assert t.Name() == name
        assert list(t.ShapeAsNumpy()) == shape
        assert t.Type() == ttype
        assert t.Buffer() == buffer
        assert not t.IsVariable()
        q = t.Quantization()
        np.testing.assert_allclose(q.ScaleAsNumpy(), np.asarray(scales, dtype=np.float32))
        assert list(q.ZeroPointAsNumpy()) == zeros
        assert q.QuantizedDimension() == 0
    w_data = model.Buffers(1).DataAsNumpy().tobytes()
    assert w_data == weights.tobytes()
    assert model.Buffers(2).DataAsNumpy().tobytes() == bias.astype("<i4").tobytes()


def test_constant_data_is_16_byte_aligned_in_the_file() -> None:
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 3), "int8", scale=0.1, zero_point=0)
    sizes = [1, 3, 7, 16, 33]
    for i, n in enumerate(sizes):
        b.add_tensor(f"c{i}", (n,), "int8", data=np.full(n, i + 1, dtype=np.int8))
    y = b.add_tensor("y", (1, 3), "int8", scale=0.1, zero_point=0)
    b.add_operator("RELU", [x], [y])
    b.set_io([x], [y])
    data = b.build()
    model = _model(data)
    base = np.frombuffer(data, dtype=np.uint8).ctypes.data
    for i, n in enumerate(sizes, start=1):
        buffer = model.Buffers(i).DataAsNumpy()
        assert buffer.size == n and np.all(buffer == i)
        assert (buffer.ctypes.data - base) % 16 == 0
    assert len(data) % 16 == 0


def test_operator_codes_are_deduplicated_with_int8_versions() -> None:
    b = ModelBuilder()
    t = [b.add_tensor(f"t{i}", (1, 4), "int8", scale=0.1, zero_point=0) for i in range(5)]
    b.add_operator("RELU", [t[0]], [t[1]])
    b.add_operator("ADD", [t[1], t[0]], [t[2]])
    b.add_operator("RELU", [t[2]], [t[3]])
    b.add_operator("RELU", [t[3]], [t[4]], version=1)
    b.set_io([t[0]], [t[4]])
    model = _model(b.build())
    codes = [
        (model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).Version())
        for i in range(model.OperatorCodesLength())
    ]
    relu, add = tflite.BuiltinOperator.RELU, tflite.BuiltinOperator.ADD
    assert codes == [(relu, 2), (add, 2), (relu, 1)]
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        assert code.DeprecatedBuiltinCode() == code.BuiltinCode()
    sg = model.Subgraphs(0)
    assert [sg.Operators(i).OpcodeIndex() for i in range(4)] == [0, 1, 0, 2]
    assert list(sg.Operators(1).InputsAsNumpy()) == [1, 0]
    assert list(sg.Operators(1).OutputsAsNumpy()) == [2]


def test_fully_connected_and_mul_versions_follow_tflite_rules() -> None:
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 4), "int8", scale=0.5, zero_point=0)
    w = b.add_tensor("w", (2, 4), "int8", scale=0.5, zero_point=0, data=np.ones((2, 4)))
    y = b.add_tensor("y", (1, 2), "int8", scale=0.1, zero_point=0)
    assert b.op_version("FULLY_CONNECTED", [x, w, -1], [y], {}) == 6
    assert b.op_version("FULLY_CONNECTED", [x, w], [y], {}) == 6
    bias = b.add_tensor("b", (2,), "int32", data=np.zeros(2))
    assert b.op_version("FULLY_CONNECTED", [x, w, bias], [y], {"keep_num_dims": True}) == 5
    assert b.op_version("FULLY_CONNECTED", [x, w, bias], [y], {}) == 4
    # MUL: input1_scale * input2_scale / output_scale = 0.5 * 0.5 / 0.1 >= 1 -> version 3.
    assert b.op_version("MUL", [x, w], [y], {}) == 3
    assert b.op_version("MUL", [y, y], [x], {}) == 2


# op name -> (options given, options class, {getter: expected value})
OPTION_CASES: dict[str, tuple[dict[str, Any], Any, dict[str, Any]]] = {
    "CONV_2D": (
        {"padding": "SAME", "stride": (2, 3), "dilation": 2, "activation": "RELU"},
        tflite.Conv2DOptions,
        {
            "Padding": tflite.Padding.SAME,
            "StrideH": 2,
            "StrideW": 3,
            "DilationHFactor": 2,
            "DilationWFactor": 2,
            "FusedActivationFunction": tflite.ActivationFunctionType.RELU,
        },
    ),
    "DEPTHWISE_CONV_2D": (
        {"padding": "VALID", "stride": 1, "dilation": (3, 1), "depth_multiplier": 4},
        tflite.DepthwiseConv2DOptions,
        {
            "Padding": tflite.Padding.VALID,
            "StrideH": 1,
            "StrideW": 1,
            "DilationHFactor": 3,
            "DilationWFactor": 1,
            "DepthMultiplier": 4,
            "FusedActivationFunction": tflite.ActivationFunctionType.NONE,
        },
    ),
    "FULLY_CONNECTED": (
        {"activation": "RELU_N1_TO_1", "keep_num_dims": True},
        tflite.FullyConnectedOptions,
        {
            "FusedActivationFunction": tflite.ActivationFunctionType.RELU_N1_TO_1,
            "KeepNumDims": True,
        },
    ),
    "AVERAGE_POOL_2D": (
        {"padding": "SAME", "stride": (1, 2), "filter": (3, 4), "activation": "RELU6"},
        tflite.Pool2DOptions,
        {
            "Padding": tflite.Padding.SAME,
            "StrideH": 1,
            "StrideW": 2,
            "FilterHeight": 3,
            "FilterWidth": 4,
            "FusedActivationFunction": tflite.ActivationFunctionType.RELU6,
        },
    ),
    "MAX_POOL_2D": (
        {"filter": 2, "stride": 2},
        tflite.Pool2DOptions,
        {"FilterHeight": 2, "FilterWidth": 2, "StrideH": 2, "StrideW": 2},
    ),
    "ADD": (
        {"activation": "RELU"},
        tflite.AddOptions,
        {"FusedActivationFunction": tflite.ActivationFunctionType.RELU},
    ),
    "MUL": (
        {"activation": "RELU6"},
        tflite.MulOptions,
        {"FusedActivationFunction": tflite.ActivationFunctionType.RELU6},
    ),
    "SUB": (
        {"activation": "RELU_N1_TO_1"},
        tflite.SubOptions,
        {"FusedActivationFunction": tflite.ActivationFunctionType.RELU_N1_TO_1},
    ),
    "SOFTMAX": ({"beta": 0.5}, tflite.SoftmaxOptions, {"Beta": 0.5}),
    "LEAKY_RELU": ({"alpha": 0.25}, tflite.LeakyReluOptions, {"Alpha": 0.25}),
    "CONCATENATION": (
        {"axis": -1, "activation": "RELU"},
        tflite.ConcatenationOptions,
        {"Axis": -1, "FusedActivationFunction": tflite.ActivationFunctionType.RELU},
    ),
    "STRIDED_SLICE": (
        {"begin_mask": 5, "end_mask": 2, "shrink_axis_mask": 8, "new_axis_mask": 0},
        tflite.StridedSliceOptions,
        {"BeginMask": 5, "EndMask": 2, "ShrinkAxisMask": 8, "EllipsisMask": 0, "Offset": False},
    ),
    "MEAN": ({"keep_dims": True}, tflite.ReducerOptions, {"KeepDims": True}),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (
        {"activation": "TANH", "cell_clip": 10.0, "time_major": True},
        tflite.UnidirectionalSequenceLSTMOptions,
        {
            "FusedActivationFunction": tflite.ActivationFunctionType.TANH,
            "CellClip": 10.0,
            "ProjClip": 0.0,
            "TimeMajor": True,
        },
    ),
}
VECTOR_OPTION_CASES: dict[str, tuple[dict[str, Any], Any, str, list[int]]] = {
    "RESHAPE": ({"new_shape": (2, -1)}, tflite.ReshapeOptions, "NewShapeAsNumpy", [2, -1]),
    "SQUEEZE": ({"squeeze_dims": (0, 2)}, tflite.SqueezeOptions, "SqueezeDimsAsNumpy", [0, 2]),
}
OPTIONLESS = {"LOGISTIC", "TANH", "RELU", "RELU6"}
EMPTY_TABLE = {
    "PAD": tflite.BuiltinOptions.PadOptions,
    "PADV2": tflite.BuiltinOptions.PadV2Options,
    "TRANSPOSE": tflite.BuiltinOptions.TransposeOptions,
    "EXPAND_DIMS": tflite.BuiltinOptions.ExpandDimsOptions,
    "HARD_SWISH": tflite.BuiltinOptions.HardSwishOptions,
    "QUANTIZE": tflite.BuiltinOptions.QuantizeOptions,
    "DEQUANTIZE": tflite.BuiltinOptions.DequantizeOptions,
}


def test_every_supported_op_has_an_options_case_here() -> None:
    covered = set(OPTION_CASES) | set(VECTOR_OPTION_CASES) | OPTIONLESS | set(EMPTY_TABLE)
    assert covered == set(OPTIONS_SPECS)
    assert set(INT8_OP_VERSIONS) == set(OPTIONS_SPECS)


def _one_op(op_name: str, options: dict[str, Any]) -> Any:
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 4), "int8", scale=0.1, zero_point=0)
    y = b.add_tensor("y", (1, 4), "int8", scale=0.1, zero_point=0)
    b.add_operator(op_name, [x], [y], options)
    b.set_io([x], [y])
    model = _model(b.build())
    op = model.Subgraphs(0).Operators(0)
    code = model.OperatorCodes(op.OpcodeIndex())
    assert code.BuiltinCode() == getattr(tflite.BuiltinOperator, op_name)
    # FULLY_CONNECTED with keep_num_dims is version 5 in TFLite's versioning rules.
    keep_dims_fc = op_name == "FULLY_CONNECTED" and options.get("keep_num_dims")
    assert code.Version() == (5 if keep_dims_fc else INT8_OP_VERSIONS[op_name])
    return op


@pytest.mark.parametrize("op_name", sorted(OPTION_CASES))
def test_scalar_options_round_trip(op_name: str) -> None:
    given_options, options_class, expected = OPTION_CASES[op_name]
    op = _one_op(op_name, given_options)
    assert op.BuiltinOptionsType() == getattr(tflite.BuiltinOptions, options_class.__name__)
    opts = _options(op, options_class)
    for getter, value in expected.items():
        got = getattr(opts, getter)()
        if isinstance(value, float):
            assert got == pytest.approx(value)
        else:
            assert got == value, getter


@pytest.mark.parametrize("op_name", sorted(VECTOR_OPTION_CASES))
def test_vector_options_round_trip(op_name: str) -> None:
    given_options, options_class, getter, expected = VECTOR_OPTION_CASES[op_name]
    op = _one_op(op_name, given_options)
    assert list(getattr(_options(op, options_class), getter)()) == expected


@pytest.mark.parametrize("op_name", sorted(OPTIONLESS | set(EMPTY_TABLE)))
def test_ops_without_options_fields(op_name: str) -> None:
    op = _one_op(op_name, {})
    expected_type = EMPTY_TABLE.get(op_name, tflite.BuiltinOptions.NONE)
    assert op.BuiltinOptionsType() == expected_type


def test_variable_tensors_intermediates_and_omitted_inputs() -> None:
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 2, 3), "int8", scale=0.1, zero_point=0)
    state = b.add_tensor("state", (1, 4), "int8", scale=0.1, zero_point=2, is_variable=True)
    mid = b.add_tensor("mid", (0,), "int16", scale=0.001, zero_point=0)
    y = b.add_tensor("y", (1, 2, 4), "int8", scale=0.1, zero_point=0)
    b.add_operator("UNIDIRECTIONAL_SEQUENCE_LSTM", [x, -1, state], [y], intermediates=[mid])
    b.set_io([x], [y])
    model = _model(b.build())
    sg = model.Subgraphs(0)
    assert sg.Tensors(state).IsVariable()
    assert sg.Tensors(state).Buffer() == 0
    op = sg.Operators(0)
    assert list(op.InputsAsNumpy()) == [x, -1, state]
    assert list(op.IntermediatesAsNumpy()) == [mid]


def test_per_channel_quantisation_on_a_later_dimension() -> None:
    w = np.zeros((1, 2, 2, 3), dtype=np.int8)
    data = single_op_model(
        "DEPTHWISE_CONV_2D",
        [
            activation_spec((1, 4, 4, 3), 0.1, 0),
            weights_spec(w, [0.1, 0.2, 0.3], 3),
            bias_spec(np.zeros(3, dtype=np.int32), 0.1, [0.1, 0.2, 0.3]),
        ],
        [activation_spec((1, 3, 3, 3), 0.2, 0)],
    )
    sg = _model(data).Subgraphs(0)
    q = sg.Tensors(1).Quantization()
    assert q.QuantizedDimension() == 3
    np.testing.assert_allclose(q.ScaleAsNumpy(), np.array([0.1, 0.2, 0.3], dtype=np.float32))
    bias_q = sg.Tensors(2).Quantization()
    # bias scale = input_scale * weight_scale[c] (TFLite's int8 convention)
    np.testing.assert_allclose(
        bias_q.ScaleAsNumpy(), np.array([0.01, 0.02, 0.03], dtype=np.float32), rtol=1e-6
    )
    assert list(sg.InputsAsNumpy()) == [0]  # constants are not graph inputs


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    dtype=st.sampled_from(["int8", "int32", "int16", "uint8", "float32", "int64"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_constant_data_round_trips_for_every_dtype(shape: list[int], dtype: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if dtype != "float32" else None
    values = (
        rng.standard_normal(shape).astype(np.float32)
        if info is None
        else rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    )
    b = ModelBuilder()
    x = b.add_tensor("x", (1,), "int8", scale=0.1, zero_point=0)
    c = b.add_tensor("c", shape, dtype, data=values)
    y = b.add_tensor("y", (1,), "int8", scale=0.1, zero_point=0)
    b.add_operator("ADD", [x, c], [y])
    b.set_io([x], [y])
    data = b.build()
    model = _model(data)
    raw = model.Buffers(model.Subgraphs(0).Tensors(c).Buffer()).DataAsNumpy().tobytes()
    back = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    np.testing.assert_array_equal(back, values)
    assert b.build() == data  # deterministic


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.add_tensor("t", (1, -2), "int8"), "negative dimension"),
        (lambda b: b.add_tensor("t", (2,), "complex64"), "dtype 'complex64'"),
        (lambda b: b.add_tensor("t", (3,), "int8", scale=[0.1, 0.2]), "per-channel scales"),
        (lambda b: b.add_tensor("t", (2,), "int8", scale=[0.1, 0.2], zero_point=[0]), "zero point"),
        (lambda b: b.add_tensor("t", (2,), "int8", scale=0.0), "must be finite and > 0"),
        (lambda b: b.add_tensor("t", (2,), "int8", zero_point=1), "without scale"),
        (lambda b: b.add_tensor("t", (2,), "int8", data=np.zeros(3)), "data has shape (3,)"),
        (lambda b: b.add_tensor("t", (1,), "int8", data=np.array([300])), "do not fit int8"),
        (
            lambda b: b.add_tensor("t", (2, 2), "int8", scale=[1, 1], quantized_dimension=5),
            "quantized_dimension 5",
        ),
        (lambda b: b.add_operator("FOO", [0], [1]), "operator 0 FOO: op is not supported"),
        (lambda b: b.add_operator("ADD", [0, 7], [1]), "input tensor index 7 does not exist"),
        (lambda b: b.add_operator("ADD", [0, 0], [-1]), "output tensor index -1"),
        (
            lambda b: b.add_operator("CONV_2D", [0], [1], {"strides": 2}),
            "unknown option(s) strides; accepted: activation, dilation, padding, stride",
        ),
        (lambda b: b.add_operator("CONV_2D", [0], [1], {"padding": "FULL"}), "'padding'"),
        (lambda b: b.add_operator("ADD", [0], [1], {"activation": "TANH"}), "'activation'"),
        (lambda b: b.add_operator("CONV_2D", [0], [1], {"stride": (1, 2, 3)}), "'stride'"),
        (lambda b: b.add_operator("CONV_2D", [0], [1], {"dilation": 0}), "must be >= 1"),
        (lambda b: b.set_io([0], [9]), "model outputs: tensor index 9"),
        (lambda b: b.build(), "call set_io"),
    ],
)
def test_bad_input_gives_one_clear_error(call: Any, message: str) -> None:
    b = ModelBuilder()
    b.add_tensor("a", (1,), "int8", scale=0.1, zero_point=0)
    b.add_tensor("b", (1,), "int8", scale=0.1, zero_point=0)
    with pytest.raises(ShoalInputError) as info:
        call(b)
    assert message in str(info.value)


def test_build_without_operators_is_an_error() -> None:
    b = ModelBuilder()
    t = b.add_tensor("a", (1,), "int8", scale=0.1, zero_point=0)
    b.set_io([t], [t])
    with pytest.raises(ShoalInputError, match="no operators"):
        b.build()
