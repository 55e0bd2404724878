"""Make Shoal's own small example models with `codegen.tflite_writer`.

Run `python tests/data/make_models.py` to (re)write the `.tflite` files beside this script and
print their sha256 for README.md. The models are deterministic: fixed-seed float weights,
post-training int8 quantisation calibrated on a fixed-seed batch (per-channel symmetric
weights, int32 bias at input_scale * weight_scale, asymmetric activations from the observed
range), so regenerating gives identical bytes; a test checks that.

The weights are random, not trained: the models exist to exercise the compiler and the
oracles with realistic structure and sizes, not to recognise anything.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from codegen.tflite_writer import ModelBuilder

DATA_DIR = Path(__file__).resolve().parent
CALIBRATION_SAMPLES = 16


def _symmetric_scales(weights: np.ndarray, axis: int) -> np.ndarray:
    other = tuple(i for i in range(weights.ndim) if i != axis)
    peak = np.max(np.abs(weights), axis=other)
    return np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)


def _quantize_weights(weights: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    scales = _symmetric_scales(weights, axis)
    shape = [1] * weights.ndim
    shape[axis] = -1
    q = np.clip(np.round(weights / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, scales


def _activation_quant(values: np.ndarray) -> tuple[float, int]:
    low = min(float(values.min()), 0.0)
    high = max(float(values.max()), 0.0)
    scale = (high - low) / 255.0 if high > low else 1.0 / 255.0
    zero_point = int(np.clip(round(-128 - low / scale), -128, 127))
    return float(np.float32(scale)), zero_point


class _Net:
    """Float layers applied to a calibration batch while the int8 model is being written."""

    def __init__(self, builder: ModelBuilder, batch: np.ndarray, name: str) -> None:
        self.b = builder
        self.values = batch  # float activations of the current tensor, batch first
        scale, zero = _activation_quant(batch)
        self.scale, self.zero = scale, zero
        self.tensor = builder.add_tensor(
            name, (1, *batch.shape[1:]), "int8", scale=scale, zero_point=zero
        )
        self.input_tensor = self.tensor

    def _output(self, name: str, values: np.ndarray, same_quant: bool = False) -> int:
        # Pools and reshapes keep their input's quantisation, as TFLite's converter does.
        scale, zero = (self.scale, self.zero) if same_quant else _activation_quant(values)
        self.values = values
        self.scale, self.zero = scale, zero
        return self.b.add_tensor(name, (1, *values.shape[1:]), "int8", scale=scale, zero_point=zero)

    def conv(
        self, name: str, weights: np.ndarray, bias: np.ndarray, stride: int, depthwise: bool = False
    ) -> None:
        x = self.values
        kh, kw = weights.shape[1], weights.shape[2]
        n, h, w, c = x.shape
        oh, ow = -(-h // stride), -(-w // stride)
        pad_h = max((oh - 1) * stride + kh - h, 0)
        pad_w = max((ow - 1) * stride + kw - w, 0)
        xp = np.pad(
            x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
        )
        out = np.zeros((n, oh, ow, weights.shape[3] if depthwise else weights.shape[0]))
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[
                    :,
                    ky : ky + (oh - 1) * stride + 1 : stride,
                    kx : kx + (ow - 1) * stride + 1 : stride,
                    :,
                ]
                if depthwise:
                    out += patch * weights[0, ky, kx, :]
                else:
                    out += np.einsum("nhwi,oi->nhwo", patch, weights[:, ky, kx, :])
        out = np.maximum(out + bias, 0.0)  # fused RELU
        q, scales = _quantize_weights(weights, 3 if depthwise else 0)
        bias_scales = np.float32(self.scale) * scales
        w_t = self.b.add_tensor(
            f"{name}/weights",
            q.shape,
            "int8",
            scale=scales,
            zero_point=[0] * len(scales),
            quantized_dimension=3 if depthwise else 0,
            data=q,
        )
        b_q = np.round(bias / bias_scales).astype(np.int32)
        b_t = self.b.add_tensor(
            f"{name}/bias",
            b_q.shape,
            "int32",
            scale=bias_scales,
            zero_point=[0] * len(scales),
            data=b_q,
        )
        y = self._output(name, out)
        options = {"padding": "SAME", "stride": stride, "activation": "RELU"}
        if depthwise:
            options["depth_multiplier"] = weights.shape[3] // c
        self.b.add_operator(
            "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [self.tensor, w_t, b_t], [y], options
        )
        self.tensor = y

    def average_pool_all(self, name: str) -> None:
        _, h, w, _ = self.values.shape
        y = self._output(name, self.values.mean(axis=(1, 2), keepdims=True), same_quant=True)
        self.b.add_operator(
            "AVERAGE_POOL_2D",
            [self.tensor],
            [y],
            {"padding": "VALID", "filter": (h, w), "stride": 1},
        )
        self.tensor = y

    def flatten(self, name: str) -> None:
        values = self.values.reshape(self.values.shape[0], -1)
        shape = np.asarray((1, values.shape[1]), dtype=np.int32)
        s = self.b.add_tensor(f"{name}/shape", (2,), "int32", data=shape)
        y = self._output(name, values, same_quant=True)
        self.b.add_operator("RESHAPE", [self.tensor, s], [y], {"new_shape": tuple(shape)})
        self.tensor = y

    def dense(self, name: str, weights: np.ndarray, bias: np.ndarray, relu: bool) -> None:
        out = self.values @ weights.T + bias
        if relu:
            out = np.maximum(out, 0.0)
        # Per-tensor weights: the FULLY_CONNECTED convention every int8 runtime accepts.
        scale = float(np.float32(np.max(np.abs(weights)) / 127.0))
        q = np.clip(np.round(weights / scale), -127, 127).astype(np.int8)
        w_t = self.b.add_tensor(
            f"{name}/weights", q.shape, "int8", scale=scale, zero_point=0, data=q
        )
        bias_scale = float(np.float32(self.scale) * np.float32(scale))
        b_q = np.round(bias / bias_scale).astype(np.int32)
        b_t = self.b.add_tensor(
            f"{name}/bias", b_q.shape, "int32", scale=bias_scale, zero_point=0, data=b_q
        )
        y = self._output(name, out)
        self.b.add_operator(
            "FULLY_CONNECTED",
            [self.tensor, w_t, b_t],
            [y],
            {"activation": "RELU" if relu else "NONE"},
        )
        self.tensor = y

    def softmax(self, name: str) -> None:
        e = np.exp(self.values - self.values.max(axis=-1, keepdims=True))
        self.values = e / e.sum(axis=-1, keepdims=True)
        self.scale, self.zero = 1.0 / 256.0, -128
        y = self.b.add_tensor(
            name, (1, self.values.shape[1]), "int8", scale=self.scale, zero_point=self.zero
        )
        self.b.add_operator("SOFTMAX", [self.tensor], [y], {"beta": 1.0})
        self.tensor = y


def build_kws_tiny() -> bytes:
    """A keyword-spotting-shaped conv net: 49x10 MFCC-like input, 4 classes."""
    rng = np.random.default_rng(20261127)
    batch = rng.normal(0.0, 1.0, size=(CALIBRATION_SAMPLES, 49, 10, 1))
    net = _Net(ModelBuilder("shoal example: kws_tiny"), batch, "input")
    net.conv("conv1", rng.normal(0, 0.3, (8, 10, 4, 1)), rng.normal(0, 0.1, 8), stride=2)
    net.conv(
        "dw2", rng.normal(0, 0.3, (1, 3, 3, 8)), rng.normal(0, 0.1, 8), stride=1, depthwise=True
    )
    net.conv("pw2", rng.normal(0, 0.3, (16, 1, 1, 8)), rng.normal(0, 0.1, 16), stride=1)
    net.average_pool_all("pool")
    net.flatten("flatten")
    net.dense("fc", rng.normal(0, 0.3, (4, 16)), rng.normal(0, 0.1, 4), relu=False)
    net.softmax("probabilities")
    net.b.set_io([net.input_tensor], [net.tensor])
    return net.b.build()


def build_dense_tiny() -> bytes:
    """A small dense net with float32 edges: QUANTIZE, 3 x FULLY_CONNECTED, DEQUANTIZE."""
    rng = np.random.default_rng(1127)
    batch = rng.normal(0.0, 1.0, size=(CALIBRATION_SAMPLES, 16))
    builder = ModelBuilder("shoal example: dense_tiny")
    float_in = builder.add_tensor("input_float", (1, 16), "float32")
    net = _Net(builder, batch, "input_int8")
    builder.add_operator("QUANTIZE", [float_in], [net.input_tensor])
    net.dense("fc1", rng.normal(0, 0.3, (32, 16)), rng.normal(0, 0.1, 32), relu=True)
    net.dense("fc2", rng.normal(0, 0.3, (16, 32)), rng.normal(0, 0.1, 16), relu=True)
    net.dense("fc3", rng.normal(0, 0.3, (3, 16)), rng.normal(0, 0.1, 3), relu=False)
    float_out = builder.add_tensor("output_float", (1, 3), "float32")
    builder.add_operator("DEQUANTIZE", [net.tensor], [float_out])
    builder.set_io([float_in], [float_out])
    return builder.build()


MODELS: dict[str, Callable[[], bytes]] = {
    "shoal_kws_tiny.tflite": build_kws_tiny,
    "shoal_dense_tiny.tflite": build_dense_tiny,
}


def main() -> int:
    for name, build in MODELS.items():
        data = build()
        (DATA_DIR / name).write_bytes(data)
        print(f"| {name} | {len(data)} | {hashlib.sha256(data).hexdigest()} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
