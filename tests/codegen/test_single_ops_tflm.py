"""Random single-op and small multi-op models (hypothesis, built with the project's TFLite
writer) compiled to C are bit-exact with TensorFlow Lite Micro, over shapes, strides,
dilations, padding, depth multipliers, per-channel scales, zero points, broadcasting and
fused activations. Several graph inputs are packed into the one input buffer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codegen.ops.registry import supported_ops
from tests.codegen.strategies import SINGLE_OPS, ModelCase, multi_op_models, single_op_models

pytestmark = [pytest.mark.gen, pytest.mark.slow]


def _input_sets(case: ModelCase, seed: int) -> list[list[bytes]]:
    """The drawn sample inputs, then fresh random ones of the same shapes."""
    rng = np.random.default_rng(seed)
    drawn = [np.ascontiguousarray(x).tobytes() for x in case.sample_inputs]
    fresh = []
    for x in case.sample_inputs:
        if x.dtype == np.float32:
            fresh.append(rng.normal(0.0, 3.0, size=x.shape).astype(np.float32).tobytes())
        else:
            fresh.append(rng.integers(-128, 128, size=x.size, dtype=np.int8).tobytes())
    return [drawn, fresh]


def _check(
    drawn: tuple[bytes, ModelCase], seed: int, c_model: Callable, tflm_model: Callable
) -> None:
    model_bytes, case = drawn
    ours = c_model(model_bytes, "drawn")
    oracle = tflm_model(model_bytes)
    for inputs in _input_sets(case, seed):
        assert ours.invoke_many(inputs) == oracle.invoke_many(inputs), str(case)


def test_every_op_the_writer_draws_is_supported() -> None:
    assert set(SINGLE_OPS) <= set(supported_ops())


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drawn=single_op_models(ops=SINGLE_OPS), seed=st.integers(0, 2**16))
def test_single_op_bit_exact(
    drawn: tuple[bytes, ModelCase], seed: int, c_model: Callable, tflm_model: Callable
) -> None:
    _check(drawn, seed, c_model, tflm_model)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drawn=multi_op_models(), seed=st.integers(0, 2**16))
def test_multi_op_bit_exact(
    drawn: tuple[bytes, ModelCase], seed: int, c_model: Callable, tflm_model: Callable
) -> None:
    _check(drawn, seed, c_model, tflm_model)
