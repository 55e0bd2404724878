"""`shoal check`'s code-size estimate stays close to real Cortex-M4 builds of generated code."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from codegen.check import check_model
from codegen.loaders.board_loader import get_board
from codegen.model_compiler import generate_model

pytestmark = [
    pytest.mark.gen,
    pytest.mark.skipif(
        shutil.which("arm-none-eabi-gcc") is None,
        reason="arm-none-eabi-gcc missing (apt-get install gcc-arm-none-eabi)",
    ),
]

CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=c99", "-ffunction-sections", "-fdata-sections"]
# The estimate is a table plus a per-call constant (bench/code_size.py fits them): it must stay
# within this fraction of the real .text, or the table needs refreshing.
TOLERANCE = 0.30


def _text_bytes(source: Path, out: Path) -> int:
    obj = out / (source.name + ".o")
    subprocess.run(
        ["arm-none-eabi-gcc", *CFLAGS, "-I", str(out), "-c", str(source), "-o", str(obj)],
        check=True,
    )
    size = subprocess.run(
        ["arm-none-eabi-size", str(obj)], check=True, capture_output=True, text=True
    )
    return int(size.stdout.splitlines()[1].split()[0])


@pytest.mark.parametrize(
    "name", ["tflm_hello", "tflm_micro_speech", "tiny_kws", "tiny_resnet8", "tflm_mnist_lstm"]
)
def test_estimate_is_close_to_a_real_build(
    shared_models_dir: Path, tmp_path: Path, name: str
) -> None:
    model = shared_models_dir / f"{name}.tflite"
    generated = generate_model(model, tmp_path)
    sources = [p for p in tmp_path.glob("*.c") if not p.name.endswith("_weights.c")]
    actual = sum(_text_bytes(source, tmp_path) for source in sources)
    estimate = check_model(model, get_board("qemu-mps2-an386")).code_bytes_estimate
    assert estimate is not None
    assert abs(estimate - actual) <= TOLERANCE * actual, (generated.prefix, estimate, actual)
