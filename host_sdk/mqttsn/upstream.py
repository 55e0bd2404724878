"""The gateway's way to the broker for device messages: durable before acknowledged.

Responsible for every message the gateway publishes upstream (device PUBLISHes, wills,
statistics): QoS 0 goes straight to the broker (dropped while it is away, as MQTT allows);
QoS 1/2 goes into the `Spool` first, then to the broker in acceptance order over an
`MqttPublisher` whose packet ids come from the spool's sequence numbers, and is resent after
every reconnect (PUBLISH with DUP for what the broker has not taken, PUBREL for QoS 2 it
has), so a restart of the gateway or of the broker neither loses nor (for QoS 2) duplicates a
message. It tells the gateway when a device's message is safe to acknowledge:

- ack mode "spool" (the default): once its record is on disk (fdatasync, batched across
  clients by `GroupCommit`). Survives `kill -9` and power loss of the gateway, and a broker
  that is away: the spool holds the messages until the broker takes them.
- ack mode "broker": once the broker finished it (PUBACK for QoS 1, PUBCOMP for QoS 2: by
  then mosquitto has handed it to its connected subscribers; it releases QoS 2 on PUBREL).
  The journal is still written (without waiting for fdatasync) so that QoS 2 stays
  exactly-once across a gateway crash.

What neither mode can cover: a broker that acknowledged a message and then crashes before
saving it. mosquitto saves its persistence file periodically, not before acknowledging, so a
QoS 2 message it PUBREC'd (and will deliver on PUBREL) can vanish with a `kill -9` of the
broker; the gateway, told PUBREC, must by MQTT 3.1.1 §4.3.3 resend only PUBREL.

It must not speak MQTT-SN or decide anything per device (the session layer does) and holds no
message that is not in the spool.

Packet ids: a message with sequence number `seq` always uses packet id `(seq - 1) % 65535 + 1`,
so the id survives a restart without being stored. In flight: at most `MAX_WINDOW` messages
unacknowledged by the broker, of which at most `max_inflight` - 1 QoS 2 exchanges (PUBLISH sent,
PUBCOMP not yet received; default `DEFAULT_MAX_INFLIGHT` = 20). MQTT 3.1.1 has no way to learn
the broker's limit, and exceeding it is silent: mosquitto gives each client a receive quota of
`max_inflight_messages` (default 20), held by a QoS 2 message from its PUBLISH until its PUBREL
(a QoS 1 message returns it at once); a QoS 1/2 PUBLISH arriving with the quota used up is
answered with a normal-looking PUBACK/PUBREC and discarded (measured here, mosquitto 2.0.11).
Messages go out strictly in acceptance order, so a QoS 2 message waiting for quota holds back
the ones after it. Flow control: a new batch is written only while the publisher's transport
holds less than `MAX_WRITE_BUFFER_BYTES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

from codegen.errors import ShoalInputError
from host_sdk.mqttsn.mqtt_bridge import BrokerSettings
from host_sdk.mqttsn.mqtt_publisher import MqttPublisher
from host_sdk.mqttsn.spool import GroupCommit, Spool, SpooledMessage, SpoolFull

ACK_SPOOL = "spool"
ACK_BROKER = "broker"
ACK_MODES = (ACK_SPOOL, ACK_BROKER)
DEFAULT_MAX_INFLIGHT = 20
MAX_WINDOW = 1000
MAX_WRITE_BUFFER_BYTES = 1 << 20
PUBLISHER_CLIENT_SUFFIX = "-up"

_log = logging.getLogger(__name__)

SafeCallback = Callable[[str, int], None]
"""Called on the loop with (client id, device msg id) when a device's message is safe."""


def packet_id_of(seq: int) -> int:
    """The MQTT packet id of spool sequence number `seq` (1..65535)."""
    return (seq - 1) % 0xFFFF + 1


class StateDirLock:
    """An exclusive lock on a gateway state directory: two gateways must never append to one
    spool. Released by the kernel when the process dies, so `kill -9` leaves no stale lock."""

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ShoalInputError(
                f"gateway state_dir {directory}: cannot use it ({exc.strerror}); give a "
                "writable directory"
            ) from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise ShoalInputError(
                f"gateway state_dir {directory}: another gateway is using it; give each "
                "gateway its own state_dir"
            ) from None

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


class Upstream:
    """Spool + publisher. Call order: `start()` on the loop, `publish`/`device_released`
    from the loop, `await stop()`."""

    def __init__(
        self,
        settings: BrokerSettings,
        loop: asyncio.AbstractEventLoop,
        spool_dir: Path,
        *,
        ack_mode: str,
        on_safe: SafeCallback,
        spool_max_bytes: int,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
    ) -> None:
        if ack_mode not in ACK_MODES:
            raise ShoalInputError(
                f"ack mode {ack_mode!r} is not supported (accepted: {', '.join(ACK_MODES)})"
            )
        self.ack_mode = ack_mode
        self.max_inflight = max_inflight
        self._loop = loop
        self._on_safe = on_safe
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self.publisher = MqttPublisher(
            settings,
            loop,
            client_id=settings.client_id + PUBLISHER_CLIENT_SUFFIX,
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
            on_puback=self._on_finished,
            on_pubrec=self._on_pubrec,
            on_pubcomp=self._on_finished,
        )
        self._commit: GroupCommit | None = None
        self._queue: deque[int] = deque()  # seqs to (re)send on this connection, in order
        self._inflight: dict[int, tuple[int, int]] = {}  # packet id -> (seq, qos)
        self._inflight_qos2 = 0  # of which QoS 2 exchanges
        self._awaiting_sync: list[tuple[str, int]] = []  # device messages this batch
        self._batch_scheduled = False
        self._resend_below = 0  # seqs up to this one may have been sent before: DUP on resend
        self.recovered = 0  # unfinished messages found in the spool at start
        self.refused = 0  # QoS 1/2 messages not taken: spool full
        self.dropped_qos0 = 0  # QoS 0 while the broker was away
        self.unpublishable = 0  # QoS 1/2 messages MQTT cannot carry (bad topic), dropped

    # ---- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the fsync worker and the broker connection; unfinished messages found in
        the spool are sent once the broker accepts the connection."""
        if self.ack_mode == ACK_SPOOL:
            self._commit = GroupCommit(self.spool, self._deliver_synced)
        self.recovered = self.spool.live_messages
        self.publisher.start()

    async def wait_connected(self, timeout_s: float) -> None:
        await self.publisher.wait_connected(timeout_s)

    async def stop(self) -> None:
        """Close the broker connection, then flush, sync and close the spool (unfinished
        messages stay in it for the next start)."""
        await self.publisher.stop()
        self.spool.flush()
        if self._commit is not None:
            self._commit.stop()
            self._commit = None
        self.spool.close()

    # ---- from the gateway -----------------------------------------------------------------------

    def publish(
        self, client_id: str, msg_id: int, topic: str, payload: bytes, qos: int, retain: bool
    ) -> bool:
        """Take one message. QoS <= 0: sent now if the broker is there. QoS 1/2: spooled;
        `on_safe(client_id, msg_id)` follows when it is safe (only for device messages, i.e.
        a non-empty `client_id`). False: not taken (spool full): do not acknowledge it."""
        if qos <= 0:
            try:
                if not self.publisher.publish(topic, payload, 0, retain):
                    self.dropped_qos0 += 1
            except ValueError as exc:
                _log.error("QoS 0 message to %r cannot be published: %s", topic, exc)
                self.unpublishable += 1
            return True
        try:
            seq = self.spool.append(client_id, msg_id, qos, retain, topic, payload)
        except SpoolFull:
            self.refused += 1
            return False
        self._queue.append(seq)
        if client_id and self.ack_mode == ACK_SPOOL:
            self._awaiting_sync.append((client_id, msg_id))
        self._schedule_batch()
        return True

    def device_released(self, client_id: str, msg_id: int) -> None:
        """The device sent PUBREL for its QoS 2 `msg_id`: recorded (handed to the kernel)
        before the caller sends PUBCOMP."""
        seq = self.spool.find_unreleased(client_id, msg_id)
        if seq is not None:
            self.spool.mark_device_released(seq)
            self.spool.flush()

    def unreleased_qos2(self) -> dict[str, list[int]]:
        """Per client id, the QoS 2 message ids accepted and not yet released."""
        return self.spool.unreleased_qos2()

    def stats(self) -> dict[str, int | str | bool]:
        return {
            "ack_mode": self.ack_mode,
            "connected": self.publisher.connected,
            "connections": self.publisher.connections,
            "published": self.publisher.published,
            "acknowledged": self.publisher.acknowledged,
            "spool_messages": self.spool.live_messages,
            "spool_bytes": self.spool.bytes_used,
            "spool_disk_bytes": self.spool.disk_bytes,
            "spool_max_bytes": self.spool.max_bytes,
            "spool_syncs": self._commit.syncs if self._commit else 0,
            "recovered": self.recovered,
            "refused_spool_full": self.refused,
            "dropped_qos0_broker_away": self.dropped_qos0,
            "inflight": len(self._inflight),
            "unpublishable": self.unpublishable,
        }

    # ---- batching: one write (and one fdatasync request) per loop iteration ------------------

    def _schedule_batch(self) -> None:
        if not self._batch_scheduled:
            self._batch_scheduled = True
            self._loop.call_soon(self._end_of_batch)

    def _end_of_batch(self) -> None:
        self._batch_scheduled = False
        self.spool.flush()  # records reach the kernel before their PUBLISH reaches the broker
        if self._awaiting_sync and self._commit is not None:
            batch, self._awaiting_sync = self._awaiting_sync, []
            self._commit.request(lambda: self._acknowledge_all(batch))
        self._send_more()

    def _deliver_synced(self, callbacks: list[Callable[[], None]]) -> None:
        # On the fsync worker thread: run the acknowledgements on the loop.
        def run() -> None:
            for callback in callbacks:
                callback()

        with contextlib.suppress(RuntimeError):  # the loop closed while stopping
            self._loop.call_soon_threadsafe(run)

    def _acknowledge_all(self, batch: list[tuple[str, int]]) -> None:
        for client_id, msg_id in batch:
            self._on_safe(client_id, msg_id)

    def _send_more(self) -> None:
        publisher = self.publisher
        queue, inflight, spool = self._queue, self._inflight, self.spool
        qos2_limit = max(1, self.max_inflight - 1)
        while queue and len(inflight) < MAX_WINDOW:
            if publisher.write_buffer_bytes() > MAX_WRITE_BUFFER_BYTES:
                return  # resumed by the next acknowledgement
            seq = queue[0]
            message = spool.message(seq)
            if message is None or message.done:
                queue.popleft()
                continue
            packet_id = packet_id_of(seq)
            if packet_id in inflight:
                return  # that id's earlier message is still out (65535 messages ago)
            if message.qos == 2 and self._inflight_qos2 >= qos2_limit:
                return  # the broker's receive quota: resumed by the next PUBCOMP
            try:
                if message.broker_received:
                    sent = publisher.pubrel(packet_id)
                else:
                    sent = publisher.publish(
                        message.topic,
                        message.payload,
                        message.qos,
                        message.retain,
                        packet_id,
                        dup=seq <= self._resend_below,
                    )
            except ValueError as exc:
                # Not publishable at all (e.g. a will topic with a wildcard): it must not block
                # the messages behind it. Counted, logged, and finished.
                _log.error(
                    "spooled message %d to %r cannot be published: %s", seq, message.topic, exc
                )
                self.unpublishable += 1
                queue.popleft()
                spool.mark_done(seq)
                spool.mark_device_released(seq)
                continue
            if not sent:
                return  # not connected: everything is resent from on_connected
            queue.popleft()
            inflight[packet_id] = (seq, message.qos)
            if message.qos == 2:
                self._inflight_qos2 += 1

    # ---- from the publisher ---------------------------------------------------------------------

    def _on_connected(self) -> None:
        self._inflight.clear()
        self._inflight_qos2 = 0
        self._queue = deque(m.seq for m in self.spool.unfinished() if not m.done)
        if self._queue:
            self._resend_below = max(self._resend_below, self._queue[-1])
        self._send_more()

    def _on_disconnected(self) -> None:
        self._inflight.clear()
        self._inflight_qos2 = 0

    def _finished_message(self, packet_id: int) -> SpooledMessage | None:
        entry = self._inflight.pop(packet_id, None)
        if entry is None:
            return None
        seq, qos = entry
        if qos == 2:
            self._inflight_qos2 -= 1
        return self.spool.message(seq)

    def _on_finished(self, packet_id: int) -> None:
        # PUBACK (QoS 1) or PUBCOMP (QoS 2).
        message = self._finished_message(packet_id)
        if message is not None:
            self.spool.mark_done(message.seq)
            if self.ack_mode == ACK_BROKER and message.client_id:
                self._on_safe(message.client_id, message.msg_id)
        self._schedule_batch()

    def _on_pubrec(self, packet_id: int) -> None:
        entry = self._inflight.get(packet_id)
        message = self.spool.message(entry[0]) if entry is not None else None
        if message is None:
            self.publisher.pubrel(packet_id)  # a PUBREC for something already finished
            return
        self.spool.mark_broker_received(message.seq)
        self.spool.flush()  # from now on only PUBREL may be resent: on disk first
        self.publisher.pubrel(packet_id)
