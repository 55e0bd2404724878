"""The committed example models are exactly what tests/data/make_models.py makes, and run."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from host_sdk.verify.tflm_oracle import reference_runtime_outputs, run_tflm
from tests.data.make_models import DATA_DIR, MODELS

pytestmark = pytest.mark.gen

README = DATA_DIR / "README.md"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_regenerating_gives_the_committed_bytes_and_readme_hash(name: str) -> None:
    committed = (DATA_DIR / name).read_bytes()
    regenerated = MODELS[name]()
    assert regenerated == committed, f"{name}: run python tests/data/make_models.py and review"
    row = re.search(
        rf"^\|\s*{re.escape(name)}\s*\|\s*(\d+)\s*\|\s*([0-9a-f]{{64}})\s*\|",
        README.read_text(),
        flags=re.MULTILINE,
    )
    assert row, f"README.md has no row for {name}"
    assert int(row.group(1)) == len(committed)
    assert row.group(2) == hashlib.sha256(committed).hexdigest()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_example_models_run_identically_in_both_oracles(name: str) -> None:
    import tflite

    model = (DATA_DIR / name).read_bytes()
    subgraph = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    tensor = subgraph.Tensors(subgraph.Inputs(0))
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy())
    rng = np.random.default_rng(11)
    for _ in range(4):
        if tensor.Type() == tflite.TensorType.FLOAT32:
            x = rng.normal(0, 1, size=shape).astype(np.float32)
        else:
            x = rng.integers(-128, 128, size=shape).astype(np.int8)
        ours = run_tflm(model, [x])[0]
        np.testing.assert_array_equal(ours, reference_runtime_outputs(model, [x])[0])
        if ours.dtype == np.int8:
            # Calibrated activations: the softmax output is not stuck at one value.
            assert len(np.unique(ours)) > 1
