"""Cross-check the C codec and framing against the Python ones in host_sdk.mqttsn.

Messages the C codec encodes must decode in Python and re-encode to the same bytes; the bytes
Python encodes must decode in C to the original fields. Frames must be identical both ways.
Only the semantic subset both sides represent is generated: UTF-8 topic names and client ids,
and flags bits that mean something for each message type (Python keeps flags as fields, the C
codec keeps the raw octet).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.firmware import mqttsn_reference as ref
from tests.firmware.mqttsn_reference import CodecCli, Fields, valid_messages

codec = pytest.importorskip(
    "host_sdk.mqttsn.codec", reason="host_sdk/mqttsn/codec.py (the Python codec) is not present"
)
framing = pytest.importorskip(
    "host_sdk.mqttsn.framing", reason="host_sdk/mqttsn/framing.py is not present"
)

pytestmark = pytest.mark.gen

# Flags bits each message type carries as fields (spec 5.3.4).
_MEANINGFUL_FLAGS = {
    ref.CONNECT: 0x0C,  # Will, CleanSession
    ref.WILLTOPIC: 0x70,  # QoS, Retain
    ref.WILLTOPICUPD: 0x70,
    ref.PUBLISH: 0xF3,  # DUP, QoS, Retain, TopicIdType
    ref.SUBSCRIBE: 0xE3,  # DUP, QoS, TopicIdType
    ref.UNSUBSCRIBE: 0xE3,
    ref.SUBACK: 0x60,  # granted QoS
    ref.ENCAPSULATED: 0x00,
}
_TEXT_TYPES = {
    ref.CONNECT,
    ref.WILLTOPIC,
    ref.WILLTOPICUPD,
    ref.REGISTER,
    ref.SUBSCRIBE,
    ref.UNSUBSCRIBE,
    ref.PINGREQ,
}
_ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789/+#_-"


def _ascii(raw: bytes) -> bytes:
    return bytes(_ALPHABET[b % len(_ALPHABET)] for b in raw)


def _semantic(m: Fields) -> Fields:
    if m.type in _MEANINGFUL_FLAGS:
        m = replace(m, flags=m.flags & _MEANINGFUL_FLAGS[m.type])
    if m.type == ref.SUBACK and m.flags == 0x60:
        m = replace(m, flags=0x40)
    if m.type in _TEXT_TYPES:
        m = replace(m, text=_ascii(m.text))
    return m


semantic_messages = valid_messages().map(_semantic)


@pytest.fixture(scope="module")
def cli(codec_cli: Path) -> Iterator[CodecCli]:
    process = CodecCli(codec_cli)
    yield process
    process.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(msg=semantic_messages)
def test_c_encoding_decodes_in_python_and_back(cli: CodecCli, msg: Fields) -> None:
    wire_c = cli.encode(msg)
    assert isinstance(wire_c, bytes), f"C refused to encode {msg}: {wire_c}"
    py_msg = codec.decode(wire_c)
    wire_py = codec.encode(py_msg)
    assert wire_py == wire_c, f"Python re-encodes {py_msg!r} differently"
    assert cli.decode(wire_py) == msg


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=st.binary(min_size=1, max_size=1024))
def test_c_and_python_frames_are_identical(cli: CodecCli, message: bytes) -> None:
    c_frame = cli.frame(message)
    assert c_frame == framing.encode_frame(message)
    decoder = framing.FrameDecoder()
    assert decoder.feed(c_frame) == [message]
    delivered, _ = cli.unframe(framing.encode_frame(message, flush=True))
    assert delivered == [message]
