"""MQTT-SN v1.2 message codec: bytes <-> message objects, nothing else.

Responsible for the wire format of every v1.2 message (header with the 1- or 3-octet length,
flags, return codes, the Forwarder Encapsulation) and for rejecting malformed datagrams with
one error type, `MqttSnDecodeError`, whose message names the packet type and the problem.
It must not do I/O, keep state between calls, or know about sessions, timers or MQTT.

This file runs unchanged on MicroPython (the firmware ships it): no dataclasses, enum,
typing, f-string `=` specifiers or negative-step slices; annotations are never evaluated
there, so they stay plain (builtin generics, quoted forward references).
"""

import struct

# Type-only import: MicroPython has neither collections.abc nor contextlib, and never
# evaluates annotations.
try:  # noqa: SIM105
    from collections.abc import Callable
except ImportError:
    pass

PROTOCOL_ID_V1_2 = 0x01

# Message types (spec §5.2.2).
ADVERTISE = 0x00
SEARCHGW = 0x01
GWINFO = 0x02
CONNECT = 0x04
CONNACK = 0x05
WILLTOPICREQ = 0x06
WILLTOPIC = 0x07
WILLMSGREQ = 0x08
WILLMSG = 0x09
REGISTER = 0x0A
REGACK = 0x0B
PUBLISH = 0x0C
PUBACK = 0x0D
PUBCOMP = 0x0E
PUBREC = 0x0F
PUBREL = 0x10
SUBSCRIBE = 0x12
SUBACK = 0x13
UNSUBSCRIBE = 0x14
UNSUBACK = 0x15
PINGREQ = 0x16
PINGRESP = 0x17
DISCONNECT = 0x18
WILLTOPICUPD = 0x1A
WILLTOPICRESP = 0x1B
WILLMSGUPD = 0x1C
WILLMSGRESP = 0x1D
ENCAPSULATED = 0xFE

# Flags octet (spec §5.3.4).
FLAG_DUP = 0x80
FLAG_RETAIN = 0x10
FLAG_WILL = 0x08
FLAG_CLEAN_SESSION = 0x04

TOPIC_NORMAL = 0x00
TOPIC_PREDEFINED = 0x01
TOPIC_SHORT = 0x02

# Return codes (spec §5.3.10).
RC_ACCEPTED = 0x00
RC_CONGESTION = 0x01
RC_INVALID_TOPIC_ID = 0x02
RC_NOT_SUPPORTED = 0x03

CLIENT_ID_MAX_BYTES = 23
MAX_MESSAGE_BYTES = 65535

_QOS_TO_BITS = {0: 0x00, 1: 0x20, 2: 0x40, -1: 0x60}
_BITS_TO_QOS = (0, 1, 2, -1)

TYPE_NAMES = {
    ADVERTISE: "ADVERTISE",
    SEARCHGW: "SEARCHGW",
    GWINFO: "GWINFO",
    CONNECT: "CONNECT",
    CONNACK: "CONNACK",
    WILLTOPICREQ: "WILLTOPICREQ",
    WILLTOPIC: "WILLTOPIC",
    WILLMSGREQ: "WILLMSGREQ",
    WILLMSG: "WILLMSG",
    REGISTER: "REGISTER",
    REGACK: "REGACK",
    PUBLISH: "PUBLISH",
    PUBACK: "PUBACK",
    PUBCOMP: "PUBCOMP",
    PUBREC: "PUBREC",
    PUBREL: "PUBREL",
    SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK",
    UNSUBSCRIBE: "UNSUBSCRIBE",
    UNSUBACK: "UNSUBACK",
    PINGREQ: "PINGREQ",
    PINGRESP: "PINGRESP",
    DISCONNECT: "DISCONNECT",
    WILLTOPICUPD: "WILLTOPICUPD",
    WILLTOPICRESP: "WILLTOPICRESP",
    WILLMSGUPD: "WILLMSGUPD",
    WILLMSGRESP: "WILLMSGRESP",
    ENCAPSULATED: "ENCAPSULATED",
}

# struct.error does not exist on MicroPython, where struct raises ValueError.
_STRUCT_ERROR = getattr(struct, "error", ValueError)
_pack = struct.pack
_unpack_from = struct.unpack_from


class MqttSnDecodeError(ValueError):
    """A datagram is not a valid MQTT-SN v1.2 message; the text names the packet and problem."""


class MqttSnEncodeError(ValueError):
    """Message fields cannot be encoded (out of range, too long); the text names the field."""


def type_name(msg_type: int) -> str:
    """The spec name of a message type octet, or 'type 0xNN' for reserved values."""
    name = TYPE_NAMES.get(msg_type)
    return name if name is not None else f"type 0x{msg_type:02X}"


def qos_to_flags(qos: int) -> int:
    """Flag bits 6-5 for a QoS level (-1, 0, 1 or 2)."""
    bits = _QOS_TO_BITS.get(qos)
    if bits is None:
        raise MqttSnEncodeError(f"qos: expected -1, 0, 1 or 2, got {qos!r}")
    return bits


def flags_to_qos(flags: int) -> int:
    """The QoS level (-1, 0, 1 or 2) held in bits 6-5 of a flags octet."""
    return _BITS_TO_QOS[(flags >> 5) & 3]


def short_topic_id(name: str) -> int:
    """The 16-bit TopicId field that carries a 2-character short topic name."""
    raw = name.encode()
    if len(raw) != 2:
        raise MqttSnEncodeError(f"short topic name: expected exactly 2 bytes, got {name!r}")
    return (raw[0] << 8) | raw[1]


def short_topic_name(topic_id: int) -> str:
    """The 2-character short topic name carried in a 16-bit TopicId field."""
    try:
        return bytes(((topic_id >> 8) & 0xFF, topic_id & 0xFF)).decode()
    except ValueError:
        raise MqttSnDecodeError(
            f"short topic name: 0x{topic_id:04X} is not 2 bytes of UTF-8"
        ) from None


class Message:
    """Base of all messages: equality and repr over the fields listed in `__slots__`."""

    __slots__: tuple[str, ...] = ()
    msg_type = -1

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        parts = [f"{name}={getattr(self, name)!r}" for name in self.__slots__]
        return type(self).__name__ + "(" + ", ".join(parts) + ")"

    def encode_body(self) -> bytes:
        """The octets after the header (type octet excluded)."""
        return b""


class Advertise(Message):
    """ADVERTISE: a gateway announces itself; `duration_s` until the next ADVERTISE."""

    __slots__ = ("duration_s", "gw_id")
    msg_type = ADVERTISE

    def __init__(self, gw_id: int, duration_s: int) -> None:
        self.gw_id = gw_id
        self.duration_s = duration_s

    def encode_body(self) -> bytes:
        _check_u8("ADVERTISE", "gw_id", self.gw_id)
        _check_u16("ADVERTISE", "duration_s", self.duration_s)
        return _pack(">BH", self.gw_id, self.duration_s)


class SearchGw(Message):
    """SEARCHGW: a client looks for gateways within `radius` hops."""

    __slots__ = ("radius",)
    msg_type = SEARCHGW

    def __init__(self, radius: int) -> None:
        self.radius = radius

    def encode_body(self) -> bytes:
        _check_u8("SEARCHGW", "radius", self.radius)
        return bytes((self.radius,))


class GwInfo(Message):
    """GWINFO: answer to SEARCHGW; `gw_address` is only present when a client answers."""

    __slots__ = ("gw_address", "gw_id")
    msg_type = GWINFO

    def __init__(self, gw_id: int, gw_address: bytes = b"") -> None:
        self.gw_id = gw_id
        self.gw_address = gw_address

    def encode_body(self) -> bytes:
        _check_u8("GWINFO", "gw_id", self.gw_id)
        return bytes((self.gw_id,)) + bytes(self.gw_address)


class Connect(Message):
    """CONNECT: `duration_s` is the keep-alive period in seconds."""

    __slots__ = ("clean_session", "client_id", "duration_s", "protocol_id", "will")
    msg_type = CONNECT

    def __init__(
        self,
        client_id: str,
        duration_s: int,
        will: bool = False,
        clean_session: bool = True,
        protocol_id: int = PROTOCOL_ID_V1_2,
    ) -> None:
        self.client_id = client_id
        self.duration_s = duration_s
        self.will = will
        self.clean_session = clean_session
        self.protocol_id = protocol_id

    def encode_body(self) -> bytes:
        flags = (FLAG_WILL if self.will else 0) | (FLAG_CLEAN_SESSION if self.clean_session else 0)
        _check_u8("CONNECT", "protocol_id", self.protocol_id)
        _check_u16("CONNECT", "duration_s", self.duration_s)
        return _pack(">BBH", flags, self.protocol_id, self.duration_s) + _client_id_bytes(
            "CONNECT", self.client_id
        )


class _ReturnCodeOnly(Message):
    __slots__ = ("return_code",)

    def __init__(self, return_code: int = RC_ACCEPTED) -> None:
        self.return_code = return_code

    def encode_body(self) -> bytes:
        _check_u8(type_name(self.msg_type), "return_code", self.return_code)
        return bytes((self.return_code,))


class Connack(_ReturnCodeOnly):
    """CONNACK: the gateway's answer to CONNECT."""

    __slots__ = ()
    msg_type = CONNACK


class WillTopicResp(_ReturnCodeOnly):
    """WILLTOPICRESP: the gateway's answer to WILLTOPICUPD."""

    __slots__ = ()
    msg_type = WILLTOPICRESP


class WillMsgResp(_ReturnCodeOnly):
    """WILLMSGRESP: the gateway's answer to WILLMSGUPD."""

    __slots__ = ()
    msg_type = WILLMSGRESP


class WillTopicReq(Message):
    """WILLTOPICREQ: the gateway asks for the will topic (no body)."""

    __slots__ = ()
    msg_type = WILLTOPICREQ


class WillMsgReq(Message):
    """WILLMSGREQ: the gateway asks for the will message (no body)."""

    __slots__ = ()
    msg_type = WILLMSGREQ


class Pingresp(Message):
    """PINGRESP (no body)."""

    __slots__ = ()
    msg_type = PINGRESP


class _WillTopicBase(Message):
    __slots__ = ("qos", "retain", "topic")

    def __init__(self, topic: str, qos: int = 0, retain: bool = False) -> None:
        self.topic = topic
        self.qos = qos
        self.retain = retain

    def encode_body(self) -> bytes:
        if not self.topic:
            # The 2-octet form (no flags, no topic) deletes the will (spec §5.4.7).
            return b""
        if self.qos not in (0, 1, 2):
            raise MqttSnEncodeError(
                f"{type_name(self.msg_type)}: qos: expected 0, 1 or 2, got {self.qos!r}"
            )
        flags = _QOS_TO_BITS[self.qos] | (FLAG_RETAIN if self.retain else 0)
        return bytes((flags,)) + self.topic.encode()


class WillTopic(_WillTopicBase):
    """WILLTOPIC: an empty `topic` is the 2-octet form that deletes the will."""

    __slots__ = ()
    msg_type = WILLTOPIC


class WillTopicUpd(_WillTopicBase):
    """WILLTOPICUPD: an empty `topic` deletes the will."""

    __slots__ = ()
    msg_type = WILLTOPICUPD


class _WillMsgBase(Message):
    __slots__ = ("message",)

    def __init__(self, message: bytes) -> None:
        self.message = message

    def encode_body(self) -> bytes:
        return bytes(self.message)


class WillMsg(_WillMsgBase):
    """WILLMSG: the will payload (bytes)."""

    __slots__ = ()
    msg_type = WILLMSG


class WillMsgUpd(_WillMsgBase):
    """WILLMSGUPD: a new will payload (bytes)."""

    __slots__ = ()
    msg_type = WILLMSGUPD


class Register(Message):
    """REGISTER: a client sends topic_id 0; a gateway sends the id it assigned."""

    __slots__ = ("msg_id", "topic_id", "topic_name")
    msg_type = REGISTER

    def __init__(self, topic_id: int, msg_id: int, topic_name: str) -> None:
        self.topic_id = topic_id
        self.msg_id = msg_id
        self.topic_name = topic_name

    def encode_body(self) -> bytes:
        _check_u16("REGISTER", "topic_id", self.topic_id)
        _check_u16("REGISTER", "msg_id", self.msg_id)
        return _pack(">HH", self.topic_id, self.msg_id) + self.topic_name.encode()


class _TopicIdMsgIdRc(Message):
    __slots__ = ("msg_id", "return_code", "topic_id")

    def __init__(self, topic_id: int, msg_id: int, return_code: int = RC_ACCEPTED) -> None:
        self.topic_id = topic_id
        self.msg_id = msg_id
        self.return_code = return_code

    def encode_body(self) -> bytes:
        name = type_name(self.msg_type)
        _check_u16(name, "topic_id", self.topic_id)
        _check_u16(name, "msg_id", self.msg_id)
        _check_u8(name, "return_code", self.return_code)
        return _pack(">HHB", self.topic_id, self.msg_id, self.return_code)


class Regack(_TopicIdMsgIdRc):
    """REGACK: answer to REGISTER."""

    __slots__ = ()
    msg_type = REGACK


class Puback(_TopicIdMsgIdRc):
    """PUBACK: answer to a QoS 1 PUBLISH, or to a rejected PUBLISH of any QoS."""

    __slots__ = ()
    msg_type = PUBACK


class Publish(Message):
    """PUBLISH: `topic_id` is a registered, predefined or short (packed 2-char) topic id."""

    __slots__ = ("data", "dup", "msg_id", "qos", "retain", "topic_id", "topic_id_type")
    msg_type = PUBLISH

    def __init__(
        self,
        topic_id: int,
        data: bytes,
        qos: int = 0,
        msg_id: int = 0,
        topic_id_type: int = TOPIC_NORMAL,
        retain: bool = False,
        dup: bool = False,
    ) -> None:
        self.topic_id = topic_id
        self.data = data
        self.qos = qos
        self.msg_id = msg_id
        self.topic_id_type = topic_id_type
        self.retain = retain
        self.dup = dup

    def encode_body(self) -> bytes:
        bits = _QOS_TO_BITS.get(self.qos)
        if bits is None:
            raise MqttSnEncodeError(f"PUBLISH: qos: expected -1, 0, 1 or 2, got {self.qos!r}")
        _check_topic_id_type("PUBLISH", self.topic_id_type)
        _check_u16("PUBLISH", "topic_id", self.topic_id)
        _check_u16("PUBLISH", "msg_id", self.msg_id)
        flags = (
            bits
            | self.topic_id_type
            | (FLAG_DUP if self.dup else 0)
            | (FLAG_RETAIN if self.retain else 0)
        )
        return _pack(">BHH", flags, self.topic_id, self.msg_id) + bytes(self.data)


class _MsgIdOnly(Message):
    __slots__ = ("msg_id",)

    def __init__(self, msg_id: int) -> None:
        self.msg_id = msg_id

    def encode_body(self) -> bytes:
        _check_u16(type_name(self.msg_type), "msg_id", self.msg_id)
        return _pack(">H", self.msg_id)


class Pubrec(_MsgIdOnly):
    """PUBREC: QoS 2, step 2."""

    __slots__ = ()
    msg_type = PUBREC


class Pubrel(_MsgIdOnly):
    """PUBREL: QoS 2, step 3."""

    __slots__ = ()
    msg_type = PUBREL


class Pubcomp(_MsgIdOnly):
    """PUBCOMP: QoS 2, step 4."""

    __slots__ = ()
    msg_type = PUBCOMP


class Unsuback(_MsgIdOnly):
    """UNSUBACK: answer to UNSUBSCRIBE."""

    __slots__ = ()
    msg_type = UNSUBACK


class _TopicRequest(Message):
    # SUBSCRIBE and UNSUBSCRIBE: a topic name (TOPIC_NORMAL) or a 2-octet predefined/short id.
    __slots__ = ("dup", "msg_id", "qos", "topic_id", "topic_id_type", "topic_name")

    def __init__(
        self,
        msg_id: int,
        topic_name: str = "",
        topic_id: int = 0,
        topic_id_type: int = TOPIC_NORMAL,
        qos: int = 0,
        dup: bool = False,
    ) -> None:
        self.msg_id = msg_id
        self.topic_name = topic_name
        self.topic_id = topic_id
        self.topic_id_type = topic_id_type
        self.qos = qos
        self.dup = dup

    def encode_body(self) -> bytes:
        name = type_name(self.msg_type)
        if self.qos not in (0, 1, 2):
            raise MqttSnEncodeError(f"{name}: qos: expected 0, 1 or 2, got {self.qos!r}")
        _check_topic_id_type(name, self.topic_id_type)
        _check_u16(name, "msg_id", self.msg_id)
        flags = _QOS_TO_BITS[self.qos] | self.topic_id_type | (FLAG_DUP if self.dup else 0)
        head = _pack(">BH", flags, self.msg_id)
        if self.topic_id_type == TOPIC_NORMAL:
            if not self.topic_name:
                raise MqttSnEncodeError(f"{name}: topic_name: must not be empty")
            return head + self.topic_name.encode()
        _check_u16(name, "topic_id", self.topic_id)
        return head + _pack(">H", self.topic_id)


class Subscribe(_TopicRequest):
    """SUBSCRIBE: `topic_name` for TOPIC_NORMAL (wildcards allowed), else `topic_id`."""

    __slots__ = ()
    msg_type = SUBSCRIBE


class Unsubscribe(_TopicRequest):
    """UNSUBSCRIBE: `topic_name` for TOPIC_NORMAL, else `topic_id`; qos and dup are unused."""

    __slots__ = ()
    msg_type = UNSUBSCRIBE


class Suback(Message):
    """SUBACK: `topic_id` is 0 for wildcard topic names; `qos` is the granted QoS."""

    __slots__ = ("msg_id", "qos", "return_code", "topic_id")
    msg_type = SUBACK

    def __init__(self, topic_id: int, msg_id: int, qos: int = 0, return_code: int = 0) -> None:
        self.topic_id = topic_id
        self.msg_id = msg_id
        self.qos = qos
        self.return_code = return_code

    def encode_body(self) -> bytes:
        if self.qos not in (0, 1, 2):
            raise MqttSnEncodeError(f"SUBACK: qos: expected 0, 1 or 2, got {self.qos!r}")
        _check_u16("SUBACK", "topic_id", self.topic_id)
        _check_u16("SUBACK", "msg_id", self.msg_id)
        _check_u8("SUBACK", "return_code", self.return_code)
        return _pack(">BHHB", _QOS_TO_BITS[self.qos], self.topic_id, self.msg_id, self.return_code)


class Pingreq(Message):
    """PINGREQ: `client_id` is set only by a sleeping client that wakes up."""

    __slots__ = ("client_id",)
    msg_type = PINGREQ

    def __init__(self, client_id: str = "") -> None:
        self.client_id = client_id

    def encode_body(self) -> bytes:
        if not self.client_id:
            return b""
        return _client_id_bytes("PINGREQ", self.client_id)


class Disconnect(Message):
    """DISCONNECT: with `duration_s` (seconds) the client goes to sleep; None means plain."""

    __slots__ = ("duration_s",)
    msg_type = DISCONNECT

    def __init__(self, duration_s: int | None = None) -> None:
        self.duration_s = duration_s

    def encode_body(self) -> bytes:
        if self.duration_s is None:
            return b""
        _check_u16("DISCONNECT", "duration_s", self.duration_s)
        return _pack(">H", self.duration_s)


class Encapsulated(Message):
    """Forwarder Encapsulation: `message` is the complete inner MQTT-SN message (bytes)."""

    __slots__ = ("message", "radius", "wireless_node_id")
    msg_type = ENCAPSULATED

    def __init__(self, radius: int, wireless_node_id: bytes, message: bytes) -> None:
        self.radius = radius
        self.wireless_node_id = wireless_node_id
        self.message = message


def encode(msg: Message) -> bytes:
    """The complete datagram (header + body) for `msg`; raises MqttSnEncodeError."""
    if isinstance(msg, Encapsulated):
        return _encode_encapsulated(msg)
    body = msg.encode_body()
    total = len(body) + 2
    if total <= 255:
        return bytes((total, msg.msg_type)) + body
    total += 2
    if total > MAX_MESSAGE_BYTES:
        raise MqttSnEncodeError(
            f"{type_name(msg.msg_type)}: message of {total} bytes exceeds the 65535-byte maximum"
        )
    return _pack(">BHB", 0x01, total, msg.msg_type) + body


def _encode_encapsulated(msg: "Encapsulated") -> bytes:
    node_id = bytes(msg.wireless_node_id)
    header_len = 3 + len(node_id)
    if header_len > 255:
        raise MqttSnEncodeError("ENCAPSULATED: wireless_node_id: longer than 252 bytes")
    if not 0 <= msg.radius <= 3:
        raise MqttSnEncodeError(f"ENCAPSULATED: radius: expected 0..3, got {msg.radius!r}")
    if len(msg.message) < 2:
        raise MqttSnEncodeError("ENCAPSULATED: message: expected a complete MQTT-SN message")
    return bytes((header_len, ENCAPSULATED, msg.radius)) + node_id + bytes(msg.message)


def _check_u8(packet: str, field: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise MqttSnEncodeError(f"{packet}: {field}: expected 0..255, got {value!r}")


def _check_u16(packet: str, field: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise MqttSnEncodeError(f"{packet}: {field}: expected 0..65535, got {value!r}")


def _check_topic_id_type(packet: str, value: int) -> None:
    if value not in (TOPIC_NORMAL, TOPIC_PREDEFINED, TOPIC_SHORT):
        raise MqttSnEncodeError(
            f"{packet}: topic_id_type: expected 0 (normal), 1 (predefined) or 2 (short),"
            f" got {value!r}"
        )


def _client_id_bytes(packet: str, client_id: str) -> bytes:
    raw = client_id.encode()
    if not 1 <= len(raw) <= CLIENT_ID_MAX_BYTES:
        raise MqttSnEncodeError(f"{packet}: client_id: expected 1..23 bytes, got {len(raw)} bytes")
    return raw


# ---------------------------------------------------------------------------------------------
# Decoding. Each body decoder gets (datagram, body offset, body length in bytes); lengths are
# checked before every unpack so that only MqttSnDecodeError leaves `decode`.


def _fail(msg_type: int, problem: str) -> MqttSnDecodeError:
    return MqttSnDecodeError(f"{type_name(msg_type)}: {problem}")


def _need(msg_type: int, body_len: int, exact: int) -> None:
    if body_len != exact:
        raise _fail(msg_type, f"body must be {exact} bytes, got {body_len}")


def _need_min(msg_type: int, body_len: int, minimum: int) -> None:
    if body_len < minimum:
        raise _fail(msg_type, f"body must be at least {minimum} bytes, got {body_len}")


def _text(msg_type: int, field: str, raw: bytes) -> str:
    try:
        return raw.decode()
    except ValueError:  # UnicodeError on both CPython and MicroPython
        raise _fail(msg_type, f"{field} is not valid UTF-8") from None


def _client_id(msg_type: int, raw: bytes) -> str:
    if not 1 <= len(raw) <= CLIENT_ID_MAX_BYTES:
        raise _fail(msg_type, f"client id must be 1..23 bytes, got {len(raw)} bytes")
    return _text(msg_type, "client id", raw)


def _topic_type(msg_type: int, flags: int) -> int:
    kind = flags & 0x03
    if kind == 0x03:
        raise _fail(msg_type, "topic id type 3 is reserved")
    return kind


def _qos_012(msg_type: int, flags: int) -> int:
    qos = _BITS_TO_QOS[(flags >> 5) & 3]
    if qos < 0:
        raise _fail(msg_type, "QoS -1 is only allowed in PUBLISH")
    return qos


def _decode_advertise(d: bytes, i: int, n: int) -> Message:
    _need(ADVERTISE, n, 3)
    gw_id, duration = _unpack_from(">BH", d, i)
    return Advertise(gw_id, duration)


def _decode_searchgw(d: bytes, i: int, n: int) -> Message:
    _need(SEARCHGW, n, 1)
    return SearchGw(d[i])


def _decode_gwinfo(d: bytes, i: int, n: int) -> Message:
    _need_min(GWINFO, n, 1)
    return GwInfo(d[i], d[i + 1 :])


def _decode_connect(d: bytes, i: int, n: int) -> Message:
    _need_min(CONNECT, n, 5)
    flags, protocol_id, duration = _unpack_from(">BBH", d, i)
    return Connect(
        _client_id(CONNECT, d[i + 4 :]),
        duration,
        bool(flags & FLAG_WILL),
        bool(flags & FLAG_CLEAN_SESSION),
        protocol_id,
    )


def _decode_rc(msg_type: int, cls: type) -> "Callable[[bytes, int, int], Message]":

    def decode_rc(d: bytes, i: int, n: int) -> Message:
        _need(msg_type, n, 1)
        return cls(d[i])

    return decode_rc


def _decode_empty(msg_type: int, cls: type) -> "Callable[[bytes, int, int], Message]":

    def decode_empty(d: bytes, i: int, n: int) -> Message:
        _need(msg_type, n, 0)
        return cls()

    return decode_empty


def _decode_will_topic(msg_type: int, cls: type) -> "Callable[[bytes, int, int], Message]":

    def decode_will_topic(d: bytes, i: int, n: int) -> Message:
        if n == 0:
            return cls("")
        flags = d[i]
        if flags & 0x8F:
            raise _fail(msg_type, f"flags 0x{flags:02X}: only QoS and Retain may be set")
        topic = _text(msg_type, "will topic", d[i + 1 :])
        return cls(topic, _qos_012(msg_type, flags), bool(flags & FLAG_RETAIN))

    return decode_will_topic


def _decode_will_msg(cls: type) -> "Callable[[bytes, int, int], Message]":
    def decode_will_msg(d: bytes, i: int, n: int) -> Message:
        return cls(d[i:])

    return decode_will_msg


def _decode_register(d: bytes, i: int, n: int) -> Message:
    _need_min(REGISTER, n, 5)
    topic_id, msg_id = _unpack_from(">HH", d, i)
    return Register(topic_id, msg_id, _text(REGISTER, "topic name", d[i + 4 :]))


def _decode_id_id_rc(msg_type: int, cls: type) -> "Callable[[bytes, int, int], Message]":

    def decode_id_id_rc(d: bytes, i: int, n: int) -> Message:
        _need(msg_type, n, 5)
        topic_id, msg_id, rc = _unpack_from(">HHB", d, i)
        return cls(topic_id, msg_id, rc)

    return decode_id_id_rc


def _decode_publish(d: bytes, i: int, n: int) -> Message:
    if n < 5:
        raise _fail(PUBLISH, f"body must be at least 5 bytes, got {n}")
    flags, topic_id, msg_id = _unpack_from(">BHH", d, i)
    kind = flags & 0x03
    if kind == 0x03:
        raise _fail(PUBLISH, "topic id type 3 is reserved")
    return Publish(
        topic_id,
        d[i + 5 :],
        _BITS_TO_QOS[(flags >> 5) & 3],
        msg_id,
        kind,
        bool(flags & FLAG_RETAIN),
        bool(flags & FLAG_DUP),
    )


def _decode_msg_id(msg_type: int, cls: type) -> "Callable[[bytes, int, int], Message]":

    def decode_msg_id(d: bytes, i: int, n: int) -> Message:
        _need(msg_type, n, 2)
        return cls(_unpack_from(">H", d, i)[0])

    return decode_msg_id


def _decode_topic_request(msg_type: int, cls: type) -> "Callable[[bytes, int, int], Message]":

    def decode_topic_request(d: bytes, i: int, n: int) -> Message:
        _need_min(msg_type, n, 4)
        flags, msg_id = _unpack_from(">BH", d, i)
        kind = _topic_type(msg_type, flags)
        qos = _qos_012(msg_type, flags)
        dup = bool(flags & FLAG_DUP)
        if kind == TOPIC_NORMAL:
            name = _text(msg_type, "topic name", d[i + 3 :])
            return cls(msg_id, name, 0, kind, qos, dup)
        _need(msg_type, n, 5)
        topic_id = _unpack_from(">H", d, i + 3)[0]
        return cls(msg_id, "", topic_id, kind, qos, dup)

    return decode_topic_request


def _decode_suback(d: bytes, i: int, n: int) -> Message:
    _need(SUBACK, n, 6)
    flags, topic_id, msg_id, rc = _unpack_from(">BHHB", d, i)
    return Suback(topic_id, msg_id, _qos_012(SUBACK, flags), rc)


def _decode_pingreq(d: bytes, i: int, n: int) -> Message:
    if n == 0:
        return Pingreq()
    return Pingreq(_client_id(PINGREQ, d[i:]))


def _decode_disconnect(d: bytes, i: int, n: int) -> Message:
    if n == 0:
        return Disconnect()
    _need(DISCONNECT, n, 2)
    return Disconnect(_unpack_from(">H", d, i)[0])


_DECODERS = {
    ADVERTISE: _decode_advertise,
    SEARCHGW: _decode_searchgw,
    GWINFO: _decode_gwinfo,
    CONNECT: _decode_connect,
    CONNACK: _decode_rc(Connack.msg_type, Connack),
    WILLTOPICREQ: _decode_empty(WillTopicReq.msg_type, WillTopicReq),
    WILLTOPIC: _decode_will_topic(WillTopic.msg_type, WillTopic),
    WILLMSGREQ: _decode_empty(WillMsgReq.msg_type, WillMsgReq),
    WILLMSG: _decode_will_msg(WillMsg),
    REGISTER: _decode_register,
    REGACK: _decode_id_id_rc(Regack.msg_type, Regack),
    PUBLISH: _decode_publish,
    PUBACK: _decode_id_id_rc(Puback.msg_type, Puback),
    PUBCOMP: _decode_msg_id(Pubcomp.msg_type, Pubcomp),
    PUBREC: _decode_msg_id(Pubrec.msg_type, Pubrec),
    PUBREL: _decode_msg_id(Pubrel.msg_type, Pubrel),
    SUBSCRIBE: _decode_topic_request(Subscribe.msg_type, Subscribe),
    SUBACK: _decode_suback,
    UNSUBSCRIBE: _decode_topic_request(Unsubscribe.msg_type, Unsubscribe),
    UNSUBACK: _decode_msg_id(Unsuback.msg_type, Unsuback),
    PINGREQ: _decode_pingreq,
    PINGRESP: _decode_empty(Pingresp.msg_type, Pingresp),
    DISCONNECT: _decode_disconnect,
    WILLTOPICUPD: _decode_will_topic(WillTopicUpd.msg_type, WillTopicUpd),
    WILLTOPICRESP: _decode_rc(WillTopicResp.msg_type, WillTopicResp),
    WILLMSGUPD: _decode_will_msg(WillMsgUpd),
    WILLMSGRESP: _decode_rc(WillMsgResp.msg_type, WillMsgResp),
}


def decode(datagram: bytes) -> Message:
    """Decode one complete datagram (bytes-like) into a message.

    Raises MqttSnDecodeError (and nothing else) when the datagram is empty or truncated, its
    length field disagrees with its size, its type is reserved, or a field is invalid.
    """
    d = bytes(datagram)
    size = len(d)
    if size < 2:
        raise MqttSnDecodeError(f"datagram of {size} bytes is shorter than any MQTT-SN message")
    length = d[0]
    if length == 0x01:
        if size < 4:
            raise MqttSnDecodeError(
                f"datagram of {size} bytes: 3-octet length form needs at least 4 bytes"
            )
        length = (d[1] << 8) | d[2]
        msg_type = d[3]
        start = 4
    else:
        msg_type = d[1]
        start = 2
    if msg_type == ENCAPSULATED:
        return _decode_encapsulated(d, length, start)
    if length != size:
        raise _fail(msg_type, f"length field says {length} bytes but the datagram has {size} bytes")
    if length < start:
        raise _fail(msg_type, f"length field {length} is shorter than the header")
    decoder = _DECODERS.get(msg_type)
    if decoder is None:
        raise MqttSnDecodeError(f"{type_name(msg_type)} is reserved, not a v1.2 message type")
    try:
        return decoder(d, start, size - start)
    except MqttSnDecodeError:
        raise
    except (IndexError, TypeError, ValueError, _STRUCT_ERROR) as exc:
        # Defence in depth: the checks above should make this unreachable.
        raise _fail(msg_type, f"malformed body ({exc})") from None


def _decode_encapsulated(d: bytes, header_len: int, start: int) -> Message:
    # The Length octet of an encapsulation counts only up to the end of WirelessNodeId.
    if start != 2:
        raise _fail(ENCAPSULATED, "the 3-octet length form is not allowed here")
    if header_len < 3:
        raise _fail(ENCAPSULATED, f"length field {header_len} is shorter than the header")
    if header_len + 2 > len(d):
        raise _fail(
            ENCAPSULATED,
            f"header of {header_len} bytes leaves no inner message in a {len(d)}-byte datagram",
        )
    ctrl = d[2]
    if ctrl & 0xFC:
        raise _fail(ENCAPSULATED, f"ctrl 0x{ctrl:02X}: only the radius bits 1-0 may be set")
    return Encapsulated(ctrl & 0x03, d[3:header_len], d[header_len:])
