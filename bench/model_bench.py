"""Model compiler benchmark: arena, host speed vs TFLM, Cortex-M4 instructions, code size.

For every model in ../shared/models and tests/data, measured in one run on this machine:
- arena bytes: ours, TensorFlow Lite Micro's smallest working arena (found by probing), and
  the liveness lower bound our planner reports; the ratio ours/TFLM;
- time per inference on this host: our generated C at -O2 (a shared library whose C loop calls
  `<prefix>_invoke` N times) against the `tflite_micro` Python interpreter's `invoke()` (only
  the invoke calls are timed), same input, in interleaved rounds; medians and their ratio, with
  the geometric mean of the ratios over models;
- Cortex-M4 instructions per inference and per MAC (Unicorn counting the arm-none-eabi build
  of the model runner; instructions, not cycles), at -Os and at -O2, both with SHOAL_USE_DSP;
- `.text` of the generated code without weights (arm-none-eabi-size, Berkeley `text`, i.e.
  code plus read-only data, summed over the object files of the model's .c and its kernels,
  excluding `<prefix>_weights.c`), board cflags at -Os with SHOAL_USE_DSP;
- codegen wall time of `generate_model` (median).
It also checks that our host output equals TFLM's on the timed input. Prints a markdown table
and the targets of issue 3 with where we stand. Not a test: nothing is asserted.

    .venv/bin/python bench/model_bench.py [--quick] [--models NAME ...] [--layers NAME ...]
        [--results bench/RESULTS.md]

`--layers` adds, for the named models (default tiny_kws), where the Cortex-M4 instructions go
per operator (the model runner's profile under QEMU -icount, scaled to Unicorn's exact total).

Must not: fake or hard-code any number; a measurement that cannot run prints `n/a` and says
why on stderr.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codegen.loaders.board_loader import get_board  # noqa: E402
from codegen.model_compiler import GeneratedModel, generate_model, load_model  # noqa: E402
from host_sdk.build import BuildError, find_tool, have_tool  # noqa: E402
from host_sdk.build.model_firmware import (  # noqa: E402
    BENCH_RESET_INVOKE_SYMBOL,
    BENCH_RESET_SYMBOL,
    build_model_firmware,
    parse_model_runner_output,
)
from host_sdk.build.qemu_firmware import STRICT_WARNINGS  # noqa: E402
from host_sdk.hil.icount import InstructionCountError, count_instructions  # noqa: E402
from host_sdk.hil.qemu import qemu_available, run_qemu_firmware  # noqa: E402
from host_sdk.verify.tflm_oracle import close_oracle, tflm_min_arena_bytes  # noqa: E402

SHARED_MODELS_DIR = ROOT.parent / "shared" / "models"
PROJECT_MODELS_DIR = ROOT / "tests" / "data"
BOARD = "qemu-mps2-an386"
HOST_CFLAGS = ("-O2", "-std=c99", *STRICT_WARNINGS)
TFLM_ARENA_BYTES = 1 << 20
MAX_COUNTED_INSTRUCTIONS = 4_000_000_000
# A timed batch should last about this long, so timer and call overheads vanish (s).
BATCH_SECONDS = 0.02
TARGET_MODELS = ("tiny_kws", "tiny_resnet8")
# Models whose per-operator instruction split is printed, and the build it is measured on.
LAYER_MODELS = ("tiny_kws",)
LAYER_OPT = "-O2"

COLUMNS = (
    "model",
    "MACs",
    "arena B",
    "TFLM min arena B",
    "lower bound B",
    "arena ours/TFLM",
    "host us ours",
    "host us TFLM",
    "speed-up vs TFLM",
    "bit-exact",
    "M4 instr -Os",
    "M4 instr/MAC -Os",
    "M4 instr -O2",
    "M4 instr/MAC -O2",
    ".text B no weights",
    "codegen ms",
)


@dataclass
class ModelResult:
    """Every number measured for one model; None where a measurement could not run."""

    name: str
    macs: int
    arena_bytes: int
    lower_bound_bytes: int
    tflm_arena_bytes: int | None = None
    host_us_ours: float | None = None
    host_us_tflm: float | None = None
    bit_exact: bool | None = None
    m4_instructions: dict[str, int] = field(default_factory=dict)  # opt flag -> instructions
    text_bytes: int | None = None
    codegen_ms: float = 0.0
    layers: list[tuple[int, str, int, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # measurements that could not run

    @property
    def speedup(self) -> float | None:
        if self.host_us_ours is None or self.host_us_tflm is None or self.host_us_ours <= 0:
            return None
        return self.host_us_tflm / self.host_us_ours


def warn(message: str) -> None:
    print(f"model_bench: {message}", file=sys.stderr)


def find_models(names: list[str] | None) -> list[Path]:
    """The shared reference models (when present) and the project's own, by file stem."""
    paths: list[Path] = []
    if SHARED_MODELS_DIR.is_dir():
        paths += sorted(SHARED_MODELS_DIR.glob("*.tflite"))
    else:
        warn(f"reference models not found ({SHARED_MODELS_DIR} is absent); skipping them")
    paths += sorted(PROJECT_MODELS_DIR.glob("*.tflite"))
    if names:
        known = {p.stem: p for p in paths}
        missing = [n for n in names if n not in known]
        if missing:
            raise SystemExit(
                f"model_bench: unknown model(s) {', '.join(missing)}; known: {', '.join(known)}"
            )
        paths = [known[n] for n in names]
    return paths


def bench_input(model_path: Path) -> tuple[bytes, np.ndarray]:
    """One fixed random input (narrow around zero, so outputs do not saturate)."""
    model = load_model(model_path)
    tensor = model.tensor(model.inputs[0])
    dtype = np.dtype(tensor.dtype)
    rng = np.random.default_rng(2026)
    size = int(np.prod(tensor.shape))
    if dtype == np.float32:
        values = rng.normal(0.0, 0.5, size=size).astype(np.float32)
    else:
        values = np.clip(rng.normal(0.0, 12.0, size=size), -128, 127).astype(dtype)
    array = values.reshape(tensor.shape)
    return array.tobytes(), array


def time_codegen(model_path: Path, work: Path, repeats: int) -> tuple[GeneratedModel, float]:
    """Generate the C sources `repeats` times; the last result and the median wall time (ms)."""
    times = []
    generated = None
    for k in range(repeats):
        start = time.perf_counter()
        generated = generate_model(model_path, work / f"gen{k}")
        times.append((time.perf_counter() - start) * 1e3)
    assert generated is not None
    return generated, statistics.median(times)


# --- host timing -----------------------------------------------------------------------------

LOOP_SOURCE = """#include <stdint.h>
#include "{prefix}.h"

/* Calls the model `count` times; separate translation unit, so no call is optimised away. */
int shoal_bench_invoke_loop(const void *input, void *output, uint8_t *arena, int32_t count);
int shoal_bench_invoke_loop(const void *input, void *output, uint8_t *arena, int32_t count)
{{
    int status = 0;
    int32_t i;
    for (i = 0; i < count && status == 0; ++i) {{
        status = {prefix}_invoke(input, output, arena);
    }}
    return status;
}}
"""


class HostModel:
    """Our generated C for one model, built with gcc -O2 into a shared library."""

    def __init__(self, generated: GeneratedModel, work: Path) -> None:
        self.generated = generated
        prefix = generated.prefix
        loop = work / "bench_loop.c"
        loop.write_text(LOOP_SOURCE.format(prefix=prefix))
        sources = [str(f) for f in generated.files if f.suffix == ".c"] + [str(loop)]
        library = work / f"lib{prefix}_bench.so"
        command = [
            "gcc",
            *HOST_CFLAGS,
            f"-I{generated.out_dir}",
            "-shared",
            "-fPIC",
            "-o",
            str(library),
            *sources,
        ]
        subprocess.run(command, check=True, capture_output=True, text=True)
        self.library = ctypes.CDLL(str(library))
        self.loop = self.library.shoal_bench_invoke_loop
        self.loop.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]
        self.loop.restype = ctypes.c_int
        summary = generated.summary
        self._arena = (ctypes.c_uint8 * (max(summary.arena_bytes, 1) + 16))()
        self.arena = ctypes.addressof(self._arena) + (-ctypes.addressof(self._arena)) % 16
        self.output = ctypes.create_string_buffer(max(summary.output_bytes, 1))
        getattr(self.library, f"{prefix}_reset")(ctypes.c_void_p(self.arena))

    def run(self, data: bytes, count: int) -> float:
        """Invoke `count` times on `data`; wall seconds of the whole C loop."""
        source = ctypes.create_string_buffer(data, len(data))
        start = time.perf_counter()
        status = self.loop(source, self.output, self.arena, count)
        elapsed = time.perf_counter() - start
        if status != 0:
            raise RuntimeError(f"{self.generated.prefix}_invoke returned {status}")
        return elapsed

    def output_bytes(self) -> bytes:
        return self.output.raw[: self.generated.summary.output_bytes]


class TflmModel:
    """The tflite_micro Python interpreter on one model, input set once."""

    def __init__(self, model_bytes: bytes, array: np.ndarray) -> None:
        from tflite_micro import runtime

        self.interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=TFLM_ARENA_BYTES)
        self.interpreter.set_input(array, 0)

    def run(self, count: int) -> float:
        """Invoke `count` times; the sum of the invoke() call times (s)."""
        invoke = self.interpreter.invoke
        clock = time.perf_counter
        total = 0.0
        for _ in range(count):
            start = clock()
            invoke()
            total += clock() - start
        return total

    def output_bytes(self) -> bytes:
        out: np.ndarray = self.interpreter.get_output(0)
        return out.tobytes()


def calibrate(run_batch: Callable[[int], float]) -> int:
    """Invocations per batch so one batch lasts about BATCH_SECONDS."""
    count = 1
    while True:
        elapsed = run_batch(count)
        if elapsed >= BATCH_SECONDS / 4 or count >= 1 << 22:
            return max(1, int(count * BATCH_SECONDS / max(elapsed, 1e-9)))
        count *= 4


def time_host(ours: HostModel, tflm: TflmModel, data: bytes, rounds: int) -> tuple[float, float]:
    """Median microseconds per inference (ours, TFLM) over interleaved rounds."""
    ours_count = calibrate(lambda n: ours.run(data, n))
    tflm_count = calibrate(tflm.run)
    ours_times, tflm_times = [], []
    for _ in range(rounds):
        ours_times.append(ours.run(data, ours_count) / ours_count * 1e6)
        tflm_times.append(tflm.run(tflm_count) / tflm_count * 1e6)
    return statistics.median(ours_times), statistics.median(tflm_times)


def host_outputs_match(
    generated: GeneratedModel, work: Path, model_bytes: bytes, data: bytes, array: np.ndarray
) -> bool:
    """One invocation from the reset state on both sides; True when the bytes are equal.

    Fresh instances, because the timed ones (stateful for an LSTM) ran different numbers of
    invocations."""
    work.mkdir()
    ours = HostModel(generated, work)
    ours.run(data, 1)
    tflm = TflmModel(model_bytes, array)
    tflm.run(1)
    return ours.output_bytes() == tflm.output_bytes()


# --- Cortex-M4 ---------------------------------------------------------------------------------


def m4_instructions(model_path: Path, data: bytes, work: Path, opt: str) -> tuple[int, Path]:
    """Instructions of one inference on Cortex-M4 (reset + invoke minus reset), and the ELF."""
    firmware = build_model_firmware(
        model_path, get_board(BOARD), work / f"m4{opt}", [data], opt=opt, use_dsp=True
    )
    both = count_instructions(
        firmware.elf, BENCH_RESET_INVOKE_SYMBOL, max_instructions=MAX_COUNTED_INSTRUCTIONS
    )
    if both.return_value != 0:
        raise RuntimeError(f"{model_path.name}: invoke returned {both.return_value} on the M4")
    reset = count_instructions(firmware.elf, BENCH_RESET_SYMBOL)
    return both.instructions - reset.instructions, firmware.elf


def layer_instructions(
    model_path: Path, elf: Path, total_instructions: int, macs: tuple[int, ...]
) -> list[tuple[int, str, int, int]]:
    """Approximate Cortex-M4 instructions per operator: (op index, op, MACs, instructions).

    The runner's profile ticks under QEMU `-icount shift=0` advance with executed
    instructions; they are scaled so their sum equals Unicorn's exact total. Resolution is
    one tick (tens of instructions) per operator, plus the profiling hook's own cost.
    """
    printed = run_qemu_firmware(get_board(BOARD), elf, icount_shift=0, timeout_s=120)
    if printed.exit_code != 0:
        raise RuntimeError(f"{model_path.name}: model runner exited with {printed.exit_code}")
    ticks = parse_model_runner_output(printed.output).profile[0]
    scale = total_instructions / max(1, sum(ticks.values()))
    model = load_model(model_path)
    return [
        (op, model.operators[op].op, macs[op], round(t * scale)) for op, t in sorted(ticks.items())
    ]


def text_without_weights(generated: GeneratedModel, work: Path) -> int:
    """Sum of Berkeley `text` (code + rodata) over the model's object files, weights excluded."""
    board = get_board(BOARD)
    objects = []
    weights_name = f"{generated.prefix}_weights.c"
    for source in sorted(f for f in generated.files if f.suffix == ".c"):
        if source.name == weights_name:
            continue
        obj = work / (source.stem + ".o")
        command = [
            find_tool("arm-none-eabi-gcc"),
            *board.toolchain.cflags,
            "-Os",
            *STRICT_WARNINGS,
            "-DSHOAL_USE_DSP",
            f"-I{generated.out_dir}",
            "-c",
            str(source),
            "-o",
            str(obj),
        ]
        subprocess.run(command, check=True, capture_output=True, text=True)
        objects.append(str(obj))
    result = subprocess.run(
        [find_tool("arm-none-eabi-size"), "-B", *objects],
        check=True,
        capture_output=True,
        text=True,
    )
    total = 0
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0].isdigit():
            total += int(fields[0])
    return total


# --- one model ---------------------------------------------------------------------------------


def measure(
    model_path: Path, quick: bool, work: Path, arm_ok: bool, layer_models: tuple[str, ...]
) -> ModelResult:
    """All columns for one model; Cortex-M4 numbers only when `arm_ok` (toolchain found), the
    per-operator split when the model is in `layer_models`."""
    model_bytes = model_path.read_bytes()
    generated, codegen_ms = time_codegen(model_path, work, 1 if quick else 5)
    summary = generated.summary
    result = ModelResult(
        name=model_path.stem,
        macs=sum(summary.macs_per_op),
        arena_bytes=summary.arena_bytes,
        lower_bound_bytes=summary.liveness_lower_bound_bytes,
        codegen_ms=codegen_ms,
    )
    data, array = bench_input(model_path)
    result.tflm_arena_bytes = tflm_min_arena_bytes(model_bytes)
    result.bit_exact = host_outputs_match(generated, work / "check", model_bytes, data, array)
    (work / "host").mkdir()
    ours = HostModel(generated, work / "host")
    tflm = TflmModel(model_bytes, array)
    result.host_us_ours, result.host_us_tflm = time_host(ours, tflm, data, 3 if quick else 9)
    if arm_ok:
        for opt in ("-Os", "-O2"):
            try:
                count, elf = m4_instructions(model_path, data, work, opt)
            except (BuildError, InstructionCountError, RuntimeError) as exc:
                result.failures.append(f"{result.name} Cortex-M4 {opt}: {_first_line(exc)}")
                continue
            result.m4_instructions[opt] = count
            if opt == LAYER_OPT and result.name in layer_models and qemu_available():
                result.layers = layer_instructions(model_path, elf, count, summary.macs_per_op)
        text_dir = work / "text"
        text_dir.mkdir()
        try:
            result.text_bytes = text_without_weights(generated, text_dir)
        except subprocess.CalledProcessError as exc:
            result.failures.append(f"{result.name} .text: {_first_line(exc.stderr or exc)}")
    for failure in result.failures:
        warn(failure)
    return result


# --- report ------------------------------------------------------------------------------------


def _first_line(error: object) -> str:
    """The compiler's first error line (else the message's first line): enough to find it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    first = (errors or lines or ["unknown error"])[0]
    # Temporary build folders say nothing; keep the generated file's own name.
    return re.sub(r"\S*/gen/", "", first)[:300]


def _fmt(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def table_rows(results: list[ModelResult]) -> list[list[str]]:
    rows = []
    for r in results:
        arena_ratio = r.arena_bytes / r.tflm_arena_bytes if r.tflm_arena_bytes else None
        row = [
            r.name,
            str(r.macs),
            str(r.arena_bytes),
            _fmt(r.tflm_arena_bytes),
            str(r.lower_bound_bytes),
            _fmt(arena_ratio, 2),
            _fmt(r.host_us_ours, 2),
            _fmt(r.host_us_tflm, 2),
            _fmt(r.speedup, 2),
            "n/a" if r.bit_exact is None else ("yes" if r.bit_exact else "NO"),
        ]
        for opt in ("-Os", "-O2"):
            count = r.m4_instructions.get(opt)
            row.append(_fmt(count))
            row.append(_fmt(count / r.macs if count is not None and r.macs else None, 2))
        row += [_fmt(r.text_bytes), _fmt(r.codegen_ms, 1)]
        rows.append(row)
    return rows


def markdown_table(results: list[ModelResult]) -> str:
    header = "| " + " | ".join(COLUMNS) + " |"
    align = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|"
    lines = [header, align]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    return "\n".join(lines)


def geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def targets(results: list[ModelResult]) -> list[str]:
    """Each target of issue 3 with the measured value and whether it is met."""
    by_name = {r.name: r for r in results}
    lines = []

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    above_bound = [
        f"{r.name} by {r.arena_bytes - r.lower_bound_bytes} B"
        for r in results
        if r.arena_bytes > r.lower_bound_bytes
    ]
    lines.append(
        f"- arena <= liveness lower bound on every model: {verdict(not above_bound)}"
        + (f" (above it: {', '.join(above_bound)})" if above_bound else "")
    )
    for name in TARGET_MODELS:
        r = by_name.get(name)
        if r is None or not r.tflm_arena_bytes:
            lines.append(f"- {name} arena <= 0.7x TFLM: n/a (not measured)")
            continue
        ratio = r.arena_bytes / r.tflm_arena_bytes
        note = ""
        if ratio > 0.7 and 0.7 * r.tflm_arena_bytes < r.lower_bound_bytes:
            bound_ratio = r.lower_bound_bytes / r.tflm_arena_bytes
            note = (
                f" (0.7x TFLM is below the liveness lower bound, {bound_ratio:.2f}x TFLM: "
                "only in-place or tiled execution can reach it)"
            )
        lines.append(f"- {name} arena <= 0.7x TFLM: {ratio:.2f}x, {verdict(ratio <= 0.7)}{note}")
    speedups = [r.speedup for r in results if r.speedup is not None]
    mean = geomean(speedups)
    lines.append(
        f"- >= 3x faster than TFLM on this host (geomean over {len(speedups)} models): "
        + ("n/a" if mean is None else f"{mean:.2f}x, {verdict(mean >= 3.0)}")
    )
    kws = by_name.get("tiny_kws")
    if kws is not None and kws.m4_instructions:
        per_mac = {opt: n / kws.macs for opt, n in kws.m4_instructions.items()}
        shown = ", ".join(f"{per_mac[o]:.2f} at {o}" for o in per_mac)
        lines.append(
            f"- tiny_kws <= 3 Cortex-M4 instructions per MAC: {shown}; "
            f"{verdict(min(per_mac.values()) <= 3.0)} (best build)"
        )
        lines.append(
            f"- tiny_kws .text without weights < 10 KB: {kws.text_bytes} B, "
            f"{verdict(kws.text_bytes is not None and kws.text_bytes < 10 * 1024)}"
        )
    else:
        lines.append("- tiny_kws instructions per MAC and .text: n/a (not measured)")
    slowest = max(results, key=lambda r: r.codegen_ms)
    lines.append(
        f"- codegen < 1 s per model: slowest {slowest.name} {slowest.codegen_ms:.0f} ms, "
        f"{verdict(slowest.codegen_ms < 1000)}"
    )
    return lines


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True).stdout
    return (
        f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {cpu}; "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, "
        f"gcc {gcc.strip()}"
    )


def report(results: list[ModelResult], quick: bool) -> str:
    lines = [
        "## Model compiler",
        "",
        f"Measured {machine_line()}; `bench/model_bench.py{' --quick' if quick else ''}`.",
        "",
        markdown_table(results),
        "",
        "Columns: arena bytes (ours; TFLM's smallest working arena on this 64-bit host, found by "
        "probing; the liveness lower bound of plain sequential execution). Host time per "
        "inference: our C at gcc -O2 called in a C loop vs the tflite_micro Python "
        "interpreter's invoke() (only invoke is timed; it includes the binding's call "
        "overhead, which dominates for tiny models), same input, median of interleaved rounds; "
        "speed-up = TFLM time / our time. bit-exact: our host output equals TFLM's on that "
        "input. M4 instr: Cortex-M4 instructions per inference counted with Unicorn on the "
        "arm-none-eabi-gcc build (board cflags, SHOAL_USE_DSP) at -Os and -O2 - instructions, "
        "not cycles. .text: Berkeley text (code + rodata) of the model's and kernels' object "
        "files at -Os, weights file excluded. codegen: generate_model wall time (median).",
        "",
        "Targets (issue 3):",
        "",
        *targets(results),
    ]
    failures = [f for r in results for f in r.failures]
    if failures:
        lines += ["", "Not measured (n/a above), with the first error:", ""]
        lines += [f"- {f}" for f in failures]
    for r in results:
        if r.layers:
            lines += ["", *layer_table(r)]
    return "\n".join(lines) + "\n"


def layer_table(r: ModelResult) -> list[str]:
    lines = [
        f"Where {r.name}'s Cortex-M4 instructions go ({LAYER_OPT}, SHOAL_USE_DSP; approximate: "
        "the runner's per-operator profile under QEMU -icount, scaled to the exact total):",
        "",
        "| op | operator | MACs | instructions | instr/MAC | share |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    total = max(1, sum(n for *_, n in r.layers))
    for op, name, macs, count in r.layers:
        per_mac = f"{count / macs:.2f}" if macs else "-"
        lines.append(
            f"| {op} | {name} | {macs} | {count} | {per_mac} | {100 * count / total:.1f}% |"
        )
    return lines


def write_results(path: Path, section: str) -> None:
    """Replace the '## Model compiler' section of `path` (or append it), keep the rest."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Model compiler"), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and repeats")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="model file stems to run")
    parser.add_argument(
        "--results", type=Path, help="also write the section into this markdown file"
    )
    parser.add_argument(
        "--layers",
        nargs="*",
        default=list(LAYER_MODELS),
        metavar="NAME",
        help=f"models whose per-operator instructions are shown (default: {' '.join(LAYER_MODELS)})",
    )
    args = parser.parse_args(argv)
    models = find_models(args.models)
    arm_ok = have_tool("arm-none-eabi-gcc") and have_tool("arm-none-eabi-size")
    if not arm_ok:
        warn("arm-none-eabi-gcc/-size not found: Cortex-M4 columns are n/a")
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="shoal-model-bench-") as tmp:
            for path in models:
                print(f"model_bench: {path.stem} ...", file=sys.stderr, flush=True)
                work = Path(tmp) / path.stem
                work.mkdir()
                results.append(measure(path, args.quick, work, arm_ok, tuple(args.layers)))
    finally:
        close_oracle()
    section = report(results, args.quick)
    print(section)
    if args.results:
        write_results(args.results, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
