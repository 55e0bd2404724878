"""The gateway's journal of accepted QoS 1/2 messages: what makes an acknowledgement safe.

Responsible for the bytes on disk and nothing else: appending a record for every QoS 1/2
message the gateway takes from a device (before the device is acknowledged), recording how
far each one got (the broker has a QoS 2 message, the broker finished it, the device released
its QoS 2 message id), making the records durable (`fdatasync`, batched across clients by
`GroupCommit`), and reading it all back after a restart, crash or `kill -9` included, so that
the gateway can replay the unfinished messages to the broker in their original order and keep
deduplicating QoS 2 retransmissions. It must not talk MQTT or MQTT-SN or decide when to
acknowledge (the gateway does).

On disk: a directory of segment files `spool-<first seq, 20 digits>.log`, appended in order.
A record is `u32 body length | u32 CRC-32 of the body | body`, little endian; the body starts
with a kind byte:

    PUB  1  u64 seq, u8 qos, u8 retain, u16 device msg id, u16 len + client id (UTF-8),
            u16 len + topic (UTF-8), payload (the rest)
    REC  2  u64 seq   the broker answered PUBREC (QoS 2): from now on only PUBREL is resent
    DONE 3  u64 seq   the broker answered PUBACK (QoS 1) or PUBCOMP (QoS 2)
    REL  4  u64 seq   the device sent PUBREL (QoS 2): its message id may be reused

A message is finished when DONE and (QoS 1, or REL); a segment whose messages are all
finished is deleted once a newer segment exists. `max_bytes` limits the records of unfinished
messages (a full spool refuses new ones); the files may hold up to one segment more. A torn
record at the end of the newest segment (the process died mid-write) is cut off when the
spool is opened; a bad record anywhere else is corruption and raises `SpoolCorrupt` naming
the file and offset.

Durability: `flush()` hands the buffered records to the kernel (`os.write`): that survives a
crash of the gateway process. `GroupCommit` then runs `fdatasync` on a worker thread, one call
for everything flushed meanwhile, which also survives a power loss; the gateway acknowledges
in "spool" mode only after that callback. Sizes are bytes; sequence numbers start at 1 and
never repeat within one spool directory.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import ShoalInputError

KIND_PUB = 1
KIND_REC = 2
KIND_DONE = 3
KIND_REL = 4

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024
SEGMENT_PREFIX = "spool-"
SEGMENT_SUFFIX = ".log"

_FRAME = struct.Struct("<II")  # body length, CRC-32 of the body
_PUB_HEAD = struct.Struct("<BQBBHH")  # kind, seq, qos, retain, msg id, client id length
_MARK = struct.Struct("<BQ")  # kind, seq
_U16 = struct.Struct("<H")
_MAX_RECORD_BYTES = 1 << 24  # a body longer than this is not one we wrote: corruption


class SpoolFull(Exception):
    """No room for the record within `max_bytes`: the message must not be acknowledged."""


class SpoolCorrupt(ShoalInputError):
    """A record in the middle of the journal fails its length or CRC check."""


@dataclass(slots=True)
class SpooledMessage:
    """One accepted QoS 1/2 message and how far it got. `segment` is the first seq of the
    segment file that holds its PUB record."""

    seq: int
    client_id: str
    msg_id: int
    qos: int
    retain: bool
    topic: str
    payload: bytes
    segment: int
    record_bytes: int = 0  # size of its PUB record on disk (what it costs against max_bytes)
    broker_received: bool = False  # REC: the broker holds it (QoS 2)
    done: bool = False  # DONE: the broker finished it
    device_released: bool = False  # REL: the device sent PUBREL (QoS 2)

    @property
    def finished(self) -> bool:
        return self.done and (self.qos < 2 or self.device_released or not self.client_id)


class Spool:
    """The journal in `directory` (created if missing). Not thread-safe except `fsync`, which
    `GroupCommit` calls from its worker: use everything else from one thread (the loop)."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.torn_bytes_discarded = 0  # cut off the newest segment when it was opened
        self._messages: dict[int, SpooledMessage] = {}
        self._by_device: dict[tuple[str, int], int] = {}  # unreleased QoS 2 -> seq
        self._segment_live: dict[int, int] = {}  # segment first seq -> unfinished messages
        self._segment_size: dict[int, int] = {}
        self._live_bytes = 0  # PUB records of unfinished messages
        self._buffer = bytearray()
        self._fd_lock = threading.Lock()
        self._fd = -1
        self._active = 0
        self._next_seq = 1
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ShoalInputError(
                f"spool directory {directory}: cannot create it ({exc.strerror}); give a "
                "writable directory (gateway state_dir)"
            ) from exc
        self._recover()

    # ---- reading back ------------------------------------------------------------------------

    def _segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"):
            digits = path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]
            if digits.isdigit():
                found.append((int(digits), path))
        return sorted(found)

    def _recover(self) -> None:
        segments = self._segments()
        for index, (first_seq, path) in enumerate(segments):
            newest = index == len(segments) - 1
            self._segment_live.setdefault(first_seq, 0)
            good_bytes = self._read_segment(first_seq, path, newest=newest)
            self._segment_size[first_seq] = good_bytes
        for first_seq in [s for s, live in self._segment_live.items() if live == 0]:
            if segments and first_seq != segments[-1][0]:
                self._delete_segment(first_seq)
        if segments:
            self._active = segments[-1][0]
            # Its PUB records may all be gone: never hand out a seq below its name.
            self._next_seq = max(self._next_seq, self._active)
            self._fd = self._open_segment(self._active)
        else:
            self._start_segment()

    def _read_segment(self, first_seq: int, path: Path, *, newest: bool) -> int:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SpoolCorrupt(f"spool {path}: cannot read ({exc.strerror})") from exc
        offset = 0
        while offset < len(data):
            problem = None
            if offset + _FRAME.size > len(data):
                problem = "truncated record header"
            else:
                length, crc = _FRAME.unpack_from(data, offset)
                end = offset + _FRAME.size + length
                if length == 0 or length > _MAX_RECORD_BYTES or end > len(data):
                    problem = f"record length {length} runs past the end"
                else:
                    body = bytes(data[offset + _FRAME.size : end])
                    if zlib.crc32(body) != crc:
                        problem = "CRC mismatch"
            if problem is not None:
                if not newest:
                    raise SpoolCorrupt(
                        f"spool {path}: offset {offset}: {problem}; the journal is damaged "
                        "(move the directory aside to start an empty spool)"
                    )
                # The process died while writing this record: it was never acknowledged.
                self.torn_bytes_discarded = len(data) - offset
                with open(path, "r+b") as handle:
                    handle.truncate(offset)
                return offset
            self._apply(body, first_seq, path, offset)
            offset = end
        return offset

    def _apply(self, body: bytes, segment: int, path: Path, offset: int) -> None:
        kind = body[0]
        try:
            if kind == KIND_PUB:
                message = _decode_pub(body, segment)
                message.record_bytes = _FRAME.size + len(body)
                self._add(message)
                self._next_seq = max(self._next_seq, message.seq + 1)
                return
            if kind in (KIND_REC, KIND_DONE, KIND_REL):
                _, seq = _MARK.unpack(body)
                self._mark(kind, seq)
                return
        except (struct.error, UnicodeDecodeError, IndexError) as exc:
            raise SpoolCorrupt(f"spool {path}: offset {offset}: bad record ({exc})") from exc
        raise SpoolCorrupt(f"spool {path}: offset {offset}: unknown record kind {kind}")

    # ---- state -------------------------------------------------------------------------------

    def _add(self, message: SpooledMessage) -> None:
        self._messages[message.seq] = message
        self._live_bytes += message.record_bytes
        self._segment_live[message.segment] = self._segment_live.get(message.segment, 0) + 1
        if message.qos == 2 and message.client_id:
            self._by_device[(message.client_id, message.msg_id)] = message.seq

    def _mark(self, kind: int, seq: int) -> SpooledMessage | None:
        message = self._messages.get(seq)
        if message is None:
            return None  # finished already (its segment may be gone)
        if kind == KIND_REC:
            message.broker_received = True
        elif kind == KIND_DONE:
            message.done = True
        else:
            message.device_released = True
            key = (message.client_id, message.msg_id)
            if self._by_device.get(key) == seq:
                del self._by_device[key]
        if message.finished:
            self._finish(message)
        return message

    def _finish(self, message: SpooledMessage) -> None:
        del self._messages[message.seq]
        self._live_bytes -= message.record_bytes
        key = (message.client_id, message.msg_id)
        if self._by_device.get(key) == message.seq:
            del self._by_device[key]
        live = self._segment_live[message.segment] - 1
        self._segment_live[message.segment] = live
        if live == 0 and message.segment != self._active and self._fd >= 0:
            self._delete_segment(message.segment)

    def message(self, seq: int) -> SpooledMessage | None:
        """The unfinished message `seq`, or None."""
        return self._messages.get(seq)

    def unfinished(self) -> Iterator[SpooledMessage]:
        """Unfinished messages in the order they were accepted (seq order)."""
        for seq in sorted(self._messages):
            yield self._messages[seq]

    def unreleased_qos2(self) -> dict[str, list[int]]:
        """Client id -> device message ids of QoS 2 messages accepted and not yet released:
        a retransmission of one of them is a duplicate."""
        found: dict[str, list[int]] = {}
        for client_id, msg_id in self._by_device:
            found.setdefault(client_id, []).append(msg_id)
        return found

    def find_unreleased(self, client_id: str, msg_id: int) -> int | None:
        """The seq of the unreleased QoS 2 message `msg_id` from `client_id`, or None."""
        return self._by_device.get((client_id, msg_id))

    @property
    def live_messages(self) -> int:
        return len(self._messages)

    @property
    def bytes_used(self) -> int:
        """Bytes of the unfinished messages' records: what `max_bytes` limits."""
        return self._live_bytes

    @property
    def disk_bytes(self) -> int:
        """Bytes in segment files plus what is buffered for the next flush (finished records
        stay on disk until their whole segment is finished and a newer one exists)."""
        return sum(self._segment_size.values()) + len(self._buffer)

    # ---- writing -----------------------------------------------------------------------------

    def append(
        self, client_id: str, msg_id: int, qos: int, retain: bool, topic: str, payload: bytes
    ) -> int:
        """Buffer a PUB record; returns its seq. Raises SpoolFull (nothing recorded) when it
        would take the spool past `max_bytes`. `client_id` is "" for the gateway's own
        messages (wills), which have no device to release them."""
        client = client_id.encode()
        topic_bytes = topic.encode()
        seq = self._next_seq
        body = b"".join(
            (
                _PUB_HEAD.pack(KIND_PUB, seq, qos, 1 if retain else 0, msg_id, len(client)),
                client,
                _U16.pack(len(topic_bytes)),
                topic_bytes,
                payload,
            )
        )
        record_bytes = _FRAME.size + len(body)
        if self._live_bytes + record_bytes > self.max_bytes:
            used = f"{self._live_bytes} of {self.max_bytes} B used"
            raise SpoolFull(f"spool {self.directory}: {used}")
        self._next_seq = seq + 1
        self._buffer += _FRAME.pack(len(body), zlib.crc32(body))
        self._buffer += body
        message = SpooledMessage(seq, client_id, msg_id, qos, retain, topic, payload, self._active)
        message.record_bytes = record_bytes
        self._add(message)
        return seq

    def mark_broker_received(self, seq: int) -> None:
        """The broker answered PUBREC for QoS 2 message `seq` (flush before sending PUBREL)."""
        self._write_mark(KIND_REC, seq)

    def mark_done(self, seq: int) -> None:
        """The broker answered PUBACK / PUBCOMP for message `seq`."""
        self._write_mark(KIND_DONE, seq)

    def mark_device_released(self, seq: int) -> None:
        """The device sent PUBREL for QoS 2 message `seq` (flush before sending PUBCOMP)."""
        self._write_mark(KIND_REL, seq)

    def _write_mark(self, kind: int, seq: int) -> None:
        if seq not in self._messages:
            return
        body = _MARK.pack(kind, seq)
        self._buffer += _FRAME.pack(len(body), zlib.crc32(body))
        self._buffer += body
        self._mark(kind, seq)

    def flush(self) -> None:
        """Hand the buffered records to the kernel (survives a crash of this process)."""
        if not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._segment_size[self._active] = self._segment_size.get(self._active, 0) + len(data)
        if self._segment_size[self._active] >= self.segment_bytes:
            self._rotate()

    def fsync(self) -> None:
        """Make everything flushed so far durable (safe from `GroupCommit`'s thread)."""
        with self._fd_lock:
            if self._fd >= 0:
                os.fdatasync(self._fd)

    def close(self) -> None:
        """Flush, sync and close the active segment."""
        self.flush()
        self.fsync()
        with self._fd_lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    # ---- segments ----------------------------------------------------------------------------

    def _path(self, first_seq: int) -> Path:
        return self.directory / f"{SEGMENT_PREFIX}{first_seq:020d}{SEGMENT_SUFFIX}"

    def _open_segment(self, first_seq: int) -> int:
        return os.open(self._path(first_seq), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _start_segment(self) -> None:
        first_seq = self._next_seq
        fd = self._open_segment(first_seq)
        _sync_directory(self.directory)
        with self._fd_lock:
            old, self._fd = self._fd, fd
            if old >= 0:
                os.fdatasync(old)  # records in the old segment stay as durable as promised
                os.close(old)
        previous, self._active = self._active, first_seq
        self._segment_live.setdefault(first_seq, 0)
        self._segment_size.setdefault(first_seq, 0)
        if previous and previous != first_seq and self._segment_live.get(previous) == 0:
            self._delete_segment(previous)

    def _rotate(self) -> None:
        if self._next_seq != self._active:
            self._start_segment()

    def _delete_segment(self, first_seq: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(first_seq).unlink()
        self._segment_live.pop(first_seq, None)
        self._segment_size.pop(first_seq, None)


def _decode_pub(body: bytes, segment: int) -> SpooledMessage:
    _, seq, qos, retain, msg_id, client_len = _PUB_HEAD.unpack_from(body, 0)
    offset = _PUB_HEAD.size
    client_id = body[offset : offset + client_len].decode()
    offset += client_len
    (topic_len,) = _U16.unpack_from(body, offset)
    offset += _U16.size
    if offset + topic_len > len(body) or qos not in (0, 1, 2):
        raise struct.error("PUB record fields run past its end")
    topic = body[offset : offset + topic_len].decode()
    payload = body[offset + topic_len :]
    return SpooledMessage(seq, client_id, msg_id, qos, bool(retain), topic, payload, segment)


def _sync_directory(directory: Path) -> None:
    # A new file is only durable once its directory entry is.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GroupCommit:
    """Runs `spool.fsync()` on a worker thread, one call for all requests that arrived while
    the previous call ran, and reports completion through `deliver(callbacks)`, which the
    owner routes back to its event loop (e.g. `loop.call_soon_threadsafe`).

    Call `request(callback)` after `spool.flush()`: `callback` runs once everything flushed
    before the request is on disk. `stop()` finishes outstanding requests first."""

    def __init__(self, spool: Spool, deliver: Callable[[list[Callable[[], None]]], None]):
        self._spool = spool
        self._deliver = deliver
        self._pending: list[Callable[[], None]] = []
        self._condition = threading.Condition()
        self._stopping = False
        self.syncs = 0  # fdatasync calls made
        self.requests = 0
        self._thread = threading.Thread(target=self._run, name="spool fsync", daemon=True)
        self._thread.start()

    def request(self, callback: Callable[[], None]) -> None:
        with self._condition:
            self._pending.append(callback)
            self.requests += 1
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._stopping:
                    self._condition.wait()
                if not self._pending and self._stopping:
                    return
                batch, self._pending = self._pending, []
            self._spool.fsync()
            self.syncs += 1
            self._deliver(batch)

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify()
        self._thread.join(timeout=10.0)
