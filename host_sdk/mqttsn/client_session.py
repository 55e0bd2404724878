"""MQTT-SN v1.2 client state machine, sans-IO: bytes and a clock in, datagrams and events out.

Responsible for the client side of the protocol: CONNECT (with the will flow), REGISTER,
PUBLISH at QoS -1/0/1/2 with retransmission (T_RETRY, N_RETRY) and one request in flight,
exactly-once reception of QoS 2, SUBSCRIBE/UNSUBSCRIBE (including REGISTERs the gateway starts
for wildcard subscriptions), keep-alive and gateway-loss detection, sleep and wake, and
gateway discovery. After a reconnect it finishes what the gateway may not have: an
unacknowledged QoS 1/2 PUBLISH is sent again with its message id and DUP set, a QoS 2 one that
had its PUBREC gets its PUBREL again, and a clean session re-SUBSCRIBEs what it had subscribed
(a persistent session, CleanSession=0, trusts the gateway to have kept them: MQTT-SN 1.2's
CONNACK cannot say otherwise). DISCONNECT waits (bounded) for the PUBRELs of QoS 2 messages
received and acknowledged with PUBREC, so the gateway's exchange completes.

Every method takes `now` (seconds, float, any monotonic origin) and returns
`(datagrams, events)`: the datagrams go to the gateway (SEARCHGW to the broadcast address) in
order, the events go to the application. It must not do I/O, sleep, use threads or read a
clock; the caller calls `tick(now)` no later than `next_deadline()`.

This file runs unchanged on MicroPython (the MicroPython firmware client uses it).
"""

try:
    from host_sdk.mqttsn.codec import (
        CONNACK,
        DISCONNECT,
        PINGRESP,
        PUBACK,
        PUBCOMP,
        PUBREC,
        RC_ACCEPTED,
        RC_CONGESTION,
        RC_INVALID_TOPIC_ID,
        REGACK,
        SUBACK,
        TOPIC_NORMAL,
        TOPIC_PREDEFINED,
        TOPIC_SHORT,
        UNSUBACK,
        WILLMSGRESP,
        WILLTOPICRESP,
        Advertise,
        Connack,
        Connect,
        Disconnect,
        GwInfo,
        Message,
        MqttSnDecodeError,
        Pingreq,
        Pingresp,
        Puback,
        Pubcomp,
        Publish,
        Pubrec,
        Pubrel,
        Regack,
        Register,
        SearchGw,
        Suback,
        Subscribe,
        Unsuback,
        Unsubscribe,
        WillMsg,
        WillMsgReq,
        WillMsgResp,
        WillMsgUpd,
        WillTopic,
        WillTopicReq,
        WillTopicResp,
        WillTopicUpd,
        decode,
        encode,
        short_topic_id,
        short_topic_name,
    )
    from host_sdk.mqttsn.qos2 import Qos2Dedup
except ImportError:  # MicroPython firmware: the modules sit flat on the module path
    from codec import *  # type: ignore[import-not-found]  # noqa: F403
    from qos2 import Qos2Dedup  # type: ignore[import-not-found,no-redef]

# Spec §7.2 defaults (seconds / counts).
T_RETRY_S = 10.0
N_RETRY = 3
T_WAIT_S = 300.0
T_SEARCHGW_S = 5.0

# Session states.
DISCONNECTED = "disconnected"
CONNECTING = "connecting"
ACTIVE = "active"
ASLEEP = "asleep"
AWAKE = "awake"
LOST = "lost"


class ClientEvent:
    """Base of the events a ClientSession reports; equality and repr over `__slots__`."""

    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        parts = [f"{name}={getattr(self, name)!r}" for name in self.__slots__]
        return type(self).__name__ + "(" + ", ".join(parts) + ")"


class Connected(ClientEvent):
    """CONNACK accepted: the session is active."""

    __slots__ = ()


class ConnectRejected(ClientEvent):
    """CONNACK with a return code other than accepted or congestion."""

    __slots__ = ("return_code",)

    def __init__(self, return_code: int) -> None:
        self.return_code = return_code


class Disconnected(ClientEvent):
    """The session ended: our DISCONNECT was answered (`by_gateway` False), or the gateway
    sent one on its own (`by_gateway` True: it dropped or does not know the session; connect
    again)."""

    __slots__ = ("by_gateway",)

    def __init__(self, by_gateway: bool = False) -> None:
        self.by_gateway = by_gateway


class GatewayLost(ClientEvent):
    """N_RETRY retransmissions went unanswered; connect again (maybe to another gateway)."""

    __slots__ = ()


class GatewayFound(ClientEvent):
    """ADVERTISE or GWINFO; `duration_s` is the ADVERTISE period (0 for GWINFO)."""

    __slots__ = ("duration_s", "gw_address", "gw_id")

    def __init__(self, gw_id: int, gw_address: bytes, duration_s: int) -> None:
        self.gw_id = gw_id
        self.gw_address = gw_address
        self.duration_s = duration_s


class Registered(ClientEvent):
    """A topic name has a topic id (our REGISTER was acknowledged)."""

    __slots__ = ("topic", "topic_id")

    def __init__(self, topic: str, topic_id: int) -> None:
        self.topic = topic
        self.topic_id = topic_id


class RequestRejected(ClientEvent):
    """The gateway rejected a REGISTER, PUBLISH or SUBSCRIBE for `topic`."""

    __slots__ = ("kind", "return_code", "topic")

    def __init__(self, kind: str, topic: str, return_code: int) -> None:
        self.kind = kind
        self.topic = topic
        self.return_code = return_code


class PublishDone(ClientEvent):
    """A QoS 1 PUBLISH was acknowledged (PUBACK) or a QoS 2 one completed (PUBCOMP)."""

    __slots__ = ("msg_id", "qos", "topic")

    def __init__(self, topic: str, msg_id: int, qos: int) -> None:
        self.topic = topic
        self.msg_id = msg_id
        self.qos = qos


class MessageReceived(ClientEvent):
    """An application message from the gateway (QoS 2 ones are reported exactly once)."""

    __slots__ = ("payload", "qos", "retain", "topic")

    def __init__(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain


class Subscribed(ClientEvent):
    """SUBACK accepted; `topic_id` is 0 for a wildcard filter."""

    __slots__ = ("granted_qos", "topic", "topic_id")

    def __init__(self, topic: str, topic_id: int, granted_qos: int) -> None:
        self.topic = topic
        self.topic_id = topic_id
        self.granted_qos = granted_qos


class Unsubscribed(ClientEvent):
    """UNSUBACK received."""

    __slots__ = ("topic",)

    def __init__(self, topic: str) -> None:
        self.topic = topic


class SleepStarted(ClientEvent):
    """The gateway confirmed DISCONNECT(duration): the client may sleep for `duration_s`."""

    __slots__ = ("duration_s",)

    def __init__(self, duration_s: int) -> None:
        self.duration_s = duration_s


class WillUpdated(ClientEvent):
    """The gateway accepted WILLTOPICUPD (and WILLMSGUPD); `return_code` 0 means accepted."""

    __slots__ = ("return_code",)

    def __init__(self, return_code: int) -> None:
        self.return_code = return_code


class WakeDone(ClientEvent):
    """PINGRESP after a wake-up PINGREQ: the buffered messages are delivered; sleep again."""

    __slots__ = ()


class _Request:
    # The one request in flight: its message, the reply type it waits for, and its timer.
    __slots__ = ("deadline", "message", "msg_id", "op", "reply_type", "retries")

    def __init__(
        self, op: "tuple", message: Message, msg_id: int, reply_type: int, deadline: float
    ) -> None:
        self.op = op
        self.message = message
        self.msg_id = msg_id
        self.reply_type = reply_type
        self.deadline = deadline
        self.retries = 0


def _is_wildcard(topic: str) -> bool:
    return "+" in topic or "#" in topic


class ClientSession:
    """One MQTT-SN client talking to one gateway.

    `keep_alive_s`, `t_retry_s`, `t_wait_s`, `t_searchgw_s` are seconds; `n_retry` counts
    retransmissions before the gateway is declared lost. `predefined_topics` maps topic names
    to the predefined topic ids agreed with the gateway. `resubscribe`: after a reconnect with
    CleanSession=1, SUBSCRIBE again to every filter still subscribed (before queued work).
    Wrong arguments raise ValueError.
    """

    def __init__(
        self,
        client_id: str,
        keep_alive_s: int = 60,
        clean_session: bool = True,
        will_topic: str = "",
        will_message: bytes = b"",
        will_qos: int = 0,
        will_retain: bool = False,
        predefined_topics: "dict[str, int] | None" = None,
        t_retry_s: float = T_RETRY_S,
        n_retry: int = N_RETRY,
        t_wait_s: float = T_WAIT_S,
        t_searchgw_s: float = T_SEARCHGW_S,
        resubscribe: bool = True,
    ) -> None:
        if not 1 <= len(client_id.encode()) <= 23:
            raise ValueError(f"client_id {client_id!r}: expected 1..23 bytes")
        if not 0 <= keep_alive_s <= 0xFFFF:
            raise ValueError(f"keep_alive_s {keep_alive_s!r}: expected 0..65535 seconds")
        self.client_id = client_id
        self.keep_alive_s = keep_alive_s
        self.clean_session = clean_session
        self.will_topic = will_topic
        self.will_message = will_message
        self.will_qos = will_qos
        self.will_retain = will_retain
        self.predefined_topics = dict(predefined_topics or {})
        self._predefined_names = {v: k for k, v in self.predefined_topics.items()}
        self.t_retry_s = t_retry_s
        self.n_retry = n_retry
        self.t_wait_s = t_wait_s
        self.t_searchgw_s = t_searchgw_s
        self.resubscribe = resubscribe
        self.state = DISCONNECTED
        # Counters (never reset): datagrams sent/received, malformed ones, retransmissions.
        self.sent = 0
        self.received = 0
        self.malformed = 0
        self.retransmitted = 0
        self._topic_ids: dict[str, int] = {}
        self._topic_names: dict[int, str] = {}
        self._queue: list[tuple] = []
        self._inflight: _Request | None = None
        self._incoming_qos2 = Qos2Dedup(t_retry_s * (n_retry + 1))
        # QoS 2 message ids we answered with PUBREC and whose PUBREL has not come yet.
        self._awaiting_pubrel: set[int] = set()
        # Filters subscribed (topic -> requested QoS), for re-SUBSCRIBE after a clean reconnect.
        self._subscriptions: dict[str, int] = {}
        self._ever_connected = False
        # DISCONNECT held back for awaited PUBRELs until this time (seconds), then sent anyway.
        self._disconnect_hold: float | None = None
        self._next_msg_id = 0
        self._last_tx = 0.0
        self._now = 0.0
        self._search_deadline: float | None = None
        self._search_radius = 0
        self._out: list[bytes] = []
        self._events: list[ClientEvent] = []

    # ---- application API -----------------------------------------------------------------

    def connect(self, now: float) -> "tuple[list[bytes], list[ClientEvent]]":
        """Start (or restart) the CONNECT exchange; Connected follows on success."""
        self._now = now
        if self.clean_session:
            self._topic_ids = {}
            self._topic_names = {}
            self._incoming_qos2.clear()
            self._awaiting_pubrel = set()
        self._put_back_inflight()
        self.state = CONNECTING
        connect = Connect(
            self.client_id,
            self.keep_alive_s,
            will=bool(self.will_topic),
            clean_session=self.clean_session,
        )
        self._send_request(("connect",), connect, CONNACK, now)
        return self._flush()

    def register(self, topic: str, now: float) -> "tuple[list[bytes], list[ClientEvent]]":
        """Queue a REGISTER of `topic` (a plain name, no wildcards); Registered follows."""
        self._now = now
        if _is_wildcard(topic) or not topic:
            raise ValueError(f"register {topic!r}: topic names must be non-empty, no wildcards")
        self._queue.append(("register", topic))
        self._pump(now)
        return self._flush()

    def publish(
        self, topic: str, payload: bytes, qos: int, now: float, retain: bool = False
    ) -> "tuple[list[bytes], list[ClientEvent]]":
        """Publish `payload` to `topic` at QoS -1, 0, 1 or 2.

        QoS -1 needs a predefined topic or a 2-character short name and no connection; it
        is sent at once. QoS 0 is sent at once when the topic id is known, else queued
        behind a REGISTER. QoS 1 and 2 are queued, one in flight; PublishDone follows.
        """
        self._now = now
        if qos not in (-1, 0, 1, 2):
            raise ValueError(f"publish {topic!r}: qos {qos!r}: expected -1, 0, 1 or 2")
        if _is_wildcard(topic) or not topic:
            raise ValueError(f"publish {topic!r}: topic names must be non-empty, no wildcards")
        if qos == -1:
            ref = self._static_topic_ref(topic)
            if ref is None:
                raise ValueError(
                    f"publish {topic!r} at QoS -1: needs a predefined topic or a 2-char short name"
                )
            self._send(Publish(ref[1], payload, -1, 0, ref[0], retain))
            return self._flush()
        if qos == 0 and self.state in (ACTIVE, AWAKE) and self._inflight is None:
            ref = self._topic_ref(topic)
            if ref is not None:
                self._send(Publish(ref[1], payload, 0, 0, ref[0], retain))
                return self._flush()
        self._queue.append(("publish", topic, bytes(payload), qos, retain))
        self._pump(now)
        return self._flush()

    def subscribe(
        self, topic: str, qos: int, now: float
    ) -> "tuple[list[bytes], list[ClientEvent]]":
        """Queue a SUBSCRIBE to `topic` (wildcards allowed) at `qos` 0-2; Subscribed follows."""
        self._now = now
        if qos not in (0, 1, 2) or not topic:
            raise ValueError(f"subscribe {topic!r}: qos {qos!r}: expected a topic and qos 0..2")
        self._queue.append(("subscribe", topic, qos))
        self._pump(now)
        return self._flush()

    def unsubscribe(self, topic: str, now: float) -> "tuple[list[bytes], list[ClientEvent]]":
        """Queue an UNSUBSCRIBE from `topic`; Unsubscribed follows."""
        self._now = now
        # Forgotten now, so a reconnect before the UNSUBACK does not subscribe it again.
        self._subscriptions.pop(topic, None)
        self._queue.append(("unsubscribe", topic))
        self._pump(now)
        return self._flush()

    def disconnect(self, now: float) -> "tuple[list[bytes], list[ClientEvent]]":
        """Queue a DISCONNECT; Disconnected follows. The gateway does not publish the will.

        It goes after the queued work, and once every QoS 2 message received has had its
        PUBREL (or t_retry_s x (n_retry + 1) seconds have passed waiting for them).
        """
        self._now = now
        self._queue.append(("disconnect", None))
        self._pump(now)
        return self._flush()

    def sleep(self, duration_s: int, now: float) -> "tuple[list[bytes], list[ClientEvent]]":
        """Queue DISCONNECT(duration_s); SleepStarted follows. Wake within `duration_s` s."""
        self._now = now
        if not 1 <= duration_s <= 0xFFFF:
            raise ValueError(f"sleep duration_s {duration_s!r}: expected 1..65535 seconds")
        self._queue.append(("disconnect", duration_s))
        self._pump(now)
        return self._flush()

    def wake(self, now: float) -> "tuple[list[bytes], list[ClientEvent]]":
        """While asleep: PINGREQ(client id); buffered messages arrive, then WakeDone."""
        self._now = now
        if self.state != ASLEEP:
            raise ValueError(f"wake: the session is {self.state}, not asleep")
        self.state = AWAKE
        self._send_request(("wake",), Pingreq(self.client_id), PINGRESP, now)
        return self._flush()

    def update_will(
        self, topic: str, message: bytes, now: float, qos: int = 0, retain: bool = False
    ) -> "tuple[list[bytes], list[ClientEvent]]":
        """Queue WILLTOPICUPD (+ WILLMSGUPD); an empty `topic` deletes the will.

        WillUpdated follows.
        """
        self._now = now
        if qos not in (0, 1, 2):
            raise ValueError(f"update_will {topic!r}: qos {qos!r}: expected 0, 1 or 2")
        self.will_topic = topic
        self.will_message = bytes(message) if topic else b""
        self.will_qos = qos
        self.will_retain = retain
        self._queue.append(("willupdate", topic, self.will_message, qos, retain))
        self._pump(now)
        return self._flush()

    def search_gateway(
        self, now: float, radius: int = 1
    ) -> "tuple[list[bytes], list[ClientEvent]]":
        """Broadcast SEARCHGW now and every t_searchgw_s until a GWINFO or ADVERTISE arrives.

        The spec asks for a random delay of 0..T_SEARCHGW before the first SEARCHGW; the
        caller (which owns the randomness) applies it by choosing when to call this.
        """
        self._now = now
        self._search_radius = radius
        self._search_deadline = now + self.t_searchgw_s
        self._send(SearchGw(radius))
        return self._flush()

    def next_deadline(self) -> "float | None":
        """The time (seconds, same clock as `now`) by which `tick` must be called, or None."""
        deadline = self._search_deadline
        candidate: float | None = None
        if self._inflight is not None:
            candidate = self._inflight.deadline
        elif self.state == ACTIVE and self.keep_alive_s > 0:
            candidate = self._last_tx + self.keep_alive_s
        if candidate is not None and (deadline is None or candidate < deadline):
            deadline = candidate
        hold = self._disconnect_hold
        if hold is not None and self._inflight is None and (deadline is None or hold < deadline):
            deadline = hold
        return deadline

    def tick(self, now: float) -> "tuple[list[bytes], list[ClientEvent]]":
        """Run the timers: retransmissions, keep-alive PINGREQ, SEARCHGW repeats."""
        self._now = now
        if self._search_deadline is not None and now >= self._search_deadline:
            self._search_deadline = now + self.t_searchgw_s
            self._send(SearchGw(self._search_radius))
        request = self._inflight
        if request is not None:
            if now >= request.deadline:
                self._retransmit(request, now)
        elif self._keep_alive_due(now):
            self._send_request(("ping",), Pingreq(), PINGRESP, now)
        else:
            self._pump(now)  # a DISCONNECT held for PUBRELs may be due
        return self._flush()

    def pending(self) -> int:
        """Requests queued or in flight, plus QoS 2 receptions awaiting their PUBREL."""
        return len(self._queue) + (self._inflight is not None) + len(self._awaiting_pubrel)

    def subscriptions(self) -> "dict[str, int]":
        """The filters this session has subscribed (topic -> requested QoS)."""
        return dict(self._subscriptions)

    def _keep_alive_due(self, now: float) -> bool:
        return (
            self.state == ACTIVE
            and self.keep_alive_s > 0
            and now >= self._last_tx + self.keep_alive_s
        )

    def receive(self, datagram: bytes, now: float) -> "tuple[list[bytes], list[ClientEvent]]":
        """Handle one datagram from the gateway; malformed ones are counted and ignored."""
        self._now = now
        try:
            msg = decode(datagram)
        except MqttSnDecodeError:
            self.malformed += 1
            return self._flush()
        self.received += 1
        self._handle(msg, now)
        return self._flush()

    # ---- internals ---------------------------------------------------------------------------

    def _flush(self) -> "tuple[list[bytes], list[ClientEvent]]":
        out, events = self._out, self._events
        self._out = []
        self._events = []
        return out, events

    def _send(self, msg: Message) -> None:
        # Anything sent counts as keep-alive traffic for the gateway's supervision.
        self._out.append(encode(msg))
        self._last_tx = self._now
        self.sent += 1

    def _send_request(
        self, op: "tuple", msg: Message, reply_type: int, now: float, msg_id: int = 0
    ) -> None:
        self._inflight = _Request(op, msg, msg_id, reply_type, now + self.t_retry_s)
        self._last_tx = now
        self._send(msg)

    def _msg_id(self) -> int:
        self._next_msg_id = self._next_msg_id % 0xFFFF + 1
        return self._next_msg_id

    def _static_topic_ref(self, topic: str) -> "tuple[int, int] | None":
        topic_id = self.predefined_topics.get(topic)
        if topic_id is not None:
            return TOPIC_PREDEFINED, topic_id
        if len(topic.encode()) == 2:
            return TOPIC_SHORT, short_topic_id(topic)
        return None

    def _topic_ref(self, topic: str) -> "tuple[int, int] | None":
        ref = self._static_topic_ref(topic)
        if ref is not None:
            return ref
        topic_id = self._topic_ids.get(topic)
        if topic_id is not None:
            return TOPIC_NORMAL, topic_id
        return None

    def _learn_topic(self, topic: str, topic_id: int) -> None:
        self._topic_ids[topic] = topic_id
        self._topic_names[topic_id] = topic

    def _forget_topic(self, topic: str) -> None:
        topic_id = self._topic_ids.pop(topic, None)
        if topic_id is not None:
            self._topic_names.pop(topic_id, None)

    def _put_back_inflight(self) -> None:
        request = self._inflight
        self._inflight = None
        if request is not None:
            self._requeue(request)

    def _requeue(self, request: _Request) -> None:
        # A request that lost its gateway goes back to the queue so that nothing is lost. A
        # PUBLISH keeps its message id (sent again with DUP, so a gateway that kept the session
        # can tell it is a copy); after PUBREC only the PUBREL is sent again.
        op = request.op
        kind = op[0]
        if kind == "publish" and request.reply_type == PUBCOMP:
            self._queue.insert(0, ("pubrel", op[1], request.msg_id))
        elif kind == "publish":
            # Concatenation, not (*op, x): MicroPython has no unpacking in tuple displays.
            self._queue.insert(0, op[:5] + (request.msg_id,))  # noqa: RUF005
        elif kind in ("pubrel", "register", "subscribe", "unsubscribe"):
            self._queue.insert(0, op)

    def _pump(self, now: float) -> None:
        # Start queued requests while nothing is in flight (spec: one outstanding request).
        while self._inflight is None and self._queue and self.state in (ACTIVE, AWAKE):
            op = self._queue[0]
            kind = op[0]
            if kind == "publish":
                topic, payload, qos, retain = op[1], op[2], op[3], op[4]
                ref = self._topic_ref(topic)
                if ref is None:
                    msg_id = self._msg_id()
                    register = Register(0, msg_id, topic)
                    self._send_request(("implicit-register", topic), register, REGACK, now, msg_id)
                    continue
                self._queue.pop(0)
                if qos == 0:
                    self._send(Publish(ref[1], payload, 0, 0, ref[0], retain))
                    continue
                again = len(op) > 5  # a copy of one sent before a reconnect
                msg_id = op[5] if again else self._msg_id()
                publish = Publish(ref[1], payload, qos, msg_id, ref[0], retain, dup=again)
                self._send_request(op[:5], publish, PUBACK if qos == 1 else PUBREC, now, msg_id)
            elif kind == "pubrel":
                self._queue.pop(0)
                self._send_request(op, Pubrel(op[2]), PUBCOMP, now, op[2])
            elif kind == "register":
                self._queue.pop(0)
                msg_id = self._msg_id()
                self._send_request(op, Register(0, msg_id, op[1]), REGACK, now, msg_id)
            elif kind == "subscribe":
                self._queue.pop(0)
                topic, qos = op[1], op[2]
                ref = None if _is_wildcard(topic) else self._static_topic_ref(topic)
                msg_id = self._msg_id()
                if ref is None:
                    sub = Subscribe(msg_id, topic, 0, TOPIC_NORMAL, qos)
                else:
                    sub = Subscribe(msg_id, "", ref[1], ref[0], qos)
                self._send_request(op, sub, SUBACK, now, msg_id)
            elif kind == "unsubscribe":
                self._queue.pop(0)
                topic = op[1]
                ref = None if _is_wildcard(topic) else self._static_topic_ref(topic)
                msg_id = self._msg_id()
                if ref is None:
                    unsub = Unsubscribe(msg_id, topic, 0, TOPIC_NORMAL)
                else:
                    unsub = Unsubscribe(msg_id, "", ref[1], ref[0])
                self._send_request(op, unsub, UNSUBACK, now, msg_id)
            elif kind == "willupdate":
                self._queue.pop(0)
                upd = WillTopicUpd(op[1], op[3], op[4])
                self._send_request(op, upd, WILLTOPICRESP, now)
            else:  # disconnect
                if self._awaiting_pubrel:
                    if self._disconnect_hold is None:
                        self._disconnect_hold = now + self.t_retry_s * (self.n_retry + 1)
                    if now < self._disconnect_hold:
                        return  # tick() or the PUBREL starts it
                self._disconnect_hold = None
                self._queue.pop(0)
                self._send_request(op, Disconnect(op[1]), DISCONNECT, now)

    def _retransmit(self, request: _Request, now: float) -> None:
        if request.retries >= self.n_retry:
            self._inflight = None
            if request.op[0] == "disconnect":
                # The gateway will time the session out on its own; we are done with it.
                self.state = DISCONNECTED
                self._events.append(Disconnected())
                return
            self._requeue(request)
            self.state = LOST
            self._events.append(GatewayLost())
            return
        request.retries += 1
        request.deadline = now + self.t_retry_s
        msg = request.message
        if isinstance(msg, Publish):
            msg.dup = True
        self._last_tx = now
        self.retransmitted += 1
        self._send(msg)

    def _complete(self, now: float) -> None:
        self._inflight = None
        self._pump(now)

    def _handle(self, msg: Message, now: float) -> None:
        request = self._inflight
        msg_type = msg.msg_type
        if isinstance(msg, Publish):
            self._on_publish(msg)
            return
        if isinstance(msg, Register):
            # Gateway-initiated REGISTER (wildcard subscriptions, session resume).
            self._learn_topic(msg.topic_name, msg.topic_id)
            self._send(Regack(msg.topic_id, msg.msg_id, RC_ACCEPTED))
            return
        if isinstance(msg, Pubrel):
            self._incoming_qos2.release(msg.msg_id, now)
            self._awaiting_pubrel.discard(msg.msg_id)
            self._send(Pubcomp(msg.msg_id))
            if self._inflight is None:
                self._pump(now)  # a DISCONNECT may have been waiting for this
            return
        if isinstance(msg, (Advertise, GwInfo)):
            self._search_deadline = None
            if isinstance(msg, Advertise):
                self._events.append(GatewayFound(msg.gw_id, b"", msg.duration_s))
            else:
                self._events.append(GatewayFound(msg.gw_id, bytes(msg.gw_address), 0))
            return
        if isinstance(msg, WillTopicReq):
            if request is not None and request.op[0] == "connect":
                request.deadline = now + self.t_retry_s
                self._send(WillTopic(self.will_topic, self.will_qos, self.will_retain))
            return
        if isinstance(msg, WillMsgReq):
            if request is not None and request.op[0] == "connect":
                request.deadline = now + self.t_retry_s
                self._send(WillMsg(self.will_message))
            return
        if isinstance(msg, Disconnect) and (request is None or request.op[0] != "disconnect"):
            if self.state in (ASLEEP, DISCONNECTED, LOST):
                return  # a late duplicate of the answer to our own DISCONNECT
            # The gateway ended the session (or does not know us): reconnect is up to the app.
            self._put_back_inflight()
            self.state = DISCONNECTED
            self._events.append(Disconnected(by_gateway=True))
            return
        if request is None:
            return
        if msg_type != request.reply_type and not _refuses_qos2_publish(msg, request):
            return  # a late duplicate reply; nothing waits for it
        if isinstance(msg, Connack):
            self._on_connack(msg, now)
        elif isinstance(msg, Regack):
            self._on_regack(msg, request, now)
        elif isinstance(msg, Puback):
            self._on_puback(msg, request, now)
        elif isinstance(msg, Pubrec):
            if msg.msg_id == request.msg_id:
                request.message = Pubrel(msg.msg_id)
                request.reply_type = PUBCOMP
                request.retries = 0
                request.deadline = now + self.t_retry_s
                self._send(request.message)
        elif isinstance(msg, Pubcomp):
            if msg.msg_id == request.msg_id:
                op = request.op
                self._events.append(PublishDone(op[1], msg.msg_id, 2))
                self._complete(now)
        elif isinstance(msg, Suback):
            self._on_suback(msg, request, now)
        elif isinstance(msg, Unsuback):
            if msg.msg_id == request.msg_id:
                self._events.append(Unsubscribed(request.op[1]))
                self._complete(now)
        elif isinstance(msg, Pingresp):
            self._inflight = None
            if request.op[0] == "wake":
                self.state = ASLEEP
                self._events.append(WakeDone())
            else:
                self._pump(now)
        elif isinstance(msg, WillTopicResp):
            if msg.return_code == RC_ACCEPTED and request.op[1]:
                request.message = WillMsgUpd(request.op[2])
                request.reply_type = WILLMSGRESP
                request.retries = 0
                request.deadline = now + self.t_retry_s
                self._send(request.message)
            else:
                self._events.append(WillUpdated(msg.return_code))
                self._complete(now)
        elif isinstance(msg, WillMsgResp):
            self._events.append(WillUpdated(msg.return_code))
            self._complete(now)
        elif isinstance(msg, Disconnect):
            self._inflight = None
            duration = request.op[1]
            if duration is None:
                self.state = DISCONNECTED
                self._events.append(Disconnected())
            else:
                self.state = ASLEEP
                self._events.append(SleepStarted(duration))

    def _on_connack(self, msg: Connack, now: float) -> None:
        if msg.return_code == RC_ACCEPTED:
            self._inflight = None
            self.state = ACTIVE
            if self.clean_session and self._ever_connected and self.resubscribe:
                self._queue_resubscribe()
            self._ever_connected = True
            self._events.append(Connected())
            self._pump(now)
        elif msg.return_code == RC_CONGESTION:
            self._wait_congestion(now)
        else:
            self._inflight = None
            self.state = DISCONNECTED
            self._events.append(ConnectRejected(msg.return_code))

    def _queue_resubscribe(self) -> None:
        # A clean session starts with no subscriptions: subscribe again, before queued work.
        queued = [op[1] for op in self._queue if op[0] in ("subscribe", "unsubscribe")]
        again = [
            ("subscribe", topic, qos)
            for topic, qos in self._subscriptions.items()
            if topic not in queued
        ]
        self._queue[:0] = again

    def _wait_congestion(self, now: float) -> None:
        # "Rejected: congestion": send the same request again after T_WAIT, uncounted.
        request = self._inflight
        if request is not None:
            request.deadline = now + self.t_wait_s
            request.retries = -1

    def _on_regack(self, msg: Regack, request: _Request, now: float) -> None:
        if msg.msg_id != request.msg_id:
            return
        topic = request.op[1]
        if msg.return_code == RC_ACCEPTED:
            self._learn_topic(topic, msg.topic_id)
            self._events.append(Registered(topic, msg.topic_id))
            self._complete(now)
        elif msg.return_code == RC_CONGESTION:
            self._wait_congestion(now)
        else:
            self._events.append(RequestRejected("register", topic, msg.return_code))
            self._drop_queued_publishes(topic)
            self._complete(now)

    def _drop_queued_publishes(self, topic: str) -> None:
        # Publishes waiting for a topic id the gateway refuses can never be sent.
        self._queue = [op for op in self._queue if not (op[0] == "publish" and op[1] == topic)]

    def _on_puback(self, msg: Puback, request: _Request, now: float) -> None:
        if msg.msg_id != request.msg_id:
            return
        op = request.op
        topic = op[1]
        if msg.return_code == RC_ACCEPTED:
            self._events.append(PublishDone(topic, msg.msg_id, op[3]))
            self._complete(now)
        elif msg.return_code == RC_INVALID_TOPIC_ID and topic not in self.predefined_topics:
            # The gateway lost our registration: register again, then publish again.
            self._forget_topic(topic)
            self._inflight = None
            self._queue.insert(0, op)
            self._pump(now)
        elif msg.return_code == RC_CONGESTION:
            self._wait_congestion(now)
        else:
            self._events.append(RequestRejected("publish", topic, msg.return_code))
            self._complete(now)

    def _on_suback(self, msg: Suback, request: _Request, now: float) -> None:
        if msg.msg_id != request.msg_id:
            return
        topic = request.op[1]
        if msg.return_code == RC_ACCEPTED:
            named = not _is_wildcard(topic) and self._static_topic_ref(topic) is None
            if msg.topic_id != 0 and named:
                self._learn_topic(topic, msg.topic_id)
            self._subscriptions[topic] = request.op[2]
            self._events.append(Subscribed(topic, msg.topic_id, msg.qos))
            self._complete(now)
        elif msg.return_code == RC_CONGESTION:
            self._wait_congestion(now)
        else:
            self._events.append(RequestRejected("subscribe", topic, msg.return_code))
            self._complete(now)

    def _on_publish(self, msg: Publish) -> None:
        kind = msg.topic_id_type
        topic: str | None
        if kind == TOPIC_NORMAL:
            topic = self._topic_names.get(msg.topic_id)
        elif kind == TOPIC_PREDEFINED:
            topic = self._predefined_names.get(msg.topic_id)
        else:
            try:
                topic = short_topic_name(msg.topic_id)
            except MqttSnDecodeError:
                topic = None
        qos = msg.qos
        if topic is None:
            if qos > 0:
                self._send(Puback(msg.topic_id, msg.msg_id, RC_INVALID_TOPIC_ID))
            return
        if qos == 2:
            if self._incoming_qos2.is_new(msg.msg_id, self._now):
                self._awaiting_pubrel.add(msg.msg_id)
                self._events.append(MessageReceived(topic, bytes(msg.data), 2, msg.retain))
            self._send(Pubrec(msg.msg_id))
            return
        self._events.append(MessageReceived(topic, bytes(msg.data), qos, msg.retain))
        if qos == 1:
            self._send(Puback(msg.topic_id, msg.msg_id, RC_ACCEPTED))


def _refuses_qos2_publish(msg: Message, request: _Request) -> bool:
    # A gateway answers a QoS 2 PUBLISH it refuses (unknown topic id, access control) with
    # PUBACK and a return code instead of PUBREC (spec §5.4.13).
    return (
        request.reply_type == PUBREC and isinstance(msg, Puback) and msg.return_code != RC_ACCEPTED
    )
