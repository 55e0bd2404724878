"""The MicroPython backend on every reference model is bit-exact with TensorFlow Lite Micro.

Each model in ../shared/models is compiled to a MicroPython module, run on the real
MicroPython unix port with the viper kernels and with the bytecode fallback, and compared
byte for byte with TFLM on random inputs. The LSTM model is invoked several times without
reset (state carried), then reset.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from mp_harness import BACKENDS, Job, generate, pack, random_input, run_job, unpack

from codegen.plan.model_plan import ModelPlan
from host_sdk.micropython import run_micropython
from host_sdk.verify.tflm_oracle import run_tflm_invocations

pytestmark = [pytest.mark.gen, pytest.mark.slow]

MODELS = (
    "tflm_hello",
    "tflm_micro_speech",
    "tiny_ad01",
    "tiny_ad01_fullint_floatio",
    "tflm_mnist_lstm",
    "tiny_kws",
    "tiny_resnet8",
)
INPUTS_PER_MODEL = 4
# The bytecode kernels take ~3 s per tiny_resnet8 inference on this host: two inputs there.
BYTECODE_INPUTS = {"tiny_resnet8": 2}


def _expected(model_bytes: bytes, inputs: list[bytes], plan: ModelPlan) -> list[bytes]:
    """TFLM's outputs for consecutive invocations on one interpreter, packed like ours."""
    results = run_tflm_invocations(model_bytes, [unpack(plan.inputs, data) for data in inputs])
    return [pack(plan.outputs, plan.output.byte_size, outputs) for outputs in results]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", MODELS)
def test_model_is_bit_exact_with_tflm(
    name: str, backend: str, shared_models_dir: Path, tmp_path: Path
) -> None:
    model_bytes = (shared_models_dir / f"{name}.tflite").read_bytes()
    plan = generate(model_bytes, tmp_path, name)
    rng = np.random.default_rng(sum(model_bytes[:64]))
    count = (
        BYTECODE_INPUTS.get(name, INPUTS_PER_MODEL) if backend == "bytecode" else INPUTS_PER_MODEL
    )
    inputs = [random_input(plan, rng, wide=k % 2 == 0) for k in range(count)]
    job = Job()
    job.load(name)
    for data in inputs:
        job.invoke(data)
    outputs = run_job(tmp_path, backend, job, tmp_path / "job.txt")
    expected = _expected(model_bytes, inputs, plan)
    assert len(outputs) == len(expected)
    for k, (ours, theirs) in enumerate(zip(outputs, expected, strict=True)):
        assert ours == theirs, f"{name} ({backend}): input {k} differs from TFLM"
    if count > 1:
        assert len(set(expected)) > 1, f"{name}: outputs do not depend on the input"


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_state_carries_across_invocations_and_reset_clears_it(
    backend: str, shared_models_dir: Path, tmp_path: Path
) -> None:
    model_bytes = (shared_models_dir / "tflm_mnist_lstm.tflite").read_bytes()
    plan = generate(model_bytes, tmp_path, "tflm_mnist_lstm")
    sample = random_input(plan, np.random.default_rng(7), wide=False)
    job = Job()
    job.load("tflm_mnist_lstm")
    for _ in range(4):
        job.invoke(sample)
    job.reset()
    job.invoke(sample)
    outputs = run_job(tmp_path, backend, job, tmp_path / "job.txt")
    expected = _expected(model_bytes, [sample] * 4, plan)
    assert outputs[:4] == expected
    assert len(set(outputs[:4])) > 1, "the same input gave the same output: no state was carried"
    assert outputs[4] == outputs[0], "reset() did not restore the initial state"


def test_bytecode_fallback_is_chosen_when_viper_module_is_absent(
    shared_models_dir: Path, tmp_path: Path
) -> None:
    model_bytes = (shared_models_dir / "tflm_micro_speech.tflite").read_bytes()
    full = tmp_path / "full"
    plan = generate(model_bytes, full, "speech")
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("speech.py", "shoal_nn.py"):
        shutil.copy(full / name, bare / name)
    sample = random_input(plan, np.random.default_rng(3), wide=True)
    script = tmp_path / "probe.py"
    script.write_text(
        "import binascii, shoal_nn, speech\n"
        "print(shoal_nn.BACKEND)\n"
        f"print(binascii.hexlify(speech.invoke(binascii.unhexlify('{sample.hex()}'))).decode())\n"
    )
    result = run_micropython(script, path=[bare])
    assert result.returncode == 0, result.stderr.decode()
    backend, output = result.stdout.decode().split()
    assert backend == "bytecode"
    assert bytes.fromhex(output) == _expected(model_bytes, [sample], plan)[0]


def test_wrong_input_size_is_a_clear_error(shared_models_dir: Path, tmp_path: Path) -> None:
    model_bytes = (shared_models_dir / "tflm_hello.tflite").read_bytes()
    generate(model_bytes, tmp_path, "hello")
    script = tmp_path / "probe.py"
    script.write_text(
        "import hello\n"
        "try:\n"
        "    hello.invoke(bytes(hello.INPUT_BYTES + 2))\n"
        "except ValueError as exc:\n"
        "    print('ValueError', exc)\n"
    )
    result = run_micropython(script, path=[tmp_path])
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == (
        "ValueError hello.invoke: input is 3 bytes; expected 1 (int8, shape [1, 1])"
    )


NO_ALLOCATION_PROBE = """
import sys, micropython, shoal_nn
shoal_nn.set_backend(sys.argv[1])
model = __import__(sys.argv[2])
with open(sys.argv[3], "rb") as f:
    data = f.read()
model.invoke(data)
result = "allocated"  # bound before the lock: a new global may grow the module's dict
micropython.heap_lock()
try:
    model.invoke(data)
    result = "no allocation"
except MemoryError:
    pass
micropython.heap_unlock()
print(result)
"""
# int8-edged models: float edges convert through struct, which allocates by design.
INT8_EDGED = ("tflm_hello", "tflm_micro_speech", "tiny_ad01", "tflm_mnist_lstm", "tiny_kws")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", INT8_EDGED)
def test_invoke_does_not_allocate(
    name: str, backend: str, shared_models_dir: Path, tmp_path: Path
) -> None:
    """With the heap locked, a second invoke runs without allocating on the 64-bit unix port
    (on 32-bit ports the bytecode kernels' int32 products leave the small-int range)."""
    model_bytes = (shared_models_dir / f"{name}.tflite").read_bytes()
    plan = generate(model_bytes, tmp_path, name)
    sample = random_input(plan, np.random.default_rng(11), wide=True)
    script = tmp_path / "probe.py"
    script.write_text(NO_ALLOCATION_PROBE)
    (tmp_path / "input.bin").write_bytes(sample)
    result = run_micropython(
        script, path=[tmp_path], args=[backend, name, str(tmp_path / "input.bin")]
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "no allocation"
