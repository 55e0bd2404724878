"""Generated model C runs on the emulated Cortex-M4 board and is bit-exact with TFLM there.

Every model in ../shared/models and tests/data is compiled to C, linked with the model runner
(firmware_templates/c/apps/model_runner) for `qemu-mps2-an386` (arm-none-eabi-gcc, the
board's cflags at -Os, -Wall -Wextra -Werror), run under qemu-system-arm on random inputs
embedded in the firmware, and each printed output is compared byte for byte with TensorFlow
Lite Micro run on the host; at -Os with the portable and the SHOAL_USE_DSP (SMLAD) kernels, and
at -O2 with SMLAD (the specialised kernels). A few models also run on the Cortex-M3 board
`qemu-lm3s6965evb`. The stateful LSTM model runs consecutive invocations without reset
(state carried), then after a reset. Golden outputs come from TFLM alone: tflite-runtime's
reference kernels differ on int8 LSTM.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from codegen.model_compiler import load_model
from host_sdk.build import have_tool
from host_sdk.build.model_firmware import (
    RunnerStep,
    build_model_firmware,
    parse_model_runner_output,
)
from host_sdk.hil.qemu import run_qemu_firmware
from host_sdk.verify.tflm_oracle import run_tflm_invocations

pytestmark = [
    pytest.mark.sim,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (have_tool("qemu-system-arm") and have_tool("arm-none-eabi-gcc")),
        reason="qemu-system-arm or arm-none-eabi-gcc is not installed "
        "(apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)",
    ),
]

BOARD = "qemu-mps2-an386"
PROJECT_DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SHARED_MODELS = (
    "tflm_hello",
    "tflm_micro_speech",
    "tflm_mnist_lstm",
    "tiny_ad01",
    "tiny_ad01_fullint_floatio",
    "tiny_kws",
    "tiny_resnet8",
)
PROJECT_MODELS = ("shoal_dense_tiny", "shoal_kws_tiny")
STATEFUL_MODELS = ("tflm_mnist_lstm",)
RUN_TIMEOUT_S = 60.0
# (optimisation flag, SHOAL_USE_DSP): the board's size build with portable and SMLAD kernels,
# and the speed build (specialised kernels) that the benchmark counts instructions on.
BUILDS = [("-Os", False), ("-Os", True), ("-O2", True)]
BUILD_IDS = ["Os", "Os-dsp", "O2-dsp"]
# The portable kernels on a core without DSP instructions (Cortex-M3, 64 KiB RAM), on models
# that fit it.
CORTEX_M3_BOARD = "qemu-lm3s6965evb"
CORTEX_M3_MODELS = ("tflm_micro_speech", "shoal_kws_tiny", "shoal_dense_tiny")


def random_vectors(model_path: Path, count: int, seed: int) -> tuple[list[bytes], np.dtype, tuple]:
    """`count` input vectors: the first full range, the others narrow around zero (so softmax
    outputs do not all saturate). Returns them with the input's dtype and shape."""
    model = load_model(model_path)
    tensor = model.tensor(model.inputs[0])
    dtype = np.dtype(tensor.dtype)
    size = int(np.prod(tensor.shape))
    rng = np.random.default_rng(seed)
    vectors = []
    for k in range(count):
        wide = k == 0
        values: np.ndarray
        if dtype == np.float32:
            values = rng.normal(0.0, 8.0 if wide else 0.5, size=size).astype(np.float32)
        elif wide:
            values = rng.integers(-128, 128, size=size, dtype=np.int8)
        else:
            values = np.clip(rng.normal(0.0, 12.0, size=size), -128, 127).astype(np.int8)
        vectors.append(values.tobytes())
    return vectors, dtype, tuple(tensor.shape)


def _tflm_outputs(
    model_bytes: bytes, vectors: list[bytes], dtype: np.dtype, shape: tuple
) -> list[bytes]:
    """TFLM's outputs for consecutive invocations on one interpreter (no reset between)."""
    arrays = [[np.frombuffer(v, dtype=dtype).reshape(shape)] for v in vectors]
    return [outs[0].tobytes() for outs in run_tflm_invocations(model_bytes, arrays)]


def _model_path(request: pytest.FixtureRequest, name: str) -> Path:
    if name in PROJECT_MODELS:
        return PROJECT_DATA_DIR / f"{name}.tflite"
    shared: Path = request.getfixturevalue("shared_models_dir")
    return shared / f"{name}.tflite"


def _run(board_name: str, firmware_elf: Path) -> bytes:
    result = run_qemu_firmware(get_board(board_name), firmware_elf, timeout_s=RUN_TIMEOUT_S)
    text = result.output.decode(errors="replace")
    assert result.exit_code == 0, f"firmware exited with {result.exit_code}:\n{text[-2000:]}"
    return result.output


def test_every_model_is_covered(shared_models_dir: Path) -> None:
    on_disk = {p.stem for p in shared_models_dir.glob("*.tflite")}
    on_disk |= {p.stem for p in PROJECT_DATA_DIR.glob("*.tflite")}
    missing = sorted(on_disk - set(SHARED_MODELS) - set(PROJECT_MODELS))
    assert not missing, f"models not run on QEMU by this module: {missing}; add them above"


@pytest.mark.parametrize("build", BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("name", [m for m in SHARED_MODELS if m not in STATEFUL_MODELS])
def test_shared_model_on_qemu_matches_tflm(
    name: str, build: tuple[str, bool], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    _check_stateless_model(_model_path(request, name), BOARD, build, tmp_path)


@pytest.mark.parametrize("build", BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("name", PROJECT_MODELS)
def test_project_model_on_qemu_matches_tflm(
    name: str, build: tuple[str, bool], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    _check_stateless_model(_model_path(request, name), BOARD, build, tmp_path)


@pytest.mark.parametrize("name", CORTEX_M3_MODELS)
def test_model_on_cortex_m3_matches_tflm(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    _check_stateless_model(_model_path(request, name), CORTEX_M3_BOARD, ("-Os", False), tmp_path)


def _check_stateless_model(
    path: Path, board_name: str, build: tuple[str, bool], tmp_path: Path
) -> None:
    opt, use_dsp = build
    model_bytes = path.read_bytes()
    vectors, dtype, shape = random_vectors(path, 3, seed=sum(model_bytes[:64]))
    firmware = build_model_firmware(
        path, get_board(board_name), tmp_path, vectors, opt=opt, use_dsp=use_dsp
    )
    printed = parse_model_runner_output(_run(board_name, firmware.elf))
    expected = _tflm_outputs(model_bytes, vectors, dtype, shape)
    assert printed.completed, "the runner did not print its final 'done' line"
    assert len(printed.outputs) == len(vectors)
    for step, (ours, golden) in enumerate(zip(printed.outputs, expected, strict=True)):
        assert ours == golden, (
            f"{path.name}: step {step} differs from TFLM:\n{ours.hex()}\n{golden.hex()}"
        )
    assert len(set(expected)) > 1, f"{path.name}: outputs do not depend on the input"
    assert all(printed.profile), "no per-layer profile lines were printed"


@pytest.mark.parametrize("build", BUILDS, ids=BUILD_IDS)
def test_lstm_state_on_qemu_matches_tflm_across_invocations_and_reset(
    build: tuple[str, bool], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = _model_path(request, "tflm_mnist_lstm")
    model_bytes = path.read_bytes()
    vectors, dtype, shape = random_vectors(path, 3, seed=7)
    first, second = vectors[1], vectors[2]  # narrow inputs: outputs do not saturate
    steps = [
        RunnerStep(1, reset_before=True),
        RunnerStep(1),
        RunnerStep(2),
        RunnerStep(1, reset_before=True),
    ]
    opt, use_dsp = build
    firmware = build_model_firmware(
        path, get_board(BOARD), tmp_path, vectors, steps=steps, opt=opt, use_dsp=use_dsp
    )
    printed = parse_model_runner_output(_run(BOARD, firmware.elf))
    carried = _tflm_outputs(model_bytes, [first, first, second], dtype, shape)
    after_reset = _tflm_outputs(model_bytes, [first], dtype, shape)
    expected = [*carried, *after_reset]
    # The same input twice must give two outputs, or this test could not see lost state.
    assert carried[0] != carried[1], "TFLM gave the same output twice: pick another input"
    assert list(printed.outputs) == expected, (
        "QEMU outputs (consecutive, then after reset) differ from TFLM:\n"
        + "\n".join(
            f"{a.hex()} vs {b.hex()}" for a, b in zip(printed.outputs, expected, strict=False)
        )
    )


def test_runner_rejects_an_input_vector_of_the_wrong_size(tmp_path: Path) -> None:
    path = PROJECT_DATA_DIR / "shoal_kws_tiny.tflite"
    with pytest.raises(ShoalInputError, match=r"input vector 0 has 3 bytes; .* 490 bytes"):
        build_model_firmware(path, get_board(BOARD), tmp_path, [b"\x00\x01\x02"])


def test_runner_rejects_a_step_naming_a_missing_vector(tmp_path: Path) -> None:
    path = PROJECT_DATA_DIR / "shoal_kws_tiny.tflite"
    with pytest.raises(ShoalInputError, match=r"step 1 uses input vector 5; accepted: 0\.\.0"):
        build_model_firmware(
            path,
            get_board(BOARD),
            tmp_path,
            [bytes(490)],
            steps=[RunnerStep(0, reset_before=True), RunnerStep(5)],
        )


def test_runner_output_parser_reports_a_failed_invoke() -> None:
    text = b"shoal-model-runner board=x steps=2 arena=16\nreset 0\nout 0 0a0b\nerror 1 status=-1\n"
    with pytest.raises(ValueError, match="invoke failed: 'error 1 status=-1'"):
        parse_model_runner_output(text)
    parsed = parse_model_runner_output(
        b"outside words\nout 0 0a0b\r\nprof 0 op=3 ticks=12\ndone steps=1\n"
    )
    assert parsed.outputs == (b"\x0a\x0b",)
    assert parsed.profile == ({3: 12},)
    assert parsed.completed
