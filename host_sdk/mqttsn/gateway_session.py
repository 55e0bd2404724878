"""MQTT-SN v1.2 gateway side, sans-IO: one `GatewaySession` per client address, and a
`GatewayRegistry` that owns them.

Responsible for the gateway half of the protocol: CONNECT with the will flow, per-client topic
ids (plus predefined ids and short names), PUBLISH from the client at QoS -1/0/1/2 (QoS 2
passed upward exactly once), SUBSCRIBE/UNSUBSCRIBE with wildcards (REGISTERing concrete topics
before their first PUBLISH), downstream delivery with one QoS 1/2 message in flight per client
and retransmission, keep-alive supervision (1.5 x Duration; a lost client's will is reported),
sleeping clients (messages buffered and delivered on PINGREQ(ClientId) before PINGRESP),
clean and persistent sessions, access control (the `authorize` hook in `GatewayConfig`;
refusals answered with return code 0x03 and counted), retained messages replayed by the
broker routed only to the sessions that just subscribed, and counters. Malformed datagrams are
counted and dropped; nothing a client sends raises out of this module.

It must not do I/O, read a clock or know any MQTT library: it emits events such as
`PublishUpstream` and takes `deliver_downstream(...)`; the asyncio gateway maps those to the
broker connection. Times are seconds (float) on the caller's monotonic clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from host_sdk.mqttsn import codec
from host_sdk.mqttsn.codec import (
    RC_ACCEPTED,
    RC_CONGESTION,
    RC_INVALID_TOPIC_ID,
    RC_NOT_SUPPORTED,
    TOPIC_NORMAL,
    TOPIC_PREDEFINED,
    TOPIC_SHORT,
    MqttSnDecodeError,
    decode,
    encode,
    short_topic_id,
    short_topic_name,
)
from host_sdk.mqttsn.qos2 import Qos2Dedup

Address = Hashable
Output = tuple[list[tuple[Hashable, bytes]], list["GatewayEvent"]]

# Session states (spec §6.14 plus the will flow).
NEW = "new"
WILL_TOPIC = "wait-willtopic"
WILL_MSG = "wait-willmsg"
ACTIVE = "active"
ASLEEP = "asleep"
AWAKE = "awake"
DISCONNECTED = "disconnected"
LOST = "lost"

_CONNECTED_STATES = (ACTIVE, AWAKE)


# ---- events for the asyncio gateway ----------------------------------------------------------


class GatewayEvent:
    """Base class of everything a gateway session reports upward."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ClientConnected(GatewayEvent):
    """CONNACK accepted was sent; `resumed` is True when a persistent session was restored."""

    client_id: str
    clean_session: bool
    resumed: bool


@dataclass(frozen=True, slots=True)
class ClientDisconnected(GatewayEvent):
    """The client sent DISCONNECT (no will), or another address took over its client id."""

    client_id: str


@dataclass(frozen=True, slots=True)
class ClientLost(GatewayEvent):
    """Keep-alive or sleep timer expired; publish the will when `will_topic` is non-empty."""

    client_id: str
    will_topic: str
    will_message: bytes
    will_qos: int
    will_retain: bool


@dataclass(frozen=True, slots=True)
class PublishUpstream(GatewayEvent):
    """Publish to the broker. `client_id` is "" for QoS -1 from an unconnected client.

    With `GatewayConfig.defer_acks`, a QoS 1/2 message (`msg_id` is the device's message id,
    0 for QoS 0) is not yet acknowledged to the device: the gateway calls
    `GatewayRegistry.acknowledge` once the message is safe, or `refuse` when it cannot take
    it (the device then retransmits)."""

    client_id: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    msg_id: int = 0


@dataclass(frozen=True, slots=True)
class DeviceReleased(GatewayEvent):
    """The device sent PUBREL for its QoS 2 message `msg_id`: record that durably before the
    PUBCOMP in the same output reaches the device."""

    client_id: str
    msg_id: int


@dataclass(frozen=True, slots=True)
class SessionChanged(GatewayEvent):
    """A CleanSession=0 session changed what `GatewaySession.snapshot()` returns (or ended,
    `snapshot` None for a clean-session client whose stored session must go)."""

    client_id: str
    snapshot: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SubscribeUpstream(GatewayEvent):
    """Client `client_id` wants `topic_filter` at `qos`; idempotent per (client, filter)."""

    client_id: str
    topic_filter: str
    qos: int


@dataclass(frozen=True, slots=True)
class UnsubscribeUpstream(GatewayEvent):
    """Client `client_id` no longer wants `topic_filter` (also sent when it leaves)."""

    client_id: str
    topic_filter: str


# ---- configuration and counters --------------------------------------------------------------


Authorize = Callable[[str, str, str], bool]
"""`authorize(client_id, action, topic) -> allowed`; action is one of `ACTIONS`, topic is ""
for "connect", a topic filter for "subscribe" and a topic name otherwise."""

ACTION_CONNECT = "connect"
ACTION_PUBLISH = "publish"
ACTION_SUBSCRIBE = "subscribe"
ACTION_WILL = "will"
ACTIONS = (ACTION_CONNECT, ACTION_PUBLISH, ACTION_SUBSCRIBE, ACTION_WILL)
# A REGISTER is refused when the topic may be neither published nor subscribed to; counted
# under its own key so that the statistics say which request was refused.
DENIED_REGISTER = "register"


@dataclass
class GatewayConfig:
    """Gateway tunables. Times in seconds; `predefined_topics` maps topic name -> topic id.

    `authorize` (None: everyone may do everything) is asked before a CONNECT, a will topic,
    a SUBSCRIBE, a REGISTER and every PUBLISH is accepted. Refusals are answered with return
    code 0x03 (not supported) where the protocol has an answer, and counted.
    `retained_replay_window_s` bounds how long after its SUBSCRIBE a session still takes
    retained messages (retain=1) from the broker; see `GatewayRegistry.deliver_downstream`.
    `defer_acks`: QoS 1 PUBACK / QoS 2 PUBREC wait for `GatewayRegistry.acknowledge` (the
    asyncio gateway's durability); False acknowledges on receipt. `track_sessions`: report
    `SessionChanged` events so that CleanSession=0 sessions can be stored.
    """

    gw_id: int = 1
    predefined_topics: dict[str, int] = field(default_factory=dict)
    max_clients: int = 10000
    max_persisted_sessions: int = 10000
    keep_alive_factor: float = 1.5
    t_retry_s: float = 10.0
    n_retry: int = 3
    max_buffered_messages: int = 100
    max_queued_messages: int = 1000
    authorize: Authorize | None = None
    defer_acks: bool = False
    track_sessions: bool = False
    retained_replay_window_s: float = 30.0

    predefined_names: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.predefined_names = {v: k for k, v in self.predefined_topics.items()}
        for name, topic_id in self.predefined_topics.items():
            if not 1 <= topic_id <= 0xFFFE:
                raise ValueError(
                    f"predefined topic {name!r}: topic id {topic_id} must be 1..65534"
                    " (0x0000 and 0xFFFF are reserved)"
                )


@dataclass(slots=True)
class Counters:
    """Datagram counters: received (valid), sent, dropped, malformed, retransmitted, and
    denied (requests the access control refused)."""

    received: int = 0
    sent: int = 0
    dropped: int = 0
    malformed: int = 0
    retransmitted: int = 0
    denied: int = 0

    def add(self, other: Counters) -> None:
        self.received += other.received
        self.sent += other.sent
        self.dropped += other.dropped
        self.malformed += other.malformed
        self.retransmitted += other.retransmitted
        self.denied += other.denied


@dataclass
class _Persisted:
    # What a persistent (CleanSession=0) session keeps while its client is away.
    topic_ids: dict[str, int]
    subscriptions: dict[str, int]
    next_topic_id: int


@dataclass
class _Downstream:
    # One message for the client: a PUBLISH to build, or (while in flight) its state.
    topic: str
    payload: bytes
    qos: int
    retain: bool


class _ReplayWatch:
    # A session that subscribed recently: until when it takes retained replays, and which
    # topics it has had since (so a later replay for another device is not a duplicate).
    __slots__ = ("had", "until")

    def __init__(self, until: float) -> None:
        self.until = until
        self.had: set[str] = set()


class _Inflight:
    __slots__ = ("deadline", "item", "message", "msg_id", "reply_type", "retries")

    def __init__(
        self,
        item: _Downstream | None,
        message: codec.Message,
        msg_id: int,
        reply_type: int,
        deadline: float,
    ) -> None:
        self.item = item
        self.message = message
        self.msg_id = msg_id
        self.reply_type = reply_type
        self.deadline = deadline
        self.retries = 0


def _persisted_from(snapshot: dict[str, Any]) -> _Persisted:
    return _Persisted(
        {str(topic): int(topic_id) for topic, topic_id in snapshot["topic_ids"].items()},
        {str(topic): int(qos) for topic, qos in snapshot["subscriptions"].items()},
        int(snapshot["next_topic_id"]),
    )


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching ('+' one level, '#' the rest; '$' topics need no wildcard)."""
    if topic_filter == topic:
        return True
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


def _is_wildcard(topic: str) -> bool:
    return "+" in topic or "#" in topic


class GatewaySession:
    """The gateway's state for one client address. Use it through `GatewayRegistry`."""

    __slots__ = (
        "_awaiting_ack",
        "_buffer",
        "_denied",
        "_events",
        "_incoming_qos2",
        "_inflight",
        "_known_to_client",
        "_may_publish",
        "_next_msg_id",
        "_next_topic_id",
        "_out",
        "_pingresp_pending",
        "_queue",
        "_short_topics",
        "address",
        "clean_session",
        "client_id",
        "config",
        "counters",
        "dirty",
        "keep_alive_s",
        "last_rx",
        "pending_restore",
        "resumed",
        "sleep_duration_s",
        "state",
        "subscriptions",
        "topic_ids",
        "topic_names",
        "will_message",
        "will_qos",
        "will_retain",
        "will_topic",
    )

    def __init__(
        self, address: Address, config: GatewayConfig, denied: dict[str, int] | None = None
    ) -> None:
        self.address = address
        self.config = config
        self.state = NEW
        self.client_id = ""
        self.clean_session = True
        self.keep_alive_s = 0
        self.sleep_duration_s = 0
        self.will_topic = ""
        self.will_message = b""
        self.will_qos = 0
        self.will_retain = False
        self.counters = Counters()
        self.topic_ids: dict[str, int] = {}
        self.topic_names: dict[int, str] = {}
        self.subscriptions: dict[str, int] = {}
        self._known_to_client: set[str] = set()
        self._short_topics: set[str] = set()
        self._may_publish: dict[str, bool] = {}  # authorize() answers, by topic
        self._denied = denied if denied is not None else {}  # the registry's refusals by kind
        self._next_topic_id = 1
        self._incoming_qos2 = Qos2Dedup(config.t_retry_s * (config.n_retry + 1))
        self._queue: list[_Downstream] = []
        self._buffer: list[_Downstream] = []
        self._inflight: _Inflight | None = None
        self._pingresp_pending = False
        self.pending_restore: _Persisted | None = None
        self._awaiting_ack: dict[int, tuple[int, int]] = {}  # msg id -> (qos, topic id)
        self.dirty = False  # the stored snapshot is out of date
        self.resumed = False
        self._next_msg_id = 0
        self.last_rx = 0.0
        self._out: list[bytes] = []
        self._events: list[GatewayEvent] = []

    # ---- inputs -------------------------------------------------------------------------------

    def handle(self, msg: codec.Message, now: float) -> None:
        """Process one decoded message from this client (the registry decodes and counts)."""
        self.counters.received += 1
        self.last_rx = now
        handler = _HANDLERS.get(msg.msg_type)
        if handler is None:
            self.counters.dropped += 1  # gateway-to-client types, ENCAPSULATED, etc.
            return
        handler(self, msg, now)

    def deliver(self, topic: str, payload: bytes, qos: int, retain: bool, now: float) -> None:
        """Queue one application message for this client (qos already capped to its grant)."""
        item = _Downstream(topic, payload, qos, retain)
        if self.state == ASLEEP:
            if len(self._buffer) >= self.config.max_buffered_messages:
                self.counters.dropped += 1
                return
            self._buffer.append(item)
            self.dirty = True
            return
        if self.state not in _CONNECTED_STATES:
            self.counters.dropped += 1
            return
        if len(self._queue) >= self.config.max_queued_messages:
            self.counters.dropped += 1
            return
        self._queue.append(item)
        self._pump(now)

    def next_deadline(self) -> float | None:
        """When `tick` must run next: a retransmission or the keep-alive/sleep supervision."""
        supervision: float | None = None
        if self.state in (ACTIVE, WILL_TOPIC, WILL_MSG) and self.keep_alive_s > 0:
            supervision = self.last_rx + self.keep_alive_s * self.config.keep_alive_factor
        elif self.state in (ASLEEP, AWAKE) and self.sleep_duration_s > 0:
            supervision = self.last_rx + self.sleep_duration_s * self.config.keep_alive_factor
        if self._inflight is not None:
            retry = self._inflight.deadline
            if supervision is None or retry < supervision:
                return retry
        return supervision

    def tick(self, now: float) -> None:
        """Run this session's timers (retransmission, supervision)."""
        inflight = self._inflight
        if inflight is not None and now >= inflight.deadline:
            self._retransmit(inflight, now)
        if self._supervision_due(now):
            self._lose()

    def take_output(self) -> tuple[list[bytes], list[GatewayEvent]]:
        """The datagrams for this client and the events produced since the last call."""
        out, events = self._out, self._events
        self._out = []
        self._events = []
        return out, events

    # ---- helpers ------------------------------------------------------------------------------

    def _supervision_due(self, now: float) -> bool:
        if self.state in (ACTIVE, WILL_TOPIC, WILL_MSG) and self.keep_alive_s > 0:
            return now >= self.last_rx + self.keep_alive_s * self.config.keep_alive_factor
        if self.state in (ASLEEP, AWAKE) and self.sleep_duration_s > 0:
            return now >= self.last_rx + self.sleep_duration_s * self.config.keep_alive_factor
        return False

    def _allowed(self, action: str, topic: str) -> bool:
        authorize = self.config.authorize
        return authorize is None or authorize(self.client_id, action, topic)

    def _publish_allowed(self, topic: str) -> bool:
        if self.config.authorize is None:
            return True
        # Asked for every PUBLISH, so the answer is kept per topic (rules do not change).
        allowed = self._may_publish.get(topic)
        if allowed is None:
            allowed = self._allowed(ACTION_PUBLISH, topic)
            self._may_publish[topic] = allowed
        return allowed

    def _deny(self, kind: str) -> None:
        self.counters.denied += 1
        self._denied[kind] = self._denied.get(kind, 0) + 1

    def _send(self, msg: codec.Message) -> None:
        self._out.append(encode(msg))
        self.counters.sent += 1

    def _msg_id(self) -> int:
        self._next_msg_id = self._next_msg_id % 0xFFFF + 1
        return self._next_msg_id

    def _topic_id_for(self, topic: str) -> int:
        topic_id = self.topic_ids.get(topic)
        if topic_id is None:
            topic_id = self._next_topic_id
            while topic_id in self.topic_names or topic_id in (0, 0xFFFF):
                topic_id = topic_id % 0xFFFE + 1
            self._next_topic_id = topic_id % 0xFFFE + 1
            self.topic_ids[topic] = topic_id
            self.topic_names[topic_id] = topic
            self.dirty = True
        return topic_id

    def _resolve(self, topic_id_type: int, topic_id: int) -> str | None:
        if topic_id_type == TOPIC_NORMAL:
            return self.topic_names.get(topic_id)
        if topic_id_type == TOPIC_PREDEFINED:
            return self.config.predefined_names.get(topic_id)
        try:
            return short_topic_name(topic_id)
        except MqttSnDecodeError:
            return None

    def _end(self, state: str) -> None:
        # Leaving for good: the broker-side subscriptions of this client go too.
        self.state = state
        self.dirty = True
        self._awaiting_ack.clear()
        self._inflight = None
        self._queue.clear()
        self._buffer.clear()
        for topic_filter in self.subscriptions:
            self._events.append(UnsubscribeUpstream(self.client_id, topic_filter))

    def take_over(self) -> None:
        """The client id connected from another address: end this session (no will)."""
        self._end(DISCONNECTED)
        self._events.append(ClientDisconnected(self.client_id))

    def _lose(self) -> None:
        self._end(LOST)
        self._events.append(
            ClientLost(
                self.client_id, self.will_topic, self.will_message, self.will_qos, self.will_retain
            )
        )

    def _clear_session(self) -> None:
        for topic_filter in self.subscriptions:
            self._events.append(UnsubscribeUpstream(self.client_id, topic_filter))
        self.subscriptions = {}
        self.topic_ids = {}
        self.topic_names = {}
        self._known_to_client = set()
        self._short_topics = set()
        self._may_publish = {}
        self._next_topic_id = 1
        self._incoming_qos2.clear()
        self._awaiting_ack.clear()
        self._queue = []
        self._buffer = []
        self._inflight = None
        self.will_topic = ""
        self.will_message = b""

    def restore(self, persisted: _Persisted) -> None:
        """Resume a persistent session: topic ids and subscriptions (re-announced upward)."""
        self.topic_ids = dict(persisted.topic_ids)
        self.topic_names = {v: k for k, v in self.topic_ids.items()}
        self._next_topic_id = persisted.next_topic_id
        self.subscriptions = dict(persisted.subscriptions)
        # The client may have lost its topic table; REGISTER again before the next PUBLISH.
        self._known_to_client = set()
        for topic_filter, qos in self.subscriptions.items():
            self._events.append(SubscribeUpstream(self.client_id, topic_filter, qos))

    def persisted(self) -> _Persisted:
        """The part of a CleanSession=0 session that outlives the connection."""
        return _Persisted(dict(self.topic_ids), dict(self.subscriptions), self._next_topic_id)

    def snapshot(self) -> dict[str, Any]:
        """What a gateway restart must not lose of this session, as JSON-ready values except
        `address` (the caller's transport address, encoded by the caller). A sleeping or
        waking client's undelivered messages are kept as its buffer; an active client's
        downstream queue is not (the broker connection redelivers nothing of it)."""
        buffer: list[_Downstream] = []
        if self.state in (ASLEEP, AWAKE):
            inflight = self._inflight
            buffer = ([inflight.item] if inflight and inflight.item else []) + self._queue
            buffer += self._buffer
        state = self.state if self.state in (ACTIVE, ASLEEP, AWAKE) else DISCONNECTED
        return {
            "client_id": self.client_id,
            "address": self.address,
            "state": ASLEEP if state == AWAKE else state,
            "keep_alive_s": self.keep_alive_s,
            "sleep_duration_s": self.sleep_duration_s,
            "will": [self.will_topic, self.will_message.hex(), self.will_qos, self.will_retain],
            "subscriptions": dict(self.subscriptions),
            "topic_ids": dict(self.topic_ids),
            "next_topic_id": self._next_topic_id,
            "known_to_client": sorted(self._known_to_client),
            "short_topics": sorted(self._short_topics),
            "buffer": [[m.topic, m.payload.hex(), m.qos, m.retain] for m in buffer],
        }

    def load_snapshot(self, snapshot: dict[str, Any], now: float) -> None:
        """Become the session `snapshot` describes (a live one: ACTIVE or ASLEEP), supervised
        from `now` as if the client had just been heard; subscriptions are re-announced."""
        self.client_id = snapshot["client_id"]
        self.clean_session = False
        self.state = snapshot["state"]
        self.keep_alive_s = int(snapshot["keep_alive_s"])
        self.sleep_duration_s = int(snapshot["sleep_duration_s"])
        will_topic, will_hex, will_qos, will_retain = snapshot["will"]
        self.will_topic, self.will_message = will_topic, bytes.fromhex(will_hex)
        self.will_qos, self.will_retain = int(will_qos), bool(will_retain)
        self.restore(_persisted_from(snapshot))
        self._known_to_client = set(snapshot["known_to_client"])
        self._short_topics = set(snapshot["short_topics"])
        self._buffer = [
            _Downstream(topic, bytes.fromhex(payload), int(qos), bool(retain))
            for topic, payload, qos, retain in snapshot["buffer"]
        ]
        self.last_rx = now
        self.resumed = True
        self.dirty = False

    # ---- downstream ---------------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        while self._inflight is None and self._queue:
            item = self._queue[0]
            ref = self._downstream_ref(item.topic)
            if ref is None:
                topic_id = self._topic_id_for(item.topic)
                msg_id = self._msg_id()
                register = codec.Register(topic_id, msg_id, item.topic)
                self._start(None, register, msg_id, codec.REGACK, now)
                return
            self._queue.pop(0)
            kind, topic_id = ref
            if item.qos <= 0:
                self._send(codec.Publish(topic_id, item.payload, 0, 0, kind, item.retain))
                continue
            msg_id = self._msg_id()
            publish = codec.Publish(topic_id, item.payload, item.qos, msg_id, kind, item.retain)
            reply = codec.PUBACK if item.qos == 1 else codec.PUBREC
            self._start(item, publish, msg_id, reply, now)
        if self._inflight is None and not self._queue and self._pingresp_pending:
            self._pingresp_pending = False
            self._send(codec.Pingresp())
            self.state = ASLEEP
            self.dirty = True

    def _start(
        self,
        item: _Downstream | None,
        msg: codec.Message,
        msg_id: int,
        reply_type: int,
        now: float,
    ) -> None:
        self._inflight = _Inflight(item, msg, msg_id, reply_type, now + self.config.t_retry_s)
        self._send(msg)

    def _downstream_ref(self, topic: str) -> tuple[int, int] | None:
        predefined = self.config.predefined_topics.get(topic)
        if predefined is not None:
            return TOPIC_PREDEFINED, predefined
        if topic in self._short_topics:
            return TOPIC_SHORT, short_topic_id(topic)
        if topic in self._known_to_client:
            return TOPIC_NORMAL, self.topic_ids[topic]
        return None

    def _retransmit(self, inflight: _Inflight, now: float) -> None:
        if inflight.retries >= self.config.n_retry:
            # Give the message up; keep-alive supervision decides whether the client is gone.
            self._inflight = None
            self.counters.dropped += 1
            if inflight.item is None and self._queue:
                self._queue.pop(0)  # the PUBLISH that waited for this REGISTER
                self.counters.dropped += 1
            self._pump(now)
            return
        inflight.retries += 1
        inflight.deadline = now + self.config.t_retry_s
        if isinstance(inflight.message, codec.Publish):
            inflight.message.dup = True
        self.counters.retransmitted += 1
        self._send(inflight.message)

    def _awaiting(self, reply_type: int, msg_id: int) -> _Inflight | None:
        inflight = self._inflight
        if inflight is None or inflight.reply_type != reply_type or inflight.msg_id != msg_id:
            return None
        return inflight

    def _complete(self, now: float) -> None:
        self._inflight = None
        self._pump(now)

    # ---- handlers (one per message type from the client) ------------------------------------

    def _on_connect(self, msg: codec.Connect, now: float) -> None:
        if msg.protocol_id != codec.PROTOCOL_ID_V1_2:
            self._send(codec.Connack(RC_NOT_SUPPORTED))
            return
        if self.client_id and self.client_id != msg.client_id:
            # A new client on a reused address: the old one is gone, without its will.
            self.take_over()
            self.subscriptions = {}  # already unsubscribed upward by take_over
            self._clear_session()
        same_client = self.client_id == msg.client_id
        self.client_id = msg.client_id
        self.clean_session = msg.clean_session
        self.keep_alive_s = msg.duration_s
        self.sleep_duration_s = 0
        self.resumed = False
        if msg.clean_session:
            self._clear_session()
        elif self.pending_restore is not None:
            self.restore(self.pending_restore)
            self.resumed = True
        else:
            self.resumed = same_client
        self.pending_restore = None
        if msg.will:
            self.state = WILL_TOPIC
            self._send(codec.WillTopicReq())
            return
        if msg.clean_session:
            self.will_topic = ""
            self.will_message = b""
        self._accept(now)

    def _accept(self, now: float) -> None:
        self.state = ACTIVE
        self.dirty = True
        self._pingresp_pending = False
        self._send(codec.Connack(RC_ACCEPTED))
        self._events.append(ClientConnected(self.client_id, self.clean_session, self.resumed))
        # Messages buffered while asleep are delivered now that the client is active.
        if self._buffer:
            self._queue.extend(self._buffer)
            self._buffer = []
        self._pump(now)

    def _on_willtopic(self, msg: codec.WillTopic, now: float) -> None:
        if self.state != WILL_TOPIC:
            self.counters.dropped += 1
            return
        if msg.topic and _is_wildcard(msg.topic):
            # MQTT forbids wildcards in a will topic: the broker could never take it.
            self._send(codec.Connack(RC_NOT_SUPPORTED))
            self._end(DISCONNECTED)
            return
        if msg.topic and not self._allowed(ACTION_WILL, msg.topic):
            # As an MQTT broker refuses a CONNECT whose will it may not publish.
            self._deny(ACTION_WILL)
            self._send(codec.Connack(RC_NOT_SUPPORTED))
            self._end(DISCONNECTED)
            return
        self.will_topic = msg.topic
        self.will_qos = msg.qos
        self.will_retain = msg.retain
        if not msg.topic:
            self.will_message = b""
            self._accept(now)
            return
        self.state = WILL_MSG
        self._send(codec.WillMsgReq())

    def _on_willmsg(self, msg: codec.WillMsg, now: float) -> None:
        if self.state != WILL_MSG:
            self.counters.dropped += 1
            return
        self.will_message = bytes(msg.message)
        self._accept(now)

    def _on_willtopicupd(self, msg: codec.WillTopicUpd, now: float) -> None:
        if not self._connected():
            return
        if msg.topic and _is_wildcard(msg.topic):
            self._send(codec.WillTopicResp(RC_NOT_SUPPORTED))
            return
        if msg.topic and not self._allowed(ACTION_WILL, msg.topic):
            self._deny(ACTION_WILL)
            self._send(codec.WillTopicResp(RC_NOT_SUPPORTED))
            return
        self.will_topic = msg.topic
        self.will_qos = msg.qos
        self.will_retain = msg.retain
        if not msg.topic:
            self.will_message = b""
        self.dirty = True
        self._send(codec.WillTopicResp(RC_ACCEPTED))

    def _on_willmsgupd(self, msg: codec.WillMsgUpd, now: float) -> None:
        if not self._connected():
            return
        self.will_message = bytes(msg.message)
        self.dirty = True
        self._send(codec.WillMsgResp(RC_ACCEPTED))

    def _connected(self) -> bool:
        if self.state in _CONNECTED_STATES:
            return True
        # Unknown to us (e.g. after a gateway restart): tell the client to connect again.
        self.counters.dropped += 1
        self._send(codec.Disconnect())
        return False

    def _on_register(self, msg: codec.Register, now: float) -> None:
        if not self._connected():
            return
        topic = msg.topic_name
        if not topic or _is_wildcard(topic):
            self._send(codec.Regack(0, msg.msg_id, RC_NOT_SUPPORTED))
            return
        if not self._publish_allowed(topic) and not self._allowed(ACTION_SUBSCRIBE, topic):
            self._deny(DENIED_REGISTER)
            self._send(codec.Regack(0, msg.msg_id, RC_NOT_SUPPORTED))
            return
        topic_id = self._topic_id_for(topic)
        self._known_to_client.add(topic)
        self.dirty = True
        self._send(codec.Regack(topic_id, msg.msg_id, RC_ACCEPTED))

    def _on_regack(self, msg: codec.Regack, now: float) -> None:
        inflight = self._awaiting(codec.REGACK, msg.msg_id)
        if inflight is None:
            self.counters.dropped += 1
            return
        if msg.return_code == RC_ACCEPTED and isinstance(inflight.message, codec.Register):
            self._known_to_client.add(inflight.message.topic_name)
            self.dirty = True
        elif self._queue:
            self._queue.pop(0)  # the client refuses the topic: its PUBLISH cannot go
            self.counters.dropped += 1
        self._complete(now)

    def _on_publish(self, msg: codec.Publish, now: float) -> None:
        qos = msg.qos
        if qos == -1:
            if msg.topic_id_type == TOPIC_NORMAL:
                self.counters.dropped += 1  # QoS -1 needs a predefined id or short name
                return
            topic = self._resolve(msg.topic_id_type, msg.topic_id)
            if topic is None:
                self.counters.dropped += 1
                return
            if not self._publish_allowed(topic):
                self._deny(ACTION_PUBLISH)
                return
            self._events.append(PublishUpstream(self.client_id, topic, msg.data, 0, msg.retain))
            return
        if not self._connected():
            return
        topic = self._resolve(msg.topic_id_type, msg.topic_id)
        if topic is None:
            self.counters.dropped += 1
            self._send(codec.Puback(msg.topic_id, msg.msg_id, RC_INVALID_TOPIC_ID))
            return
        if not self._publish_allowed(topic):
            # Spec §5.4.12: a refused PUBLISH is answered with PUBACK and a return code.
            self._deny(ACTION_PUBLISH)
            if qos > 0:
                self._send(codec.Puback(msg.topic_id, msg.msg_id, RC_NOT_SUPPORTED))
            return
        if qos == 0:
            self._events.append(PublishUpstream(self.client_id, topic, msg.data, 0, msg.retain))
            return
        if msg.msg_id in self._awaiting_ack:
            return  # a retransmission of a message not yet safe: its ack is on the way
        if qos == 2 and not self._incoming_qos2.is_new(msg.msg_id, now):
            self._send(codec.Pubrec(msg.msg_id))  # accepted before; our PUBREC was lost
            return
        event = PublishUpstream(self.client_id, topic, msg.data, qos, msg.retain, msg.msg_id)
        self._events.append(event)
        if self.config.defer_acks:
            self._awaiting_ack[msg.msg_id] = (qos, msg.topic_id)
        else:
            self._acknowledge(msg.msg_id, qos, msg.topic_id)

    def _acknowledge(self, msg_id: int, qos: int, topic_id: int) -> None:
        if qos == 1:
            self._send(codec.Puback(topic_id, msg_id, RC_ACCEPTED))
        else:
            self._send(codec.Pubrec(msg_id))

    def acknowledge(self, msg_id: int) -> bool:
        """The message `msg_id` is safe: send its PUBACK (QoS 1) or PUBREC (QoS 2). False when
        nothing awaited it (the session was reset meanwhile)."""
        awaiting = self._awaiting_ack.pop(msg_id, None)
        if awaiting is None:
            return False
        self._acknowledge(msg_id, *awaiting)
        return True

    def refuse(self, msg_id: int) -> None:
        """The gateway could not take message `msg_id`: no ack; a retransmission is new."""
        if self._awaiting_ack.pop(msg_id, None) is not None:
            self._incoming_qos2.forget(msg_id)
            self.counters.dropped += 1

    def seed_unreleased(self, msg_ids: list[int], now: float) -> None:
        """QoS 2 message ids accepted before a restart and not yet released: duplicates."""
        for msg_id in msg_ids:
            self._incoming_qos2.is_new(msg_id, now)

    def _on_pubrel(self, msg: codec.Pubrel, now: float) -> None:
        if self._incoming_qos2.release(msg.msg_id, now):
            self._events.append(DeviceReleased(self.client_id, msg.msg_id))
        self._send(codec.Pubcomp(msg.msg_id))

    def _on_puback(self, msg: codec.Puback, now: float) -> None:
        inflight = self._awaiting(codec.PUBACK, msg.msg_id)
        if inflight is None:
            self.counters.dropped += 1
            return
        if msg.return_code == RC_INVALID_TOPIC_ID and inflight.item is not None:
            # The client forgot the topic id: register it again and resend.
            self._known_to_client.discard(inflight.item.topic)
            self._queue.insert(0, inflight.item)
        elif msg.return_code != RC_ACCEPTED:
            self.counters.dropped += 1
        self._complete(now)

    def _on_pubrec(self, msg: codec.Pubrec, now: float) -> None:
        inflight = self._inflight
        if inflight is None or msg.msg_id != inflight.msg_id:
            self.counters.dropped += 1
            self._send(codec.Pubrel(msg.msg_id))  # our PUBCOMP may have been lost
            return
        if inflight.reply_type == codec.PUBREC:
            inflight.message = codec.Pubrel(msg.msg_id)
            inflight.reply_type = codec.PUBCOMP
            inflight.retries = 0
            inflight.deadline = now + self.config.t_retry_s
        self._send(inflight.message)

    def _on_pubcomp(self, msg: codec.Pubcomp, now: float) -> None:
        inflight = self._awaiting(codec.PUBCOMP, msg.msg_id)
        if inflight is None:
            self.counters.dropped += 1
            return
        self._complete(now)

    def _on_subscribe(self, msg: codec.Subscribe, now: float) -> None:
        if not self._connected():
            return
        qos = min(msg.qos, 2)
        kind = msg.topic_id_type
        if kind == TOPIC_NORMAL:
            topic = msg.topic_name
        else:
            resolved = self._resolve(kind, msg.topic_id)
            if resolved is None:
                self._send(codec.Suback(msg.topic_id, msg.msg_id, qos, RC_INVALID_TOPIC_ID))
                return
            topic = resolved
        if not self._allowed(ACTION_SUBSCRIBE, topic):
            self._deny(ACTION_SUBSCRIBE)
            refused_id = 0 if kind == TOPIC_NORMAL else msg.topic_id
            self._send(codec.Suback(refused_id, msg.msg_id, 0, RC_NOT_SUPPORTED))
            return
        if kind == TOPIC_NORMAL:
            topic_id = 0
            if not _is_wildcard(topic):
                topic_id = self._topic_id_for(topic)
                self._known_to_client.add(topic)
        else:
            topic_id = msg.topic_id
            if kind == TOPIC_SHORT:
                self._short_topics.add(topic)
        self.subscriptions[topic] = qos
        self.dirty = True
        self._events.append(SubscribeUpstream(self.client_id, topic, qos))
        self._send(codec.Suback(topic_id, msg.msg_id, qos, RC_ACCEPTED))

    def _on_unsubscribe(self, msg: codec.Unsubscribe, now: float) -> None:
        if not self._connected():
            return
        if msg.topic_id_type == TOPIC_NORMAL:
            topic: str | None = msg.topic_name
        else:
            topic = self._resolve(msg.topic_id_type, msg.topic_id)
        if topic is not None and self.subscriptions.pop(topic, None) is not None:
            self.dirty = True
            self._events.append(UnsubscribeUpstream(self.client_id, topic))
        self._send(codec.Unsuback(msg.msg_id))

    def _on_pingreq(self, msg: codec.Pingreq, now: float) -> None:
        if msg.client_id:
            if self.state not in (ASLEEP, AWAKE) or msg.client_id != self.client_id:
                self.counters.dropped += 1
                self._send(codec.Disconnect())
                return
            # Wake-up: deliver what was buffered, then PINGRESP (sent by _pump).
            self.state = AWAKE
            self.dirty = True
            self._queue.extend(self._buffer)
            self._buffer = []
            self._pingresp_pending = True
            self._pump(now)
            return
        if not self._connected():
            return
        self._send(codec.Pingresp())

    def _on_disconnect(self, msg: codec.Disconnect, now: float) -> None:
        if self.state not in (ACTIVE, AWAKE, ASLEEP):
            self._send(codec.Disconnect())
            return
        self._send(codec.Disconnect())
        if msg.duration_s is not None and msg.duration_s > 0:
            self.state = ASLEEP
            self.dirty = True
            self.sleep_duration_s = msg.duration_s
            # Downstream messages still queued wait in the sleep buffer.
            pending = [self._inflight.item] if self._inflight and self._inflight.item else []
            self._buffer = pending + self._queue + self._buffer
            self._queue = []
            self._inflight = None
            self._pingresp_pending = False
            return
        self._end(DISCONNECTED)
        self._events.append(ClientDisconnected(self.client_id))

    def _on_searchgw(self, msg: codec.SearchGw, now: float) -> None:
        self._send(codec.GwInfo(self.config.gw_id))


_HANDLERS: dict[int, Callable[[GatewaySession, Any, float], None]] = {
    codec.CONNECT: GatewaySession._on_connect,
    codec.WILLTOPIC: GatewaySession._on_willtopic,
    codec.WILLMSG: GatewaySession._on_willmsg,
    codec.WILLTOPICUPD: GatewaySession._on_willtopicupd,
    codec.WILLMSGUPD: GatewaySession._on_willmsgupd,
    codec.REGISTER: GatewaySession._on_register,
    codec.REGACK: GatewaySession._on_regack,
    codec.PUBLISH: GatewaySession._on_publish,
    codec.PUBREL: GatewaySession._on_pubrel,
    codec.PUBACK: GatewaySession._on_puback,
    codec.PUBREC: GatewaySession._on_pubrec,
    codec.PUBCOMP: GatewaySession._on_pubcomp,
    codec.SUBSCRIBE: GatewaySession._on_subscribe,
    codec.UNSUBSCRIBE: GatewaySession._on_unsubscribe,
    codec.PINGREQ: GatewaySession._on_pingreq,
    codec.DISCONNECT: GatewaySession._on_disconnect,
    codec.SEARCHGW: GatewaySession._on_searchgw,
}


class GatewayRegistry:
    """All client sessions of one gateway, keyed by transport address (any hashable).

    Caps the number of sessions at `config.max_clients`, frees a session on DISCONNECT or
    loss (keeping a small record for CleanSession=0 clients), and keeps per-gateway counters
    (`counters`, which include those of freed sessions; `denied`, access-control refusals by
    kind: "connect", "publish", "subscribe", "will", "register"). Every method returns
    `(datagrams, events)` where datagrams are `(address, bytes)` pairs to send in order.
    """

    def __init__(self, config: GatewayConfig | None = None) -> None:
        self.config = config or GatewayConfig()
        self.sessions: dict[Address, GatewaySession] = {}
        self.counters = Counters()  # totals for sessions already freed and for strangers
        self.rejected_clients = 0
        self.denied: dict[str, int] = {}
        self._by_client_id: dict[str, Address] = {}
        self._persisted: dict[str, _Persisted] = {}
        self._subscribers: dict[str, dict[Address, int]] = {}
        # filter -> sessions that subscribed to it recently -> retained topics they were given.
        self._replay: dict[str, dict[Address, _ReplayWatch]] = {}
        self._timers: list[tuple[float, int, Address]] = []
        self._timer_seq = 0
        self._armed: dict[Address, float] = {}

    def subscription_filters(self) -> dict[str, int]:
        """Topic filter -> number of sessions subscribed to it (what the broker side needs)."""
        return {f: len(s) for f, s in self._subscribers.items()}

    def total_counters(self) -> Counters:
        """Gateway totals: freed sessions, strangers and every live session."""
        total = Counters()
        total.add(self.counters)
        for session in self.sessions.values():
            total.add(session.counters)
        return total

    def receive(self, address: Address, datagram: bytes, now: float) -> Output:
        """Handle one datagram from `address`; never raises for anything the client sent."""
        out: list[tuple[Address, bytes]] = []
        events: list[GatewayEvent] = []
        session = self.sessions.get(address)
        try:
            msg = decode(datagram)
        except MqttSnDecodeError:
            counters = session.counters if session is not None else self.counters
            counters.malformed += 1
            if _looks_like(datagram, codec.CONNECT):
                # e.g. a client id over 23 bytes: say no instead of leaving it guessing.
                out.append((address, encode(codec.Connack(RC_NOT_SUPPORTED))))
                counters.sent += 1
            return out, events
        if isinstance(msg, codec.Connect) and not self._may_connect(msg, session):
            out.append((address, encode(codec.Connack(RC_NOT_SUPPORTED))))
            return out, events
        if session is None:
            if msg.msg_type == codec.SEARCHGW:
                self.counters.received += 1
                self.counters.sent += 1
                out.append((address, encode(codec.GwInfo(self.config.gw_id))))
                return out, events
            if len(self.sessions) >= self.config.max_clients:
                self.rejected_clients += 1
                self.counters.received += 1
                self.counters.dropped += 1
                if msg.msg_type == codec.CONNECT:
                    self.counters.sent += 1
                    out.append((address, encode(codec.Connack(RC_CONGESTION))))
                return out, events
            session = GatewaySession(address, self.config, self.denied)
            self.sessions[address] = session
        previous_client = session.client_id
        if isinstance(msg, codec.Connect):
            self._prepare_connect(session, msg, out, events, now)
        session.handle(msg, now)
        if previous_client != session.client_id:
            if self._by_client_id.get(previous_client) == address:
                del self._by_client_id[previous_client]
            if session.client_id:
                self._by_client_id[session.client_id] = address
        self._collect(session, out, events, now)
        return out, events

    def acknowledge(self, client_id: str, msg_id: int) -> Output:
        """Message `msg_id` of `client_id` is safe (see `GatewayConfig.defer_acks`): its
        PUBACK or PUBREC goes out now. Nothing when the client left or reset meanwhile."""
        return self._with_client(client_id, lambda session: session.acknowledge(msg_id))

    def refuse(self, client_id: str, msg_id: int) -> Output:
        """The gateway cannot take message `msg_id` of `client_id` (e.g. its spool is full):
        no acknowledgement; the device's retransmission will be treated as new."""
        return self._with_client(client_id, lambda session: session.refuse(msg_id))

    def _with_client(self, client_id: str, action: Callable[[GatewaySession], object]) -> Output:
        out: list[tuple[Address, bytes]] = []
        events: list[GatewayEvent] = []
        address = self._by_client_id.get(client_id)
        session = self.sessions.get(address) if address is not None else None
        if session is not None:
            action(session)
            datagrams, new_events = session.take_output()
            out.extend((session.address, datagram) for datagram in datagrams)
            events.extend(new_events)
        return out, events

    def restore_sessions(
        self,
        snapshots: list[dict[str, Any]],
        unreleased_qos2: dict[str, list[int]],
        now: float,
    ) -> Output:
        """After a gateway restart: recreate the stored CleanSession=0 sessions (live ones at
        their address, supervised from `now`; disconnected ones awaiting their client's
        CONNECT) and mark the QoS 2 message ids accepted before the restart and not yet
        released as duplicates. Call before the first `receive`."""
        out: list[tuple[Address, bytes]] = []
        events: list[GatewayEvent] = []
        for snapshot in snapshots:
            client_id = snapshot["client_id"]
            if snapshot["state"] not in (ACTIVE, ASLEEP):
                self._persisted[client_id] = _persisted_from(snapshot)
                continue
            session = GatewaySession(snapshot["address"], self.config, self.denied)
            session.load_snapshot(snapshot, now)
            session.seed_unreleased(unreleased_qos2.get(client_id, []), now)
            self.sessions[session.address] = session
            self._by_client_id[client_id] = session.address
            self._collect(session, out, events, now)
        return out, events

    def answer_search(self, datagram: bytes) -> tuple[bytes, int] | None:
        """A datagram heard on the discovery (multicast) group: for a SEARCHGW, the GWINFO to
        send to the group and the SEARCHGW's radius (hops; at least 1); None for anything
        else (other devices' GWINFO, ADVERTISE, noise), which is not counted as an error."""
        try:
            msg = decode(datagram)
        except MqttSnDecodeError:
            return None
        if not isinstance(msg, codec.SearchGw):
            return None
        self.counters.received += 1
        self.counters.sent += 1
        return encode(codec.GwInfo(self.config.gw_id)), max(1, msg.radius)

    def deliver_downstream(
        self, topic: str, payload: bytes, qos: int, retain: bool, now: float
    ) -> Output:
        """Route one broker message (qos 0-2) to the subscribed sessions, capped per grant.

        A live message (retain=0) goes to every session subscribed to a matching filter. An
        MQTT 3.1.1 broker sets retain=1 only on the retained messages it replays for a new
        SUBSCRIBE (§3.3.1.3), and the shared connection re-SUBSCRIBEs a filter for each device
        that subscribes to it; so a retain=1 message goes only to sessions that subscribed to
        a matching filter within `retained_replay_window_s` seconds and have not had that topic
        since (live or replayed), never again to the subscribers that already had it.
        """
        out: list[tuple[Address, bytes]] = []
        events: list[GatewayEvent] = []
        if retain:
            targets = self._replay_targets(topic, now)
        else:
            targets = {}
            for topic_filter, subscribers in self._subscribers.items():
                if not topic_matches(topic_filter, topic):
                    continue
                for address, granted in subscribers.items():
                    if granted > targets.get(address, -1):
                        targets[address] = granted
            if self._replay:
                self._replay_targets(topic, now)  # a replay of this topic is stale for them
        for address, granted in targets.items():
            session = self.sessions.get(address)
            if session is None:
                continue
            session.deliver(topic, payload, min(qos, granted), retain, now)
            self._collect(session, out, events, now)
        return out, events

    def next_deadline(self) -> float | None:
        """The earliest time (seconds) at which `tick` has work, or None."""
        while self._timers:
            when, _, address = self._timers[0]
            if self._armed.get(address) == when and address in self.sessions:
                return when
            heapq.heappop(self._timers)  # stale: the session moved its deadline or left
        return None

    def tick(self, now: float) -> Output:
        """Run every timer that is due at `now`."""
        out: list[tuple[Address, bytes]] = []
        events: list[GatewayEvent] = []
        while self._timers and self._timers[0][0] <= now:
            when, _, address = heapq.heappop(self._timers)
            if self._armed.get(address) != when:
                continue
            del self._armed[address]
            session = self.sessions.get(address)
            if session is None:
                continue
            session.tick(now)
            self._collect(session, out, events, now)
        return out, events

    # ---- internals ----------------------------------------------------------------------------

    def _may_connect(self, msg: codec.Connect, session: GatewaySession | None) -> bool:
        # Checked before a session exists, so a refused client id costs no slot.
        authorize = self.config.authorize
        if authorize is None or authorize(msg.client_id, ACTION_CONNECT, ""):
            return True
        counters = session.counters if session is not None else self.counters
        counters.received += 1
        counters.sent += 1
        counters.denied += 1
        self.denied[ACTION_CONNECT] = self.denied.get(ACTION_CONNECT, 0) + 1
        return False

    def _replay_targets(self, topic: str, now: float) -> dict[Address, int]:
        """Sessions awaiting a retained `topic` -> granted QoS; marks the topic as had."""
        targets: dict[Address, int] = {}
        for topic_filter, watchers in list(self._replay.items()):
            if not topic_matches(topic_filter, topic):
                continue
            subscribers = self._subscribers.get(topic_filter, {})
            for address, watch in list(watchers.items()):
                if watch.until < now:
                    del watchers[address]
                    continue
                if topic in watch.had:
                    continue
                watch.had.add(topic)
                granted = subscribers.get(address)
                if granted is not None and granted > targets.get(address, -1):
                    targets[address] = granted
            if not watchers:
                del self._replay[topic_filter]
        return targets

    def _forget_replay(self, topic_filter: str, address: Address) -> None:
        watchers = self._replay.get(topic_filter)
        if watchers is not None:
            watchers.pop(address, None)
            if not watchers:
                del self._replay[topic_filter]

    def _prepare_connect(
        self,
        session: GatewaySession,
        msg: codec.Connect,
        out: list[tuple[Address, bytes]],
        events: list[GatewayEvent],
        now: float,
    ) -> None:
        other = self._by_client_id.get(msg.client_id)
        if other is not None and other != session.address:
            # The client came back from another address: that session is over (no will).
            old = self.sessions.get(other)
            if old is not None:
                old.take_over()
                self._collect(old, out, events, now)
        persisted = self._persisted.pop(msg.client_id, None)
        if persisted is not None and not msg.clean_session:
            session.pending_restore = persisted

    def _collect(
        self,
        session: GatewaySession,
        out: list[tuple[Address, bytes]],
        events: list[GatewayEvent],
        now: float,
    ) -> None:
        datagrams, new_events = session.take_output()
        address = session.address
        for datagram in datagrams:
            out.append((address, datagram))
        for event in new_events:
            if isinstance(event, SubscribeUpstream):
                self._subscribers.setdefault(event.topic_filter, {})[address] = event.qos
                watch = _ReplayWatch(now + self.config.retained_replay_window_s)
                self._replay.setdefault(event.topic_filter, {})[address] = watch
            elif isinstance(event, UnsubscribeUpstream):
                self._forget_replay(event.topic_filter, address)
                subscribers = self._subscribers.get(event.topic_filter)
                if subscribers is not None:
                    subscribers.pop(address, None)
                    if not subscribers:
                        del self._subscribers[event.topic_filter]
        events.extend(new_events)
        if session.dirty and self.config.track_sessions and session.client_id:
            session.dirty = False
            stored = None if session.clean_session else session.snapshot()
            events.append(SessionChanged(session.client_id, stored))
        if session.state in (DISCONNECTED, LOST) or (
            session.state == NEW and not session.client_id
        ):
            if session.state != NEW and not session.clean_session and session.client_id:
                self._persist(session)
            self._free(session)
            return
        self._arm(session)

    def _persist(self, session: GatewaySession) -> None:
        self._persisted.pop(session.client_id, None)
        while len(self._persisted) >= self.config.max_persisted_sessions:
            del self._persisted[next(iter(self._persisted))]  # oldest first
        record = session.persisted()
        # Subscriptions were dropped upward when the client left; keep them for the resume.
        record.subscriptions = dict(session.subscriptions)
        self._persisted[session.client_id] = record

    def _free(self, session: GatewaySession) -> None:
        address = session.address
        if self.sessions.get(address) is session:
            del self.sessions[address]
            self.counters.add(session.counters)
        self._armed.pop(address, None)
        if self._by_client_id.get(session.client_id) == address:
            del self._by_client_id[session.client_id]
        for subscribers in self._subscribers.values():
            subscribers.pop(address, None)
        for topic_filter in [f for f, watchers in self._replay.items() if address in watchers]:
            self._forget_replay(topic_filter, address)

    def _arm(self, session: GatewaySession) -> None:
        deadline = session.next_deadline()
        if deadline is None:
            self._armed.pop(session.address, None)
            return
        armed = self._armed.get(session.address)
        if armed is not None and armed <= deadline:
            return  # an earlier timer is queued; tick re-arms from the session then
        self._armed[session.address] = deadline
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, session.address))


def _looks_like(datagram: bytes | bytearray | memoryview, msg_type: int) -> bool:
    raw = bytes(datagram[:4])
    if len(raw) >= 2 and raw[0] != 0x01:
        return raw[1] == msg_type
    return len(raw) >= 4 and raw[3] == msg_type
