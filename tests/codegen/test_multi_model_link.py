"""Two different generated models link into one binary and each stays bit-exact with TFLM.

Pairs: tests/data shoal_kws_tiny + shoal_dense_tiny, and (when ../shared/models is present)
tiny_kws + the stateful tflm_mnist_lstm. `generate_models` writes both into one folder (the
kernel library once); a small main embeds random inputs for both, resets each model once and
invokes them interleaved (A, B, A, B, ...) on separate arenas, printing every output in hex.
Built with host gcc -Wall -Wextra -Werror (every .c compiled once, linked into one executable)
at -O2 (specialised kernels) and -Os (shared kernels), and for the Cortex-M boards with
arm-none-eabi-gcc through build_qemu_firmware, run under QEMU: mps2-an386 (Cortex-M4) at -Os,
-Os with SHOAL_USE_DSP and -O2 with SHOAL_USE_DSP, lm3s6965evb (Cortex-M3) at -Os. Every
printed output byte is compared with TFLM's consecutive invocations (state carried, as on the
device). `nm` checks that each model's objects define only names with its prefix and the
kernel library only `shoal_nn_*`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from codegen.model_compiler import (
    GeneratedModel,
    generate_model,
    generate_models,
    load_model,
    plan_model,
)
from codegen.plan.model_plan import ModelPlan
from host_sdk.build import build_qemu_firmware, have_tool
from host_sdk.hil.qemu import run_qemu_firmware
from host_sdk.verify.model_verify import pack_edges, random_inputs, unpack_edges, verify_model
from host_sdk.verify.tflm_oracle import run_tflm_invocations

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
KWS_TINY = DATA_DIR / "shoal_kws_tiny.tflite"
DENSE_TINY = DATA_DIR / "shoal_dense_tiny.tflite"
INVOCATIONS = 4
SEED = 7
HOST_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
HOST_BUILDS = {"O2-specialised": ("-O2",), "Os-shared": ("-Os",)}
# (board, optimisation, SHOAL_USE_DSP)
QEMU_BUILDS = {
    "m4-Os": ("qemu-mps2-an386", "-Os", False),
    "m4-Os-dsp": ("qemu-mps2-an386", "-Os", True),
    "m4-O2-dsp": ("qemu-mps2-an386", "-O2", True),
    "m3-Os": ("qemu-lm3s6965evb", "-Os", False),
}
RUN_TIMEOUT_S = 60.0
TOOL_TIMEOUT_S = 180.0
_OUT_LINE = re.compile(r"^out ([a-z]) (\d+) ([0-9a-f]*)\r?$", re.MULTILINE)

pytestmark = pytest.mark.gen


@dataclass(frozen=True)
class Pair:
    """Two models generated into one folder, with their inputs and TFLM's outputs."""

    folder: Path
    models: tuple[GeneratedModel, GeneratedModel]
    inputs: tuple[list[bytes], list[bytes]]
    expected: tuple[list[bytes], list[bytes]]


def _expected(model_bytes: bytes, plan: ModelPlan, inputs: list[bytes]) -> list[bytes]:
    """TFLM on consecutive invocations of one interpreter (state carried), packed outputs."""
    arrays = [unpack_edges(plan.inputs, data) for data in inputs]
    results = run_tflm_invocations(model_bytes, arrays)
    return [pack_edges(plan.outputs, plan.output.byte_size, outs) for outs in results]


def _c_array(name: str, rows: list[bytes], width: int) -> str:
    body = ",\n".join("    {" + ", ".join(str(b) for b in row) + "}" for row in rows)
    return f"static const uint8_t {name}[{len(rows)}][{width}] = {{\n{body}\n}};\n"


def _main_source(pair: Pair) -> str:
    """A main that resets both models once, then invokes them interleaved and prints
    `out <a|b> <k> <hex bytes>` per invocation; on QEMU through the board's HAL."""
    a, b = (m.prefix for m in pair.models)
    A, B = a.upper(), b.upper()
    return (
        "#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n"
        f'#include "{a}.h"\n#include "{b}.h"\n'
        '#ifdef TWO_MODELS_ON_QEMU\n#include "shoal_hal.h"\n#endif\n'
        f"#define COUNT {INVOCATIONS}\n"
        + _c_array("in_a", pair.inputs[0], len(pair.inputs[0][0]))
        + _c_array("in_b", pair.inputs[1], len(pair.inputs[1][0]))
        + f"static uint8_t arena_a[{A}_ARENA_BYTES + 16] __attribute__((aligned(16)));\n"
        f"static uint8_t arena_b[{B}_ARENA_BYTES + 16] __attribute__((aligned(16)));\n"
        f"static uint8_t buf_in_a[{A}_INPUT_BYTES] __attribute__((aligned(16)));\n"
        f"static uint8_t buf_in_b[{B}_INPUT_BYTES] __attribute__((aligned(16)));\n"
        f"static uint8_t buf_out_a[{A}_OUTPUT_BYTES] __attribute__((aligned(16)));\n"
        f"static uint8_t buf_out_b[{B}_OUTPUT_BYTES] __attribute__((aligned(16)));\n"
        """
static void print_out(char which, int k, const uint8_t *data, unsigned n)
{
    unsigned i;
    printf("out %c %d ", which, k);
    for (i = 0; i < n; i++) {
        printf("%02x", (unsigned)data[i]);
    }
    printf("\\n");
}

int main(void)
{
    int k;
    int status = 0;
#ifdef TWO_MODELS_ON_QEMU
    shoal_hal_init();
#endif
"""
        + f"    {a}_reset(arena_a);\n    {b}_reset(arena_b);\n"
        + "    for (k = 0; k < COUNT; k++) {\n"
        + f"        memcpy(buf_in_a, in_a[k], {A}_INPUT_BYTES);\n"
        + f"        memcpy(buf_in_b, in_b[k], {B}_INPUT_BYTES);\n"
        + f"        status |= {a}_invoke(buf_in_a, buf_out_a, arena_a);\n"
        + f"        status |= {b}_invoke(buf_in_b, buf_out_b, arena_b);\n"
        + f"        print_out('a', k, buf_out_a, {A}_OUTPUT_BYTES);\n"
        + f"        print_out('b', k, buf_out_b, {B}_OUTPUT_BYTES);\n"
        + "    }\n"
        + '    printf("done %d\\n", status);\n'
        + "#ifdef TWO_MODELS_ON_QEMU\n    shoal_hal_exit(status == 0 ? 0 : 1);\n#endif\n"
        + "    return status == 0 ? 0 : 1;\n}\n"
    )


def _make_pair(model_paths: tuple[Path, Path], folder: Path) -> Pair:
    generated = generate_models(list(model_paths), folder)
    assert len(generated) == 2
    inputs: list[list[bytes]] = []
    expected: list[list[bytes]] = []
    for index, path in enumerate(model_paths):
        plan = plan_model(load_model(path))
        vectors = [v.data for v in random_inputs(plan, INVOCATIONS, SEED + index)]
        inputs.append(vectors)
        expected.append(_expected(path.read_bytes(), plan, vectors))
    pair = Pair(
        folder,
        (generated[0], generated[1]),
        (inputs[0], inputs[1]),
        (expected[0], expected[1]),
    )
    (folder.parent / "two_models_main.c").write_text(_main_source(pair))
    return pair


@pytest.fixture(scope="module", params=["project", "shared"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    if request.param == "project":
        paths = (KWS_TINY, DENSE_TINY)
    else:
        shared: Path = request.getfixturevalue("shared_models_dir")
        paths = (shared / "tiny_kws.tflite", shared / "tflm_mnist_lstm.tflite")
    root = tmp_path_factory.mktemp(f"two_{request.param}")
    return _make_pair(paths, root / "gen")


def _check_output(pair: Pair, text: str) -> None:
    got = {
        (m.group(1), int(m.group(2))): bytes.fromhex(m.group(3)) for m in _OUT_LINE.finditer(text)
    }
    assert len(got) == 2 * INVOCATIONS, f"expected {2 * INVOCATIONS} output lines:\n{text[-2000:]}"
    assert "done 0" in text, text[-2000:]
    for which, expected in zip("ab", pair.expected, strict=True):
        for k, golden in enumerate(expected):
            assert got[(which, k)] == golden, (
                f"model {which} ({pair.models['ab'.index(which)].prefix}) invocation {k}: "
                f"{got[(which, k)].hex()} != TFLM {golden.hex()}"
            )
    # Different inputs give different outputs somewhere: the comparison is not vacuous.
    assert len({bytes(o) for o in pair.expected[0] + pair.expected[1]}) > 2


def _run(cmd: list[str]) -> str:
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stderr}"
    return result.stdout


def _defined_externals(obj: Path) -> set[str]:
    out = _run(["nm", "-g", "--defined-only", str(obj)])
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def _undefined(obj: Path) -> set[str]:
    out = _run(["nm", "-u", str(obj)])
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("build", list(HOST_BUILDS), ids=list(HOST_BUILDS))
def test_two_models_link_into_one_host_binary_and_match_tflm(
    pair: Pair, build: str, tmp_path: Path
) -> None:
    flags = [*HOST_FLAGS, *HOST_BUILDS[build]]
    sources = sorted(pair.folder.glob("*.c"))
    objects = []
    for source in sources:
        obj = tmp_path / (source.stem + ".o")
        _run(["gcc", *flags, "-I", str(pair.folder), "-c", str(source), "-o", str(obj)])
        objects.append(obj)
    main_obj = tmp_path / "main.o"
    main_c = pair.folder.parent / "two_models_main.c"
    _run(["gcc", *flags, "-I", str(pair.folder), "-c", str(main_c), "-o", str(main_obj)])
    exe = tmp_path / "two_models"
    _run(["gcc", "-o", str(exe), str(main_obj), *(str(o) for o in objects)])

    by_name = {o.stem: o for o in objects}
    kernel_objects = [o for o in objects if o.stem.startswith("shoal_nn_")]
    assert kernel_objects
    for obj in kernel_objects:
        names = _defined_externals(obj)
        assert names and all(n.startswith("shoal_nn_") for n in names), (obj.name, names)
    for model in pair.models:
        graph, weights = by_name[model.prefix], by_name[f"{model.prefix}_weights"]
        names = _defined_externals(graph) | _defined_externals(weights)
        assert {f"{model.prefix}_invoke", f"{model.prefix}_reset"} <= names
        assert all(n.startswith(f"{model.prefix}_") for n in names), (model.prefix, names)
        calls = {n for n in _undefined(graph) if n.startswith("shoal_nn_")}
        if build.startswith("Os"):
            assert calls, f"{model.prefix}: the -Os build should call the shared kernels"
        else:
            assert not calls, f"{model.prefix}: the -O2 build should inline its kernels: {calls}"

    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_output(pair, result.stdout)


@pytest.mark.sim
@pytest.mark.skipif(
    not (have_tool("qemu-system-arm") and have_tool("arm-none-eabi-gcc")),
    reason="qemu-system-arm or arm-none-eabi-gcc is not installed "
    "(apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)",
)
@pytest.mark.parametrize("build", list(QEMU_BUILDS), ids=list(QEMU_BUILDS))
def test_two_models_link_into_one_cortex_m_firmware_and_match_tflm(
    pair: Pair, build: str, tmp_path: Path
) -> None:
    board_name, opt, dsp = QEMU_BUILDS[build]
    board = get_board(board_name)
    defines: dict[str, str | int | None] = {"TWO_MODELS_ON_QEMU": None}
    if dsp:
        defines["SHOAL_USE_DSP"] = None
    elf = build_qemu_firmware(
        board,
        [pair.folder.parent / "two_models_main.c", *sorted(pair.folder.glob("*.c"))],
        tmp_path,
        include_dirs=[pair.folder],
        defines=defines,
        opt=opt,
        name="two_models",
    )
    result = run_qemu_firmware(board, elf, timeout_s=RUN_TIMEOUT_S)
    text = result.output.decode(errors="replace")
    assert result.exit_code == 0, f"firmware exited with {result.exit_code}:\n{text[-2000:]}"
    _check_output(pair, text)


def test_kernel_library_is_byte_identical_whichever_model_generated_it(tmp_path: Path) -> None:
    a = generate_model(KWS_TINY, tmp_path / "a")
    b = generate_model(DENSE_TINY, tmp_path / "b")
    shared = {p.name for p in a.files} & {p.name for p in b.files}
    assert {"shoal_nn.h", "shoal_fixedpoint.h", "shoal_nn_fully_connected.c"} <= shared
    for name in shared:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # Generating the second model into the first one's folder adds its files, changes none.
    before = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    generate_model(DENSE_TINY, tmp_path / "a")
    after = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert {n: after[n] for n in before} == before
    assert set(after) - set(before) == {p.name for p in b.files} - shared


def test_generate_models_writes_each_model_and_the_kernel_union_once(tmp_path: Path) -> None:
    kws, dense = generate_models([KWS_TINY, (DENSE_TINY, "dense")], tmp_path / "out")
    assert (kws.prefix, dense.prefix) == ("shoal_kws_tiny", "dense")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted({p.name for p in kws.files} | {p.name for p in dense.files})
    assert "shoal_nn_conv.c" in names and "shoal_nn_elementwise.c" in names
    # Each model's file list is what generate_model would write for it alone.
    alone = generate_model(DENSE_TINY, tmp_path / "alone", prefix="dense")
    assert [p.name for p in dense.files] == [p.name for p in alone.files]
    for path in alone.files:
        assert (tmp_path / "out" / path.name).read_bytes() == path.read_bytes(), path.name


def test_shoal_verify_checks_each_model_of_a_two_model_folder(tmp_path: Path) -> None:
    # `shoal verify --sources DIR --prefix P` builds every generated .c of the folder (both
    # models and the kernel library once) and runs model P against TFLM.
    generate_models([KWS_TINY, DENSE_TINY], tmp_path / "gen")
    for path in (KWS_TINY, DENSE_TINY):
        report = verify_model(
            path,
            inputs=3,
            seed=5,
            sources_dir=tmp_path / "gen",
            prefix=path.stem,
            work_dir=tmp_path / f"work_{path.stem}",
        )
        assert report.prefix == path.stem
        assert report.ok, [t.error for t in report.targets]
        assert report.edited_files == ()


@pytest.mark.parametrize(
    ("prefixes", "message"),
    [
        (("kws", "KWS"), "both write KWS.h (file names compared ignoring case)"),
        (("net", "net_weights"), "both write net_weights.c"),
        (("twin", "twin"), "both write twin.h"),
    ],
)
def test_generate_models_rejects_colliding_prefixes_and_writes_nothing(
    prefixes: tuple[str, str], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ShoalInputError, match=re.escape(message)):
        generate_models([(KWS_TINY, prefixes[0]), (DENSE_TINY, prefixes[1])], out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("prefix", ["shoal_nn", "shoal_nn_conv", "shoal_fixedpoint"])
def test_prefix_in_the_kernel_namespace_is_rejected(prefix: str, tmp_path: Path) -> None:
    with pytest.raises(ShoalInputError, match=f"prefix '{prefix}' would name files or symbols"):
        generate_model(KWS_TINY, tmp_path / "out", prefix=prefix)
    assert not (tmp_path / "out").exists()


def test_model_file_named_like_the_kernel_library_gets_a_safe_prefix(tmp_path: Path) -> None:
    source = tmp_path / "shoal_nn.tflite"
    shutil.copyfile(KWS_TINY, source)
    generated = generate_model(source, tmp_path / "out")
    assert generated.prefix == "m_shoal_nn"
    assert (tmp_path / "out" / "m_shoal_nn.h").is_file()
    assert "kernel library" in (tmp_path / "out" / "shoal_nn.h").read_text().splitlines()[0]
