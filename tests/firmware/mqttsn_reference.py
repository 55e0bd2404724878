"""An independent MQTT-SN v1.2 encoder and COBS/CRC framer for cross-checking the C codec.

Written from the specification's message layouts (section 5) and the Shoal serial framing
contract, separately from firmware_templates/c. It encodes only; it must not be used as a
decoder oracle for malformed input. Also holds a driver for the C codec's stdin/stdout front
end (tests/firmware/c/mqttsn_codec_cli.c).
"""

from __future__ import annotations

import binascii
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path

from hypothesis import strategies as st

ADVERTISE, SEARCHGW, GWINFO, CONNECT, CONNACK = 0x00, 0x01, 0x02, 0x04, 0x05
WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG = 0x06, 0x07, 0x08, 0x09
REGISTER, REGACK, PUBLISH, PUBACK, PUBCOMP, PUBREC, PUBREL = (
    0x0A,
    0x0B,
    0x0C,
    0x0D,
    0x0E,
    0x0F,
    0x10,
)
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 0x12, 0x13, 0x14, 0x15
PINGREQ, PINGRESP, DISCONNECT = 0x16, 0x17, 0x18
WILLTOPICUPD, WILLTOPICRESP, WILLMSGUPD, WILLMSGRESP = 0x1A, 0x1B, 0x1C, 0x1D
ENCAPSULATED = 0xFE


@dataclass(frozen=True)
class Fields:
    """The C codec's shoal_mqttsn_msg, field for field (unused fields stay 0 / empty)."""

    type: int
    flags: int = 0
    return_code: int = 0
    gw_id: int = 0
    radius: int = 0
    protocol_id: int = 0
    has_duration: int = 0
    duration: int = 0
    topic_id: int = 0
    msg_id: int = 0
    text: bytes = b""
    data: bytes = b""

    def to_line(self) -> str:
        """The 12 space-separated values the codec CLI expects after 'E '."""
        nums = [getattr(self, f.name) for f in fields(self)][:10]
        return " ".join(str(n) for n in nums) + f" {_hex(self.text)} {_hex(self.data)}"

    @classmethod
    def from_tokens(cls, tokens: list[str]) -> Fields:
        n = [int(t) for t in tokens[:10]]
        return cls(
            type=n[0],
            flags=n[1],
            return_code=n[2],
            gw_id=n[3],
            radius=n[4],
            protocol_id=n[5],
            has_duration=n[6],
            duration=n[7],
            topic_id=n[8],
            msg_id=n[9],
            text=_unhex(tokens[10]),
            data=_unhex(tokens[11]),
        )


def _hex(b: bytes) -> str:
    return b.hex() if b else "-"


def _unhex(s: str) -> bytes:
    return b"" if s == "-" else bytes.fromhex(s)


def _u16(v: int) -> bytes:
    return bytes([(v >> 8) & 0xFF, v & 0xFF])


def _body(m: Fields) -> bytes:
    t = m.type
    if t == ADVERTISE:
        return bytes([m.gw_id]) + _u16(m.duration)
    if t == SEARCHGW:
        return bytes([m.radius])
    if t == GWINFO:
        return bytes([m.gw_id]) + m.text
    if t == CONNECT:
        return bytes([m.flags, m.protocol_id]) + _u16(m.duration) + m.text
    if t in (CONNACK, WILLTOPICRESP, WILLMSGRESP):
        return bytes([m.return_code])
    if t in (WILLTOPICREQ, WILLMSGREQ, PINGRESP):
        return b""
    if t in (WILLTOPIC, WILLTOPICUPD):
        return bytes([m.flags]) + m.text if m.text else b""
    if t in (WILLMSG, WILLMSGUPD):
        return m.data
    if t == REGISTER:
        return _u16(m.topic_id) + _u16(m.msg_id) + m.text
    if t in (REGACK, PUBACK):
        return _u16(m.topic_id) + _u16(m.msg_id) + bytes([m.return_code])
    if t == PUBLISH:
        return bytes([m.flags]) + _u16(m.topic_id) + _u16(m.msg_id) + m.data
    if t in (PUBREC, PUBREL, PUBCOMP, UNSUBACK):
        return _u16(m.msg_id)
    if t in (SUBSCRIBE, UNSUBSCRIBE):
        topic = m.text if (m.flags & 0x03) == 0 else _u16(m.topic_id)
        return bytes([m.flags]) + _u16(m.msg_id) + topic
    if t == SUBACK:
        return bytes([m.flags]) + _u16(m.topic_id) + _u16(m.msg_id) + bytes([m.return_code])
    if t == PINGREQ:
        return m.text
    if t == DISCONNECT:
        return _u16(m.duration) if m.has_duration else b""
    raise ValueError(f"reference encoder: MsgType 0x{t:02x} is not a v1.2 message")


def encode(m: Fields) -> bytes:
    """Encode with the 1-octet Length when the total is <= 255 bytes, else 0x01 + 2 octets."""
    if m.type == ENCAPSULATED:
        ctrl = (m.flags & 0xFC) | (m.radius & 0x03)
        return bytes([3 + len(m.text), ENCAPSULATED, ctrl]) + m.text + m.data
    body = _body(m)
    if len(body) + 2 <= 255:
        return bytes([len(body) + 2, m.type]) + body
    return b"\x01" + _u16(len(body) + 4) + bytes([m.type]) + body


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE via the standard library (binascii.crc_hqx with init 0xFFFF)."""
    return binascii.crc_hqx(data, 0xFFFF)


def cobs_encode(data: bytes) -> bytes:
    """Standard COBS: blocks of a code byte (1 + run length) and up to 254 non-zero bytes.

    A full block (code 0xFF) carries no implied zero; when the data ends exactly on a full block
    no empty trailing block is added.
    """
    out = bytearray()
    block = bytearray()
    for i, b in enumerate(data):
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            continue
        block.append(b)
        if len(block) == 254:
            out.append(0xFF)
            out += block
            block.clear()
            if i == len(data) - 1:
                return bytes(out)
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def frame(message: bytes) -> bytes:
    """COBS(message || CRC16 big-endian) || 0x00."""
    crc = crc16_ccitt_false(message)
    return cobs_encode(message + bytes([crc >> 8, crc & 0xFF])) + b"\x00"


# ---- hypothesis strategies for valid messages ----

_u8 = st.integers(0, 255)
_u16s = st.integers(0, 0xFFFF)
_name = st.binary(min_size=1, max_size=40)
_client_id = st.binary(min_size=1, max_size=23)
_qos_bits = st.sampled_from([0x00, 0x20, 0x40])
_payload = st.binary(max_size=300)


def _flags(qos: st.SearchStrategy[int], extra: int) -> st.SearchStrategy[int]:
    return st.tuples(qos, st.integers(0, 255)).map(lambda t: t[0] | (t[1] & extra))


@st.composite
def valid_messages(draw: st.DrawFn) -> Fields:
    """Any well-formed v1.2 message (plus Forwarder Encapsulation), fields as the C codec sees them."""
    t = draw(
        st.sampled_from(
            [
                ADVERTISE,
                SEARCHGW,
                GWINFO,
                CONNECT,
                CONNACK,
                WILLTOPICREQ,
                WILLTOPIC,
                WILLMSGREQ,
                WILLMSG,
                REGISTER,
                REGACK,
                PUBLISH,
                PUBACK,
                PUBCOMP,
                PUBREC,
                PUBREL,
                SUBSCRIBE,
                SUBACK,
                UNSUBSCRIBE,
                UNSUBACK,
                PINGREQ,
                PINGRESP,
                DISCONNECT,
                WILLTOPICUPD,
                WILLTOPICRESP,
                WILLMSGUPD,
                WILLMSGRESP,
                ENCAPSULATED,
            ]
        )
    )
    if t == ADVERTISE:
        return Fields(t, gw_id=draw(_u8), duration=draw(_u16s))
    if t == SEARCHGW:
        return Fields(t, radius=draw(_u8))
    if t == GWINFO:
        return Fields(t, gw_id=draw(_u8), text=draw(st.binary(max_size=16)))
    if t == CONNECT:
        return Fields(
            t, flags=draw(_u8), protocol_id=1, duration=draw(_u16s), text=draw(_client_id)
        )
    if t in (CONNACK, WILLTOPICRESP, WILLMSGRESP):
        return Fields(t, return_code=draw(_u8))
    if t in (WILLTOPICREQ, WILLMSGREQ, PINGRESP):
        return Fields(t)
    if t in (WILLTOPIC, WILLTOPICUPD):
        text = draw(st.binary(max_size=40))
        return Fields(t, flags=draw(_flags(_qos_bits, 0x9F)) if text else 0, text=text)
    if t in (WILLMSG, WILLMSGUPD):
        return Fields(t, data=draw(_payload))
    if t == REGISTER:
        return Fields(t, topic_id=draw(_u16s), msg_id=draw(_u16s), text=draw(_name))
    if t in (REGACK, PUBACK):
        return Fields(t, topic_id=draw(_u16s), msg_id=draw(_u16s), return_code=draw(_u8))
    if t == PUBLISH:
        flags = draw(_flags(st.sampled_from([0x00, 0x20, 0x40, 0x60]), 0x9C))
        flags |= draw(st.sampled_from([0, 1, 2]))
        return Fields(t, flags=flags, topic_id=draw(_u16s), msg_id=draw(_u16s), data=draw(_payload))
    if t in (PUBREC, PUBREL, PUBCOMP, UNSUBACK):
        return Fields(t, msg_id=draw(_u16s))
    if t in (SUBSCRIBE, UNSUBSCRIBE):
        flags = draw(_flags(_qos_bits, 0x9C)) | draw(st.sampled_from([0, 1, 2]))
        if flags & 0x03:
            return Fields(t, flags=flags, msg_id=draw(_u16s), topic_id=draw(_u16s))
        return Fields(t, flags=flags, msg_id=draw(_u16s), text=draw(_name))
    if t == SUBACK:
        return Fields(
            t, flags=draw(_u8), topic_id=draw(_u16s), msg_id=draw(_u16s), return_code=draw(_u8)
        )
    if t == PINGREQ:
        return Fields(t, text=draw(st.binary(max_size=23)))
    if t == DISCONNECT:
        if draw(st.booleans()):
            return Fields(t, has_duration=1, duration=draw(_u16s))
        return Fields(t)
    inner = encode(draw(valid_messages()))
    return Fields(
        t,
        flags=draw(_u8) & 0xFC,
        radius=draw(st.integers(0, 3)),
        text=draw(st.binary(max_size=8)),
        data=inner,
    )


class CodecCli:
    """A running tests/firmware/c/mqttsn_codec_cli process (one request per line)."""

    def __init__(self, exe: Path) -> None:
        self._proc = subprocess.Popen(
            [str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def request(self, line: str) -> list[str]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        reply = self._proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"codec CLI exited (status {self._proc.poll()}) on: {line[:80]}")
        return reply.split()

    def decode(self, datagram: bytes) -> Fields | int:
        """Fields on success, the negative SHOAL_MQTTSN_ERR_* code on rejection."""
        tokens = self.request(f"D {_hex(datagram)}")
        return Fields.from_tokens(tokens[1:]) if tokens[0] == "OK" else int(tokens[1])

    def encode(self, m: Fields) -> bytes | int:
        tokens = self.request(f"E {m.to_line()}")
        return _unhex(tokens[1]) if tokens[0] == "OK" else int(tokens[1])

    def frame(self, message: bytes) -> bytes:
        tokens = self.request(f"F {_hex(message)}")
        assert tokens[0] == "OK", tokens
        return _unhex(tokens[1])

    def unframe(self, stream: bytes) -> tuple[list[bytes], dict[str, int]]:
        tokens = self.request(f"U {_hex(stream)}")
        assert tokens[0] == "OK", tokens
        messages = [_unhex(t) for t in tokens[1:] if "=" not in t]
        counters = {k: int(v) for k, v in (t.split("=") for t in tokens[1:] if "=" in t)}
        return messages, counters

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.returncode != 0:
            raise RuntimeError(f"codec CLI exited with status {self._proc.returncode}")


def cobs_decode(encoded: bytes) -> bytes | None:
    """Inverse of cobs_encode; None for an invalid code sequence."""
    out = bytearray()
    i = 0
    while i < len(encoded):
        code = encoded[i]
        if code == 0 or i + code > len(encoded):
            return None
        out += encoded[i + 1 : i + code]
        i += code
        if code != 0xFF and i < len(encoded):
            out.append(0)
    return bytes(out)


class FrameReader:
    """Split a byte stream at 0x00 and return the messages of the frames whose CRC checks."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[bytes]:
        messages = []
        for b in data:
            if b:
                self._pending.append(b)
                continue
            if self._pending:
                decoded = cobs_decode(bytes(self._pending))
                if (
                    decoded is None
                    or len(decoded) < 3
                    or crc16_ccitt_false(decoded[:-2]) != int.from_bytes(decoded[-2:], "big")
                ):
                    self.bad_frames += 1
                else:
                    messages.append(decoded[:-2])
            self._pending.clear()
        return messages
