"""Random conv and depthwise-conv models on the emulated Cortex-M4, DSP kernels, vs TFLM.

The host-side hypothesis tests never take the `SHOAL_USE_DSP` paths (the host has no DSP
instructions), and the reference models exercise them only with their own shapes. Here random
int8 DEPTHWISE_CONV_2D models with channel counts that take the 4-channel SIMD fast path (and
some that do not), and random CONV_2D models, are compiled for `qemu-mps2-an386` at -Os and at
-O2 (specialised kernels) with SHOAL_USE_DSP, run under QEMU, and compared byte for byte with
TensorFlow Lite Micro on the host.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codegen.loaders.board_loader import get_board
from codegen.tflite_writer import activation_spec, bias_spec, single_op_model, weights_spec
from host_sdk.build import have_tool
from host_sdk.build.model_firmware import build_model_firmware, parse_model_runner_output
from host_sdk.hil.qemu import run_qemu_firmware
from host_sdk.verify.tflm_oracle import run_tflm

pytestmark = [
    pytest.mark.sim,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (have_tool("qemu-system-arm") and have_tool("arm-none-eabi-gcc")),
        reason="qemu-system-arm or arm-none-eabi-gcc is not installed "
        "(apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)",
    ),
]

BOARD = "qemu-mps2-an386"


@st.composite
def conv_models(draw: st.DrawFn) -> tuple[bytes, np.ndarray]:
    """(model bytes, one int8 input) for a random DEPTHWISE_CONV_2D or CONV_2D."""
    depthwise = draw(st.booleans()) or draw(st.booleans())  # mostly depthwise
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    channels = draw(st.sampled_from((4, 8, 12, 16) if depthwise else (1, 3, 4, 8)))
    height, width = draw(st.integers(3, 9)), draw(st.integers(3, 9))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    multiplier = draw(st.sampled_from((1, 1, 1, 2))) if depthwise else 1
    out_channels = channels * multiplier if depthwise else draw(st.integers(1, 8))
    options = {
        "padding": draw(st.sampled_from(("SAME", "VALID"))),
        "stride": (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        "dilation": (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        "activation": draw(st.sampled_from(("NONE", "RELU", "RELU6"))),
    }
    if depthwise:
        options["depth_multiplier"] = multiplier
    x_scale, x_zero = float(rng.uniform(0.01, 0.1)), int(rng.integers(-20, 21))
    w_scales = rng.uniform(0.002, 0.03, size=out_channels)
    taps = kh * kw * (1 if depthwise else channels)
    out_scale = float(x_scale * w_scales.mean() * 64 * np.sqrt(taps))
    weights_shape = (1, kh, kw, out_channels) if depthwise else (out_channels, kh, kw, channels)
    weights = rng.integers(-127, 128, size=weights_shape).astype(np.int8)
    bias = rng.integers(-3000, 3000, size=out_channels).astype(np.int32)
    # Output shape as TFLite computes it (VALID needs the dilated kernel to fit the input).
    effective = [(k - 1) * d + 1 for k, d in zip((kh, kw), options["dilation"], strict=True)]
    if effective[0] > height or effective[1] > width:
        options["padding"] = "SAME"
    sizes = [
        (size + stride - 1) // stride
        if options["padding"] == "SAME"
        else (size - eff) // stride + 1
        for size, eff, stride in zip((height, width), effective, options["stride"], strict=True)
    ]
    model = single_op_model(
        "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
        [
            activation_spec((1, height, width, channels), x_scale, x_zero),
            weights_spec(weights, w_scales, 3 if depthwise else 0),
            bias_spec(bias, x_scale, w_scales),
        ],
        [activation_spec((1, *sizes, out_channels), out_scale, int(rng.integers(-10, 11)))],
        options,
    )
    x = rng.integers(-128, 128, size=(1, height, width, channels)).astype(np.int8)
    return model, x


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=conv_models())
def test_random_convs_with_dsp_kernels_match_tflm(
    case: tuple[bytes, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> None:
    model, x = case
    golden = run_tflm(model, [x])[0].tobytes()
    for opt in ("-Os", "-O2"):
        out = tmp_path_factory.mktemp("dsp")
        firmware = build_model_firmware(
            model, get_board(BOARD), out, [x.tobytes()], opt=opt, use_dsp=True
        )
        result = run_qemu_firmware(get_board(BOARD), firmware.elf, timeout_s=60)
        assert result.exit_code == 0, result.output.decode(errors="replace")[-2000:]
        printed = parse_model_runner_output(result.output)
        assert printed.outputs == (golden,), f"{opt}: {printed.outputs[0].hex()} != {golden.hex()}"
