"""Generated C for every reference model is bit-exact with TensorFlow Lite Micro.

Each model in ../shared/models is compiled to C, built with gcc (-O2, warnings as errors) and
run on random inputs next to TFLM; outputs must be byte-identical. The stateful LSTM model is
run several times without reset (state carried), then both sides are reset and compared again.
Every generated file also compiles warning-free for Cortex-M4 (portable and DSP paths).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.gen]

MODELS = [
    "tflm_hello",
    "tiny_ad01",
    "tflm_mnist_lstm",
    "tiny_ad01_fullint_floatio",
    "tflm_micro_speech",
    "tiny_kws",
    "tiny_resnet8",
]
INPUTS_PER_MODEL = 4
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=c99", "-Wall", "-Wextra", "-Werror"]


def random_input(rng: np.random.Generator, nbytes: int, is_float: bool, wide: bool) -> bytes:
    """Full-range inputs and narrow ones around zero, so softmax outputs do not all saturate."""
    if is_float:
        sigma = 8.0 if wide else 0.5
        return rng.normal(0.0, sigma, size=nbytes // 4).astype(np.float32).tobytes()
    if wide:
        return rng.integers(-128, 128, size=nbytes, dtype=np.int8).tobytes()
    return np.clip(rng.normal(0.0, 12.0, size=nbytes), -128, 127).astype(np.int8).tobytes()


def _model_bytes(shared_models_dir: Path, name: str) -> bytes:
    return (shared_models_dir / f"{name}.tflite").read_bytes()


@pytest.mark.parametrize("name", MODELS)
def test_model_is_bit_exact_with_tflm(
    name: str, shared_models_dir: Path, c_model: Callable, tflm_model: Callable
) -> None:
    data = _model_bytes(shared_models_dir, name)
    ours = c_model(data, name)
    oracle = tflm_model(data)
    ours.reset()
    oracle.reset()
    is_float = oracle.input_details["dtype"] == np.float32
    rng = np.random.default_rng(sum(data[:64]))
    distinct_outputs = set()
    for k in range(INPUTS_PER_MODEL):
        sample = random_input(rng, ours.generated.summary.input_bytes, is_float, wide=k % 2 == 0)
        expected = oracle.invoke(sample)
        assert ours.invoke(sample) == expected, f"{name}: input {k} differs from TFLM"
        distinct_outputs.add(expected)
    assert len(distinct_outputs) > 1, f"{name}: outputs do not depend on the input"


def test_lstm_state_carries_across_invocations_and_reset_clears_it(
    shared_models_dir: Path, c_model: Callable, tflm_model: Callable
) -> None:
    data = _model_bytes(shared_models_dir, "tflm_mnist_lstm")
    ours = c_model(data, "tflm_mnist_lstm")
    oracle = tflm_model(data)
    ours.reset()
    oracle.reset()
    rng = np.random.default_rng(7)
    sample = random_input(rng, ours.generated.summary.input_bytes, False, wide=False)
    first = ours.invoke(sample)
    outputs = [first]
    assert first == oracle.invoke(sample)
    for _ in range(3):
        out = ours.invoke(sample)
        assert out == oracle.invoke(sample)
        outputs.append(out)
    assert len(set(outputs)) > 1, "the same input gave the same output: no state was carried"
    ours.reset()
    oracle.reset()
    assert ours.invoke(sample) == oracle.invoke(sample) == first


@pytest.mark.parametrize("name", MODELS)
def test_size_build_uses_shared_kernels_and_stays_bit_exact(
    name: str, shared_models_dir: Path, c_model: Callable, tflm_model: Callable
) -> None:
    """-Os builds call the out-of-line kernels instead of specialised copies: same bytes."""
    data = _model_bytes(shared_models_dir, name)
    ours = c_model(data, name, flags=("-Os",))
    oracle = tflm_model(data)
    ours.reset()
    oracle.reset()
    is_float = oracle.input_details["dtype"] == np.float32
    rng = np.random.default_rng(len(data))
    for k in range(2):
        sample = random_input(rng, ours.generated.summary.input_bytes, is_float, wide=k == 0)
        assert ours.invoke(sample) == oracle.invoke(sample), f"{name}: -Os build differs"


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
def test_generated_sources_compile_for_cortex_m4(
    dsp: bool, shared_models_dir: Path, tmp_path: Path
) -> None:
    from codegen.model_compiler import generate_model

    for name in MODELS:
        out = tmp_path / name
        generated = generate_model(shared_models_dir / f"{name}.tflite", out)
        flags = [*ARM_FLAGS, "-DSHOAL_USE_DSP"] if dsp else ARM_FLAGS
        for source in (f for f in generated.files if f.suffix == ".c"):
            cmd = ["arm-none-eabi-gcc", *flags, "-c", str(source), "-o", str(source) + ".o"]
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
