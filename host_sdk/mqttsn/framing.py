"""Serial framing for MQTT-SN over a byte stream (UART, pty, TCP socket to a QEMU UART).

One MQTT-SN message M travels as `COBS(M || CRC16(M)) || 0x00`, with CRC-16/CCITT-FALSE
(poly 0x1021, init 0xFFFF, no reflection, xorout 0) appended big-endian. 0x00 only ever
delimits frames, so a receiver resynchronises at the next 0x00 after noise or a lost byte.
Responsible for encoding frames and for an incremental decoder with counters; it must not do
I/O or look inside the messages.

This file runs unchanged on MicroPython (the firmware ships it).
"""

DEFAULT_MAX_MESSAGE_BYTES = 1024
_COBS_BLOCK = 254  # data bytes carried by a full block (code 0xFF)


class FramingError(ValueError):
    """A frame is not valid COBS or fails its CRC; the text says which."""


def _make_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _make_crc_table()


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of `data` (check value for b"123456789" is 0x29B1)."""
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode `data`: the result has no 0x00 and at most 1 + len/254 extra bytes."""
    data = bytes(data)
    out = bytearray()
    size = len(data)
    i = 0
    while True:
        zero = data.find(b"\x00", i)
        run_end = size if zero < 0 else zero
        full_block = False
        while run_end - i >= _COBS_BLOCK:
            out.append(0xFF)
            out += data[i : i + _COBS_BLOCK]
            i += _COBS_BLOCK
            full_block = True
        if zero < 0:
            # A final full block already implies "no zero follows"; otherwise close the run.
            if i < size or not full_block:
                out.append(size - i + 1)
                out += data[i:size]
            return bytes(out)
        out.append(zero - i + 1)
        out += data[i:zero]
        i = zero + 1


def cobs_decode(encoded: bytes) -> bytes:
    """Inverse of cobs_encode; raises FramingError for a 0x00 byte or a block past the end."""
    encoded = bytes(encoded)
    size = len(encoded)
    if encoded.find(b"\x00") >= 0:
        raise FramingError("COBS: encoded frame contains a 0x00 byte")
    out = bytearray()
    i = 0
    while i < size:
        code = encoded[i]
        end = i + code
        if end > size:
            raise FramingError(
                f"COBS: block code {code} at offset {i} runs past the {size}-byte frame"
            )
        out += encoded[i + 1 : end]
        i = end
        if code != 0xFF and i < size:
            out.append(0)
    return bytes(out)


def encode_frame(message: bytes, flush: bool = False) -> bytes:
    """One serial frame for `message`; `flush` prepends a 0x00 that ends any partial frame."""
    crc = crc16_ccitt_false(message)
    body = cobs_encode(bytes(message) + bytes(((crc >> 8) & 0xFF, crc & 0xFF)))
    if flush:
        return b"\x00" + body + b"\x00"
    return body + b"\x00"


def decode_frame(encoded: bytes) -> bytes:
    """The message inside one frame (without its 0x00 delimiter); raises FramingError."""
    raw = cobs_decode(encoded)
    if len(raw) < 3:
        raise FramingError(f"frame: {len(raw)} decoded bytes, need a message byte and 2 CRC bytes")
    message = raw[:-2]
    expected = (raw[-2] << 8) | raw[-1]
    actual = crc16_ccitt_false(message)
    if actual != expected:
        raise FramingError(f"frame: CRC 0x{actual:04X} does not match 0x{expected:04X}")
    return message


class FrameDecoder:
    """Incremental receiver: feed it stream bytes, get back complete, CRC-checked messages.

    Counters (all frames, never reset): `frames` delivered, `malformed` dropped (bad COBS,
    too short, bad CRC, or oversized), `oversized` (a subset of `malformed`).
    """

    __slots__ = ("_buf", "_discarding", "_max_encoded", "frames", "malformed", "oversized")

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        payload = max_message_bytes + 2
        self._max_encoded = payload + 1 + payload // _COBS_BLOCK
        self._buf = bytearray()
        self._discarding = False
        self.frames = 0
        self.malformed = 0
        self.oversized = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Consume stream bytes; return the messages whose frames completed in them, in order."""
        data = bytes(data)
        messages: list[bytes] = []
        size = len(data)
        start = 0
        while start < size:
            zero = data.find(b"\x00", start)
            chunk_end = size if zero < 0 else zero
            if not self._discarding:
                if len(self._buf) + chunk_end - start > self._max_encoded:
                    self._discarding = True
                    self._buf = bytearray()
                    self.malformed += 1
                    self.oversized += 1
                else:
                    self._buf += data[start:chunk_end]
            if zero < 0:
                break
            if self._discarding:
                self._discarding = False
            elif self._buf:
                try:
                    messages.append(decode_frame(bytes(self._buf)))
                    self.frames += 1
                except FramingError:
                    self.malformed += 1
                self._buf = bytearray()
            start = zero + 1
        return messages
