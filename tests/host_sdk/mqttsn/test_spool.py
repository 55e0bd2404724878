"""The gateway's journal: what is flushed comes back after a reopen (as after `kill -9`), in
order, with its progress marks; torn tails are cut, corruption elsewhere is named; finished
segments are deleted; the size limit refuses instead of dropping."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sdk.mqttsn.spool import GroupCommit, Spool, SpoolCorrupt, SpoolFull

pytestmark = pytest.mark.unit


def summary(spool: Spool) -> list[tuple[object, ...]]:
    return [
        (
            m.seq,
            m.client_id,
            m.msg_id,
            m.qos,
            m.retain,
            m.topic,
            m.payload,
            m.broker_received,
            m.done,
            m.device_released,
        )
        for m in spool.unfinished()
    ]


def test_messages_and_marks_survive_a_reopen_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first = spool.append("dev-1", 7, 2, True, "a/b", b"\x00\x01")
    second = spool.append("dev-2", 8, 1, False, "c", b"x" * 300)
    third = spool.append("", 0, 1, False, "will/dev-3", b"gone")
    spool.mark_broker_received(first)
    spool.mark_done(second)  # QoS 1 done: finished
    spool.flush()
    reopened = Spool(tmp_path)
    assert summary(reopened) == [
        (first, "dev-1", 7, 2, True, "a/b", b"\x00\x01", True, False, False),
        (third, "", 0, 1, False, "will/dev-3", b"gone", False, False, False),
    ]
    assert reopened.unreleased_qos2() == {"dev-1": [7]}
    assert reopened.find_unreleased("dev-1", 7) == first
    # Sequence numbers never repeat after a reopen.
    assert reopened.append("dev-1", 9, 1, False, "a", b"") == third + 1


def test_unflushed_records_are_not_on_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append("dev", 1, 1, False, "t", b"p")
    assert summary(Spool(tmp_path)) == []  # buffered only: never acknowledged either


def test_qos2_needs_broker_done_and_device_release(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    seq = spool.append("dev", 5, 2, False, "t", b"p")
    spool.mark_done(seq)
    assert spool.message(seq) is not None and spool.find_unreleased("dev", 5) == seq
    spool.mark_device_released(seq)
    assert spool.message(seq) is None and spool.find_unreleased("dev", 5) is None
    spool.flush()
    assert summary(Spool(tmp_path)) == []


def test_a_torn_tail_is_cut_and_earlier_records_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept = spool.append("dev", 1, 1, False, "t", b"kept")
    spool.flush()
    spool.append("dev", 2, 1, False, "t", b"torn")
    spool.flush()
    (segment,) = tmp_path.glob("spool-*.log")
    size = segment.stat().st_size
    os.truncate(segment, size - 3)  # the process died mid-write
    reopened = Spool(tmp_path)
    assert [m.seq for m in reopened.unfinished()] == [kept]
    assert reopened.torn_bytes_discarded > 0
    assert segment.stat().st_size < size - 3  # cut back to the last whole record


def test_corruption_in_an_older_segment_is_named(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=64)
    for msg_id in range(1, 6):
        spool.append("dev", msg_id, 1, False, "topic", b"payload-bytes")
        spool.flush()
    segments = sorted(tmp_path.glob("spool-*.log"))
    assert len(segments) >= 2
    data = bytearray(segments[0].read_bytes())
    data[12] ^= 0xFF
    segments[0].write_bytes(bytes(data))
    with pytest.raises(SpoolCorrupt, match=rf"{segments[0].name}: offset 0: CRC mismatch"):
        Spool(tmp_path)


def test_finished_segments_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=100)
    seqs = []
    for msg_id in range(1, 11):
        seqs.append(spool.append("dev", msg_id, 1, False, "topic", b"p" * 40))
        spool.flush()
    assert len(list(tmp_path.glob("spool-*.log"))) > 3
    for seq in seqs:
        spool.mark_done(seq)
    spool.flush()
    assert len(list(tmp_path.glob("spool-*.log"))) == 1  # only the active one
    assert spool.live_messages == 0 and spool.bytes_used == 0 and spool.disk_bytes < 200


def test_full_spool_refuses_without_recording(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=200)
    spool.append("dev", 1, 1, False, "t", b"x" * 100)
    with pytest.raises(SpoolFull, match="B used"):
        spool.append("dev", 2, 1, False, "t", b"x" * 100)
    assert spool.live_messages == 1
    spool.flush()
    assert len(summary(Spool(tmp_path))) == 1
    spool.mark_done(1)  # the broker took it: room again, though still in the same file
    spool.append("dev", 2, 1, False, "t", b"x" * 100)
    spool.flush()
    assert [m.msg_id for m in Spool(tmp_path).unfinished()] == [2]


def test_group_commit_batches_and_calls_back_after_sync(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    done: list[int] = []
    finished = threading.Event()

    def deliver(callbacks: list) -> None:  # type: ignore[type-arg]
        for callback in callbacks:
            callback()
        if len(done) == 50:
            finished.set()

    commit = GroupCommit(spool, deliver)
    try:
        for index in range(50):
            spool.append("dev", index + 1, 1, False, "t", b"p")
            spool.flush()
            commit.request(lambda index=index: done.append(index))
        assert finished.wait(10.0)
    finally:
        commit.stop()
    assert sorted(done) == list(range(50))
    assert 1 <= commit.syncs <= 50 and commit.requests == 50


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(Exception, match=r"spool directory .*cannot create it"):
        Spool(blocker / "spool")


# ---- property: a model of the journal ---------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.sampled_from(["a", "b", ""]),
            st.integers(1, 4),
            st.sampled_from([1, 2]),
            st.binary(max_size=40),
        ),
        st.tuples(st.sampled_from(["rec", "done", "rel"]), st.integers(0, 30)),
        st.just(("flush",)),
        st.just(("reopen",)),
        st.tuples(st.just("crash"), st.integers(1, 30)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=operations, segment_bytes=st.sampled_from([64, 256, 1 << 20]))
def test_reopened_spool_matches_a_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple], segment_bytes: int
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory, segment_bytes=segment_bytes)
    durable: dict[int, list] = {}  # what the disk holds (flushed)
    model: dict[int, list] = {}  # what the spool holds in memory
    pending: list[tuple] = []  # buffered operations, applied to `durable` at flush

    def finished(entry: list) -> bool:
        client_id, qos, done, released = entry[0], entry[2], entry[5], entry[6]
        return done and (qos < 2 or released or not client_id)

    def apply(state: dict[int, list], op: tuple) -> None:
        if op[0] == "pub":
            state[op[1]] = list(op[2])
            return
        entry = state.get(op[1])
        if entry is None:
            return
        entry[{"rec": 4, "done": 5, "rel": 6}[op[0]]] = True
        if finished(entry):
            del state[op[1]]

    for op in ops:
        if op[0] == "append":
            _, client, msg_id, qos, payload = op
            seq = spool.append(client, msg_id, qos, False, "t", payload)
            record = ("pub", seq, (client, msg_id, qos, payload, False, False, False))
            apply(model, record)
            pending.append(record)
        elif op[0] in ("rec", "done", "rel"):
            seqs = sorted(model)
            if not seqs:
                continue
            seq = seqs[op[1] % len(seqs)]
            {
                "rec": spool.mark_broker_received,
                "done": spool.mark_done,
                "rel": spool.mark_device_released,
            }[op[0]](seq)
            apply(model, (op[0], seq))
            pending.append((op[0], seq))
        elif op[0] == "flush":
            spool.flush()
            for record in pending:
                apply(durable, record)
            pending = []
        else:
            # "reopen": a clean restart after a flush; "crash": kill -9 (buffer lost) and,
            # sometimes, a torn last write of some bytes.
            if op[0] == "reopen":
                spool.flush()
                for record in pending:
                    apply(durable, record)
            pending = []
            if op[0] == "crash":
                newest = max(directory.glob("spool-*.log"))
                with open(newest, "ab") as handle:
                    handle.write(b"\xff" * op[1])  # a record the process never finished
            spool = Spool(directory, segment_bytes=segment_bytes)
            model = {seq: list(entry) for seq, entry in durable.items()}
        got = {
            m.seq: [
                m.client_id,
                m.msg_id,
                m.qos,
                m.payload,
                m.broker_received,
                m.done,
                m.device_released,
            ]
            for m in spool.unfinished()
        }
        want = {seq: [e[0], e[1], e[2], e[3], e[4], e[5], e[6]] for seq, e in model.items()}
        assert got == want
