"""Build a generated model plus the model-runner firmware for a QEMU board or the host.

Responsible for: compiling a `.tflite` model to C (`codegen.model_compiler.generate_model`),
or taking C a user already generated (`ModelSources`), embedding input vectors and a
reset/invoke schedule as C arrays next to it, and linking it with
`firmware_templates/c/apps/model_runner/model_runner.c` and either the board's QEMU platform
layer (`build_qemu_firmware`, `build_runner_firmware`) or a host HAL for a native process
(`build_host_runner`, `run_host_runner`); and for reading back what the runner prints
(`parse_model_runner_output`). Must not run QEMU (`host_sdk.hil.qemu` does) or judge outputs
(`host_sdk.verify.model_verify` and the tests compare them with TFLM).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from codegen.model_compiler import GeneratedModel, generate_model
from codegen.resources import templates_dir
from host_sdk.build.qemu_firmware import STRICT_WARNINGS, BuildError, build_qemu_firmware
from host_sdk.build.toolchain import find_tool

# Functions of the runner that touch no peripheral: count one reset, and one reset + inference,
# with host_sdk.hil.icount; their difference is the instructions of one inference.
BENCH_RESET_SYMBOL = "shoal_runner_bench_reset"
BENCH_RESET_INVOKE_SYMBOL = "shoal_runner_bench_reset_invoke"
MAX_INPUT_VECTORS = 65535  # input indices are uint16_t in the runner
HOST_COMPILE_TIMEOUT_S = 180.0
HOST_RUN_TIMEOUT_S = 120.0
_LINE = re.compile(rb"^(out|prof|reset|error|done)(?: (.*?))?\r?$", re.MULTILINE)


@dataclass(frozen=True)
class RunnerStep:
    """One step of the runner's schedule: optionally reset the model, then invoke it on
    input vector `input_index`."""

    input_index: int
    reset_before: bool = False


@dataclass(frozen=True)
class ModelFirmware:
    """A linked model-runner firmware: the ELF, what the compiler generated, the schedule."""

    elf: Path
    generated: GeneratedModel
    steps: tuple[RunnerStep, ...]


@dataclass(frozen=True)
class RunnerOutput:
    """What a model-runner firmware printed: `outputs[k]` is the output of step k (bytes);
    `profile[k]` maps operator index -> profiling ticks of step k; `completed` is True when it
    printed its final `done` line."""

    outputs: tuple[bytes, ...]
    profile: tuple[dict[int, int], ...]
    completed: bool


@dataclass(frozen=True)
class ModelSources:
    """Generated C of one model: its prefix (symbols `<prefix>_invoke` ...), the folder holding
    `<prefix>.h` and the kernel headers, and the `.c` files to compile."""

    prefix: str
    directory: Path
    c_files: tuple[Path, ...]


@dataclass(frozen=True)
class HostRun:
    """A finished host-runner process: its exit status, its stdout (the runner's lines) and
    its stderr."""

    exit_code: int
    output: bytes
    stderr: bytes


def runner_source() -> Path:
    """The model runner's C main."""
    return templates_dir() / "c" / "apps" / "model_runner" / "model_runner.c"


def host_hal_source() -> Path:
    """The shoal_hal.h implementation the runner uses as a host process."""
    return runner_source().parent / "model_runner_host_hal.c"


def sources_of(generated: GeneratedModel) -> ModelSources:
    """The C files `generate_model` wrote, as `ModelSources`."""
    return ModelSources(
        prefix=generated.prefix,
        directory=generated.out_dir,
        c_files=tuple(f for f in generated.files if f.suffix == ".c"),
    )


def _check_schedule(
    inputs: Sequence[bytes], steps: Sequence[RunnerStep], input_bytes: int, model_name: str
) -> None:
    if not inputs:
        raise ShoalInputError(f"{model_name}: no input vectors given; pass at least one")
    if len(inputs) > MAX_INPUT_VECTORS:
        raise ShoalInputError(
            f"{model_name}: {len(inputs)} input vectors; at most {MAX_INPUT_VECTORS} accepted"
        )
    for index, vector in enumerate(inputs):
        if len(vector) != input_bytes:
            raise ShoalInputError(
                f"{model_name}: input vector {index} has {len(vector)} bytes; the model's input "
                f"is {input_bytes} bytes"
            )
    if not steps:
        raise ShoalInputError(f"{model_name}: empty step schedule; pass at least one step")
    for number, step in enumerate(steps):
        if not 0 <= step.input_index < len(inputs):
            raise ShoalInputError(
                f"{model_name}: step {number} uses input vector {step.input_index}; "
                f"accepted: 0..{len(inputs) - 1}"
            )


def _hex_rows(data: bytes, per_line: int = 24) -> str:
    rows = []
    for start in range(0, len(data), per_line):
        rows.append("        " + ", ".join(f"0x{b:02x}" for b in data[start : start + per_line]))
    return ",\n".join(rows) if rows else "        0"


def _runner_config(prefix: str, inputs: int, steps: int) -> str:
    upper = prefix.upper()
    return f"""/* Generated by host_sdk.build.model_firmware for model {prefix}. Do not edit. */
#ifndef SHOAL_MODEL_RUNNER_CONFIG_H
#define SHOAL_MODEL_RUNNER_CONFIG_H

#include "{prefix}.h"

#define SHOAL_RUNNER_ARENA_BYTES {upper}_ARENA_BYTES
#define SHOAL_RUNNER_INPUT_BYTES {upper}_INPUT_BYTES
#define SHOAL_RUNNER_OUTPUT_BYTES {upper}_OUTPUT_BYTES
#define SHOAL_RUNNER_INPUT_COUNT {inputs}
#define SHOAL_RUNNER_STEP_COUNT {steps}
#define shoal_runner_model_invoke {prefix}_invoke
#define shoal_runner_model_reset {prefix}_reset
#define shoal_runner_model_set_profiler {prefix}_set_profiler

#endif /* SHOAL_MODEL_RUNNER_CONFIG_H */
"""


def _runner_vectors(inputs: Sequence[bytes], steps: Sequence[RunnerStep]) -> str:
    input_rows = ",\n".join("    {\n" + _hex_rows(vector) + "\n    }" for vector in inputs)
    step_rows = ",\n".join(f"    {{{s.input_index}u, {int(s.reset_before)}u}}" for s in steps)
    return f"""/* Generated by host_sdk.build.model_firmware: inputs and schedule. Do not edit. */
#include <stdint.h>

#include "shoal_model_runner.h"

/* The model's header and these vectors must agree on the input size. */
typedef char shoal_runner_input_bytes_check[
    (SHOAL_RUNNER_INPUT_BYTES == {len(inputs[0])}) ? 1 : -1];

const uint8_t shoal_runner_inputs[SHOAL_RUNNER_INPUT_COUNT][SHOAL_RUNNER_INPUT_STRIDE]
    __attribute__((aligned(16))) = {{
{input_rows}
}};

const shoal_runner_step_t shoal_runner_steps[SHOAL_RUNNER_STEP_COUNT] = {{
{step_rows}
}};
"""


def build_model_firmware(
    model: Path | bytes,
    board: Board,
    out_dir: Path,
    inputs: Sequence[bytes],
    *,
    steps: Sequence[RunnerStep] | None = None,
    prefix: str | None = None,
    opt: str = "-Os",
    use_dsp: bool = False,
    name: str = "model_runner",
    arena_fill: int | None = None,
) -> ModelFirmware:
    """Generate C for `model`, embed `inputs` and link the model runner for `board` (QEMU).

    `inputs` are raw input vectors, each exactly the model's input size in bytes (int8 values,
    or float32 little-endian for float-edged models). `steps` is the schedule; by default one
    step per input vector in order, with a reset before the first only (so stateful models
    carry state across the steps). `opt` is the optimisation flag (the board's -Os by default),
    `use_dsp` defines SHOAL_USE_DSP (Cortex-M SIMD MACs; same results). Generated sources go
    to `out_dir/gen`, the runner's generated config and vectors to `out_dir/runner`, the ELF
    and map to `out_dir`. `arena_fill` (a seed) fills the arena with pseudo-random bytes before
    the first step. Returns the ELF, which keeps `BENCH_RESET_SYMBOL` and
    `BENCH_RESET_INVOKE_SYMBOL` for host_sdk.hil.icount. Raises ShoalInputError for a bad
    model, vector or schedule, BuildError when the compiler fails.
    """
    model_name = "<bytes>" if isinstance(model, bytes | bytearray) else str(model)
    out_dir = Path(out_dir)
    generated = generate_model(model, out_dir / "gen", prefix=prefix)
    elf, schedule = build_runner_firmware(
        sources_of(generated),
        board,
        out_dir,
        inputs,
        input_bytes=generated.summary.input_bytes,
        steps=steps,
        opt=opt,
        use_dsp=use_dsp,
        name=name,
        arena_fill=arena_fill,
        model_name=model_name,
    )
    return ModelFirmware(elf=elf, generated=generated, steps=schedule)


def _write_runner_files(
    sources: ModelSources,
    out_dir: Path,
    inputs: Sequence[bytes],
    steps: Sequence[RunnerStep] | None,
    input_bytes: int,
    model_name: str,
) -> tuple[Path, Path, tuple[RunnerStep, ...]]:
    """Check the schedule, write the runner's config and vectors; (runner dir, vectors file,
    schedule)."""
    schedule = (
        tuple(steps)
        if steps is not None
        else tuple(RunnerStep(i, reset_before=i == 0) for i in range(len(inputs)))
    )
    _check_schedule(inputs, schedule, input_bytes, model_name)
    for source in sources.c_files:
        if not Path(source).is_file():
            raise ShoalInputError(f"{source}: generated C source not found")
    header = sources.directory / f"{sources.prefix}.h"
    if not header.is_file():
        raise ShoalInputError(
            f"{header}: model header not found; expected {sources.prefix}.h next to the sources"
        )
    runner_dir = Path(out_dir) / "runner"
    runner_dir.mkdir(parents=True, exist_ok=True)
    (runner_dir / "shoal_model_runner_config.h").write_text(
        _runner_config(sources.prefix, len(inputs), len(schedule))
    )
    vectors = runner_dir / "shoal_model_runner_vectors.c"
    vectors.write_text(_runner_vectors(inputs, schedule))
    return runner_dir, vectors, schedule


def _runner_defines(use_dsp: bool, arena_fill: int | None) -> dict[str, str | int | None]:
    defines: dict[str, str | int | None] = {}
    if use_dsp:
        defines["SHOAL_USE_DSP"] = None
    if arena_fill is not None:
        defines["SHOAL_RUNNER_ARENA_FILL"] = f"{arena_fill & 0xFFFFFFFF}u"
    return defines


def build_runner_firmware(
    sources: ModelSources,
    board: Board,
    out_dir: Path,
    inputs: Sequence[bytes],
    *,
    input_bytes: int,
    steps: Sequence[RunnerStep] | None = None,
    opt: str = "-Os",
    use_dsp: bool = False,
    name: str = "model_runner",
    arena_fill: int | None = None,
    model_name: str = "<model>",
) -> tuple[Path, tuple[RunnerStep, ...]]:
    """Link already generated C (`sources`) with the model runner for `board` (QEMU).

    Like `build_model_firmware` without the generation step: `input_bytes` is the model's
    input size in bytes (each vector must have it). Returns the ELF and the schedule.
    """
    runner_dir, vectors, schedule = _write_runner_files(
        sources, out_dir, inputs, steps, input_bytes, model_name
    )
    elf = build_qemu_firmware(
        board,
        [runner_source(), vectors, *sources.c_files],
        Path(out_dir),
        include_dirs=(runner_dir, runner_source().parent, sources.directory),
        defines=_runner_defines(use_dsp, arena_fill) or None,
        opt=opt,
        name=name,
        keep_symbols=(BENCH_RESET_SYMBOL, BENCH_RESET_INVOKE_SYMBOL),
    )
    return elf, schedule


def build_host_runner(
    sources: ModelSources,
    board: Board,
    out_dir: Path,
    inputs: Sequence[bytes],
    *,
    input_bytes: int,
    steps: Sequence[RunnerStep] | None = None,
    arena_fill: int | None = None,
    name: str = "model_runner",
    model_name: str = "<model>",
) -> tuple[Path, tuple[RunnerStep, ...]]:
    """Build the model runner as a host executable for a board with `toolchain.compiler` gcc
    (`native`): the board's cflags plus -Wall -Wextra -Werror. Returns the executable and the
    schedule. Raises ShoalInputError for a board not built with gcc or a bad schedule,
    BuildError (with gcc's message) when compiling fails, ToolNotFoundError without gcc.
    """
    if board.toolchain.compiler != "gcc" or board.qemu is not None:
        raise ShoalInputError(
            f"board '{board.name}': field 'toolchain.compiler' is "
            f"{board.toolchain.compiler!r}; the host runner is built with gcc (board 'native')"
        )
    runner_dir, vectors, schedule = _write_runner_files(
        sources, out_dir, inputs, steps, input_bytes, model_name
    )
    hal_dir = templates_dir() / "c" / "hal"
    executable = Path(out_dir) / name
    command = [
        find_tool("gcc"),
        *board.toolchain.cflags,
        *STRICT_WARNINGS,
        *(
            f"-D{key}" if value is None else f"-D{key}={value}"
            for key, value in _runner_defines(False, arena_fill).items()
        ),
        f'-DSHOAL_BOARD_NAME="{board.name}"',
        *(f"-I{d}" for d in (runner_dir, runner_source().parent, sources.directory, hal_dir)),
        str(runner_source()),
        str(host_hal_source()),
        str(vectors),
        *(str(f) for f in sources.c_files),
        "-o",
        str(executable),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=HOST_COMPILE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(
            f"gcc did not finish building {name} in {HOST_COMPILE_TIMEOUT_S:.0f} s",
            command=command,
            stderr=str(exc.stderr or ""),
        ) from exc
    if result.returncode != 0:
        raise BuildError(
            f"gcc failed building {name} for board {board.name} "
            f"(exit status {result.returncode}):\n{result.stderr.strip()}",
            command=command,
            stderr=result.stderr,
        )
    return executable, schedule


def run_host_runner(executable: Path, *, timeout_s: float = HOST_RUN_TIMEOUT_S) -> HostRun:
    """Run a host runner built by `build_host_runner` to completion (killed after `timeout_s`
    seconds: subprocess.TimeoutExpired). A crash is a negative exit code (the signal)."""
    result = subprocess.run(
        [str(executable)],
        capture_output=True,
        timeout=timeout_s,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return HostRun(exit_code=result.returncode, output=result.stdout, stderr=result.stderr)


def parse_model_runner_output(output: bytes) -> RunnerOutput:
    """Read the lines a model-runner firmware printed (see model_runner.c for the protocol).

    Raises ValueError naming the line when an `out` line is malformed, a step is out of
    order, or the firmware reported a failed invoke.
    """
    outputs: list[bytes] = []
    profile: list[dict[int, int]] = []
    completed = False
    for match in _LINE.finditer(output):
        kind, rest = match.group(1), (match.group(2) or b"").decode("ascii", errors="replace")
        if kind == b"out":
            step_text, _, hex_text = rest.partition(" ")
            if not step_text.isdigit() or int(step_text) != len(outputs):
                raise ValueError(
                    f"model runner: line 'out {rest[:40]}' names step {step_text!r}, "
                    f"expected step {len(outputs)}"
                )
            try:
                outputs.append(bytes.fromhex(hex_text))
            except ValueError as exc:
                raise ValueError(
                    f"model runner: step {step_text} output is not hex: {hex_text[:40]!r}"
                ) from exc
            profile.append({})
        elif kind == b"prof":
            fields = dict(f.split("=", 1) for f in rest.split()[1:] if "=" in f)
            if profile and "op" in fields and "ticks" in fields:
                profile[-1][int(fields["op"])] = int(fields["ticks"])
        elif kind == b"error":
            raise ValueError(f"model runner: invoke failed: 'error {rest}'")
        elif kind == b"done":
            completed = True
    return RunnerOutput(outputs=tuple(outputs), profile=tuple(profile), completed=completed)
