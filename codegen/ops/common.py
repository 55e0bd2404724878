"""Parameter derivations shared by the convolution-like ops (FULLY_CONNECTED, CONV_2D, ...).

Responsible for: per-channel requantization multipliers, bias folded with the input zero
point, and the weight/bias operand checks these ops share.

Must not: decide which kernel runs or where tensors live.
"""

from __future__ import annotations

import numpy as np

from codegen.ir.model import Model, Tensor
from codegen.ops.base import ConstArray, tensor_problems
from codegen.ops.quantization import quantize_multiplier


def tensor_array(tensor: Tensor) -> np.ndarray:
    """The constant data of `tensor` as a numpy array of its shape."""
    assert tensor.data is not None
    dtype = {
        "int8": np.int8,
        "int16": np.int16,
        "int32": np.int32,
        "int64": np.int64,
        "float32": np.float32,
        "uint8": np.uint8,
    }[tensor.dtype]
    return np.frombuffer(tensor.data, dtype=dtype).reshape(tensor.shape)


def weight_problems(
    weights: Tensor | None, role: str, channels: int, channel_axis: int = 0
) -> list[str]:
    """Weights must be constant int8 with zero points 0 and 1 or `channels` scales.

    Per-channel scales must run along `channel_axis` (the output-channel axis).
    """
    if weights is None:
        return [f"{role} is missing"]
    problems = tensor_problems(weights, role, ("int8",))
    if problems:
        return problems
    if weights.data is None:
        problems.append(f"{role} tensor {weights.index} is not constant")
    q = weights.quantization
    if q is not None:
        if any(zp != 0 for zp in q.zero_points):
            problems.append(f"{role} has non-zero zero points (int8 weights must be symmetric)")
        if len(q.scales) not in (1, channels):
            problems.append(
                f"{role} has {len(q.scales)} scales; expected 1 or one per output channel "
                f"({channels})"
            )
        elif len(q.scales) > 1 and q.quantized_dimension != channel_axis:
            problems.append(
                f"{role} is quantized per channel along axis {q.quantized_dimension}; "
                f"expected axis {channel_axis}"
            )
    return problems


def bias_problems(bias: Tensor | None, channels: int) -> list[str]:
    if bias is None:
        return []
    problems = tensor_problems(bias, "bias", ("int32",), quantized=False)
    if not problems and bias.data is None:
        problems.append(f"bias tensor {bias.index} is not constant")
    if not problems and bias.element_count != channels:
        problems.append(f"bias has {bias.element_count} values, expected {channels}")
    return problems


def requant_arrays(
    input_scale: float, weights: Tensor, output_scale: float, channels: int
) -> tuple[ConstArray, ConstArray]:
    """Per-output-channel (multiplier, shift) arrays for in_scale*w_scale/out_scale (double)."""
    assert weights.quantization is not None
    scales = weights.quantization.scales
    multipliers = []
    shifts = []
    for channel in range(channels):
        w_scale = scales[channel] if len(scales) > 1 else scales[0]
        real = (float(input_scale) * float(w_scale)) / float(output_scale)
        m, s = quantize_multiplier(real)
        multipliers.append(m)
        shifts.append(s)
    return (
        ConstArray("multiplier", "int32", tuple(multipliers)),
        ConstArray("shift", "int32", tuple(shifts)),
    )


def folded_bias(
    model: Model, weights: Tensor, bias_index: int | None, input_zero_point: int, channels: int
) -> ConstArray:
    """bias[c] - input_zero_point * sum(weights[c]) per output channel (int32, wrapping).

    Folding the input offset into the bias is exact in int32 arithmetic and removes one add
    per MAC; padded taps then read the input zero point so their contribution cancels.
    """
    w = tensor_array(weights).reshape(channels, -1).astype(np.int64)
    sums = w.sum(axis=1)
    if bias_index is not None and bias_index >= 0:
        bias = tensor_array(model.tensors[bias_index]).astype(np.int64).reshape(-1)
    else:
        bias = np.zeros(channels, dtype=np.int64)
    folded = bias - input_zero_point * sums
    wrapped = ((folded + 2**31) % 2**32) - 2**31
    return ConstArray("bias", "int32", tuple(int(v) for v in wrapped))
