"""MQTT-SN codec: golden vectors both ways, an independent encoder, round trips and fuzzing."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqttsn_vectors import GOLDEN, MALFORMED, unhex

from host_sdk.mqttsn import codec

pytestmark = pytest.mark.unit


def build(name: str, fields: dict[str, Any]) -> codec.Message:
    cls = getattr(codec, name)
    msg: codec.Message = cls(**fields)
    return msg


@pytest.mark.parametrize(("hex_datagram", "name", "fields"), GOLDEN)
def test_golden_decode(hex_datagram: str, name: str, fields: dict[str, Any]) -> None:
    assert codec.decode(unhex(hex_datagram)) == build(name, fields)


@pytest.mark.parametrize(("hex_datagram", "name", "fields"), GOLDEN)
def test_golden_encode(hex_datagram: str, name: str, fields: dict[str, Any]) -> None:
    assert codec.encode(build(name, fields)) == unhex(hex_datagram)


@pytest.mark.parametrize(("hex_datagram", "expected_text"), MALFORMED)
def test_malformed_vectors_raise_the_codec_error(hex_datagram: str, expected_text: str) -> None:
    with pytest.raises(codec.MqttSnDecodeError) as info:
        codec.decode(unhex(hex_datagram))
    assert expected_text in str(info.value)


def test_golden_vectors_cover_every_v12_message_type() -> None:
    covered = {build(name, fields).msg_type for _, name, fields in GOLDEN}
    assert covered == set(codec.TYPE_NAMES)


@pytest.mark.parametrize(
    ("message", "expected_text"),
    [
        (codec.Connect("x" * 24, 60), "CONNECT: client_id: expected 1..23 bytes"),
        (codec.Connect("", 60), "CONNECT: client_id"),
        (codec.Publish(1, b"", qos=3), "PUBLISH: qos"),
        (codec.Publish(1, b"", msg_id=70000), "PUBLISH: msg_id"),
        (codec.Publish(1, b"", topic_id_type=3), "PUBLISH: topic_id_type"),
        (codec.Publish(1, b"\x00" * 65530), "exceeds the 65535-byte maximum"),
        (codec.Subscribe(1, ""), "SUBSCRIBE: topic_name"),
        (codec.Suback(0, 1, qos=-1), "SUBACK: qos"),
        (codec.Encapsulated(4, b"", b"\x02\x16"), "ENCAPSULATED: radius"),
        (codec.Disconnect(-1), "DISCONNECT: duration_s"),
    ],
)
def test_encode_rejects_bad_fields(message: codec.Message, expected_text: str) -> None:
    with pytest.raises(codec.MqttSnEncodeError) as info:
        codec.encode(message)
    assert expected_text in str(info.value)


def test_short_topic_names_pack_into_the_topic_id() -> None:
    assert codec.short_topic_id("ab") == 0x6162
    assert codec.short_topic_name(0x6162) == "ab"
    with pytest.raises(codec.MqttSnEncodeError):
        codec.short_topic_id("abc")


# ---- a second encoder, written from the spec tables independently of codec.py -------------

_TYPE_OCTET = {
    "Advertise": 0x00, "SearchGw": 0x01, "GwInfo": 0x02, "Connect": 0x04, "Connack": 0x05,
    "WillTopicReq": 0x06, "WillTopic": 0x07, "WillMsgReq": 0x08, "WillMsg": 0x09,
    "Register": 0x0A, "Regack": 0x0B, "Publish": 0x0C, "Puback": 0x0D, "Pubcomp": 0x0E,
    "Pubrec": 0x0F, "Pubrel": 0x10, "Subscribe": 0x12, "Suback": 0x13, "Unsubscribe": 0x14,
    "Unsuback": 0x15, "Pingreq": 0x16, "Pingresp": 0x17, "Disconnect": 0x18,
    "WillTopicUpd": 0x1A, "WillTopicResp": 0x1B, "WillMsgUpd": 0x1C, "WillMsgResp": 0x1D,
}  # fmt: skip


def _qos_bits(qos: int) -> int:
    return {0: 0b00, 1: 0b01, 2: 0b10, -1: 0b11}[qos] << 5


def _ref_body(name: str, f: dict[str, Any]) -> bytes:
    if name == "Advertise":
        return struct.pack("!BH", f["gw_id"], f["duration_s"])
    if name == "SearchGw":
        return struct.pack("!B", f["radius"])
    if name == "GwInfo":
        return struct.pack("!B", f["gw_id"]) + f.get("gw_address", b"")
    if name == "Connect":
        flags = (0x08 if f["will"] else 0) | (0x04 if f["clean_session"] else 0)
        return struct.pack("!BBH", flags, 0x01, f["duration_s"]) + f["client_id"].encode()
    if name in ("Connack", "WillTopicResp", "WillMsgResp"):
        return struct.pack("!B", f["return_code"])
    if name in ("WillTopicReq", "WillMsgReq", "Pingresp"):
        return b""
    if name in ("WillTopic", "WillTopicUpd"):
        if not f["topic"]:
            return b""
        flags = _qos_bits(f["qos"]) | (0x10 if f["retain"] else 0)
        return struct.pack("!B", flags) + f["topic"].encode()
    if name in ("WillMsg", "WillMsgUpd"):
        return f["message"]
    if name == "Register":
        return struct.pack("!HH", f["topic_id"], f["msg_id"]) + f["topic_name"].encode()
    if name in ("Regack", "Puback"):
        return struct.pack("!HHB", f["topic_id"], f["msg_id"], f["return_code"])
    if name == "Publish":
        flags = (
            (0x80 if f["dup"] else 0)
            | _qos_bits(f["qos"])
            | (0x10 if f["retain"] else 0)
            | f["topic_id_type"]
        )
        return struct.pack("!BHH", flags, f["topic_id"], f["msg_id"]) + f["data"]
    if name in ("Pubrec", "Pubrel", "Pubcomp", "Unsuback"):
        return struct.pack("!H", f["msg_id"])
    if name in ("Subscribe", "Unsubscribe"):
        flags = (0x80 if f["dup"] else 0) | _qos_bits(f["qos"]) | f["topic_id_type"]
        head = struct.pack("!BH", flags, f["msg_id"])
        if f["topic_id_type"] == 0:
            return head + f["topic_name"].encode()
        return head + struct.pack("!H", f["topic_id"])
    if name == "Suback":
        return struct.pack("!BHHB", _qos_bits(f["qos"]), f["topic_id"], f["msg_id"], 0)
    if name == "Pingreq":
        return f["client_id"].encode()
    if name == "Disconnect":
        return b"" if f["duration_s"] is None else struct.pack("!H", f["duration_s"])
    raise AssertionError(name)


def ref_encode(name: str, f: dict[str, Any]) -> bytes:
    if name == "Encapsulated":
        node = f["wireless_node_id"]
        return struct.pack("!BBB", 3 + len(node), 0xFE, f["radius"]) + node + f["message"]
    body = _ref_body(name, f)
    total = 2 + len(body)
    if total <= 255:
        return struct.pack("!BB", total, _TYPE_OCTET[name]) + body
    return struct.pack("!BHB", 0x01, total + 2, _TYPE_OCTET[name]) + body


u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
qos012 = st.integers(0, 2)
topic_text = st.text(min_size=1, max_size=40)
client_ids = st.text(min_size=1, max_size=23).filter(lambda s: len(s.encode()) <= 23)
payloads = st.binary(max_size=400)

_FIELDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "Advertise": st.fixed_dictionaries({"gw_id": u8, "duration_s": u16}),
    "SearchGw": st.fixed_dictionaries({"radius": u8}),
    "GwInfo": st.fixed_dictionaries({"gw_id": u8, "gw_address": st.binary(max_size=16)}),
    "Connect": st.fixed_dictionaries(
        {"client_id": client_ids, "duration_s": u16, "will": st.booleans(),
         "clean_session": st.booleans()}
    ),
    "Connack": st.fixed_dictionaries({"return_code": u8}),
    "WillTopicResp": st.fixed_dictionaries({"return_code": u8}),
    "WillMsgResp": st.fixed_dictionaries({"return_code": u8}),
    "WillTopicReq": st.just({}),
    "WillMsgReq": st.just({}),
    "Pingresp": st.just({}),
    "WillTopic": st.fixed_dictionaries(
        {"topic": topic_text, "qos": qos012, "retain": st.booleans()}
    ),
    "WillTopicUpd": st.fixed_dictionaries(
        {"topic": topic_text, "qos": qos012, "retain": st.booleans()}
    ),
    "WillMsg": st.fixed_dictionaries({"message": payloads}),
    "WillMsgUpd": st.fixed_dictionaries({"message": payloads}),
    "Register": st.fixed_dictionaries(
        {"topic_id": u16, "msg_id": u16, "topic_name": topic_text}
    ),
    "Regack": st.fixed_dictionaries({"topic_id": u16, "msg_id": u16, "return_code": u8}),
    "Puback": st.fixed_dictionaries({"topic_id": u16, "msg_id": u16, "return_code": u8}),
    "Publish": st.fixed_dictionaries(
        {"topic_id": u16, "data": payloads, "qos": st.integers(-1, 2), "msg_id": u16,
         "topic_id_type": st.integers(0, 2), "retain": st.booleans(), "dup": st.booleans()}
    ),
    "Pubrec": st.fixed_dictionaries({"msg_id": u16}),
    "Pubrel": st.fixed_dictionaries({"msg_id": u16}),
    "Pubcomp": st.fixed_dictionaries({"msg_id": u16}),
    "Unsuback": st.fixed_dictionaries({"msg_id": u16}),
    "Subscribe": st.one_of(
        st.fixed_dictionaries(
            {"msg_id": u16, "topic_name": topic_text, "topic_id": st.just(0),
             "topic_id_type": st.just(0), "qos": qos012, "dup": st.booleans()}
        ),
        st.fixed_dictionaries(
            {"msg_id": u16, "topic_name": st.just(""), "topic_id": u16,
             "topic_id_type": st.integers(1, 2), "qos": qos012, "dup": st.booleans()}
        ),
    ),
    "Unsubscribe": st.one_of(
        st.fixed_dictionaries(
            {"msg_id": u16, "topic_name": topic_text, "topic_id": st.just(0),
             "topic_id_type": st.just(0), "qos": st.just(0), "dup": st.just(False)}
        ),
        st.fixed_dictionaries(
            {"msg_id": u16, "topic_name": st.just(""), "topic_id": u16,
             "topic_id_type": st.integers(1, 2), "qos": st.just(0), "dup": st.just(False)}
        ),
    ),
    "Suback": st.fixed_dictionaries(
        {"topic_id": u16, "msg_id": u16, "qos": qos012, "return_code": st.just(0)}
    ),
    "Pingreq": st.fixed_dictionaries({"client_id": st.one_of(st.just(""), client_ids)}),
    "Disconnect": st.fixed_dictionaries({"duration_s": st.one_of(st.none(), u16)}),
    "Encapsulated": st.fixed_dictionaries(
        {"radius": st.integers(0, 3), "wireless_node_id": st.binary(max_size=20),
         "message": st.sampled_from([b"\x02\x16", b"\x03\x05\x00", b"\x04\x0f\x12\x34"])}
    ),
}  # fmt: skip

_messages = st.sampled_from(sorted(_FIELDS)).flatmap(
    lambda name: st.tuples(st.just(name), _FIELDS[name])
)


def test_strategies_cover_every_message_class() -> None:
    assert {getattr(codec, name).msg_type for name in _FIELDS} == set(codec.TYPE_NAMES)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messages)
def test_encode_agrees_with_the_independent_encoder(named: tuple[str, dict[str, Any]]) -> None:
    name, fields = named
    msg = build(name, fields)
    reference = ref_encode(name, fields)
    assert codec.encode(msg) == reference
    assert codec.decode(reference) == msg


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messages)
def test_round_trip_every_message_type(named: tuple[str, dict[str, Any]]) -> None:
    msg = build(*named)
    assert codec.decode(codec.encode(msg)) == msg


def _decode_or_codec_error(datagram: bytes) -> None:
    try:
        msg = codec.decode(datagram)
    except codec.MqttSnDecodeError as exc:
        assert str(exc)
        return
    assert isinstance(msg, codec.Message)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_the_codec_error(datagram: bytes) -> None:
    _decode_or_codec_error(datagram)


@settings(max_examples=1500, deadline=None)
@given(st.binary(min_size=1, max_size=40))
def test_random_bodies_behind_a_correct_header_raise_only_the_codec_error(body: bytes) -> None:
    # A correct length octet gets random input past the header check into every body decoder.
    _decode_or_codec_error(bytes([len(body) + 1]) + body)


@st.composite
def _mutated_golden(draw: st.DrawFn) -> bytes:
    data = bytearray(unhex(draw(st.sampled_from(GOLDEN))[0]))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "truncate", "extend", "set_length"]))
        if action == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif action == "truncate" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif action == "extend":
            data += draw(st.binary(min_size=1, max_size=8))
        elif action == "set_length" and data:
            data[0] = draw(u8)
    return bytes(data)


@settings(max_examples=800, deadline=None)
@given(_mutated_golden())
def test_mutated_valid_packets_raise_only_the_codec_error(datagram: bytes) -> None:
    _decode_or_codec_error(datagram)


@given(_messages, st.integers(1, 5))
@settings(max_examples=300, deadline=None)
def test_a_length_that_disagrees_with_the_datagram_is_rejected(
    named: tuple[str, dict[str, Any]], extra: int
) -> None:
    name, fields = named
    if name == "Encapsulated":
        return  # its Length octet covers only its own header
    datagram = codec.encode(build(name, fields))
    with pytest.raises(codec.MqttSnDecodeError):
        codec.decode(datagram + b"\x00" * extra)
    with pytest.raises(codec.MqttSnDecodeError):
        codec.decode(datagram[:-1])
