"""Public entry points of the model compiler: load, plan, generate.

Responsible for: the API the CLI, `shoal check` and tests call (`load_model`, `plan_model`,
`generate_model`, `generate_models` for several models in one folder / firmware), choosing the
prefix, rejecting prefixes whose files or C names would collide, and writing the output
atomically (everything is rendered into a temporary directory next to `out_dir` and moved into
place only when complete, so an error leaves nothing half-written).

Must not: contain op arithmetic or templates (those live in `ops`, `plan`, `emit`).
"""

from __future__ import annotations

import keyword
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codegen.emit.c_model import emit_c
from codegen.emit.micropython_model import emit_micropython
from codegen.errors import ShoalInputError
from codegen.ir.model import Model
from codegen.loaders.tflite_loader import load_tflite
from codegen.plan.model_plan import ModelPlan
from codegen.plan.model_plan import plan_model as _plan_model

BACKENDS = ("c", "micropython")
C_RESERVED = {
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
}


@dataclass(frozen=True)
class PlanSummary:
    """Budgets of a planned model (bytes, MACs)."""

    arena_bytes: int
    liveness_lower_bound_bytes: int
    weights_bytes: int
    macs_per_op: tuple[int, ...]
    input_bytes: int
    output_bytes: int


@dataclass(frozen=True)
class GeneratedModel:
    """What `generate_model` wrote: the prefix, the files (absolute paths) and the budgets."""

    prefix: str
    backend: str
    out_dir: Path
    files: tuple[Path, ...]
    summary: PlanSummary


def load_model(model: Path | str | bytes) -> Model:
    """Read a `.tflite` file (path) or bytes into the IR, rejecting unsupported models."""
    if isinstance(model, bytes | bytearray):
        return load_tflite(bytes(model), "<bytes>")
    path = Path(model)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ShoalInputError(f"{path}: cannot read model file: {exc.strerror}") from exc
    return load_tflite(data, str(path))


def plan_model(model: Model) -> ModelPlan:
    """Plan a loaded model: kernel calls, arena offsets, liveness lower bound, weight bytes."""
    return _plan_model(model)


def summarize(plan: ModelPlan) -> PlanSummary:
    return PlanSummary(
        arena_bytes=plan.arena_bytes,
        liveness_lower_bound_bytes=plan.liveness_lower_bound_bytes,
        weights_bytes=plan.weights_bytes,
        macs_per_op=plan.macs,
        input_bytes=plan.input.byte_size,
        output_bytes=plan.output.byte_size,
    )


def sanitize_prefix(name: str) -> str:
    """A C identifier from a file stem: invalid characters become '_', never starts with a digit."""
    prefix = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not prefix or prefix[0].isdigit():
        prefix = "m_" + prefix
    if prefix in C_RESERVED or keyword.iskeyword(prefix):
        prefix += "_model"
    if _in_kernel_namespace(prefix):
        prefix = "m_" + prefix
    return prefix


def _in_kernel_namespace(prefix: str) -> bool:
    """True when `prefix` would name files or symbols of the shared kernel library
    (`shoal_nn*`, `shoal_fixedpoint*`)."""
    lowered = prefix.lower()
    return lowered.startswith("shoal_nn") or lowered.startswith("shoal_fixedpoint")


def generate_model(
    model: Path | bytes,
    out_dir: Path,
    *,
    prefix: str | None = None,
    backend: str = "c",
) -> GeneratedModel:
    """Compile `model` into sources under `out_dir` (created if missing).

    The prefix defaults to the model file's stem (``model`` for bytes), sanitised to a C
    identifier. Files are written only when everything rendered; existing files of the same
    names are replaced, other files in `out_dir` are left alone.
    """
    if backend not in BACKENDS:
        raise ShoalInputError(f"backend '{backend}' is not supported (choose from: c, micropython)")
    chosen, files, plan = _render(model, prefix, backend)
    out_dir = Path(out_dir)
    written = _write_atomically(out_dir, files)
    return GeneratedModel(
        prefix=chosen, backend=backend, out_dir=out_dir, files=written, summary=summarize(plan)
    )


def generate_models(
    models: Sequence[Path | bytes | tuple[Path | bytes, str]],
    out_dir: Path,
    *,
    backend: str = "c",
) -> tuple[GeneratedModel, ...]:
    """Compile several models into one folder whose C sources link into one firmware.

    Each entry is a model (prefix from its file stem, as in `generate_model`) or a
    `(model, prefix)` pair. Every model gets its own `P.h`, `P.c`, `P_weights.c`; the kernel
    library files are written once (they are identical for every model) and hold the union of
    the kernels the models call. Compile every `.c` file of the folder once. Raises
    ShoalInputError, writing nothing, when two prefixes are equal ignoring case, or a file name
    or a C name (function, array, macro, header guard) of one model is also one of another's.
    `files` of each result lists that model's files and the kernel files it needs.
    """
    if backend not in BACKENDS:
        raise ShoalInputError(f"backend '{backend}' is not supported (choose from: c, micropython)")
    if not models:
        raise ShoalInputError("generate_models: no models given; pass at least one .tflite")
    rendered: list[tuple[str, dict[str, str], ModelPlan]] = []
    for entry in models:
        model, prefix = entry if isinstance(entry, tuple) else (entry, None)
        rendered.append(_render(model, prefix, backend))
    merged: dict[str, tuple[str, str, str]] = {}  # lower-case name -> (name, text, prefix)
    names: dict[str, str] = {}  # lower-case C name -> prefix
    for chosen, files, _ in rendered:
        for name, text in files.items():
            first = merged.setdefault(name.lower(), (name, text, chosen))
            # Shared runtime files match beyond their stamp (the C ones match entirely).
            if first[1].partition("\n")[2] != text.partition("\n")[2]:
                raise ShoalInputError(
                    f"models '{first[2]}' and '{chosen}' both write {name} (file names "
                    "compared ignoring case) with different content; choose prefixes that do "
                    "not make one model's file name another's"
                )
        for identifier in sorted(_c_names(chosen, files)) if backend == "c" else [chosen]:
            other = names.setdefault(identifier.lower(), chosen)
            if other != chosen:
                raise ShoalInputError(
                    f"models '{other}' and '{chosen}' both define the C name {identifier} "
                    "(prefixes must differ ignoring case, and one model's names must not be "
                    "another's); choose other prefixes"
                )
    out_dir = Path(out_dir)
    written = _write_atomically(out_dir, {name: text for name, text, _ in merged.values()})
    by_name = {path.name: path for path in written}
    return tuple(
        GeneratedModel(
            prefix=chosen,
            backend=backend,
            out_dir=out_dir,
            files=tuple(by_name[name] for name in files),
            summary=summarize(plan),
        )
        for chosen, files, plan in rendered
    )


def _c_names(prefix: str, files: dict[str, str]) -> set[str]:
    """The external C names and macros one model's own files define (all start with its
    prefix, in either case)."""
    pattern = re.compile(rf"\b(?:{re.escape(prefix)}|{re.escape(prefix.upper())})_\w+")
    found: set[str] = set()
    for name in (f"{prefix}.h", f"{prefix}_weights.c"):
        found.update(pattern.findall(files[name]))
    return found


def _render(
    model: Path | bytes, prefix: str | None, backend: str
) -> tuple[str, dict[str, str], ModelPlan]:
    """Validate the prefix, load, plan and render one model: (prefix, name -> text, plan)."""
    if backend not in BACKENDS:
        raise ShoalInputError(f"backend '{backend}' is not supported (choose from: c, micropython)")
    if prefix is not None and sanitize_prefix(prefix) != prefix:
        problem = (
            "would name files or symbols of the shared kernel library (shoal_nn*, "
            "shoal_fixedpoint*)"
            if _in_kernel_namespace(prefix)
            else "is not a C identifier (letters, digits, '_', not starting with a digit)"
        )
        raise ShoalInputError(f"prefix '{prefix}' {problem}, e.g. '{sanitize_prefix(prefix)}'")
    if isinstance(model, bytes | bytearray):
        source_name = "<bytes>"
        default_prefix = "model"
        ir = load_tflite(bytes(model), source_name)
    else:
        source_name = Path(model).name
        default_prefix = sanitize_prefix(Path(model).stem)
        ir = load_model(model)
    chosen = prefix or default_prefix
    plan = plan_model(ir)
    emit = emit_micropython if backend == "micropython" else emit_c
    return chosen, emit(ir, plan, chosen, source_name), plan


def _write_atomically(out_dir: Path, files: dict[str, str]) -> tuple[Path, ...]:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".shoal-gen-", dir=out_dir.parent))
    try:
        for name, text in files.items():
            (staging / name).write_text(text)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in files:
            target = out_dir / name
            (staging / name).replace(target)
            written.append(target.resolve())
        return tuple(written)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
