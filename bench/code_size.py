"""Measure the Cortex-M4 -Os code sizes behind `shoal check`'s code estimate.

Prints (1) .text bytes of each kernel source in firmware_templates/c/nn and (2) a least-squares
fit of the generated graph code (`<prefix>.c`, weights excluded) as MODEL + STEP x kernel calls (elided steps excluded),
over the reference models and the project's examples; then the estimate error per model. Paste
the numbers into `codegen/check.py` when the kernels change (a gen test flags drift).

    .venv/bin/python bench/code_size.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codegen.check import check_model  # noqa: E402
from codegen.loaders.board_loader import get_board  # noqa: E402
from codegen.model_compiler import generate_model, load_model, plan_model  # noqa: E402

CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=c99", "-ffunction-sections", "-fdata-sections"]
NN_DIR = ROOT / "firmware_templates" / "c" / "nn"


def text_bytes(source: Path, include: Path, work: Path) -> int:
    obj = work / (source.stem + ".o")
    subprocess.run(
        ["arm-none-eabi-gcc", *CFLAGS, "-I", str(include), "-c", str(source), "-o", str(obj)],
        check=True,
    )
    size = subprocess.run(
        ["arm-none-eabi-size", str(obj)], check=True, capture_output=True, text=True
    )
    return int(size.stdout.splitlines()[1].split()[0])


def models() -> list[Path]:
    shared = ROOT.parent / "shared" / "models"
    return sorted(shared.glob("*.tflite")) + sorted((ROOT / "tests" / "data").glob("*.tflite"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("CODE_TEXT_BYTES = {")
        for source in sorted(NN_DIR.glob("*.c")):
            print(f'    "{source.name}": {text_bytes(source, NN_DIR, work)},')
        print("}")
        rows = []
        for model in models():
            out = work / model.stem
            generated = generate_model(model, out)
            plan = plan_model(load_model(model))
            steps = sum(1 for step in plan.steps if not step.elided)
            graph = text_bytes(out / f"{generated.prefix}.c", out, work)
            kernels = sum(text_bytes(p, out, work) for p in out.glob("shoal_nn_*.c"))
            rows.append((model, steps, graph, kernels))
        design = np.array([[1.0, steps] for _, steps, _, _ in rows])
        target = np.array([graph for _, _, graph, _ in rows], dtype=float)
        (model_bytes, step_bytes), *_ = np.linalg.lstsq(design, target, rcond=None)
        if model_bytes < 0:  # a negative fixed part means nothing: fit through the origin
            model_bytes = 0.0
            step_bytes = float(target.sum() / design[:, 1].sum())
        print(f"MODEL_TEXT_BYTES = {model_bytes:.0f}\nSTEP_TEXT_BYTES = {step_bytes:.0f}\n")
        print("| model | steps | graph .text | kernels .text | actual | check's estimate | error |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        board = get_board("qemu-mps2-an386")
        for model, steps, graph, kernels in rows:
            estimate = check_model(model, board).code_bytes_estimate or 0
            actual = graph + kernels
            print(
                f"| {model.stem} | {steps} | {graph} | {kernels} | {actual} | {estimate} | {estimate / actual - 1:+.0%} |"
            )


if __name__ == "__main__":
    main()
