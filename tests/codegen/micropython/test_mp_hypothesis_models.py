"""Random models from the project's TFLite writer, compiled to MicroPython and run on the real
MicroPython unix port (viper kernels and bytecode fallback), are bit-exact with TFLM.

Each hypothesis example is a batch of models run in one MicroPython process per backend, to
amortise the interpreter's start-up; a failure names the model that differed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mp_harness import BACKENDS, Job, generate, mpy_cross, pack, run_job, unpack

from codegen.plan.model_plan import ModelPlan
from host_sdk.verify.tflm_oracle import run_tflm_invocations
from tests.codegen.strategies import (
    SINGLE_OPS,
    ModelCase,
    lstm_models,
    multi_op_models,
    single_op_models,
)

pytestmark = [pytest.mark.gen, pytest.mark.slow]

Drawn = tuple[bytes, ModelCase]
BASE_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def _input_sets(plan: ModelPlan, case: ModelCase, seed: int) -> list[bytes]:
    """The drawn sample inputs, then fresh random ones of the same shapes, packed."""
    rng = np.random.default_rng(seed)
    fresh = []
    for x in case.sample_inputs:
        if x.dtype == np.float32:
            fresh.append(rng.normal(0.0, 3.0, size=x.shape).astype(np.float32))
        else:
            fresh.append(rng.integers(-128, 128, size=x.shape, dtype=np.int8))
    return [
        pack(plan.inputs, plan.input.byte_size, list(case.sample_inputs)),
        pack(plan.inputs, plan.input.byte_size, fresh),
    ]


def _fresh_dir(tmp_path: Path) -> Path:
    # tmp_path is shared by every example of one test: each batch gets its own folder.
    return Path(tempfile.mkdtemp(prefix="batch", dir=tmp_path))


def check_batch(models: list[Drawn], seed: int, root: Path, invocations_per_input: int = 1) -> None:
    """Generate every model into one directory, run them all per backend, compare with TFLM.

    With `invocations_per_input` > 1 each input is invoked that many times in a row without
    reset (stateful models carry their state), and so is TFLM.
    """
    job = Job()
    expected: list[tuple[str, bytes]] = []
    for k, (model_bytes, case) in enumerate(models):
        prefix = f"m{k}"
        plan = generate(model_bytes, root, prefix)
        inputs = [
            data for data in _input_sets(plan, case, seed + k) for _ in range(invocations_per_input)
        ]
        job.load(prefix)
        for data in inputs:
            job.invoke(data)
        results = run_tflm_invocations(model_bytes, [unpack(plan.inputs, d) for d in inputs])
        for outputs in results:
            expected.append((str(case), pack(plan.outputs, plan.output.byte_size, outputs)))
    # The template's rarer paths (packed multi-input views, float parameters) appear in these
    # models: they must compile for a small target too.
    for k in range(len(models)):
        mpy_cross(root / f"m{k}.py", "armv6m", root / f"m{k}.mpy")
    for backend in BACKENDS:
        outputs = run_job(root, backend, job, root / f"job_{backend}.txt")
        assert len(outputs) == len(expected)
        for ours, (case_text, theirs) in zip(outputs, expected, strict=True):
            assert ours == theirs, f"{backend}: differs from TFLM on {case_text}"


@settings(BASE_SETTINGS, max_examples=15)
@given(models=st.lists(single_op_models(ops=SINGLE_OPS), min_size=8, max_size=8),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_single_op_models_bit_exact(models: list[Drawn], seed: int, tmp_path: Path) -> None:
    check_batch(models, seed, _fresh_dir(tmp_path))


@settings(BASE_SETTINGS, max_examples=8)
@given(models=st.lists(multi_op_models(), min_size=4, max_size=4), seed=st.integers(0, 2**16))
def test_multi_op_models_bit_exact(models: list[Drawn], seed: int, tmp_path: Path) -> None:
    check_batch(models, seed, _fresh_dir(tmp_path))


@settings(BASE_SETTINGS, max_examples=5)
@given(models=st.lists(lstm_models(), min_size=3, max_size=3), seed=st.integers(0, 2**16))
def test_lstm_models_carry_state_bit_exact(models: list[Drawn], seed: int, tmp_path: Path) -> None:
    check_batch(models, seed, _fresh_dir(tmp_path), invocations_per_input=3)
