"""`shoal check`: will this model deploy on this board? Answered before anything is built.

Responsible for the deployability report: each operator supported or not on the chosen backend
(with the reason), the memory budget (arena + I/O buffers against the board's application
RAM; weights + estimated code against its application flash, each with headroom), MACs per
layer and a latency estimate from the board's clock and cycles per int8 MAC, and one verdict.
It reads the model and the board; it writes nothing and runs no compiler.

Estimates are labelled as such: code size comes from a table of measured kernel sizes
(`CODE_TEXT_BYTES`), latency from MACs x cycles-per-MAC (elementwise work is not counted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from codegen.ir.model import Model
from codegen.loaders.tflite_loader import decode_tflite
from codegen.ops.registry import op_problems
from codegen.plan.model_plan import ModelPlan, plan_model

# .text bytes of each kernel source file for Cortex-M4 at -Os (arm-none-eabi-gcc 12.2,
# -mthumb -ffunction-sections), measured 2026-11-27 by `bench/code_size.py`; the gen tests
# compare estimates built from this table with real builds of the reference models.
CODE_TEXT_BYTES = {
    "shoal_nn_conv.c": 2132,
    "shoal_nn_elementwise.c": 686,
    "shoal_nn_fully_connected.c": 594,
    "shoal_nn_layout.c": 286,
    "shoal_nn_lstm.c": 2484,
    "shoal_nn_pool.c": 978,
    "shoal_nn_softmax.c": 632,
}
# Per kernel call in the generated graph function (argument set-up, profiler hook) and the
# fixed part of a generated model (invoke/reset bodies), bytes of .text; same measurement.
STEP_TEXT_BYTES = 110
MODEL_TEXT_BYTES = 0
# MicroPython backend: .mpy bytes (mpy-cross -march=armv7emsp) of the kernel runtime
# (shoal_nn + shoal_nn_viper), of a generated model module without its weights, and per kernel
# call; measured 2026-11-27 on tflm_hello and tiny_kws. Weights are assumed frozen into flash.
MICROPYTHON_RUNTIME_MPY_BYTES = 18250
MICROPYTHON_MODEL_MPY_BYTES = 1100
MICROPYTHON_STEP_MPY_BYTES = 100
# Viper kernels on the MicroPython unix port took ~25x the time of the generated C (-O2) on the
# same x86-64 host (tiny_kws: 14 ms vs 0.57 ms, 2026-11-27; bench/RESULTS.md); the board's
# cycles per MAC are for compiled C.
MICROPYTHON_SLOWDOWN = 25.0
DEFAULT_HEADROOM = 0.10

VERDICT_OK = "deployable"
VERDICT_UNSUPPORTED = "unsupported operators"
VERDICT_TOO_BIG = "does not fit"
VERDICT_NO_BACKEND = "backend not available on this board"


@dataclass(frozen=True)
class OpReport:
    """One operator: whether the backend compiles it (and why not), and its MACs."""

    index: int
    op: str
    version: int
    supported: bool
    problems: tuple[str, ...]
    macs: int


@dataclass(frozen=True)
class Budget:
    """Needed against available bytes; `limit_bytes` is what is left after the headroom."""

    needed_bytes: int
    available_bytes: int
    limit_bytes: int

    @property
    def fits(self) -> bool:
        return self.needed_bytes <= self.limit_bytes


@dataclass(frozen=True)
class DeployReport:
    """The whole answer for one model on one board and backend."""

    model: str
    board: str
    backend: str
    ops: tuple[OpReport, ...]
    arena_bytes: int | None
    liveness_lower_bound_bytes: int | None
    io_bytes: int | None
    weights_bytes: int
    code_bytes_estimate: int | None
    ram: Budget | None
    flash: Budget | None
    total_macs: int
    latency_ms_estimate: float | None
    headroom: float
    verdict: str
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.verdict == VERDICT_OK


def _micropython_problems(model: Model, op_index: int) -> list[str]:
    """Kernels the MicroPython runtime lacks (run only for ops the planner accepts)."""
    from codegen.emit.micropython_model import supports_kernel
    from codegen.ops.registry import plan_op

    kernel = plan_op(model, model.operators[op_index]).kernel
    return [] if supports_kernel(kernel) else [f"no MicroPython kernel for {kernel}"]


# backend name -> extra per-op problems beyond the shared op validation (e.g. kernels a
# backend lacks); "c" compiles every op the planner supports.
BACKEND_OP_PROBLEMS: dict[str, Callable[[Model, int], list[str]]] = {
    "c": lambda _model, _op_index: [],
    "micropython": _micropython_problems,
}


def check_model(
    model_path: Path,
    board: Board,
    *,
    backend: str = "c",
    headroom: float = DEFAULT_HEADROOM,
) -> DeployReport:
    """Check `model_path` against `board` for `backend` ("c" or "micropython")."""
    if backend not in BACKEND_OP_PROBLEMS:
        raise ShoalInputError(
            f"backend '{backend}' is not supported (choose from: {', '.join(BACKEND_OP_PROBLEMS)})"
        )
    if not 0 <= headroom < 1:
        raise ShoalInputError(f"headroom {headroom}: expected a fraction in [0, 1), e.g. 0.1")
    try:
        data = model_path.read_bytes()
    except OSError as exc:
        raise ShoalInputError(f"{model_path}: cannot read model file: {exc.strerror}") from exc
    model = decode_tflite(data, str(model_path))
    reasons: list[str] = []
    backend_problems = BACKEND_OP_PROBLEMS[backend]
    op_reports = []
    for op in model.operators:
        problems = op_problems(model, op) or backend_problems(model, op.index)
        op_reports.append(OpReport(op.index, op.op, op.version, not problems, tuple(problems), 0))
    backend_missing = (backend == "c" and not board.supports_c) or (
        backend == "micropython" and not board.micropython.supported
    )
    if backend == "c" and not board.supports_c:
        reasons.append(f"board {board.name} has no C toolchain (use --backend micropython)")
    if backend == "micropython" and not board.micropython.supported:
        reasons.append(f"board {board.name} does not run MicroPython (use --backend c)")
    unsupported = [r for r in op_reports if not r.supported]
    if unsupported or len(model.inputs) != 1 or len(model.outputs) != 1:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            reasons.append("graph must have exactly one input and one output")
        reasons += [f"operator {r.index} {r.op}: {'; '.join(r.problems)}" for r in unsupported]
        weights = sum(t.byte_size for t in model.tensors if t.data is not None)
        return DeployReport(
            model=str(model_path), board=board.name, backend=backend, ops=tuple(op_reports),
            arena_bytes=None, liveness_lower_bound_bytes=None, io_bytes=None,
            weights_bytes=weights, code_bytes_estimate=None, ram=None, flash=None, total_macs=0,
            latency_ms_estimate=None, headroom=headroom, verdict=VERDICT_UNSUPPORTED,
            reasons=tuple(reasons),
        )  # fmt: skip
    plan = plan_model(model)
    macs_by_op = dict.fromkeys(range(len(model.operators)), 0)
    for step, macs in zip(plan.steps, plan.macs, strict=True):
        macs_by_op[step.plan.op_index] = macs
    op_reports = [
        OpReport(r.index, r.op, r.version, True, (), macs_by_op.get(r.index, 0)) for r in op_reports
    ]
    code = _code_bytes_estimate(plan, backend)
    io_bytes = plan.input.byte_size + plan.output.byte_size
    ram = _budget(plan.arena_bytes + io_bytes, board.memory.app_ram_bytes, headroom)
    flash = _budget(plan.weights_bytes + code, board.memory.app_flash_bytes, headroom)
    if not ram.fits:
        reasons.append(
            f"RAM: needs {ram.needed_bytes} B (arena {plan.arena_bytes} + I/O {io_bytes}), "
            f"{board.name} leaves {ram.available_bytes} B ({ram.limit_bytes} B with "
            f"{headroom:.0%} headroom)"
        )
    if not flash.fits:
        reasons.append(
            f"flash: needs {flash.needed_bytes} B (weights {plan.weights_bytes} + code ~{code}), "
            f"{board.name} leaves {flash.available_bytes} B ({flash.limit_bytes} B with "
            f"{headroom:.0%} headroom)"
        )
    total_macs = sum(plan.macs)
    cycles_per_mac = board.cycles_per_int8_mac
    if backend == "micropython":
        cycles_per_mac *= MICROPYTHON_SLOWDOWN
    latency_ms = total_macs * cycles_per_mac / board.clock_hz * 1000.0
    if backend_missing:
        verdict = VERDICT_NO_BACKEND
    else:
        verdict = VERDICT_OK if not reasons else VERDICT_TOO_BIG
    return DeployReport(
        model=str(model_path), board=board.name, backend=backend, ops=tuple(op_reports),
        arena_bytes=plan.arena_bytes, liveness_lower_bound_bytes=plan.liveness_lower_bound_bytes,
        io_bytes=io_bytes, weights_bytes=plan.weights_bytes, code_bytes_estimate=code, ram=ram,
        flash=flash, total_macs=total_macs, latency_ms_estimate=latency_ms, headroom=headroom,
        verdict=verdict, reasons=tuple(reasons),
    )  # fmt: skip


def _code_bytes_estimate(plan: ModelPlan, backend: str) -> int:
    calls = sum(1 for step in plan.steps if not step.elided)
    if backend == "micropython":
        return (
            MICROPYTHON_RUNTIME_MPY_BYTES
            + MICROPYTHON_MODEL_MPY_BYTES
            + MICROPYTHON_STEP_MPY_BYTES * calls
        )
    kernel_files = {_kernel_file(step.plan.kernel) for step in plan.steps if not step.elided}
    code = MODEL_TEXT_BYTES + STEP_TEXT_BYTES * calls
    return code + sum(CODE_TEXT_BYTES.get(name, 0) for name in kernel_files)


def _budget(needed: int, available: int, headroom: float) -> Budget:
    return Budget(needed, available, int(available * (1.0 - headroom)))


def _kernel_file(kernel: str) -> str:
    # Imported here: the C emitter owns the kernel -> source file map.
    from codegen.emit.c_model import KERNEL_SOURCES

    return KERNEL_SOURCES.get(kernel, kernel)


def format_report(report: DeployReport) -> str:
    """The human-readable report `shoal check` prints."""
    lines = [f"model {report.model} on board {report.board} (backend {report.backend})", ""]
    lines.append(f"{'#':>3}  {'operator':<30} {'MACs':>12}  supported")
    for op in report.ops:
        status = "yes" if op.supported else "NO: " + "; ".join(op.problems)
        lines.append(f"{op.index:>3}  {op.op + ' v' + str(op.version):<30} {op.macs:>12}  {status}")
    lines.append("")
    if report.ram is not None and report.flash is not None:
        lines += [
            f"RAM    {report.ram.needed_bytes:>9} B needed (arena {report.arena_bytes}, "
            f"liveness lower bound {report.liveness_lower_bound_bytes}, I/O {report.io_bytes})"
            f" of {report.ram.limit_bytes} B usable -> {'ok' if report.ram.fits else 'TOO BIG'}",
            f"flash  {report.flash.needed_bytes:>9} B needed (weights {report.weights_bytes}, "
            f"code ~{report.code_bytes_estimate} estimated) of {report.flash.limit_bytes} B "
            f"usable -> {'ok' if report.flash.fits else 'TOO BIG'}",
            f"       usable = what the board leaves the application, less "
            f"{report.headroom:.0%} headroom",
            f"work   {report.total_macs} MACs; latency ~{report.latency_ms_estimate:.2f} ms "
            "(estimate: MACs x cycles per MAC / clock"
            + (
                f" x {MICROPYTHON_SLOWDOWN:g} for MicroPython)"
                if report.backend == "micropython"
                else ")"
            ),
        ]
    lines.append("")
    lines.append(f"verdict: {report.verdict}")
    lines += [f"  - {reason}" for reason in report.reasons]
    return "\n".join(lines)
