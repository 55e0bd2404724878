"""Hypothesis strategies for random valid int8 TFLite models built with `codegen.tflite_writer`.

Each strategy yields `(model_bytes, case)`: `case` is a `ModelCase` whose `str()` describes
the model in one paragraph (ops, options, shapes, quantisation) and which carries what a test
needs to check it: the ops with their tensors, a sample input per graph input, and a float
reference of every op computed in numpy from dequantised values.

Quantisation follows TFLite's int8 conventions: symmetric per-channel int8 weights, int32
bias at input_scale * weight_scale[c], fixed output parameters for SOFTMAX/LOGISTIC/TANH,
equal input/output parameters for ops that only move data. Output scales are calibrated on
the sample input (so outputs use the int8 range instead of saturating), which is also how
multi-op chains pick their intermediate quantisation.

Everything drawn here is accepted by TFLM and by tflite-runtime's reference kernels; the
tests in tests/codegen/test_tflite_writer_tflm.py check that on every draw (for LSTMs,
where the two runtimes round differently, only TFLM is the golden; see that file).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from codegen.tflite_writer import (
    FIXED_INT8_OUTPUT_QUANT,
    ModelBuilder,
    TensorSpec,
    activation_spec,
    add_spec,
    bias_spec,
    constant_spec,
    weights_spec,
)

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")

# --- cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpCase:
    """One operator: its options and tensors (constants carry their data)."""

    op_name: str
    options: dict[str, Any]
    inputs: tuple[TensorSpec | None, ...]
    outputs: tuple[TensorSpec, ...]

    def describe(self) -> str:
        def spec_text(spec: TensorSpec | None) -> str:
            if spec is None:
                return "-"
            quant = ""
            if spec.scale is not None and spec.zero_point is not None:
                if len(spec.scale) == 1:
                    quant = f" s={spec.scale[0]:.4g} zp={spec.zero_point[0]}"
                else:
                    quant = f" per-channel[{len(spec.scale)}] on dim {spec.quantized_dimension}"
            const = " const" if spec.data is not None else ""
            return f"{spec.name}:{spec.dtype}{list(spec.shape)}{quant}{const}"

        ins = ", ".join(spec_text(s) for s in self.inputs)
        outs = ", ".join(spec_text(s) for s in self.outputs)
        return f"{self.op_name}({ins}) -> {outs} options={self.options}"


@dataclass(frozen=True)
class ModelCase:
    """A drawn model: ops in execution order, graph inputs/outputs, one sample input each."""

    ops: tuple[OpCase, ...]
    graph_inputs: tuple[TensorSpec, ...]
    graph_outputs: tuple[TensorSpec, ...]
    sample_inputs: tuple[np.ndarray, ...] = field(repr=False)

    def __str__(self) -> str:
        return "; ".join(op.describe() for op in self.ops)


def build_model(case: ModelCase) -> bytes:
    """Serialise a case with the writer; tensors are identified by their spec names."""
    builder = ModelBuilder("shoal hypothesis model")
    index_of: dict[str, int] = {}

    def tensor(spec: TensorSpec) -> int:
        if spec.name not in index_of:
            index_of[spec.name] = add_spec(builder, spec, spec.name)
        return index_of[spec.name]

    for spec in case.graph_inputs:
        tensor(spec)
    for op in case.ops:
        ins = [-1 if s is None else tensor(s) for s in op.inputs]
        outs = [tensor(s) for s in op.outputs]
        builder.add_operator(op.op_name, ins, outs, op.options)
    builder.set_io(
        [index_of[s.name] for s in case.graph_inputs],
        [index_of[s.name] for s in case.graph_outputs],
    )
    return builder.build()


# --- quantisation helpers --------------------------------------------------------------------


def dequantize(spec: TensorSpec, values: np.ndarray) -> np.ndarray:
    """Real values of a quantised array (float64), per channel where the spec says so."""
    if spec.scale is None or spec.zero_point is None:
        return np.asarray(values, dtype=np.float64)
    scale = np.asarray(spec.scale, dtype=np.float64)
    zero = np.asarray(spec.zero_point, dtype=np.float64)
    if len(spec.scale) > 1:
        shape = [1] * len(spec.shape)
        shape[spec.quantized_dimension] = len(spec.scale)
        scale = scale.reshape(shape)
        zero = zero.reshape(shape)
    return (np.asarray(values, dtype=np.float64) - zero) * scale


def quantize(spec: TensorSpec, real: np.ndarray) -> np.ndarray:
    """int8 values of real numbers under a per-tensor spec (round half away from zero)."""
    assert spec.scale is not None and spec.zero_point is not None
    scaled = np.asarray(real, dtype=np.float64) / spec.scale[0]
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + spec.zero_point[0]
    return np.clip(rounded, -128, 127).astype(np.int8)


def _irregular_factor(draw: st.DrawFn) -> float:
    """A factor in [0.7, 1.6) that is not a simple binary fraction.

    Scale ratios that are simple binary fractions (0.8 -> multiplier 1.25, alpha / 0.4 = 0.5)
    put requantisation products exactly on rounding ties, where TFLM and TFLite's reference
    kernels round differently (seen on LEAKY_RELU); real calibrated scales do not.
    """
    step = draw(st.integers(0, 999_999))
    return 0.7 + 0.9 * (step + math.sqrt(2.0) / 2.0) / 1_000_000.0


def _calibrated_output(
    draw: st.DrawFn, name: str, real: np.ndarray, shape: Sequence[int]
) -> TensorSpec:
    """An int8 spec whose range covers `real` (and 0), widened or narrowed a little at random."""
    low = min(float(np.min(real)) if real.size else 0.0, 0.0)
    high = max(float(np.max(real)) if real.size else 0.0, 0.0)
    span = high - low
    if span < 1e-6:
        span = 1.0
    scale = span * _irregular_factor(draw) / 255.0
    zero_point = int(np.clip(round(-128 - low / scale), -128, 127))
    return activation_spec(tuple(shape), scale, zero_point, name)


# TFLM and TFLite's reference kernels differ by 1 LSB on a few inputs of int8 LOGISTIC and
# TANH when the input scale is a small power of two (1/256, 1/128: e.g. after SOFTMAX or
# LOGISTIC); those inputs are kept away from these two ops.
_POWER_OF_TWO_SCALES = (1.0 / 256.0, 1.0 / 128.0)
_LUT_OPS = ("LOGISTIC", "TANH")


def _input_spec(draw: st.DrawFn, name: str, shape: Sequence[int], op_name: str = "") -> TensorSpec:
    choices: tuple[float, ...] = (0.004, 0.01, 0.0233, 0.05, 0.12)
    if op_name not in _LUT_OPS:
        choices += _POWER_OF_TWO_SCALES
    scale = draw(st.sampled_from(choices))
    zero_point = draw(st.integers(-128, 127))
    return activation_spec(tuple(shape), scale, zero_point, name)


def _rng(draw: st.DrawFn) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def _random_int8(rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    return rng.integers(-128, 128, size=tuple(shape)).astype(np.int8)


# --- float references -------------------------------------------------------------------------


def _apply_activation(y: np.ndarray, activation: str) -> np.ndarray:
    if activation == "RELU":
        return np.maximum(y, 0.0)
    if activation == "RELU6":
        return np.clip(y, 0.0, 6.0)
    if activation == "RELU_N1_TO_1":
        return np.clip(y, -1.0, 1.0)
    return y


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """(output size, padding before, padding after) for TFLite SAME padding."""
    effective = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + effective - size, 0)
    return out, total // 2, total - total // 2


def _window_geometry(
    size: int, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[int, int, int]:
    if padding == "SAME":
        return _same_padding(size, kernel, stride, dilation)
    effective = (kernel - 1) * dilation + 1
    return (size - effective + stride) // stride, 0, 0


def _conv_reference(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, opts: dict[str, Any], depthwise: bool
) -> np.ndarray:
    n, h, wd, _ = x.shape
    _, kh, kw, _ = w.shape
    (sh, sw), (dh, dw) = opts["stride"], opts["dilation"]
    oh, top, bottom = _window_geometry(h, kh, sh, dh, opts["padding"])
    ow, left, right = _window_geometry(wd, kw, sw, dw, opts["padding"])
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    if depthwise:
        xp = np.repeat(xp, opts["depth_multiplier"], axis=3)
        out = np.zeros((n, oh, ow, xp.shape[3]))
    else:
        out = np.zeros((n, oh, ow, w.shape[0]))
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[
                :,
                ky * dh : ky * dh + (oh - 1) * sh + 1 : sh,
                kx * dw : kx * dw + (ow - 1) * sw + 1 : sw,
                :,
            ]
            if depthwise:
                out += patch * w[0, ky, kx, :]
            else:
                out += np.einsum("nhwi,oi->nhwo", patch, w[:, ky, kx, :])
    return _apply_activation(out + b, opts["activation"])


def _pool_reference(x: np.ndarray, opts: dict[str, Any], average: bool) -> np.ndarray:
    n, h, w, c = x.shape
    (fh, fw), (sh, sw) = opts["filter"], opts["stride"]
    oh, top, _ = _window_geometry(h, fh, sh, 1, opts["padding"])
    ow, left, _ = _window_geometry(w, fw, sw, 1, opts["padding"])
    out = np.zeros((n, oh, ow, c))
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * sh - top, ox * sw - left
            window = x[:, max(y0, 0) : min(y0 + fh, h), max(x0, 0) : min(x0 + fw, w), :]
            out[:, oy, ox, :] = window.mean(axis=(1, 2)) if average else window.max(axis=(1, 2))
    return _apply_activation(out, opts["activation"])


def _strided_slice_reference(
    x: np.ndarray, begin: np.ndarray, end: np.ndarray, strides: np.ndarray, opts: dict[str, Any]
) -> np.ndarray:
    index: list[Any] = []
    for axis in range(x.ndim):
        start = None if opts["begin_mask"] >> axis & 1 else int(begin[axis])
        stop = None if opts["end_mask"] >> axis & 1 else int(end[axis])
        if opts["shrink_axis_mask"] >> axis & 1:
            index.append(int(begin[axis]))
        else:
            index.append(slice(start, stop, int(strides[axis])))
    return x[tuple(index)]


def float_reference(op: OpCase, real_inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    """The op's output in real numbers (float64) from the real values of its inputs.

    Constant inputs are passed like the others (dequantised); integer operands (shapes,
    axes, paddings) are passed as they are stored.
    """
    name, o = op.op_name, op.options
    x = real_inputs[0]
    assert x is not None
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w, b = real_inputs[1], real_inputs[2]
        assert w is not None
        bias = np.zeros(w.shape[0 if name == "CONV_2D" else 3]) if b is None else b
        return _conv_reference(x, w, bias, o, depthwise=name == "DEPTHWISE_CONV_2D")
    if name == "FULLY_CONNECTED":
        w, b = real_inputs[1], real_inputs[2] if len(real_inputs) > 2 else None
        assert w is not None
        y = x.reshape(-1, w.shape[1]) @ w.T + (0.0 if b is None else b)
        return _apply_activation(y, o["activation"])
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return _pool_reference(x, o, average=name == "AVERAGE_POOL_2D")
    if name in ("ADD", "SUB", "MUL"):
        other = real_inputs[1]
        assert other is not None
        combine: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
            "ADD": np.add,
            "SUB": np.subtract,
            "MUL": np.multiply,
        }
        return _apply_activation(combine[name](x, other), o["activation"])
    if name == "SOFTMAX":
        z = o["beta"] * (x - x.max(axis=-1, keepdims=True))
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
    if name == "LOGISTIC":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "TANH":
        return np.tanh(x)
    if name == "HARD_SWISH":
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0
    if name == "RELU":
        return np.maximum(x, 0.0)
    if name == "RELU6":
        return np.clip(x, 0.0, 6.0)
    if name == "LEAKY_RELU":
        return np.where(x >= 0, x, o["alpha"] * x)
    if name == "RESHAPE":
        return x.reshape(o["new_shape"])
    if name == "SQUEEZE":
        dims = o["squeeze_dims"] or tuple(i for i, d in enumerate(x.shape) if d == 1)
        return np.squeeze(x, axis=tuple(dims))
    if name == "EXPAND_DIMS":
        axis = real_inputs[1]
        assert axis is not None
        return np.expand_dims(x, int(axis.reshape(-1)[0]))
    if name in ("PAD", "PADV2"):
        paddings = real_inputs[1]
        assert paddings is not None
        fill = 0.0
        if name == "PADV2":
            value = real_inputs[2]
            assert value is not None
            fill = float(value.reshape(-1)[0])
        return np.pad(x, paddings.astype(int), constant_values=fill)
    if name == "TRANSPOSE":
        perm = real_inputs[1]
        assert perm is not None
        return np.transpose(x, perm.astype(int))
    if name == "MEAN":
        axes = real_inputs[1]
        assert axes is not None
        return x.mean(axis=tuple(int(a) for a in axes.reshape(-1)), keepdims=o["keep_dims"])
    if name == "CONCATENATION":
        parts = [p for p in real_inputs if p is not None]
        return _apply_activation(np.concatenate(parts, axis=o["axis"]), o["activation"])
    if name == "STRIDED_SLICE":
        begin, end, strides = real_inputs[1], real_inputs[2], real_inputs[3]
        assert begin is not None and end is not None and strides is not None
        return _strided_slice_reference(x, begin, end, strides, o)
    if name in ("QUANTIZE", "DEQUANTIZE"):
        return x
    raise ValueError(f"no float reference for {name}")


def real_operands(op: OpCase, activations: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
    """Real values of an op's inputs: activations as given, constants dequantised."""
    values: list[np.ndarray | None] = []
    for spec, value in zip(op.inputs, activations, strict=True):
        if spec is None:
            values.append(None)
        elif spec.data is not None:
            values.append(dequantize(spec, spec.data))
        else:
            values.append(value)
    return values


# --- one op each --------------------------------------------------------------------------------

# A drawer gets the (already quantised) input activation and its int8 sample, plus a name
# prefix, and returns the op and the real values of its output on the sample.
OpDrawer = Callable[[st.DrawFn, TensorSpec, np.ndarray, str], tuple[OpCase, np.ndarray]]


def _finish(
    draw: st.DrawFn,
    op_name: str,
    options: dict[str, Any],
    inputs: list[TensorSpec | None],
    activations: list[np.ndarray | None],
    prefix: str,
    output_spec: TensorSpec | None = None,
) -> tuple[OpCase, np.ndarray]:
    """Compute the float output, pick output quantisation (unless given), return the op."""
    probe = OpCase(op_name, options, tuple(inputs), ())
    real = float_reference(probe, real_operands(probe, activations))
    if output_spec is None:
        if op_name in FIXED_INT8_OUTPUT_QUANT:
            scale, zero = FIXED_INT8_OUTPUT_QUANT[op_name]
            output_spec = activation_spec(real.shape, scale, zero, f"{prefix}out")
        else:
            output_spec = _calibrated_output(draw, f"{prefix}out", real, real.shape)
        if op_name == "HARD_SWISH":
            output_spec = _hard_swish_output_floor(inputs[0], output_spec)
    return OpCase(op_name, options, tuple(inputs), (output_spec,)), real


def _hard_swish_output_floor(x: TensorSpec | None, out: TensorSpec) -> TensorSpec:
    """TFLM's int8 HARD_SWISH needs output_scale >= input_scale / 128 (its output multiplier
    exponent must be <= 0); keep a margin of 2x above that floor."""
    assert x is not None and x.scale is not None and out.scale is not None
    assert out.zero_point is not None
    floor = x.scale[0] / 64.0
    if out.scale[0] >= floor:
        return out
    return activation_spec(out.shape, floor, out.zero_point[0], out.name)


def _same_quant(spec: TensorSpec, shape: Sequence[int], name: str) -> TensorSpec:
    assert spec.scale is not None and spec.zero_point is not None
    return activation_spec(tuple(shape), spec.scale[0], spec.zero_point[0], name)


def _hw(draw: st.DrawFn, low: int, high: int) -> tuple[int, int]:
    return (draw(st.integers(low, high)), draw(st.integers(low, high)))


def _draw_conv(
    draw: st.DrawFn, x_spec: TensorSpec, x_q: np.ndarray, prefix: str, depthwise: bool
) -> tuple[OpCase, np.ndarray]:
    rng = _rng(draw)
    _, h, w, c = x_spec.shape
    stride = _hw(draw, 1, 3)
    dilation = _hw(draw, 1, 2)
    padding = draw(st.sampled_from(("SAME", "VALID")))
    # Kernels that fit the input in VALID mode, so every output dimension is >= 1.
    max_kh = max(1, (h - 1) // dilation[0] + 1)
    max_kw = max(1, (w - 1) // dilation[1] + 1)
    kh = draw(st.integers(1, min(4, max_kh)))
    kw = draw(st.integers(1, min(4, max_kw)))
    if depthwise:
        multiplier = draw(st.integers(1, 3))
        out_c = c * multiplier
        weights_shape: tuple[int, ...] = (1, kh, kw, out_c)
        qdim = 3
    else:
        out_c = draw(st.integers(1, 6))
        weights_shape = (out_c, kh, kw, c)
        qdim = 0
    per_channel = draw(st.booleans())
    scales = rng.uniform(0.002, 0.03, size=out_c if per_channel else 1)
    if not per_channel:
        scales = np.repeat(scales, out_c)  # TFLM conv wants one scale per output channel
    weights = rng.integers(-127, 128, size=weights_shape).astype(np.int8)
    assert x_spec.scale is not None
    bias_values = rng.integers(-3000, 3000, size=out_c).astype(np.int32)
    options: dict[str, Any] = {
        "padding": padding,
        "stride": stride,
        "dilation": dilation,
        "activation": draw(st.sampled_from(ACTIVATIONS)),
    }
    if depthwise:
        options["depth_multiplier"] = multiplier
    inputs: list[TensorSpec | None] = [
        x_spec,
        weights_spec(weights, scales, qdim, f"{prefix}weights"),
        bias_spec(bias_values, x_spec.scale[0], scales, f"{prefix}bias"),
    ]
    name = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    return _finish(draw, name, options, inputs, [dequantize(x_spec, x_q), None, None], prefix)


def draw_conv_2d(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str
) -> tuple[OpCase, np.ndarray]:
    return _draw_conv(draw, x, xq, p, depthwise=False)


def draw_depthwise_conv_2d(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str
) -> tuple[OpCase, np.ndarray]:
    return _draw_conv(draw, x, xq, p, depthwise=True)


def draw_pool(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str, average: bool
) -> tuple[OpCase, np.ndarray]:
    _, h, w, _ = x.shape
    padding = draw(st.sampled_from(("SAME", "VALID")))
    options = {
        "padding": padding,
        "stride": _hw(draw, 1, 3),
        "filter": (draw(st.integers(1, min(h, 4))), draw(st.integers(1, min(w, 4)))),
        "activation": draw(st.sampled_from(ACTIVATIONS)),
    }
    name = "AVERAGE_POOL_2D" if average else "MAX_POOL_2D"
    probe = OpCase(name, options, (x,), ())
    real = float_reference(probe, [dequantize(x, xq)])
    # TFLite pools keep the input's quantisation.
    return _finish(
        draw, name, options, [x], [dequantize(x, xq)], p, _same_quant(x, real.shape, f"{p}out")
    )


def draw_fully_connected(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str, min_units: int = 1
) -> tuple[OpCase, np.ndarray]:
    rng = _rng(draw)
    batch = x.shape[0]
    depth = int(np.prod(x.shape[1:]))
    units = draw(st.integers(min_units, 12))
    weights = rng.integers(-127, 128, size=(units, depth)).astype(np.int8)
    scale = float(rng.uniform(0.002, 0.03))
    assert x.scale is not None
    with_bias = draw(st.booleans())
    inputs: list[TensorSpec | None] = [x, weights_spec(weights, [scale], 0, f"{p}weights")]
    activations: list[np.ndarray | None] = [dequantize(x, xq).reshape(batch, depth), None]
    if with_bias:
        bias = rng.integers(-3000, 3000, size=units).astype(np.int32)
        inputs.append(bias_spec(bias, x.scale[0], [scale], f"{p}bias"))
        activations.append(None)
    options = {"activation": draw(st.sampled_from(ACTIVATIONS))}
    return _finish(draw, "FULLY_CONNECTED", options, inputs, activations, p)


def draw_elementwise(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str, op_name: str
) -> tuple[OpCase, np.ndarray]:
    """ADD/SUB/MUL of the activation with a second graph input (possibly broadcast)."""
    rng = _rng(draw)
    other_shape = tuple(d if draw(st.booleans()) else 1 for d in x.shape)
    other = _input_spec(draw, f"{p}other", other_shape)
    other_q = _random_int8(rng, other_shape)
    options = {"activation": draw(st.sampled_from(ACTIVATIONS))}
    case, real = _finish(
        draw, op_name, options, [x, other], [dequantize(x, xq), dequantize(other, other_q)], p
    )
    return case, real


def draw_unary(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str, op_name: str
) -> tuple[OpCase, np.ndarray]:
    options: dict[str, Any] = {}
    if op_name == "SOFTMAX":
        options["beta"] = draw(st.sampled_from((1.0, 0.5, 2.0)))
    if op_name == "LEAKY_RELU":
        options["alpha"] = draw(st.sampled_from((0.1, 0.2, 0.3)))
    output = None
    if op_name in ("RELU", "RELU6"):
        # TFLM's int8 RELU6 clamps without requantising and its RELU requantises with
        # different rounding from TFLite's, so the two runtimes agree only when the output
        # keeps the input's quantisation (as converters emit it).
        output = _same_quant(x, x.shape, f"{p}out")
    return _finish(draw, op_name, options, [x], [dequantize(x, xq)], p, output)


def draw_reshape_like(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str, op_name: str
) -> tuple[OpCase, np.ndarray]:
    shape = x.shape
    inputs: list[TensorSpec | None] = [x]
    activations: list[np.ndarray | None] = [dequantize(x, xq)]
    options: dict[str, Any] = {}
    if op_name == "RESHAPE":
        size = int(np.prod(shape))
        divisors = [d for d in range(1, size + 1) if size % d == 0]
        first = draw(st.sampled_from(divisors))
        new_shape: tuple[int, ...] = (first, size // first)
        if draw(st.booleans()):
            new_shape = (1, *new_shape)
        options["new_shape"] = new_shape
        inputs.append(constant_spec(np.asarray(new_shape, dtype=np.int32), f"{p}shape"))
        activations.append(None)
    elif op_name == "SQUEEZE":
        ones = [i for i, d in enumerate(shape) if d == 1]
        dims = draw(st.lists(st.sampled_from(ones), unique=True)) if ones else []
        options["squeeze_dims"] = tuple(sorted(dims))
        squeezed = [i for i in range(len(shape)) if (i in dims if dims else shape[i] == 1)]
        new_shape = tuple(d for i, d in enumerate(shape) if i not in squeezed)
    else:  # EXPAND_DIMS
        axis = draw(st.integers(0, len(shape)))
        inputs.append(constant_spec(np.asarray([axis], dtype=np.int32), f"{p}axis"))
        activations.append(None)
        new_shape = (*shape[:axis], 1, *shape[axis:])
    out = _same_quant(x, new_shape, f"{p}out")
    return _finish(draw, op_name, options, inputs, activations, p, out)


def draw_pad(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str, op_name: str
) -> tuple[OpCase, np.ndarray]:
    paddings = np.asarray(
        [[draw(st.integers(0, 2)), draw(st.integers(0, 2))] for _ in x.shape], dtype=np.int32
    )
    inputs: list[TensorSpec | None] = [x, constant_spec(paddings, f"{p}paddings")]
    activations: list[np.ndarray | None] = [dequantize(x, xq), None]
    if op_name == "PADV2":
        value = np.asarray([draw(st.integers(-128, 127))], dtype=np.int8)
        assert x.scale is not None and x.zero_point is not None
        inputs.append(
            TensorSpec((1,), "int8", x.scale, x.zero_point, 0, value, f"{p}constant_value")
        )
        activations.append(None)
    shape = tuple(int(d + a + b) for d, (a, b) in zip(x.shape, paddings, strict=True))
    return _finish(draw, op_name, {}, inputs, activations, p, _same_quant(x, shape, f"{p}out"))


def draw_transpose(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str
) -> tuple[OpCase, np.ndarray]:
    perm = draw(st.permutations(list(range(len(x.shape)))))
    inputs: list[TensorSpec | None] = [
        x,
        constant_spec(np.asarray(perm, dtype=np.int32), f"{p}perm"),
    ]
    shape = tuple(x.shape[i] for i in perm)
    return _finish(
        draw,
        "TRANSPOSE",
        {},
        inputs,
        [dequantize(x, xq), None],
        p,
        _same_quant(x, shape, f"{p}out"),
    )


def draw_mean(draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str) -> tuple[OpCase, np.ndarray]:
    # TFLM's int8 MEAN is exercised in real models over the spatial axes of NHWC tensors.
    axes = draw(st.sampled_from(([1, 2], [2, 1], [1], [2], [3]))) if len(x.shape) == 4 else [1]
    options = {"keep_dims": draw(st.booleans())}
    inputs: list[TensorSpec | None] = [
        x,
        constant_spec(np.asarray(axes, dtype=np.int32), f"{p}axes"),
    ]
    return _finish(draw, "MEAN", options, inputs, [dequantize(x, xq), None], p)


def draw_concatenation(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str
) -> tuple[OpCase, np.ndarray]:
    rng = _rng(draw)
    axis = draw(st.integers(0, len(x.shape) - 1))
    inputs: list[TensorSpec | None] = [x]
    activations: list[np.ndarray | None] = [dequantize(x, xq)]
    for k in range(draw(st.integers(1, 2))):
        shape = list(x.shape)
        shape[axis] = draw(st.integers(1, 3))
        other = _same_quant(x, shape, f"{p}part{k}")
        inputs.append(other)
        activations.append(dequantize(other, _random_int8(rng, shape)))
    options = {"axis": axis, "activation": "NONE"}
    probe = OpCase("CONCATENATION", options, tuple(inputs), ())
    real = float_reference(probe, activations)
    out = _same_quant(x, real.shape, f"{p}out")
    return _finish(draw, "CONCATENATION", options, inputs, activations, p, out)


def draw_strided_slice(
    draw: st.DrawFn, x: TensorSpec, xq: np.ndarray, p: str
) -> tuple[OpCase, np.ndarray]:
    rank = len(x.shape)
    begin, end, strides = [], [], []
    for d in x.shape:
        b = draw(st.integers(0, d - 1))
        e = draw(st.integers(b + 1, d))
        begin.append(b)
        end.append(e)
        strides.append(draw(st.integers(1, 2)))
    options = {
        "begin_mask": draw(st.integers(0, 2**rank - 1)),
        "end_mask": draw(st.integers(0, 2**rank - 1)),
        "shrink_axis_mask": 0,
    }
    if rank > 1 and draw(st.booleans()):
        axis = draw(st.integers(0, rank - 1))
        options["shrink_axis_mask"] = 1 << axis
        # A shrunk axis takes exactly element `begin`; TFLite ignores the masks there.
        options["begin_mask"] &= ~(1 << axis)
        options["end_mask"] &= ~(1 << axis)
        end[axis] = begin[axis] + 1
        strides[axis] = 1
    inputs: list[TensorSpec | None] = [
        x,
        constant_spec(np.asarray(begin, dtype=np.int32), f"{p}begin"),
        constant_spec(np.asarray(end, dtype=np.int32), f"{p}end"),
        constant_spec(np.asarray(strides, dtype=np.int32), f"{p}strides"),
    ]
    activations: list[np.ndarray | None] = [dequantize(x, xq), None, None, None]
    probe = OpCase("STRIDED_SLICE", options, tuple(inputs), ())
    real = float_reference(probe, real_operands(probe, activations))
    out = _same_quant(x, real.shape, f"{p}out")
    return _finish(draw, "STRIDED_SLICE", options, inputs, activations, p, out)


# --- single-op models ---------------------------------------------------------------------------

SINGLE_OPS: tuple[str, ...] = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "ADD",
    "SUB",
    "MUL",
    "SOFTMAX",
    "LOGISTIC",
    "TANH",
    "HARD_SWISH",
    "RELU",
    "RELU6",
    "LEAKY_RELU",
    "RESHAPE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "PAD",
    "PADV2",
    "TRANSPOSE",
    "MEAN",
    "CONCATENATION",
    "STRIDED_SLICE",
    "QUANTIZE",
    "DEQUANTIZE",
)


def _draw_op(
    draw: st.DrawFn, op_name: str, x: TensorSpec, xq: np.ndarray, p: str
) -> tuple[OpCase, np.ndarray]:
    if op_name == "CONV_2D":
        return draw_conv_2d(draw, x, xq, p)
    if op_name == "DEPTHWISE_CONV_2D":
        return draw_depthwise_conv_2d(draw, x, xq, p)
    if op_name == "FULLY_CONNECTED":
        return draw_fully_connected(draw, x, xq, p)
    if op_name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return draw_pool(draw, x, xq, p, average=op_name == "AVERAGE_POOL_2D")
    if op_name in ("ADD", "SUB", "MUL"):
        return draw_elementwise(draw, x, xq, p, op_name)
    if op_name in ("SOFTMAX", "LOGISTIC", "TANH", "HARD_SWISH", "RELU", "RELU6", "LEAKY_RELU"):
        return draw_unary(draw, x, xq, p, op_name)
    if op_name in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return draw_reshape_like(draw, x, xq, p, op_name)
    if op_name in ("PAD", "PADV2"):
        return draw_pad(draw, x, xq, p, op_name)
    if op_name == "TRANSPOSE":
        return draw_transpose(draw, x, xq, p)
    if op_name == "MEAN":
        return draw_mean(draw, x, xq, p)
    if op_name == "CONCATENATION":
        return draw_concatenation(draw, x, xq, p)
    if op_name == "STRIDED_SLICE":
        return draw_strided_slice(draw, x, xq, p)
    raise ValueError(f"no drawer for {op_name}")


def _input_shape_for(draw: st.DrawFn, op_name: str) -> tuple[int, ...]:
    if op_name in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN"):
        return (
            draw(st.integers(1, 2)),
            draw(st.integers(1, 9)),
            draw(st.integers(1, 9)),
            draw(st.integers(1, 5)),
        )
    if op_name in ("FULLY_CONNECTED", "SOFTMAX"):
        return (draw(st.integers(1, 3)), draw(st.integers(1, 24)))
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    if op_name == "SQUEEZE" and all(d == 1 for d in shape):
        shape[draw(st.integers(0, rank - 1))] = 2  # squeezing everything would leave a scalar
    return tuple(shape)


@st.composite
def single_op_models(draw: st.DrawFn, ops: Sequence[str] = SINGLE_OPS) -> tuple[bytes, ModelCase]:
    """A model of one random op from `ops` with random shapes, options and quantisation."""
    op_name = draw(st.sampled_from(tuple(ops)))
    shape = _input_shape_for(draw, op_name)
    rng = _rng(draw)
    if op_name == "QUANTIZE":
        x_float = TensorSpec(shape, "float32", None, None, 0, None, "input")
        sample = rng.uniform(-4.0, 4.0, size=shape).astype(np.float32)
        op, _ = _finish(draw, "QUANTIZE", {}, [x_float], [sample.astype(np.float64)], "")
        case = ModelCase((op,), (x_float,), op.outputs, (sample,))
        return build_model(case), case
    x = _input_spec(draw, "input", shape, op_name)
    xq = _random_int8(rng, shape)
    if op_name == "DEQUANTIZE":
        out = TensorSpec(shape, "float32", None, None, 0, None, "out")
        op = OpCase("DEQUANTIZE", {}, (x,), (out,))
        case = ModelCase((op,), (x,), (out,), (xq,))
        return build_model(case), case
    op, _ = _draw_op(draw, op_name, x, xq, "")
    graph_inputs = tuple(s for s in op.inputs if s is not None and s.data is None)
    samples = [xq]
    for extra in graph_inputs[1:]:
        samples.append(_random_int8(rng, extra.shape))
    case = ModelCase((op,), graph_inputs, op.outputs, tuple(samples))
    return build_model(case), case


# --- small multi-op models ----------------------------------------------------------------------

# Ops that may follow a 4-D NHWC activation inside a chain (keeping it 4-D).
_SPATIAL_CHAIN_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "ADD",
    "MUL",
    "RELU",
    "RELU6",
    "LEAKY_RELU",
    "HARD_SWISH",
    "LOGISTIC",
    "TANH",
    "PAD",
    "CONCATENATION",
)


@st.composite
def multi_op_models(draw: st.DrawFn, max_spatial_ops: int = 3) -> tuple[bytes, ModelCase]:
    """A small chain: 1..max_spatial_ops NHWC ops (conv, pools, elementwise, activations),
    then optionally MEAN or RESHAPE to 2-D, FULLY_CONNECTED and SOFTMAX. Intermediate
    quantisation is calibrated on the sample input, layer by layer. Second operands of
    ADD/MUL/CONCATENATION are extra graph inputs.
    """
    rng = _rng(draw)
    shape = (1, draw(st.integers(2, 8)), draw(st.integers(2, 8)), draw(st.integers(1, 4)))
    x = _input_spec(draw, "input", shape)
    xq = _random_int8(rng, shape)
    graph_inputs = [x]
    samples = [xq]
    ops: list[OpCase] = []
    count = draw(st.integers(1, max_spatial_ops))
    for layer in range(count):
        choices: tuple[str, ...] = _SPATIAL_CHAIN_OPS
        if x.scale is not None and x.scale[0] in _POWER_OF_TWO_SCALES:
            choices = tuple(name for name in choices if name not in _LUT_OPS)
        op_name = draw(st.sampled_from(choices))
        op, real = _draw_op(draw, op_name, x, xq, f"l{layer}_")
        for spec in op.inputs[1:]:
            if spec is not None and spec.data is None:
                graph_inputs.append(spec)
                samples.append(_random_int8(rng, spec.shape))
        ops.append(op)
        x = op.outputs[0]
        xq = quantize(x, real)
    if draw(st.booleans()):
        reducer = draw(st.sampled_from(("MEAN", "RESHAPE")))
        if reducer == "MEAN":
            axes = np.asarray([1, 2], dtype=np.int32)
            probe = OpCase("MEAN", {"keep_dims": False}, (x, constant_spec(axes, "head_axes")), ())
            real = float_reference(probe, [dequantize(x, xq), axes])
            out = _calibrated_output(draw, "head_mean", real, real.shape)
            op = OpCase("MEAN", {"keep_dims": False}, probe.inputs, (out,))
        else:
            new_shape = (x.shape[0], int(np.prod(x.shape[1:])))
            shape_const = constant_spec(np.asarray(new_shape, dtype=np.int32), "head_shape")
            out = _same_quant(x, new_shape, "head_flat")
            op = OpCase("RESHAPE", {"new_shape": new_shape}, (x, shape_const), (out,))
            real = dequantize(x, xq).reshape(new_shape)
        ops.append(op)
        x = op.outputs[0]
        xq = quantize(x, real)
        # At least two classes: a softmax over one is constant.
        op, real = draw_fully_connected(draw, x, xq, "head_fc_", min_units=2)
        ops.append(op)
        x = op.outputs[0]
        xq = quantize(x, real)
        if draw(st.booleans()):
            op, real = draw_unary(draw, x, xq, "head_softmax_", "SOFTMAX")
            ops.append(op)
            x = op.outputs[0]
    case = ModelCase(tuple(ops), tuple(graph_inputs), (x,), tuple(samples))
    return build_model(case), case


def op_input_activations(
    case: ModelCase, op_index: int, tensors: dict[str, np.ndarray]
) -> list[np.ndarray | None]:
    """Real values of op `op_index`'s non-constant inputs, looked up by tensor name."""
    op = case.ops[op_index]
    values: list[np.ndarray | None] = []
    for spec in op.inputs:
        if spec is None or spec.data is not None:
            values.append(None)
        else:
            values.append(dequantize(spec, tensors[spec.name]))
    return values


def expected_output_shape(case: ModelCase) -> tuple[int, ...]:
    """Shape of the (single) graph output."""
    return tuple(case.graph_outputs[0].shape)


def lsb_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Largest absolute difference in LSB between two integer arrays of the same shape."""
    if a.size == 0:
        return 0
    return int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64))))


# --- stateful: UNIDIRECTIONAL_SEQUENCE_LSTM ---------------------------------------------------

# Cell state is int16 with a power-of-two scale, as TFLite's int8 LSTM requires; 2^-12 covers
# +-8, which the cell clip keeps it within.
LSTM_CELL_SCALE = 2.0**-12


@st.composite
def lstm_models(draw: st.DrawFn, nonzero_state_zero_point: bool = False) -> tuple[bytes, ModelCase]:
    """A full-integer UNIDIRECTIONAL_SEQUENCE_LSTM (see `lstm_case`) of random size.

    With `nonzero_state_zero_point` the int8 output state (and the output, which shares its
    quantisation) gets a zero point drawn from [-64, 64] without 0, so a reset that fills the
    state with 0 instead of its zero point gives different outputs.
    """
    x = _input_spec(draw, "input", (1, 1, 1), "LSTM")
    assert x.scale is not None and x.zero_point is not None
    state_zero_point = 0
    if nonzero_state_zero_point:
        state_zero_point = draw(st.integers(1, 64)) * draw(st.sampled_from((-1, 1)))
    return lstm_case(
        _rng(draw),
        steps=draw(st.integers(1, 6)),
        features=draw(st.integers(1, 8)),
        units=draw(st.integers(1, 8)),
        input_scale=x.scale[0],
        input_zero_point=x.zero_point[0],
        output_scale=1.0 / 128.0 * _irregular_factor(draw),
        cell_clip=draw(st.sampled_from((0.0, 8.0))),
        state_zero_point=state_zero_point,
    )


def lstm_case(
    rng: np.random.Generator,
    *,
    steps: int,
    features: int,
    units: int,
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    cell_clip: float,
    state_zero_point: int = 0,
) -> tuple[bytes, ModelCase]:
    """A full-integer UNIDIRECTIONAL_SEQUENCE_LSTM (no peepholes, projection or layer norm),
    laid out like TFLite's converter output: per-tensor int8 gate weights, int32 gate biases
    at input_scale * weight_scale, variable int8 output state and int16 cell state, and the
    five intermediates. Input (1, steps, features), output (1, steps, units). Its state
    carries over between invocations. `output_scale` should cover h = o * tanh(c) in (-1, 1).
    `state_zero_point` is the zero point of the int8 output state and of the output (TFLite's
    LSTM copies the hidden state to the output, so the two share quantisation); a reset fills
    the state with it.
    """
    x = activation_spec((1, steps, features), input_scale, input_zero_point, "input")
    inputs: list[TensorSpec | None] = [x]
    weight_scales = []
    for gate in ("input", "forget", "cell", "output"):
        scale = float(rng.uniform(0.003, 0.03))
        weight_scales.append(scale)
        w = rng.integers(-127, 128, size=(units, features)).astype(np.int8)
        inputs.append(weights_spec(w, [scale], 0, f"input_to_{gate}_weights"))
    for gate in ("input", "forget", "cell", "output"):
        scale = float(rng.uniform(0.003, 0.03))
        w = rng.integers(-127, 128, size=(units, units)).astype(np.int8)
        inputs.append(weights_spec(w, [scale], 0, f"recurrent_to_{gate}_weights"))
    inputs += [None, None, None]  # peepholes
    for gate, scale in zip(("input", "forget", "cell", "output"), weight_scales, strict=True):
        b = rng.integers(-2000, 2000, size=units).astype(np.int32)
        inputs.append(bias_spec(b, input_scale, [scale], f"{gate}_gate_bias"))
    inputs += [None, None]  # projection weights and bias
    output_state = TensorSpec(
        (1, units),
        "int8",
        (output_scale,),
        (state_zero_point,),
        0,
        None,
        "output_state",
        is_variable=True,
    )
    cell_state = TensorSpec(
        (1, units), "int16", (LSTM_CELL_SCALE,), (0,), 0, None, "cell_state", is_variable=True
    )
    inputs += [output_state, cell_state, None, None, None, None]  # then 4 x layer norm
    output = activation_spec((1, steps, units), output_scale, state_zero_point, "output")
    options = {"activation": "TANH", "cell_clip": cell_clip, "time_major": False}
    case = ModelCase(
        (OpCase("UNIDIRECTIONAL_SEQUENCE_LSTM", options, tuple(inputs), (output,)),),
        (x,),
        (output,),
        (_random_int8(rng, x.shape),),
    )
    return _build_lstm(case, output_scale), case


def _build_lstm(case: ModelCase, h_scale: float) -> bytes:
    builder = ModelBuilder("shoal hypothesis lstm")
    op = case.ops[0]
    indices = [-1 if s is None else add_spec(builder, s, s.name) for s in op.inputs]
    output = add_spec(builder, op.outputs[0], "output")
    # TFLite's converter records four unquantised gate intermediates and the effective hidden
    # scale; the integer kernels read the quantisation of the last one.
    intermediates = [
        builder.add_tensor(f"input_to_{gate}_intermediate", (0,), "float32")
        for gate in ("input", "forget", "cell", "output")
    ]
    intermediates.append(
        builder.add_tensor(
            "effective_hidden_scale_intermediate", (0,), "int8", scale=h_scale, zero_point=0
        )
    )
    builder.add_operator(
        "UNIDIRECTIONAL_SEQUENCE_LSTM", indices, [output], op.options, intermediates=intermediates
    )
    builder.set_io([indices[0]], [output])
    return builder.build()
