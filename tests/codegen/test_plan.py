"""The static memory plan: no two simultaneously live buffers share bytes, everything fits.

`plan_arena` is checked on random lifetimes (hypothesis); whole-model plans of the reference
models are checked tensor by tensor against lifetimes recomputed here from the plan's steps,
and the liveness lower bound against the values measured independently in
../shared/models/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen.model_compiler import load_model, plan_model
from codegen.plan.arena import ARENA_ALIGNMENT, BufferRequest, plan_arena
from codegen.plan.model_plan import ARENA

pytestmark = [pytest.mark.unit]

# From ../shared/models/README.md (measured by others: plain sequential execution).
README_LOWER_BOUNDS = {
    "tflm_hello": 32,
    "tflm_micro_speech": 5960,
    "tflm_mnist_lstm": 1404,
    "tiny_ad01": 768,
    "tiny_kws": 16000,
    "tiny_resnet8": 49152,
}
TFLM_MIN_ARENA = {
    "tflm_hello": 1936,
    "tflm_micro_speech": 7584,
    "tflm_mnist_lstm": 4208,
    "tiny_ad01": 4640,
    "tiny_kws": 24272,
    "tiny_resnet8": 55984,
}


@st.composite
def buffer_requests(draw: st.DrawFn) -> list[BufferRequest]:
    count = draw(st.integers(0, 25))
    requests = []
    for key in range(count):
        first = draw(st.integers(0, 12))
        requests.append(
            BufferRequest(
                key=key,
                byte_size=draw(st.integers(0, 5000)),
                first_op=first,
                last_op=first + draw(st.integers(0, 6)),
            )
        )
    return requests


@given(buffer_requests())
def test_arena_plan_never_overlaps_live_buffers(requests: list[BufferRequest]) -> None:
    plan = plan_arena(requests)
    offsets = dict(plan.offsets)
    assert set(offsets) == {r.key for r in requests}
    assert plan.arena_bytes % ARENA_ALIGNMENT == 0
    for r in requests:
        assert offsets[r.key] % ARENA_ALIGNMENT == 0
        assert offsets[r.key] + r.byte_size <= plan.arena_bytes
    for i, a in enumerate(requests):
        for b in requests[i + 1 :]:
            if a.byte_size and b.byte_size and a.overlaps(b):
                a_range = range(offsets[a.key], offsets[a.key] + a.byte_size)
                b_range = range(offsets[b.key], offsets[b.key] + b.byte_size)
                assert a_range.stop <= b_range.start or b_range.stop <= a_range.start


@given(buffer_requests())
def test_arena_is_at_least_the_peak_of_live_bytes(requests: list[BufferRequest]) -> None:
    plan = plan_arena(requests)
    steps = {k for r in requests for k in range(r.first_op, r.last_op + 1)}
    for k in steps:
        live = sum(r.byte_size for r in requests if r.first_op <= k <= r.last_op)
        assert plan.arena_bytes >= live


@pytest.mark.parametrize("name", sorted(README_LOWER_BOUNDS))
def test_model_plan_is_safe_and_small(name: str, shared_models_dir: Path) -> None:
    model = load_model(shared_models_dir / f"{name}.tflite")
    plan = plan_model(model)
    assert plan.liveness_lower_bound_bytes == README_LOWER_BOUNDS[name]
    assert plan.arena_bytes <= plan.liveness_lower_bound_bytes
    assert plan.arena_bytes <= TFLM_MIN_ARENA[name]

    locations = dict(plan.locations)
    n = len(plan.steps)
    # Lifetimes recomputed from the steps: written at `first`, read up to `last`.
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    same_memory: list[tuple[int, int]] = []
    for k, step in enumerate(plan.steps):
        p = step.plan
        for t in (*p.inputs, *p.states):
            last[t] = k
            first.setdefault(t, k)
        for t in p.outputs:
            first.setdefault(t, k)
            last.setdefault(t, k)
        if step.elided or (p.in_place and p.outputs[0] in locations):
            for t in p.inputs:
                if locations.get(t) == locations.get(p.outputs[0]):
                    same_memory.append((t, p.outputs[0]))
                    assert last[t] == k, f"{name}: op {k} overwrote tensor {t} still needed"
    for t in plan.variables:
        first[t.tensor], last[t.tensor] = 0, n - 1
    arena_tensors = [t for t, loc in locations.items() if loc.kind == ARENA]

    def shares(a: int, b: int) -> bool:
        groups = {a}
        changed = True
        while changed:
            changed = False
            for x, y in same_memory:
                if (x in groups) != (y in groups):
                    groups |= {x, y}
                    changed = True
        return b in groups

    for t in arena_tensors:
        size = model.tensors[t].byte_size
        assert locations[t].offset % ARENA_ALIGNMENT == 0
        assert locations[t].offset + size <= plan.arena_bytes
    for i, a in enumerate(arena_tensors):
        for b in arena_tensors[i + 1 :]:
            if a not in first or b not in first:
                continue
            if first[a] <= last[b] and first[b] <= last[a] and not shares(a, b):
                a0, b0 = locations[a].offset, locations[b].offset
                a1 = a0 + model.tensors[a].byte_size
                b1 = b0 + model.tensors[b].byte_size
                assert a1 <= b0 or b1 <= a0, f"{name}: tensors {a} and {b} overlap while live"
    for k, step in enumerate(plan.steps):
        if step.scratch_offset is None:
            continue
        s0, s1 = step.scratch_offset, step.scratch_offset + step.plan.scratch_bytes
        assert s1 <= plan.arena_bytes
        for t in arena_tensors:
            if t in first and first[t] <= k <= last[t]:
                t0 = locations[t].offset
                t1 = t0 + model.tensors[t].byte_size
                assert t1 <= s0 or s1 <= t0, f"{name}: op {k} scratch overlaps tensor {t}"
