"""The golden-output oracles: TFLM and tflite-runtime's reference kernels, in a child process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from codegen.tflite_writer import activation_spec, constant_spec, single_op_model
from host_sdk.verify import tflm_oracle
from host_sdk.verify.tflm_oracle import (
    OracleError,
    reference_runtime_invocations,
    reference_runtime_outputs,
    run_tflm,
    run_tflm_invocations,
    tflm_arena_works,
    tflm_min_arena_bytes,
)
from tests.codegen.strategies import ModelCase, multi_op_models, single_op_models

pytestmark = pytest.mark.gen


@pytest.fixture(scope="module", autouse=True)
def _stop_oracle_after_module() -> Iterator[None]:
    yield
    tflm_oracle.close_oracle()


def _random_inputs(model: bytes, rng: np.random.Generator) -> list[np.ndarray]:
    """Random arrays for every model input, typed and shaped as the model declares."""
    import tflite

    subgraph = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    arrays = []
    for i in range(subgraph.InputsLength()):
        tensor = subgraph.Tensors(subgraph.Inputs(i))
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy())
        if tensor.Type() == tflite.TensorType.FLOAT32:
            arrays.append(rng.uniform(-3, 3, size=shape).astype(np.float32))
        else:
            arrays.append(rng.integers(-128, 128, size=shape).astype(np.int8))
    return arrays


def _uses_lstm(model: bytes) -> bool:
    import tflite

    parsed = tflite.Model.GetRootAsModel(model, 0)
    codes = {parsed.OperatorCodes(i).BuiltinCode() for i in range(parsed.OperatorCodesLength())}
    return tflite.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM in codes


def test_tflm_and_reference_kernels_agree_on_every_shared_model(shared_models_dir: Path) -> None:
    # Except LSTMs: TFLM's int8 LSTM and tflite-runtime's reference one round differently
    # (tflm_mnist_lstm differs on about 1 random input in 10, by up to 14 LSB after softmax),
    # so for them TFLM alone is the golden.
    models = [
        p for p in sorted(shared_models_dir.glob("*.tflite")) if not _uses_lstm(p.read_bytes())
    ]
    assert len(models) >= 5, f"expected the reference models in {shared_models_dir}"
    rng = np.random.default_rng(2026)
    for path in models:
        model = path.read_bytes()
        for _ in range(3):
            inputs = _random_inputs(model, rng)
            tflm = run_tflm(model, inputs)
            reference = reference_runtime_outputs(model, inputs)
            assert len(tflm) == len(reference) >= 1, path.name
            for ours, theirs in zip(tflm, reference, strict=True):
                np.testing.assert_array_equal(ours, theirs, err_msg=path.name)


def test_consecutive_invocations_carry_lstm_state(shared_models_dir: Path) -> None:
    model = (shared_models_dir / "tflm_mnist_lstm.tflite").read_bytes()
    rng = np.random.default_rng(5)
    # A mostly blank image with a few strokes keeps the outputs away from saturation.
    image = np.full((1, 28, 28), -128, dtype=np.int8)
    image[0][:, rng.integers(0, 28, 5)] = rng.integers(-128, 128, (28, 5))
    other = _random_inputs(model, rng)[0]
    sequence = [[image], [image], [other], [image]]
    tflm = run_tflm_invocations(model, sequence)
    assert len(tflm) == 4 and all(o[0].shape == (1, 10) for o in tflm)
    # A shorter run is a prefix of a longer one (nothing but the state carries over).
    prefix = run_tflm_invocations(model, sequence[:3])
    for k in range(3):
        np.testing.assert_array_equal(prefix[k][0], tflm[k][0])
    # tflite-runtime also keeps variable tensors between invocations.
    assert len(reference_runtime_invocations(model, sequence)) == 4
    # The same input gives another output once the state has moved on ...
    assert not np.array_equal(tflm[0][0], tflm[1][0])
    # ... while a fresh interpreter starts from the initial state again.
    np.testing.assert_array_equal(run_tflm(model, [image])[0], tflm[0][0])


def test_min_arena_of_tflm_hello_matches_the_models_readme(shared_models_dir: Path) -> None:
    readme = (shared_models_dir / "README.md").read_text()
    row = re.search(r"^\|\s*tflm_hello\s*\|\s*(\d+)\s*\|", readme, flags=re.MULTILINE)
    assert row, "README.md has no tflm_hello row in the arena table"
    model = (shared_models_dir / "tflm_hello.tflite").read_bytes()
    smallest = tflm_min_arena_bytes(model)
    assert smallest == int(row.group(1)) == 1936
    assert tflm_arena_works(model, smallest)
    assert not tflm_arena_works(model, smallest - 1)


def test_min_arena_is_a_tight_bound_for_a_writer_model() -> None:
    model = single_op_model(
        "AVERAGE_POOL_2D",
        [activation_spec((1, 8, 8, 4), 0.1, 0)],
        [activation_spec((1, 4, 4, 4), 0.1, 0)],
        {"filter": 2, "stride": 2},
    )
    smallest = tflm_min_arena_bytes(model)
    # Input and output (256 + 64 bytes) must fit, plus TFLM's own bookkeeping.
    assert smallest > 256 + 64
    x = np.ones((1, 8, 8, 4), dtype=np.int8)
    run_tflm(model, [x], arena_bytes=smallest)
    with pytest.raises(OracleError):
        run_tflm(model, [x], arena_bytes=smallest - 1)
    # The oracle process restarts after a crash.
    assert run_tflm(model, [x])[0].shape == (1, 4, 4, 4)


def test_a_too_small_arena_is_an_error_not_a_crash_of_the_caller(
    shared_models_dir: Path,
) -> None:
    model = (shared_models_dir / "tflm_hello.tflite").read_bytes()
    with pytest.raises(OracleError, match=r"TFLM on model \(2704 bytes, sha256 505ee4fae7fa46ab"):
        run_tflm(model, [np.zeros((1, 1), dtype=np.int8)], arena_bytes=64)
    assert run_tflm(model, [np.zeros((1, 1), dtype=np.int8)])[0].shape == (1, 1)


def test_a_model_tflm_rejects_gives_its_reason() -> None:
    model = single_op_model(
        "RESHAPE",
        [activation_spec((1, 6), 0.1, 0), constant_spec(np.array([4, 2], dtype=np.int32))],
        [activation_spec((4, 2), 0.1, 0)],
        {"new_shape": (4, 2)},
    )
    with pytest.raises(OracleError) as info:
        run_tflm(model, [np.zeros((1, 6), dtype=np.int8)])
    assert "Node RESHAPE (number 0) failed to prepare" in str(info.value)
    assert "6 != 8" in info.value.log
    with pytest.raises(OracleError, match="tflite-runtime BUILTIN_REF"):
        reference_runtime_outputs(model, [np.zeros((1, 6), dtype=np.int8)])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (b"", "file identifier 'TFL3' missing"),
        (b"\x00" * 64, "file identifier 'TFL3' missing"),
    ],
)
def test_not_a_model_is_an_error(model: bytes, message: str) -> None:
    with pytest.raises(OracleError, match=message):
        run_tflm(model, [])


def test_a_truncated_model_is_an_error(shared_models_dir: Path) -> None:
    model = (shared_models_dir / "tiny_kws.tflite").read_bytes()
    with pytest.raises(OracleError):
        run_tflm(model[: len(model) // 3], [np.zeros((1, 49, 10, 1), dtype=np.int8)])
    assert run_tflm(
        (shared_models_dir / "tflm_hello.tflite").read_bytes(), [np.zeros((1, 1), dtype=np.int8)]
    )


def test_inputs_that_do_not_match_the_model_are_named() -> None:
    model = single_op_model(
        "RELU", [activation_spec((2, 3), 0.1, 0)], [activation_spec((2, 3), 0.1, 0)]
    )
    with pytest.raises(
        OracleError, match=r"input 0: expected dtype int8 and shape \(2, 3\), got float32"
    ):
        run_tflm(model, [np.zeros((2, 3), dtype=np.float32)])
    with pytest.raises(OracleError, match=r"the model has 1 input\(s\) but 2 were given"):
        reference_runtime_outputs(model, [np.zeros((2, 3), np.int8)] * 2)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(single_op_models() | multi_op_models())
def test_oracles_agree_bit_for_bit_on_strategy_models(drawn: tuple[bytes, ModelCase]) -> None:
    model, case = drawn
    inputs = list(case.sample_inputs)
    for ours, theirs in zip(
        run_tflm(model, inputs), reference_runtime_outputs(model, inputs), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs, err_msg=str(case))
