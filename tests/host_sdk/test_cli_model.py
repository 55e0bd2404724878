"""`shoal check` and `shoal gen-model` through the real console script."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from codegen.tflite_writer import TensorSpec, single_op_model
from tests.host_sdk.test_cli import shoal

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def float_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-op float32 model: Shoal compiles full-integer models only."""
    weights = np.ones((3, 4), dtype=np.float32)
    data = single_op_model(
        "FULLY_CONNECTED",
        [TensorSpec((1, 4), "float32"), TensorSpec((3, 4), "float32", data=weights), None],
        [TensorSpec((1, 3), "float32")],
    )
    path = tmp_path_factory.mktemp("models") / "float_fc.tflite"
    path.write_bytes(data)
    return path


def test_check_deployable_model_json(shared_models_dir: Path) -> None:
    result = shoal(
        "check", str(shared_models_dir / "tiny_kws.tflite"), "--board", "nucleo-f446re", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["verdict"] == "deployable"
    assert [op["op"] for op in report["ops"]].count("CONV_2D") == 5
    assert all(op["supported"] for op in report["ops"])
    assert report["ram"]["needed_bytes"] == report["arena_bytes"] + report["io_bytes"]
    assert (
        report["flash"]["needed_bytes"] == report["weights_bytes"] + report["code_bytes_estimate"]
    )
    assert report["total_macs"] == sum(op["macs"] for op in report["ops"]) > 2_000_000
    expected_ms = report["total_macs"] * 1.5 / 180e6 * 1000
    assert report["latency_ms_estimate"] == pytest.approx(expected_ms)


def test_check_model_larger_than_the_board(shared_models_dir: Path) -> None:
    result = shoal(
        "check", str(shared_models_dir / "tiny_ad01.tflite"), "--board", "qemu-lm3s6965evb"
    )
    assert result.returncode == 2
    assert "verdict: does not fit" in result.stdout
    assert "flash: needs" in result.stdout and "qemu-lm3s6965evb leaves 253952 B" in result.stdout
    assert result.stderr.count("\n") == 1
    assert "is not deployable on qemu-lm3s6965evb: does not fit" in result.stderr


def test_check_headroom_changes_the_verdict(shared_models_dir: Path) -> None:
    model = str(shared_models_dir / "tiny_resnet8.tflite")
    assert shoal("check", model, "--board", "qemu-lm3s6965evb", "--headroom", "0").returncode == 0
    tight = shoal("check", model, "--board", "qemu-lm3s6965evb", "--headroom", "0.5")
    assert tight.returncode == 2 and "RAM: needs" in tight.stdout


def test_check_float_model_lists_the_operator(float_model: Path) -> None:
    result = shoal("check", str(float_model), "--board", "native", "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["verdict"] == "unsupported operators"
    (op,) = report["ops"]
    assert op["op"] == "FULLY_CONNECTED" and not op["supported"]
    assert any("float32" in problem for problem in op["problems"])


@pytest.mark.parametrize("command", ["check", "gen-model"])
def test_truncated_model_is_one_clear_line(
    tmp_path: Path, shared_models_dir: Path, command: str
) -> None:
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes((shared_models_dir / "tflm_hello.tflite").read_bytes()[:1000])
    out = tmp_path / "out"
    args = ["--board", "native"] if command == "check" else ["-o", str(out)]
    result = shoal(command, str(truncated), *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"shoal {command}: error: {truncated}: damaged or truncated")
    assert result.stderr.count("\n") == 1
    assert not out.exists()


def test_check_unknown_board_and_bad_headroom(shared_models_dir: Path) -> None:
    model = str(shared_models_dir / "tflm_hello.tflite")
    assert "unknown board 'nope'" in shoal("check", model, "--board", "nope").stderr
    bad = shoal("check", model, "--board", "native", "--headroom", "1.5")
    assert bad.returncode == 2 and "headroom 1.5: expected a fraction" in bad.stderr


def test_gen_model_writes_the_header_contract(tmp_path: Path, shared_models_dir: Path) -> None:
    out = tmp_path / "gen"
    result = shoal(
        "gen-model",
        str(shared_models_dir / "tflm_hello.tflite"),
        "-o",
        str(out),
        "--prefix",
        "hello",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert written["prefix"] == "hello"
    header = (out / "hello.h").read_text()
    for symbol in (
        "HELLO_ARENA_BYTES",
        "HELLO_INPUT_BYTES",
        "HELLO_OUTPUT_BYTES",
        "hello_invoke",
        "hello_reset",
    ):
        assert symbol in header
    assert {Path(f).name for f in written["files"]} == {p.name for p in out.iterdir()}


def test_gen_model_float_model_writes_nothing(tmp_path: Path, float_model: Path) -> None:
    out = tmp_path / "gen"
    result = shoal("gen-model", str(float_model), "-o", str(out))
    assert result.returncode == 2
    assert "operator 0 FULLY_CONNECTED" in result.stderr and "float model" in result.stderr
    assert not out.exists()


def test_check_micropython_backend(shared_models_dir: Path) -> None:
    from codegen.check import MICROPYTHON_SLOWDOWN

    model = str(shared_models_dir / "tiny_kws.tflite")
    result = shoal("check", model, "--board", "esp32-devkitc", "--backend", "micropython", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] == "micropython" and report["ok"]
    expected_ms = report["total_macs"] * 3.0 * MICROPYTHON_SLOWDOWN / 240e6 * 1000
    assert report["latency_ms_estimate"] == pytest.approx(expected_ms)
    no_mp = shoal("check", model, "--board", "qemu-mps2-an386", "--backend", "micropython")
    assert no_mp.returncode == 2
    assert "verdict: backend not available on this board" in no_mp.stdout
    assert "does not run MicroPython (use --backend c)" in no_mp.stdout


def test_gen_model_micropython(tmp_path: Path, shared_models_dir: Path) -> None:
    out = tmp_path / "mp"
    result = shoal(
        "gen-model",
        str(shared_models_dir / "tflm_hello.tflite"),
        "-o",
        str(out),
        "--backend",
        "micropython",
    )
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {"tflm_hello.py", "shoal_nn.py", "shoal_nn_viper.py"}
    module = (out / "tflm_hello.py").read_text()
    assert "INPUT_BYTES = 1" in module and "def invoke(" in module and "def reset(" in module
