"""The C agent generator for the QEMU boards: the bare-metal project (shoal_hal.h platform,
arm-none-eabi-gcc Makefile producing agent.elf) compiles warning-free with the board's flags,
its static RAM fits the board and the generator's estimate bounds it from above; a role that
does not fit is refused before anything is written. Running it: tests/host_sdk/agent/
test_qemu_agent_e2e.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.emit import c_agent
from codegen.emit.c_agent import firmware_id_of, generate_c_agent
from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from codegen.loaders.role_loader import load_role_spec
from host_sdk.build.qemu_firmware import size_of

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
DENSE = REPO / "tests" / "data" / "shoal_dense_tiny.tflite"
VIBRATION = REPO / "examples" / "roles" / "vibration_anomaly.yaml"
REPLAY = REPO / "tests" / "data" / "roles" / "vibration_replay.csv"
QEMU_BOARDS = ("qemu-lm3s6965evb", "qemu-mps2-an386")


def _write(tmp_path: Path, name: str, text: str, replacements: dict[str, str]) -> Path:
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "spec" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _kws(tmp_path: Path) -> Path:
    return _write(
        tmp_path,
        "kws.yaml",
        EXAMPLE.read_text(),
        {"../../tests/data/shoal_kws_tiny.tflite": str(MODEL)},
    )


def _make(folder: Path) -> subprocess.CompletedProcess[str]:
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-size", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is needed to build the QEMU agent")
    return subprocess.run(["make"], cwd=folder, capture_output=True, text=True, timeout=300)


@pytest.mark.gen
@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_kws_agent_compiles_warning_free_and_fits_the_board(
    tmp_path: Path, board_name: str
) -> None:
    board = get_board(board_name)
    out = tmp_path / "agent"
    generate_c_agent(load_role_spec(_kws(tmp_path)), board, out)
    manifest = json.loads((out / "agent.json").read_text())
    assert manifest["artifact"] == "agent.elf" and manifest["platform"] == "hal"
    assert manifest["build"] == {"tool": "make", "toolchain": "arm-none-eabi-gcc"}
    makefile = (out / "Makefile").read_text()
    assert "CC = arm-none-eabi-gcc" in makefile
    assert " ".join(board.toolchain.cflags) + " -Wall -Wextra -Werror" in makefile
    assert "-T shoal_board.ld" in makefile and "-DSHOAL_HAL_CONSOLE_UART=1" in makefile
    # The bare-metal platform, not the POSIX one; the linker scripts are covered by the id.
    assert (out / "shoal_agent_platform_hal.c").is_file()
    assert not (out / "shoal_agent_platform_posix.c").exists()
    assert not (out / "shoal_hal_posix.c").exists()
    assert {"shoal_board.ld", "shoal_sections.ld"} <= set(manifest["firmware_id_covers"])
    assert firmware_id_of(out) == manifest["firmware_id"]
    main = (out / "main.c").read_text()
    assert "int main(void)" in main and "execv" not in main and "argv[" not in main

    built = _make(out)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "warning" not in (built.stdout + built.stderr).lower()
    sizes = size_of(out / "agent.elf")
    ram = sizes["data"] + sizes["bss"]
    assert ram <= board.memory.app_ram_bytes
    assert sizes["text"] + sizes["data"] <= board.memory.app_flash_bytes
    # The estimate the generator checks against the board is an upper bound, and not a wild one.
    estimate = manifest["static_ram_estimate_bytes"]
    assert ram <= estimate <= 1.5 * ram, (ram, estimate, sizes)
    flash = sizes["text"] + sizes["data"]
    assert flash <= manifest["flash_estimate_bytes"] <= 1.5 * flash, (flash, manifest)


@pytest.mark.gen
def test_json_publish_and_role_without_models_compile_for_qemu(tmp_path: Path) -> None:
    """JSON payloads print floats: the Makefile links newlib-nano's float printf for them."""
    board = get_board("qemu-lm3s6965evb")
    spec = _write(
        tmp_path,
        "vibration.yaml",
        VIBRATION.read_text(),
        {
            "../../tests/data/shoal_dense_tiny.tflite": str(DENSE),
            "adc: {channel: 3, scale: 0.001, offset: -1.65}": (
                f"simulated: {{generator: replay, file: {REPLAY}}}"
            ),
            "on_threshold: {source: vibration, above: 1.5, run: [health]}": (
                "periodic: {period_ms: 200, run: [health]}"
            ),
        },
    )
    generate_c_agent(load_role_spec(spec), board, tmp_path / "vib")
    assert "-u _printf_float" in (tmp_path / "vib" / "Makefile").read_text()
    built = _make(tmp_path / "vib")
    assert built.returncode == 0, built.stdout + built.stderr
    manifest = json.loads((tmp_path / "vib" / "agent.json").read_text())
    sizes = size_of(tmp_path / "vib" / "agent.elf")
    flash = sizes["text"] + sizes["data"]
    assert flash <= manifest["flash_estimate_bytes"] <= 1.5 * flash, (flash, manifest)
    ram = sizes["data"] + sizes["bss"]
    assert ram <= manifest["static_ram_estimate_bytes"] <= 1.5 * ram, (ram, manifest)
    coordinator = load_role_spec(REPO / "examples" / "roles" / "coordinator.yaml")
    generate_c_agent(coordinator, board, tmp_path / "coord")
    assert "-u _printf_float" not in (tmp_path / "coord" / "Makefile").read_text()
    built = _make(tmp_path / "coord")
    assert built.returncode == 0, built.stdout + built.stderr


@pytest.mark.unit
def test_role_over_the_ram_budget_is_refused_before_writing(tmp_path: Path) -> None:
    board = get_board("qemu-lm3s6965evb")
    small = replace(board, memory=replace(board.memory, app_ram_bytes=16_384))
    spec = _kws(tmp_path)
    out = tmp_path / "out" / "agent"
    with pytest.raises(ShoalInputError) as caught:
        generate_c_agent(load_role_spec(spec), small, out)
    message = str(caught.value)
    assert "kws.yaml" in message and "board 'qemu-lm3s6965evb'" in message
    assert "static RAM" in message and "app_ram_bytes 16384" in message
    assert "kws arena 3008" in message and "\n" not in message
    assert not (tmp_path / "out").exists()
    # The same role fits the real board (and native takes the hosted sizes).
    generate_c_agent(load_role_spec(spec), board, out)
    assert json.loads((out / "agent.json").read_text())["static_ram_estimate_bytes"] < 61_440


SHARED_AD = REPO.parent / "shared" / "models" / "tiny_ad01.tflite"


@pytest.mark.unit
def test_role_over_the_flash_budget_is_refused_before_writing(tmp_path: Path) -> None:
    board = get_board("qemu-lm3s6965evb")
    small = replace(board, memory=replace(board.memory, app_flash_bytes=32_768))
    out = tmp_path / "out" / "agent"
    with pytest.raises(ShoalInputError) as caught:
        generate_c_agent(load_role_spec(_kws(tmp_path)), small, out)
    message = str(caught.value)
    assert "board 'qemu-lm3s6965evb'" in message and "bytes of flash" in message
    assert "kws 1016" in message and "app_flash_bytes 32768" in message
    assert "\n" not in message and not (tmp_path / "out").exists()


@pytest.mark.unit
def test_shared_anomaly_model_does_not_fit_the_lm3s6965evb_flash(tmp_path: Path) -> None:
    """tiny_ad01's weights (284256 bytes) exceed the 248 KiB the lm3s6965evb leaves: refused
    at generation, where the linker would only fail at build time."""
    if not SHARED_AD.is_file():
        pytest.skip(f"{SHARED_AD} is absent (the shared models are not checked out here)")
    spec = _write(
        tmp_path,
        "ad.yaml",
        _kws(tmp_path).read_text(),
        {str(MODEL): str(SHARED_AD), "shape: [10]": "shape: [128]", "window: 49": "window: 5"},
    )
    spec.write_text(
        spec.read_text()
        .replace('      argmax:\n        labels: [silence, unknown, "yes", "no"]\n', "")
        .replace("      top_k: 2\n      threshold: 0.6\n", "      anomaly: {threshold: 0.01}\n")
    )
    out = tmp_path / "out" / "agent"
    with pytest.raises(ShoalInputError) as caught:
        generate_c_agent(load_role_spec(spec), get_board("qemu-lm3s6965evb"), out)
    assert "kws 284256" in str(caught.value) and "bytes of flash" in str(caught.value)
    assert not (tmp_path / "out").exists()


_model_facts = st.builds(
    lambda arena, inp, outp, weights, layers: {
        "name": "m",
        "arena_bytes": arena,
        "input_bytes": inp,
        "output_bytes": outp,
        "weights_bytes": weights,
        "layers": [{"index": i} for i in range(layers)],
    },
    st.integers(0, 200_000),
    st.integers(1, 2000),
    st.integers(1, 2000),
    st.integers(0, 500_000),
    st.integers(1, 64),
)


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(models=st.lists(_model_facts, min_size=0, max_size=4), json_payload=st.booleans())
def test_estimates_cover_every_model_buffer_and_message(
    models: list[dict[str, object]], json_payload: bool
) -> None:
    """Bare-metal sizing: messages hold the largest cmd (input + 8) and resp (output + 13),
    the RAM estimate covers every arena, input and output, and the flash estimate every
    weight byte; growing one model's arena or weights grows the estimate by at least that."""
    logic: dict[str, object] = {
        "publishes": [{"json": json_payload}],
        "feeds": [],
        "sensors": [],
        "max_sample_elements": 1,
    }
    sizing = c_agent._sizing(models, logic, posix=False)
    payload = sizing["max_payload"]
    assert payload % 16 == 0 and payload >= (512 if json_payload else 256)
    for m in models:
        assert payload >= int(m["input_bytes"]) + 8
        assert payload >= int(m["output_bytes"]) + 13
    ram = c_agent.static_ram_estimate(models, logic, sizing, posix=False)
    buffers = sum(int(m[k]) for m in models for k in ("arena_bytes", "input_bytes", "output_bytes"))
    assert ram >= buffers + (sizing["outbox_len"] + sizing["cmd_queue_len"]) * payload
    flash = c_agent.flash_estimate(models, logic)
    assert flash >= sum(int(m["weights_bytes"]) for m in models)
    if models:
        bigger = [{**models[0], "arena_bytes": int(models[0]["arena_bytes"]) + 1000}, *models[1:]]
        assert c_agent.static_ram_estimate(bigger, logic, sizing, posix=False) >= ram + 1000
        heavier = [
            {**models[0], "weights_bytes": int(models[0]["weights_bytes"]) + 1000},
            *models[1:],
        ]
        assert c_agent.flash_estimate(heavier, logic) >= flash + 1000
