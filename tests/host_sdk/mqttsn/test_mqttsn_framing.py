"""Serial framing: CRC and COBS against known values, and the incremental receiver under noise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sdk.mqttsn import framing

pytestmark = pytest.mark.unit

messages = st.binary(min_size=1, max_size=600)


def test_crc16_ccitt_false_check_value() -> None:
    assert framing.crc16_ccitt_false(b"123456789") == 0x29B1
    assert framing.crc16_ccitt_false(b"") == 0xFFFF


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        # The worked examples of standard COBS (Cheshire & Baker).
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
        (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
        (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    ],
)
def test_cobs_known_encodings(raw: bytes, encoded: bytes) -> None:
    assert framing.cobs_encode(raw) == encoded
    assert framing.cobs_decode(encoded) == raw


def test_frame_layout_is_cobs_of_message_and_big_endian_crc() -> None:
    message = b"\x03\x05\x00"  # CONNACK accepted
    crc = framing.crc16_ccitt_false(message)
    frame = framing.encode_frame(message)
    assert frame[-1] == 0 and 0 not in frame[:-1]
    assert framing.cobs_decode(frame[:-1]) == message + bytes([crc >> 8, crc & 0xFF])
    assert framing.encode_frame(message, flush=True) == b"\x00" + frame


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200))
def test_cobs_round_trip_and_no_zero_bytes(raw: bytes) -> None:
    encoded = framing.cobs_encode(raw)
    assert 0 not in encoded
    assert len(encoded) <= len(raw) + 1 + len(raw) // 254
    assert framing.cobs_decode(encoded) == raw


@settings(max_examples=300, deadline=None)
@given(st.lists(messages, min_size=1, max_size=8), st.data())
def test_decoder_reassembles_frames_split_anywhere(
    chunks: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(framing.encode_frame(m) for m in chunks)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = framing.FrameDecoder()
    received: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        received += decoder.feed(stream[start:cut])
        start = cut
    assert received == chunks
    assert (decoder.frames, decoder.malformed) == (len(chunks), 0)


noise_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"\x5a"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(noise_bytes, messages), min_size=1, max_size=6))
def test_noise_between_frames_is_dropped_and_counted(parts: list[tuple[bytes, bytes]]) -> None:
    # Noise followed by the sender's flush 0x00 never hides the next good frame.
    decoder = framing.FrameDecoder()
    received: list[bytes] = []
    for noise, message in parts:
        received += decoder.feed(noise + framing.encode_frame(message, flush=True))
    good = [m for _, m in parts]
    noise_frames = sum(1 for noise, _ in parts if noise)
    # Each noise burst is one frame: dropped and counted (or, with odds of 1 in 65536 for its
    # CRC, delivered as an extra message); every good frame arrives, in order.
    remaining = iter(received)
    assert all(any(m == r for r in remaining) for m in good)
    assert decoder.frames == len(received)
    assert decoder.frames + decoder.malformed == len(good) + noise_frames


def test_corrupted_frame_is_counted_and_the_next_one_delivered() -> None:
    decoder = framing.FrameDecoder()
    good = framing.encode_frame(b"\x02\x16")
    bad = bytearray(framing.encode_frame(b"\x03\x05\x00"))
    bad[1] ^= 0x40  # CRC now fails
    assert decoder.feed(bytes(bad) + good) == [b"\x02\x16"]
    assert (decoder.frames, decoder.malformed) == (1, 1)
    assert decoder.feed(b"\x00\x00\x00") == []  # empty frames are ignored silently
    assert decoder.malformed == 1
    assert decoder.feed(b"\x05\x01\x00") == []  # COBS block runs past the frame end
    assert decoder.feed(b"\x01\x01\x00") == []  # decodes to 1 byte: too short for a CRC
    assert decoder.malformed == 3


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 64), st.integers(1, 3000), messages)
def test_oversized_frames_are_dropped_and_the_receiver_resynchronises(
    max_message: int, garbage_len: int, message: bytes
) -> None:
    decoder = framing.FrameDecoder(max_message_bytes=max_message)
    too_long = framing.encode_frame(b"\x01" * (max_message + 1))
    fitting = message[:max_message]
    out = decoder.feed(too_long) + decoder.feed(b"\x07" * garbage_len + b"\x00")
    out += decoder.feed(framing.encode_frame(fitting))
    assert out == [fitting]
    assert decoder.oversized >= 1
    assert decoder.malformed == decoder.oversized + (0 if garbage_len > max_message + 3 else 1)


def test_maximum_size_message_fits() -> None:
    decoder = framing.FrameDecoder(max_message_bytes=1024)
    message = bytes(range(256)) * 4
    assert decoder.feed(framing.encode_frame(message)) == [message]
    assert decoder.feed(framing.encode_frame(message + b"\x01")) == []
    assert decoder.oversized == 1
