"""The C agent generator (codegen.emit.c_agent): the project it writes for `native`, compiled
warning-free with the generated Makefile; stamps, firmware id and manifest; errors that write
nothing. The agent talking to a gateway is tested in tests/host_sdk/agent/test_c_agent_e2e.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from codegen import __version__
from codegen.emit.c_agent import firmware_id_of, generate_c_agent
from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from codegen.loaders.role_loader import load_role_spec

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
OTHER_MODEL = REPO / "tests" / "data" / "shoal_dense_tiny.tflite"


def _spec(tmp_path: Path, **replace: str) -> Path:
    """kws.yaml with an absolute model path, written under tmp_path, with text replacements."""
    text = EXAMPLE.read_text().replace("../../tests/data/shoal_kws_tiny.tflite", str(MODEL))
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "spec" / "kws.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _independent_firmware_id(folder: Path) -> str:
    """The id as agent.json documents it, recomputed here without the generator's helper."""
    digest = hashlib.sha256()
    for name in sorted(json.loads((folder / "agent.json").read_text())["firmware_id_covers"]):
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _make(folder: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc and make are needed to build the generated agent")
    return subprocess.run(["make"], cwd=folder, capture_output=True, text=True, timeout=180)


@pytest.mark.gen
def test_example_generates_compiles_warning_free_with_stamps(tmp_path: Path) -> None:
    role = load_role_spec(EXAMPLE)
    out = tmp_path / "kws"
    written = generate_c_agent(role, get_board("native"), out)
    names = {p.name for p in written}
    assert {"main.c", "Makefile", "agent.json", "shoal_agent_firmware_id.h", "kws.h"} <= names
    assert {"shoal_agent_protocol.c", "shoal_mqttsn_client.c", "shoal_hal_posix.c"} <= names
    assert names == {p.name for p in out.iterdir()}
    assert not list(tmp_path.glob(".shoal-*")), "staging folder left behind"

    spec_sha = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    model_sha = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    for path in written:
        if path.name == "agent.json":
            stamp = json.loads(path.read_text())["stamp"]
        else:
            first = path.read_text().splitlines()[0]
            assert first.startswith("# " if path.name == "Makefile" else "/* "), path.name
            stamp = first
        for fact in (f"Shoal {__version__}", "board native", spec_sha, model_sha, "Do not edit"):
            assert fact in stamp, f"{path.name}: stamp lacks {fact!r}: {stamp}"

    manifest = json.loads((out / "agent.json").read_text())
    assert manifest["firmware_id"] == _independent_firmware_id(out) == firmware_id_of(out)
    assert re.fullmatch(r"[0-9a-f]{16}", manifest["firmware_id"])
    assert "main.c" in manifest["firmware_id_covers"]
    assert manifest["files"] == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in written
        if p.name != "agent.json"
    }
    id_header = (out / "shoal_agent_firmware_id.h").read_text()
    assert f'"{manifest["firmware_id"]}"' in id_header
    first_bytes = ", ".join(f"0x{manifest['firmware_id'][i : i + 2]}u" for i in range(0, 16, 2))
    assert first_bytes in id_header
    assert manifest["models"][0]["hash"] == model_sha[:16]
    assert manifest["board"] == "native" and manifest["role"] == role.role

    built = _make(out)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "-Wall -Wextra -Werror" in built.stdout and "-std=c99" in built.stdout
    assert "warning" not in built.stderr.lower()
    # Arguments are checked before anything is opened: a bad one is one ERROR line, status 2.
    bad = subprocess.run(
        [str(out / "agent"), "--keepalive", "0"], capture_output=True, text=True, timeout=10
    )
    assert bad.returncode == 2 and bad.stdout.startswith("ERROR --keepalive"), bad.stdout
    assert "malloc" not in (out / "main.c").read_text()


@pytest.mark.unit
def test_generation_is_deterministic_and_id_follows_the_sources(tmp_path: Path) -> None:
    board = get_board("native")
    role = load_role_spec(_spec(tmp_path))
    first = generate_c_agent(role, board, tmp_path / "a")
    second = generate_c_agent(role, board, tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    changed = load_role_spec(_spec(tmp_path, **{"heartbeat_s: 10": "heartbeat_s: 3"}))
    generate_c_agent(changed, board, tmp_path / "c")
    ids = [json.loads((tmp_path / d / "agent.json").read_text())["firmware_id"] for d in "abc"]
    assert ids[0] == ids[1] != ids[2]
    assert "AGENT_HEARTBEAT_MS 3000u" in (tmp_path / "c" / "main.c").read_text()
    # Regenerating into a folder this generator wrote replaces it whole.
    (tmp_path / "a" / "agent").write_bytes(b"old build")
    generate_c_agent(changed, board, tmp_path / "a")
    assert not (tmp_path / "a" / "agent").exists()
    assert (tmp_path / "a" / "main.c").read_bytes() == (tmp_path / "c" / "main.c").read_bytes()


@pytest.mark.unit
@pytest.mark.parametrize("board_name", ["micropython-unix", "esp32-devkitc"])
def test_other_boards_are_refused_naming_the_supported_ones(
    tmp_path: Path, board_name: str
) -> None:
    role = load_role_spec(EXAMPLE)
    out = tmp_path / "out"
    with pytest.raises(ShoalInputError) as caught:
        generate_c_agent(role, get_board(board_name), out)
    message = str(caught.value)
    assert f"board '{board_name}'" in message
    assert "supports native, qemu-lm3s6965evb, qemu-mps2-an386" in message
    assert "kws.yaml" in message and "\n" not in message
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.unit
def test_foreign_folder_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ShoalInputError, match=r"mine: exists and is not a folder generated"):
        generate_c_agent(load_role_spec(EXAMPLE), get_board("native"), out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.unit
def test_error_while_generating_models_writes_nothing(tmp_path: Path) -> None:
    role = load_role_spec(_spec(tmp_path))
    # The model file changes after the spec was loaded: generation fails inside the model
    # compiler, after the staging folder was made.
    broken = tmp_path / "spec" / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    role = replace(role, models=(replace(role.models[0], path=broken),))
    out = tmp_path / "new" / "folders" / "out"
    with pytest.raises(ShoalInputError):
        generate_c_agent(role, get_board("native"), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec"], "parents made are removed"


@pytest.mark.gen
def test_two_models_link_into_one_agent(tmp_path: Path) -> None:
    role = load_role_spec(_spec(tmp_path))
    second = replace(role.models[0], name="kws_b")
    role = replace(role, models=(role.models[0], second))
    out = tmp_path / "two"
    generate_c_agent(role, get_board("native"), out)
    manifest = json.loads((out / "agent.json").read_text())
    assert [m["prefix"] for m in manifest["models"]] == ["kws", "kws_b"]
    main = (out / "main.c").read_text()
    assert "#define AGENT_MODEL_COUNT 2u" in main and "kws_b_invoke(" in main
    built = _make(out)
    assert built.returncode == 0, built.stdout + built.stderr


@pytest.mark.unit
def test_too_many_models_refused(tmp_path: Path) -> None:
    role = load_role_spec(EXAMPLE)
    many = tuple(replace(role.models[0], name=f"m{i}") for i in range(5))
    out = tmp_path / "out"
    with pytest.raises(ShoalInputError, match=r"5 models; an agent carries at most 4"):
        generate_c_agent(replace(role, models=many), get_board("native"), out)
    assert not out.exists()


VIBRATION = REPO / "examples" / "roles" / "vibration_anomaly.yaml"
REPLAY = REPO / "tests" / "data" / "roles" / "vibration_replay.csv"


def vibration_on_native(tmp_path: Path) -> Path:
    """The vibration example as a native role: replayed samples, a periodic trigger."""
    text = VIBRATION.read_text()
    for old, new in {
        "../../tests/data/shoal_dense_tiny.tflite": str(OTHER_MODEL),
        "adc: {channel: 3, scale: 0.001, offset: -1.65}": (
            f"simulated: {{generator: replay, file: {REPLAY}}}"
        ),
        "board: nucleo-f446re": "board: native",
        "on_threshold: {source: vibration, above: 1.5, run: [health]}": (
            "periodic: {period_ms: 200, run: [health]}"
        ),
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "spec" / "vibration.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.gen
def test_replay_sensor_json_publish_and_role_without_models_compile(tmp_path: Path) -> None:
    board = get_board("native")
    role = load_role_spec(vibration_on_native(tmp_path))
    out = tmp_path / "vib"
    generate_c_agent(role, board, out)
    main = (out / "main.c").read_text()
    samples = [x for x in REPLAY.read_text().splitlines() if x.strip() and x[0] != "#"]
    assert f"k_replay_0[{len(samples)}]" in main and "    0.35f,\n" in main
    manifest = json.loads((out / "agent.json").read_text())
    # Sensor publishes and duty cycles are not done: both are listed, not silently dropped.
    assert manifest["not_implemented"] == [
        "publish level: from vibration (not a model)",
        "duty_cycle",
    ]
    built = _make(out)
    assert built.returncode == 0, built.stdout + built.stderr
    coordinator = load_role_spec(REPO / "examples" / "roles" / "coordinator.yaml")
    generate_c_agent(coordinator, board, tmp_path / "coord")
    assert "#define AGENT_MODEL_COUNT 0u" in (tmp_path / "coord" / "main.c").read_text()
    built = _make(tmp_path / "coord")
    assert built.returncode == 0, built.stdout + built.stderr


@pytest.mark.unit
def test_sensor_driver_missing_on_the_board_is_refused(tmp_path: Path) -> None:
    role = load_role_spec(VIBRATION)  # adc driver, offered by nucleo-f446re, not by native
    out = tmp_path / "out"
    with pytest.raises(ShoalInputError) as caught:
        generate_c_agent(role, get_board("native"), out)
    assert str(caught.value).endswith(
        "sensors: 'vibration': driver 'adc' does not exist on board 'native' (it offers: simulated)"
    )
    assert not out.exists() and list(tmp_path.iterdir()) == []


KWS_POST = """    postprocess:
      argmax:
        labels: [silence, unknown, "yes", "no"]
      top_k: 2
      threshold: 0.6
"""
SHARED_AD = REPO.parent / "shared" / "models" / "tiny_ad01.tflite"
ANOMALY_SPEC = """version: 1
name: ad
role: anomaly
board: native
client_id: "ad-{{uid}}"
sensors:
  - {{name: spectrum, kind: generic, rate_hz: 20, shape: [128],
     driver: {{simulated: {{generator: sine, amplitude: 0.5, frequency_hz: 2}}}}}}
models:
  - name: ad
    path: {model}
    input: spectrum
    preprocess: {{window: 5, stride: 1}}
    postprocess: {{anomaly: {{threshold: 0.01, metric: {metric}}}}}
triggers: [{{periodic: {{period_ms: 100, run: [ad]}}}}]
publishes:
  - {{name: score, topic: "plant/{{client_id}}/score", from: ad, payload: binary}}
  - {{name: score_json, topic: "plant/{{client_id}}/score.json", from: ad, payload: json}}
commands: [infer, status, profile]
gateway: {{address: "127.0.0.1:10000"}}
"""


@pytest.mark.gen
@pytest.mark.parametrize("target", ["native", "qemu"])
@pytest.mark.parametrize(
    "variant",
    ["json", "top_k_only", "raw_binary", "raw_json", "anomaly_mse", "anomaly_mae"],
)
def test_every_postprocess_and_payload_compiles_warning_free(
    tmp_path: Path, variant: str, target: str
) -> None:
    """Native (gcc) and the bare-metal platform (arm-none-eabi-gcc with the board's flags and
    -Werror): the soft-float Cortex-M3 lm3s6965evb, or mps2-an386 for the shared anomaly model,
    whose 284 KB of weights do not fit the lm3s6965evb's flash (refused: test_c_agent_qemu)."""
    board_name = target
    if target == "qemu":
        board_name = "qemu-mps2-an386" if variant.startswith("anomaly") else "qemu-lm3s6965evb"
    if board_name != "native" and shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is needed to build the QEMU agent")
    if variant.startswith("anomaly"):
        if not SHARED_AD.is_file():
            pytest.skip(f"{SHARED_AD} is absent (the shared models are not checked out here)")
        spec = tmp_path / "spec" / "ad.yaml"
        spec.parent.mkdir()
        metric = variant.removeprefix("anomaly_")
        spec.write_text(ANOMALY_SPEC.format(model=SHARED_AD, metric=metric))
        expected_mode = "anomaly"
    else:
        replacements = {
            "json": {"payload: binary": "payload: json"},
            "top_k_only": {'      argmax:\n        labels: [silence, unknown, "yes", "no"]\n': ""},
            "raw_binary": {KWS_POST: ""},
            "raw_json": {KWS_POST: "", "payload: binary": "payload: json"},
        }[variant]
        spec = _spec(tmp_path, **replacements)
        expected_mode = "ranked" if variant in ("json", "top_k_only") else "raw"
    out = tmp_path / "out"
    generate_c_agent(load_role_spec(spec), get_board(board_name), out)
    assert f": {expected_mode}, payload " in (out / "main.c").read_text()
    built = _make(out)
    assert built.returncode == 0, built.stdout + built.stderr
