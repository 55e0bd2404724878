"""An asyncio MQTT 3.1.1 client that only publishes, with caller-owned packet ids and a
persistent broker session (CleanSession=0).

Responsible for: one TCP (or TLS) connection to one broker, CONNECT with CleanSession=0 and the
caller's client id, encoding PUBLISH/PUBREL/PINGREQ/DISCONNECT, decoding what the broker sends
(CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, PINGRESP, PUBLISH), keep-alive, and reconnecting
forever until `stop()`. It reports each acknowledgement to the caller by packet id.

It must not: speak MQTT-SN, persist anything, keep message state, or retransmit. The caller
(the gateway's journal) owns every message and every packet id. After each `on_connected` the
caller resends what is unfinished, as MQTT 3.1.1 §4.4 requires of a client resuming a persistent
session: a PUBLISH with `dup=True` and the same packet id for every QoS 1 message not yet
PUBACK'd and every QoS 2 message not yet PUBREC'd, and a PUBREL for every QoS 2 message already
PUBREC'd but not yet PUBCOMP'd, in the original order. Because the broker keeps the session
(`session_present` tells whether it did), it deduplicates a resent QoS 2 PUBLISH by packet id,
which gives exactly-once delivery across a crash of either side. A packet id must not be reused
for a new message before its exchange is complete (PUBACK, or PUBCOMP).

Messages the broker sends to this client id (possible when some other client subscribed with it
earlier) are acknowledged per their QoS and dropped; `received` counts them.

Event loop: everything runs on the asyncio loop given to the constructor (no threads); callbacks
are called on that loop, synchronously from the network handlers. Writes made during one loop
iteration are coalesced into one `transport.write` at the end of that iteration.

Units: seconds for every delay and timeout, bytes for buffer sizes and payloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Callable

from host_sdk.mqttsn.mqtt_bridge import BrokerSettings

logger = logging.getLogger(__name__)

# MQTT 3.1.1 control packet types (the high nibble of the first byte).
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

MAX_REMAINING_LENGTH = 268_435_455  # four-byte variable length integer, MQTT 3.1.1 §2.2.3
CONNECT_TIMEOUT_S = 10.0  # TCP/TLS connect plus CONNACK
MAX_RECONNECT_DELAY_S = 10.0
STOP_TIMEOUT_S = 2.0
_TOPIC_CACHE_ENTRIES = 10_000

CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

_U16 = struct.Struct("!H")
_ACK_HEADER = struct.Struct("!BBH")  # first byte, remaining length 2, packet id
# PUBLISH fixed headers with a one- and a two-byte remaining length (up to 16383 bytes).
_PUBLISH_HEADER_1 = struct.Struct("!BB")
_PUBLISH_HEADER_2 = struct.Struct("!BBB")  # first byte, remaining length 2, packet id
# First bytes a broker may send to a client: CONNACK, PUBLISH (QoS 0..2, DUP and RETAIN either
# way), PUBACK, PUBREC, PUBREL (flags 0010), PUBCOMP, PINGRESP.
_CLIENT_BOUND_FIRST_BYTES = frozenset(
    [0x20, 0x40, 0x50, 0x62, 0x70, 0xD0]
    + [0x30 | flags for flags in range(16) if (flags >> 1) & 3 != 3]
)
_ACK_FIRST_BYTES = frozenset([0x40, 0x50, 0x62, 0x70])
_PINGREQ = bytes([PINGREQ << 4, 0])
_DISCONNECT = bytes([DISCONNECT << 4, 0])

Event = tuple[int, int, int]
"""A decoded incoming packet: (packet type, value, packet id). `value` is the return code for
CONNACK (packet id slot: session present 0/1), the QoS for PUBLISH, and 0 otherwise."""


class MqttProtocolError(ValueError):
    """The broker sent bytes that are not a valid MQTT 3.1.1 packet for a client. `events` are
    the valid packets decoded before the bad one (their acknowledgements still count)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.events: list[Event] = []


def encode_remaining_length(length: int) -> bytes:
    """The variable length integer of MQTT 3.1.1 §2.2.3 (1..4 bytes) for 0..268,435,455."""
    if not 0 <= length <= MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length {length} is outside 0..{MAX_REMAINING_LENGTH}")
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_topic(topic: str) -> bytes:
    """A PUBLISH topic as a length-prefixed UTF-8 string; ValueError for a topic MQTT rejects."""
    encoded = topic.encode("utf-8")
    if not encoded or len(encoded) > 0xFFFF:
        raise ValueError(f"topic {topic!r}: must be 1..65535 bytes of UTF-8")
    if "+" in topic or "#" in topic or "\x00" in topic:
        raise ValueError(
            f"topic {topic!r}: wildcards ('+', '#') and NUL are not allowed in PUBLISH"
        )
    return _U16.pack(len(encoded)) + encoded


def _check_publish_args(qos: int, packet_id: int, dup: bool) -> None:
    if qos == 0:
        if packet_id != 0:
            raise ValueError(f"packet id {packet_id} given for QoS 0; use 0")
        if dup:
            raise ValueError("DUP must be 0 for QoS 0 (MQTT 3.1.1 §3.3.1.1)")
    elif qos == 1 or qos == 2:
        if not 1 <= packet_id <= 0xFFFF:
            raise ValueError(f"QoS {qos} needs a packet id in 1..65535, got {packet_id}")
    else:
        raise ValueError(f"QoS {qos} is not one of 0, 1, 2")


def _append_publish(
    out: bytearray,
    encoded_topic: bytes,
    payload: bytes | bytearray | memoryview,
    qos: int,
    retain: bool,
    packet_id: int,
    dup: bool,
) -> None:
    length = len(encoded_topic) + len(payload) + (2 if qos else 0)
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    if length < 0x80:
        out += _PUBLISH_HEADER_1.pack(first, length)
    elif length < 0x4000:
        out += _PUBLISH_HEADER_2.pack(first, (length & 0x7F) | 0x80, length >> 7)
    else:
        out.append(first)
        out += encode_remaining_length(length)
    out += encoded_topic
    if qos:
        out += _U16.pack(packet_id)
    out += payload


def encode_publish(
    topic: str,
    payload: bytes,
    qos: int,
    retain: bool,
    packet_id: int = 0,
    dup: bool = False,
) -> bytes:
    """One PUBLISH packet. Packet id 1..65535 for QoS 1/2, 0 for QoS 0 (ValueError otherwise)."""
    _check_publish_args(qos, packet_id, dup)
    out = bytearray()
    _append_publish(out, encode_topic(topic), payload, qos, retain, packet_id, dup)
    return bytes(out)


def encode_pubrel(packet_id: int) -> bytes:
    """One PUBREL packet (first byte 0x62, as MQTT 3.1.1 §3.6.1 requires)."""
    if not 1 <= packet_id <= 0xFFFF:
        raise ValueError(f"PUBREL needs a packet id in 1..65535, got {packet_id}")
    return _ACK_HEADER.pack(0x62, 2, packet_id)


def encode_connect(
    client_id: str, keepalive_s: int, username: str | None, password: str | None
) -> bytes:
    """CONNECT with protocol level 4 and CleanSession=0. A password is sent only with a user
    name (MQTT 3.1.1 §3.1.2.9)."""
    if not 0 <= keepalive_s <= 0xFFFF:
        raise ValueError(f"keep-alive {keepalive_s} s is outside 0..65535")
    flags = 0  # CleanSession=0: the broker keeps the session across connections
    body = bytearray(b"\x00\x04MQTT\x04")
    fields = [client_id.encode("utf-8")]
    if username is not None:
        flags |= 0x80
        fields.append(username.encode("utf-8"))
        if password is not None:
            flags |= 0x40
            fields.append(password.encode("utf-8"))
    body.append(flags)
    body += _U16.pack(keepalive_s)
    for field in fields:
        if len(field) > 0xFFFF:
            raise ValueError("CONNECT field longer than 65535 bytes")
        body += _U16.pack(len(field)) + field
    return bytes([CONNECT << 4]) + encode_remaining_length(len(body)) + bytes(body)


class IncomingParser:
    """Splits the broker's byte stream into packets and decodes them (sans-IO).

    `feed(data)` returns the complete packets decoded so far as `Event` tuples and keeps a
    partial packet for the next call. It raises MqttProtocolError for anything a broker must not
    send to a client (then the connection is unusable: make a new parser for the next one). The
    first packet must be CONNACK and only the first. PUBLISH payloads are dropped.
    """

    __slots__ = ("_buffer", "_connack_seen")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._connack_seen = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        buffer = self._buffer
        buffer += data
        events: list[Event] = []
        position = 0
        size = len(buffer)
        while size - position >= 2:
            first = buffer[position]
            if first in _ACK_FIRST_BYTES and self._connack_seen and size - position >= 4:
                # Fast path for the bulk of the traffic: PUBACK/PUBREC/PUBREL/PUBCOMP.
                if buffer[position + 1] != 2:
                    error = MqttProtocolError(
                        f"packet type {first >> 4}: length {buffer[position + 1]}, not 2"
                    )
                    error.events = events
                    raise error
                packet_id = (buffer[position + 2] << 8) | buffer[position + 3]
                if packet_id == 0:
                    error = MqttProtocolError(f"packet type {first >> 4}: packet id 0")
                    error.events = events
                    raise error
                events.append((first >> 4, 0, packet_id))
                position += 4
                continue
            if first not in _CLIENT_BOUND_FIRST_BYTES:
                # Rejected before its length is known: garbage must not make us wait for a
                # body of up to 256 MB that will never come.
                error = MqttProtocolError(
                    f"unexpected packet type {first >> 4} (first byte 0x{first:02x})"
                )
                error.events = events
                raise error
            # Remaining length: 1..4 bytes, 7 bits each, least significant first.
            length = 0
            shift = 0
            index = position + 1
            complete = False
            while index < size:
                byte = buffer[index]
                index += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    complete = True
                    break
                shift += 7
                if shift >= 28:
                    error = MqttProtocolError("remaining length longer than 4 bytes")
                    error.events = events
                    raise error
            if not complete:
                break
            if length != 2 and first != 0xD0 and first >> 4 != PUBLISH:
                error = MqttProtocolError(f"packet type {first >> 4}: length {length}, not 2")
                error.events = events
                raise error
            end = index + length
            if end > size:
                break
            try:
                events.append(self._decode(first, buffer, index, length))
            except MqttProtocolError as error:
                error.events = events
                raise
            position = end
        if position:
            del buffer[:position]
        return events

    def _decode(self, first: int, buffer: bytearray, start: int, length: int) -> Event:
        kind = first >> 4
        if not self._connack_seen:
            if first != 0x20:
                raise MqttProtocolError(f"expected CONNACK first, got packet type {kind}")
            if length != 2 or buffer[start] > 1:
                raise MqttProtocolError("CONNACK: bad length or acknowledge flags")
            self._connack_seen = True
            return (CONNACK, buffer[start + 1], buffer[start])
        if kind in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            if first != (0x62 if kind == PUBREL else kind << 4) or length != 2:
                raise MqttProtocolError(f"packet type {kind}: bad flags or length")
            packet_id = (buffer[start] << 8) | buffer[start + 1]
            if packet_id == 0:
                raise MqttProtocolError(f"packet type {kind}: packet id 0")
            return (kind, 0, packet_id)
        if kind == PUBLISH:
            qos = (first >> 1) & 3
            if qos == 3:
                raise MqttProtocolError("PUBLISH with QoS 3")
            if qos == 0 and first & 0x08:
                raise MqttProtocolError("PUBLISH QoS 0 with DUP set")
            if length < 2:
                raise MqttProtocolError("PUBLISH shorter than its topic length")
            topic_length = (buffer[start] << 8) | buffer[start + 1]
            header = 2 + topic_length + (2 if qos else 0)
            if header > length:
                raise MqttProtocolError("PUBLISH shorter than its topic and packet id")
            packet_id = 0
            if qos:
                at = start + 2 + topic_length
                packet_id = (buffer[at] << 8) | buffer[at + 1]
                if packet_id == 0:
                    raise MqttProtocolError("PUBLISH QoS > 0 with packet id 0")
            return (PUBLISH, qos, packet_id)
        if first == 0xD0 and length == 0:
            return (PINGRESP, 0, 0)
        raise MqttProtocolError(f"unexpected packet type {kind} (first byte 0x{first:02x})")


class _Connection(asyncio.Protocol):
    """One TCP connection; forwards to its MqttPublisher, which ignores stale connections."""

    def __init__(self, publisher: MqttPublisher, loop: asyncio.AbstractEventLoop) -> None:
        self.publisher = publisher
        self.transport: asyncio.Transport | None = None
        self.parser = IncomingParser()
        self.connack: asyncio.Future[bool] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.accepted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.publisher._connection_made(self)

    def data_received(self, data: bytes) -> None:
        self.publisher._data_received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.publisher._connection_lost(self, exc)


class MqttPublisher:
    """Publishes to one broker over MQTT 3.1.1 with CleanSession=0 and caller-chosen packet ids.
    Runs on the asyncio loop (no threads).

    Call order: `start()`, then `publish`/`pubrel` whenever `connected` (they return False and
    send nothing otherwise), then `await stop()`. Callbacks: `on_connected()` after every
    accepted CONNACK (the caller resends its unfinished messages from it), `on_disconnected()`
    when an accepted connection is lost (also at `stop()`) or a CONNACK refuses the connection
    (failed TCP connects are retried silently apart from one log line), `on_puback(id)`,
    `on_pubrec(id)` (the caller records it durably, then calls `pubrel(id)`), `on_pubcomp(id)`.

    Counters: `connections` (accepted CONNACKs), `published` (PUBLISH packets written),
    `acknowledged` (PUBACKs and PUBCOMPs received), `received` (PUBLISHes from the broker,
    dropped), `reconnects` (connection attempts after the first), `malformed` (connections
    closed because the broker sent invalid data). `session_present` is the last CONNACK's flag.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        loop: asyncio.AbstractEventLoop,
        *,
        client_id: str,
        on_connected: Callable[[], None],
        on_disconnected: Callable[[], None],
        on_puback: Callable[[int], None],
        on_pubrec: Callable[[int], None],
        on_pubcomp: Callable[[int], None],
        reconnect_delay_s: float = 1.0,
        max_reconnect_delay_s: float = MAX_RECONNECT_DELAY_S,
    ) -> None:
        if not client_id:
            raise ValueError("client_id must not be empty: a persistent session needs one")
        self.settings = settings
        self.client_id = client_id
        self._loop = loop
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_puback = on_puback
        self._on_pubrec = on_pubrec
        self._on_pubcomp = on_pubcomp
        self.reconnect_delay_s = reconnect_delay_s
        self.max_reconnect_delay_s = max(max_reconnect_delay_s, reconnect_delay_s)
        self._connect_packet = encode_connect(
            client_id, settings.keepalive_s, settings.username, settings.password
        )
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context(cafile=settings.ca_file) if settings.tls else None
        )
        self.connections = 0
        self.published = 0
        self.acknowledged = 0
        self.received = 0
        self.reconnects = 0
        self.malformed = 0
        self.session_present = False
        self._connection: _Connection | None = None
        self._transport: asyncio.Transport | None = None
        self._connected = False
        self._connected_event = asyncio.Event()
        self._out = bytearray()
        self._flush_scheduled = False
        self._topics: dict[str, bytes] = {}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._keepalive_handle: asyncio.TimerHandle | None = None
        self._writes_since_tick = False
        self._reads_since_tick = False
        self._ping_sent_at: float | None = None
        self._last_problem: str | None = None

    # ---- public API ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background and reconnect until `stop()` (non-blocking)."""
        if self._task is None and not self._stopping:
            self._task = self._loop.create_task(
                self._run(), name=f"mqtt-publisher-{self.client_id}"
            )

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until a CONNACK has accepted the connection (raises TimeoutError)."""
        await asyncio.wait_for(self._connected_event.wait(), timeout_s)

    @property
    def connected(self) -> bool:
        """True between an accepted CONNACK and the loss of that connection."""
        return self._connected

    def publish(
        self,
        topic: str,
        payload: bytes | bytearray | memoryview,
        qos: int,
        retain: bool,
        packet_id: int = 0,
        dup: bool = False,
    ) -> bool:
        """Queue one PUBLISH for this loop iteration's write. QoS 0..2; packet id 1..65535 for
        QoS 1/2 and 0 for QoS 0, no DUP on QoS 0 (ValueError otherwise, also for a bad topic
        or a payload over 268 MB). Returns False, sending nothing, when not connected."""
        if qos == 0:
            if packet_id or dup:
                _check_publish_args(qos, packet_id, dup)
        elif qos == 1 or qos == 2:
            if not 0 < packet_id <= 0xFFFF:
                _check_publish_args(qos, packet_id, dup)
        else:
            _check_publish_args(qos, packet_id, dup)
        encoded_topic = self._topics.get(topic)
        if encoded_topic is None:
            encoded_topic = encode_topic(topic)
            if len(self._topics) >= _TOPIC_CACHE_ENTRIES:
                self._topics.clear()
            self._topics[topic] = encoded_topic
        if len(encoded_topic) + len(payload) + 2 > MAX_REMAINING_LENGTH:
            raise ValueError(f"payload of {len(payload)} bytes is too large for one PUBLISH")
        if not self._connected:
            return False
        _append_publish(self._out, encoded_topic, payload, qos, retain, packet_id, dup)
        self.published += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return True

    def pubrel(self, packet_id: int) -> bool:
        """Queue a PUBREL for a QoS 2 message the broker has PUBREC'd. False when not
        connected."""
        packet = encode_pubrel(packet_id)
        if not self._connected:
            return False
        self._write(packet)
        return True

    def write_buffer_bytes(self) -> int:
        """Bytes written but not yet taken by the kernel (transport buffer plus this
        iteration's pending writes)."""
        transport = self._transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return buffered + len(self._out)

    async def stop(self) -> None:
        """Send DISCONNECT (the broker keeps the session), close, and stop reconnecting."""
        self._stopping = True
        connection = self._connection
        if connection is not None and connection.transport is not None:
            if self._connected:
                self._write(_DISCONNECT)
                self._flush()
            connection.transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if connection is not None and not connection.lost.done():
            try:
                await asyncio.wait_for(asyncio.shield(connection.lost), STOP_TIMEOUT_S)
            except TimeoutError:
                if connection.transport is not None:
                    connection.transport.abort()

    # ---- connection life cycle ------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        first = True
        while not self._stopping:
            if not first:
                self.reconnects += 1
            first = False
            try:
                accepted = await self._connect_once()
            except Exception:
                # Whatever went wrong, the publisher must keep trying: the gateway's journal
                # holds messages that only this loop can deliver.
                logger.exception("MQTT publisher: unexpected error while connecting")
                accepted = False
            if self._stopping:
                return
            failures = 0 if accepted else failures + 1
            delay = min(
                self.reconnect_delay_s * (2 ** min(max(failures - 1, 0), 16)),
                self.max_reconnect_delay_s,
            )
            await asyncio.sleep(delay)

    async def _connect_once(self) -> bool:
        """One connection from TCP connect to its loss; True if a CONNACK accepted it."""
        settings = self.settings
        connection = _Connection(self, self._loop)
        self._connection = connection
        try:
            await asyncio.wait_for(
                self._loop.create_connection(
                    lambda: connection,
                    settings.host,
                    settings.port,
                    ssl=self._ssl,
                    server_hostname=settings.host if self._ssl is not None else None,
                ),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            self._problem(f"cannot connect to {settings.host}:{settings.port}: {exc or 'timeout'}")
            return False
        try:
            accepted = await asyncio.wait_for(asyncio.shield(connection.connack), CONNECT_TIMEOUT_S)
        except TimeoutError:
            self._problem(
                f"no CONNACK from {settings.host}:{settings.port} within {CONNECT_TIMEOUT_S} s"
            )
            accepted = False
            if connection.transport is not None:
                connection.transport.abort()
        await asyncio.shield(connection.lost)  # stop() cancels us; the loss still completes
        return accepted

    def _connection_made(self, connection: _Connection) -> None:
        transport = connection.transport
        assert transport is not None
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._out.clear()
        transport.write(self._connect_packet)

    def _connection_lost(self, connection: _Connection, exc: Exception | None) -> None:
        if not connection.connack.done():
            connection.connack.set_result(False)
        if not connection.lost.done():
            connection.lost.set_result(None)
        if connection is not self._connection:
            return
        self._transport = None
        self._out.clear()
        self._cancel_keepalive()
        if connection.accepted:
            connection.accepted = False
            self._connected = False
            self._connected_event.clear()
            if not self._stopping:
                self._problem(
                    f"connection to {self.settings.host}:{self.settings.port} lost"
                    + (f": {exc}" if exc else "")
                )
            self._call(self._on_disconnected)

    def _abort(self, connection: _Connection) -> None:
        # Not connected from now on, although connection_lost comes only in a later iteration:
        # publish() must return False in between.
        self._connected = False
        self._connected_event.clear()
        if connection.transport is not None:
            connection.transport.abort()

    def _close_malformed(self, connection: _Connection, error: Exception) -> None:
        self.malformed += 1
        logger.warning(
            "MQTT broker %s:%s sent invalid data (%s); reconnecting",
            self.settings.host,
            self.settings.port,
            error,
        )
        self._abort(connection)

    def _data_received(self, connection: _Connection, data: bytes) -> None:
        if connection is not self._connection or connection.lost.done():
            return
        malformed: MqttProtocolError | None = None
        try:
            events = connection.parser.feed(data)
        except MqttProtocolError as error:
            events, malformed = error.events, error
        self._reads_since_tick = True
        for kind, value, packet_id in events:
            try:
                if kind == PUBACK:
                    self.acknowledged += 1
                    self._on_puback(packet_id)
                elif kind == PUBREC:
                    self._on_pubrec(packet_id)
                elif kind == PUBCOMP:
                    self.acknowledged += 1
                    self._on_pubcomp(packet_id)
                elif kind == PUBLISH:
                    self.received += 1
                    if value == 1:
                        self._write(_ACK_HEADER.pack(PUBACK << 4, 2, packet_id))
                    elif value == 2:
                        self._write(_ACK_HEADER.pack(PUBREC << 4, 2, packet_id))
                elif kind == PUBREL:
                    self._write(_ACK_HEADER.pack(PUBCOMP << 4, 2, packet_id))
                elif kind == PINGRESP:
                    self._ping_sent_at = None
                elif kind == CONNACK:
                    self._connack(connection, value, packet_id)
            except Exception:
                # A caller's callback failed: that is the caller's bug, not the broker's; the
                # connection and the remaining acknowledgements stay valid.
                logger.exception(
                    "MQTT publisher callback failed for packet type %s id %s", kind, packet_id
                )
            if connection.lost.done() or connection.transport is None:
                return
        if malformed is not None:
            self._close_malformed(connection, malformed)

    def _connack(self, connection: _Connection, return_code: int, session_present: int) -> None:
        settings = self.settings
        if return_code != 0:
            reason = CONNACK_REASONS.get(return_code, f"return code {return_code}")
            self._problem(
                f"broker {settings.host}:{settings.port} refused the connection of "
                f"client id {self.client_id!r}: {reason} (CONNACK code {return_code})"
            )
            if not connection.connack.done():
                connection.connack.set_result(False)
            if connection.transport is not None:
                connection.transport.close()
            self._call(self._on_disconnected)
            return
        connection.accepted = True
        self._connected = True
        self.connections += 1
        self.session_present = bool(session_present)
        self._last_problem = None
        logger.info(
            "MQTT connected to %s:%s as %r (session present: %s)",
            settings.host,
            settings.port,
            self.client_id,
            self.session_present,
        )
        self._connected_event.set()
        self._start_keepalive()
        if not connection.connack.done():
            connection.connack.set_result(True)
        self._on_connected()

    def _problem(self, message: str) -> None:
        """Log a connection problem once: a retry that fails the same way logs at debug."""
        if message != self._last_problem:
            logger.warning("MQTT publisher: %s", message)
            self._last_problem = message
        else:
            logger.debug("MQTT publisher: %s", message)

    @staticmethod
    def _call(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            logger.exception("MQTT publisher callback failed")

    # ---- writing ---------------------------------------------------------------------------

    def _write(self, packet: bytes) -> None:
        self._out += packet
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        transport = self._transport
        if transport is None or transport.is_closing():
            self._out.clear()
            return
        data, self._out = self._out, bytearray()
        transport.write(data)
        self._writes_since_tick = True

    # ---- keep-alive ------------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        self._cancel_keepalive()
        self._ping_sent_at = None
        self._writes_since_tick = True
        self._reads_since_tick = True
        if self.settings.keepalive_s > 0:
            self._keepalive_handle = self._loop.call_later(
                self.settings.keepalive_s / 2, self._keepalive_tick
            )

    def _cancel_keepalive(self) -> None:
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None

    def _keepalive_tick(self) -> None:
        """Every keepalive/2: ping when nothing was sent or nothing received since the last
        tick (the latter detects a dead broker while we keep sending); close when a PINGRESP
        is more than keepalive_s late."""
        keepalive_s = self.settings.keepalive_s
        transport = self._transport
        if transport is None or not self._connected:
            return
        now = self._loop.time()
        if self._ping_sent_at is not None:
            if now - self._ping_sent_at >= keepalive_s:
                self._problem(
                    f"no PINGRESP from {self.settings.host}:{self.settings.port} "
                    f"within {keepalive_s} s; reconnecting"
                )
                if self._connection is not None:
                    self._abort(self._connection)
                return
        elif not self._writes_since_tick or not self._reads_since_tick:
            self._ping_sent_at = now
            self._write(_PINGREQ)
        self._writes_since_tick = False
        self._reads_since_tick = False
        self._keepalive_handle = self._loop.call_later(keepalive_s / 2, self._keepalive_tick)
