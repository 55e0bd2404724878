"""Bad models give one clear ShoalInputError and leave nothing half-written.

Covers a truncated file, a file that is not a flatbuffer, a float model (built with the
project's TFLite writer), unsupported ops and dtypes (every offender listed at once), and the
public API's argument checks.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from codegen.errors import ShoalInputError
from codegen.ir.model import Model, NoOptions, Operator, Quantization, Tensor
from codegen.model_compiler import generate_model, load_model, sanitize_prefix
from codegen.ops.registry import check_supported
from codegen.tflite_writer import ModelBuilder, TensorSpec, single_op_model

pytestmark = [pytest.mark.unit]


def _float_fc_model() -> bytes:
    rng = np.random.default_rng(0)
    return single_op_model(
        "FULLY_CONNECTED",
        [
            TensorSpec((1, 4), "float32", name="x"),
            TensorSpec((3, 4), "float32", data=rng.normal(size=(3, 4)).astype(np.float32)),
            TensorSpec((3,), "float32", data=np.zeros(3, np.float32)),
        ],
        [TensorSpec((1, 3), "float32", name="y")],
        {"activation": "NONE"},
    )


def _int16_fc_and_float_fc_model() -> bytes:
    """Two offending operators: an int16 FULLY_CONNECTED and a float32 one."""
    b = ModelBuilder("two bad ops")
    x = b.add_tensor("x", (1, 4), "int16", scale=0.1, zero_point=0)
    w = b.add_tensor("w", (4, 4), "int8", scale=0.1, zero_point=0, data=np.ones((4, 4), np.int8))
    h = b.add_tensor("h", (1, 4), "int16", scale=0.1, zero_point=0)
    wf = b.add_tensor("wf", (2, 4), "float32", data=np.ones((2, 4), np.float32))
    hf = b.add_tensor("hf", (1, 4), "float32")
    y = b.add_tensor("y", (1, 2), "float32")
    b.add_operator("FULLY_CONNECTED", [x, w, -1], [h], {"activation": "NONE"})
    b.add_operator("DEQUANTIZE", [h], [hf], {})
    b.add_operator("FULLY_CONNECTED", [hf, wf, -1], [y], {"activation": "NONE"})
    b.set_io([x], [y])
    return b.build()


def test_truncated_model_is_rejected_and_nothing_written(
    shared_models_dir: Path, tmp_path: Path
) -> None:
    data = (shared_models_dir / "tflm_hello.tflite").read_bytes()
    model = tmp_path / "cut.tflite"
    model.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    with pytest.raises(ShoalInputError, match=r"cut\.tflite.*(damaged|truncated)"):
        generate_model(model, out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.tflite"]


def test_garbage_is_not_a_tflite_model(tmp_path: Path) -> None:
    model = tmp_path / "notes.tflite"
    model.write_bytes(b"hello, this is not a model at all")
    with pytest.raises(ShoalInputError, match=r"notes\.tflite: not a TFLite model.*TFL3"):
        load_model(model)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ShoalInputError, match=r"missing\.tflite: cannot read model file"):
        load_model(tmp_path / "missing.tflite")


def test_float_model_is_rejected_with_a_hint(tmp_path: Path) -> None:
    model = tmp_path / "float_fc.tflite"
    model.write_bytes(_float_fc_model())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(ShoalInputError) as info:
        generate_model(model, out)
    message = str(info.value)
    assert "operator 0 FULLY_CONNECTED v4 (float32)" in message
    assert "float model" in message and "full-integer int8" in message
    assert "supported ops" in message and "SOFTMAX" in message
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_every_offending_operator_is_listed_at_once() -> None:
    with pytest.raises(ShoalInputError) as info:
        load_model(_int16_fc_and_float_fc_model())
    message = str(info.value)
    assert re.search(
        r"operator 0 FULLY_CONNECTED v\d+ \(int16\): input dtype int16 "
        r"\(supported: int8\)",
        message,
    )
    assert "operator 1 DEQUANTIZE" in message
    assert re.search(r"operator 2 FULLY_CONNECTED v\d+ \(float32\)", message)
    assert "3 unsupported operator(s)" in message


def test_unsupported_op_name_is_listed_with_its_version() -> None:
    t = Tensor(0, "x", (1, 4), "int8", Quantization((0.1,), (0,), 0), None, False)
    u = Tensor(1, "y", (1, 4), "int8", Quantization((0.1,), (0,), 0), None, False)
    model = Model(
        tensors=(t, u),
        operators=(Operator(0, "SQRT", 1, (0,), (1,), (), NoOptions()),),
        inputs=(0,),
        outputs=(1,),
        source_sha256="0" * 64,
    )
    with pytest.raises(
        ShoalInputError,
        match=r"(?s)m\.tflite: 1 unsupported.*operator 0 SQRT v1 "
        r"\(int8\): operator not supported",
    ):
        check_supported(model, "m.tflite")


def test_prefix_must_be_a_c_identifier(shared_models_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ShoalInputError, match="prefix '9-lives' is not a C identifier"):
        generate_model(shared_models_dir / "tflm_hello.tflite", tmp_path, prefix="9-lives")
    assert sanitize_prefix("9-lives") == "m_9_lives"
    assert sanitize_prefix("hello world.v2") == "hello_world_v2"
    assert sanitize_prefix("int") == "int_model"


def test_unknown_backend(shared_models_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ShoalInputError, match="backend 'rust' is not supported"):
        generate_model(shared_models_dir / "tflm_hello.tflite", tmp_path / "out", backend="rust")
    assert not (tmp_path / "out").exists()
