"""Shoal agent protocol v1 codec: message dicts <-> the binary payloads of docs/agent_protocol.md.

Responsible for the wire format of the eight message kinds an agent exchanges with the fleet
(birth, will, hb, status, cmd, resp, profile, boot): the version byte, the little-endian field
layout, every length and range bound, the v1 extension area, and rejecting anything else with
one exception class, `AgentProtocolError`, whose text names the message kind, the field and
its byte offset, and what was expected. It also converts messages to and from the JSON form
used by the golden vectors (bytes as lowercase hex).
It must not do I/O, keep state between calls, know topics or MQTT-SN, or interpret commands
(whether a command's arguments make sense for the role is the agent's business).

A message is a dict: {"kind": "hb", "incarnation": 7, ...}; byte fields (firmware_id, hash,
args, result, ext) are `bytes`; "ext" (the extension area) is present only when not empty.

This file runs unchanged on MicroPython (the firmware ships it): no dataclasses, enum, typing
at runtime, f-string `=` specifiers or negative-step slices; annotations stay plain.
"""

import struct

VERSION = 1
MAX_MESSAGE_BYTES = 2048  # bytes, whole payload; larger payloads are rejected ("too_large")
SMALL_DEVICE_PAYLOAD_BYTES = 256  # every kind but cmd/resp fits this (an MCU PUBLISH payload)
HASH_BYTES = 8  # firmware ids and model hashes: the first 8 bytes of a SHA-256
MAX_MODELS = 4
MAX_PARAMS = 16
MAX_LAYERS_PER_REPORT = 20
NAME_MAX_BYTES = 16  # role, generator version, model names
BOARD_MAX_BYTES = 32
HEADER_BYTES = 2  # version, kind

KIND_CODES = {
    "birth": 1,
    "will": 2,
    "hb": 3,
    "status": 4,
    "cmd": 5,
    "resp": 6,
    "profile": 7,
    "boot": 8,
}
KIND_NAMES = {code: name for name, code in KIND_CODES.items()}

# Command codes (open set: a reader passes unknown codes through).
COMMAND_CODES = {
    "infer": 1,
    "set_param": 2,
    "status": 3,
    "profile": 4,
    "reboot": 5,
    "sleep": 6,
}
# Response states (closed set). ok, rejected, busy and error are final; accepted is not.
STATES = {"ok": 0, "accepted": 1, "rejected": 2, "busy": 3, "error": 4}
# Error codes carried by a resp (open set: a reader passes unknown codes through).
ERROR_CODES = {
    "none": 0,
    "unknown_command": 1,
    "bad_arguments": 2,
    "unknown_model": 3,
    "input_size": 4,
    "unknown_param": 5,
    "param_range": 6,
    "busy": 7,
    "inference_failed": 8,
    "result_too_large": 9,
    "unsupported_version": 10,
    "malformed": 11,
    "not_supported": 12,
    "internal": 13,
}
AGENT_STATES = {"booting": 0, "idle": 1, "busy": 2, "sleeping": 3, "error": 4}
RESET_CAUSES = {
    "power_on": 0,
    "software": 1,
    "watchdog": 2,
    "brownout": 3,
    "pin": 4,
    "wake": 5,
    "unknown": 6,
}
PROFILE_UNITS = {"us": 0, "cycles": 1, "instructions": 2}

# Decode/encode error classes (the golden vectors name them; the C codec has one code each).
ERROR_CLASSES = (
    "truncated",  # the payload ends inside a field
    "too_large",  # more than MAX_MESSAGE_BYTES
    "version",  # version byte is not 1
    "kind",  # kind byte is not a v1 kind
    "length",  # a string, blob or list length outside its bounds
    "value",  # a field's value outside its range or vocabulary
    "extension",  # the extension area is not a sequence of (type, length, value) records
    "field",  # encode: a field missing, unknown, or of the wrong Python type
)

_U8 = 0
_U16 = 1
_U32 = 2
_I32 = 3
_STR = 4  # u8 length + printable ASCII without '/', '+', '#'
_ID8 = 5  # exactly HASH_BYTES raw bytes
_BLOB = 6  # u16 length + bytes
_LIST = 7  # u8 count + items

_INT_FORMATS = {_U8: "<B", _U16: "<H", _U32: "<I", _I32: "<i"}
_INT_SIZES = {_U8: 1, _U16: 2, _U32: 4, _I32: 4}
_U32_MAX = 0xFFFFFFFF
_I32_MIN = -0x80000000
_I32_MAX = 0x7FFFFFFF

# Field tables: (name, type, low, high); for _STR/_BLOB low..high is the length in bytes, for
# _LIST (name, _LIST, max_count, item fields). The order is the wire order.
_MODEL_FIELDS = (("hash", _ID8, 0, 0), ("name", _STR, 1, NAME_MAX_BYTES))
_PARAM_FIELDS = (("id", _U8, 0, 255), ("value", _I32, _I32_MIN, _I32_MAX))
_LAYER_FIELDS = (
    ("index", _U16, 0, 0xFFFF),
    ("op", _U8, 0, 255),
    ("time", _U32, 0, _U32_MAX),
    ("macs", _U32, 0, _U32_MAX),
)
_BLOB_MAX = MAX_MESSAGE_BYTES

_FIELDS = {
    "birth": (
        ("incarnation", _U32, 0, _U32_MAX),
        ("role", _STR, 1, NAME_MAX_BYTES),
        ("board", _STR, 1, BOARD_MAX_BYTES),
        ("firmware_id", _ID8, 0, 0),
        ("generator", _STR, 1, NAME_MAX_BYTES),
        ("free_ram", _U32, 0, _U32_MAX),
        ("max_payload", _U16, 64, MAX_MESSAGE_BYTES),
        ("models", _LIST, MAX_MODELS, _MODEL_FIELDS),
    ),
    "will": (("incarnation", _U32, 0, _U32_MAX),),
    "hb": (
        ("incarnation", _U32, 0, _U32_MAX),
        ("seq", _U32, 0, _U32_MAX),
        ("uptime_s", _U32, 0, _U32_MAX),
        ("inferences", _U32, 0, _U32_MAX),
        ("commands", _U32, 0, _U32_MAX),
        ("errors", _U32, 0, _U32_MAX),
        ("reconnects", _U16, 0, 0xFFFF),
        ("latency_us", _U32, 0, _U32_MAX),
        ("free_ram", _U32, 0, _U32_MAX),
    ),
    "status": (
        ("incarnation", _U32, 0, _U32_MAX),
        ("state", _U8, 0, len(AGENT_STATES) - 1),
        ("uptime_s", _U32, 0, _U32_MAX),
        ("free_ram", _U32, 0, _U32_MAX),
        ("params", _LIST, MAX_PARAMS, _PARAM_FIELDS),
    ),
    "cmd": (
        ("corr", _U16, 1, 0xFFFF),
        ("code", _U8, 1, 255),
        ("args", _BLOB, 0, _BLOB_MAX),
    ),
    "resp": (
        ("corr", _U16, 0, 0xFFFF),
        ("code", _U8, 0, 255),
        ("state", _U8, 0, len(STATES) - 1),
        ("error", _U8, 0, 255),
        ("latency_us", _U32, 0, _U32_MAX),
        ("result", _BLOB, 0, _BLOB_MAX),
    ),
    "profile": (
        ("corr", _U16, 0, 0xFFFF),
        ("model", _U8, 0, MAX_MODELS - 1),
        ("unit", _U8, 0, len(PROFILE_UNITS) - 1),
        ("total_layers", _U16, 1, 0xFFFF),
        ("layers", _LIST, MAX_LAYERS_PER_REPORT, _LAYER_FIELDS),
    ),
    "boot": (
        ("incarnation", _U32, 0, _U32_MAX),
        ("reset_cause", _U8, 0, len(RESET_CAUSES) - 1),
        ("corr", _U16, 0, 0xFFFF),
        ("boot_ms", _U32, 0, _U32_MAX),
        ("free_ram", _U32, 0, _U32_MAX),
        ("firmware_id", _ID8, 0, 0),
    ),
}

# Keys whose values are bytes (hex in the JSON form of the golden vectors).
BYTES_KEYS = ("firmware_id", "hash", "args", "result", "ext")

# struct.error does not exist on MicroPython, where struct raises ValueError.
_STRUCT_ERROR = getattr(struct, "error", ValueError)


class AgentProtocolError(ValueError):
    """A payload or a message dict is not valid v1; `error_class` is one of ERROR_CLASSES.

    The text names the message kind, the field and its byte offset, and what was expected.
    """

    def __init__(self, kind: str, error_class: str, where: str, problem: str) -> None:
        head = "agent " + kind + " message" if kind else "agent message"
        super().__init__(head + ": " + where + ": " + problem)
        self.kind = kind
        self.error_class = error_class


def _name_ok(raw: bytes) -> bool:
    return all(0x21 <= b <= 0x7E and b not in (0x23, 0x2B, 0x2F) for b in raw)


def _where(name: str, offset: int) -> str:
    if offset < 0:  # encoding: no payload yet
        return "field '" + name + "'"
    return "field '" + name + "' at offset " + str(offset)


# ---------------------------------------------------------------------------------------------
# Decoding


def _read_fields(kind: str, fields: tuple, d: bytes, pos: int, out: dict, prefix: str) -> int:
    n = len(d)
    for spec in fields:
        name = spec[0]
        ftype = spec[1]
        label = prefix + name
        if ftype in _INT_SIZES:
            size = _INT_SIZES[ftype]
            if pos + size > n:
                raise AgentProtocolError(
                    kind,
                    "truncated",
                    _where(label, pos),
                    "expected " + str(size) + " bytes, the payload has " + str(n - pos) + " left",
                )
            value = struct.unpack_from(_INT_FORMATS[ftype], d, pos)[0]
            if value < spec[2] or value > spec[3]:
                raise AgentProtocolError(
                    kind,
                    "value",
                    _where(label, pos),
                    "expected " + str(spec[2]) + ".." + str(spec[3]) + ", got " + str(value),
                )
            out[name] = value
            pos += size
        elif ftype == _ID8:
            if pos + HASH_BYTES > n:
                raise AgentProtocolError(
                    kind,
                    "truncated",
                    _where(label, pos),
                    "expected "
                    + str(HASH_BYTES)
                    + " bytes, the payload has "
                    + str(n - pos)
                    + " left",
                )
            out[name] = d[pos : pos + HASH_BYTES]
            pos += HASH_BYTES
        elif ftype in (_STR, _BLOB):
            head = 1 if ftype == _STR else 2
            if pos + head > n:
                raise AgentProtocolError(
                    kind,
                    "truncated",
                    _where(label, pos),
                    "expected a length prefix, the payload ends",
                )
            length = d[pos] if head == 1 else struct.unpack_from("<H", d, pos)[0]
            if length < spec[2] or length > spec[3]:
                raise AgentProtocolError(
                    kind,
                    "length",
                    _where(label, pos),
                    "expected a length of "
                    + str(spec[2])
                    + ".."
                    + str(spec[3])
                    + " bytes, got "
                    + str(length),
                )
            start = pos + head
            if start + length > n:
                raise AgentProtocolError(
                    kind,
                    "truncated",
                    _where(label, pos),
                    "expected the "
                    + str(length)
                    + " bytes it announces, the payload has "
                    + str(n - start)
                    + " left",
                )
            raw = d[start : start + length]
            if ftype == _STR:
                if not _name_ok(raw):
                    raise AgentProtocolError(
                        kind,
                        "value",
                        _where(label, start),
                        "expected printable ASCII without '/', '+', '#' or spaces",
                    )
                out[name] = raw.decode()
            else:
                out[name] = raw
            pos = start + length
        else:  # _LIST
            if pos + 1 > n:
                raise AgentProtocolError(
                    kind,
                    "truncated",
                    _where(label, pos),
                    "expected an item count, the payload ends",
                )
            count = d[pos]
            if count > spec[2]:
                raise AgentProtocolError(
                    kind,
                    "length",
                    _where(label, pos),
                    "expected at most " + str(spec[2]) + " items, got " + str(count),
                )
            pos += 1
            items = []
            for index in range(count):
                item: dict = {}
                pos = _read_fields(kind, spec[3], d, pos, item, label + "[" + str(index) + "].")
                items.append(item)
            out[name] = items
    return pos


def _check_ext(kind: str, d: bytes, pos: int) -> None:
    # The extension area: (type u8, length u8, value) records up to the end of the payload.
    n = len(d)
    while pos < n:
        if pos + 2 > n:
            raise AgentProtocolError(
                kind,
                "extension",
                "extension record at offset " + str(pos),
                "expected a type and a length byte, 1 byte left",
            )
        if d[pos] == 0:
            raise AgentProtocolError(
                kind,
                "extension",
                "extension record at offset " + str(pos),
                "type 0 is reserved (expected 1..255)",
            )
        end = pos + 2 + d[pos + 1]
        if end > n:
            raise AgentProtocolError(
                kind,
                "extension",
                "extension record at offset " + str(pos),
                "expected " + str(d[pos + 1]) + " value bytes, " + str(n - pos - 2) + " left",
            )
        pos = end


def _check_rules(kind: str, msg: dict, offsets: dict) -> None:
    """Rules across fields, shared by encode and decode."""
    if kind == "resp":
        final_ok = msg["state"] == STATES["ok"] or msg["state"] == STATES["accepted"]
        if final_ok and msg["error"] != 0:
            raise AgentProtocolError(
                kind,
                "value",
                _where("error", offsets.get("error", -1)),
                "expected 0 (none) with state ok or accepted, got " + str(msg["error"]),
            )
        if not final_ok and msg["error"] == 0:
            raise AgentProtocolError(
                kind,
                "value",
                _where("error", offsets.get("error", -1)),
                "expected a non-zero error code with state rejected, busy or error",
            )
    elif kind == "profile":
        total = msg["total_layers"]
        first = offsets.get("layers", -1)
        for i, layer in enumerate(msg["layers"]):
            if layer["index"] >= total:
                raise AgentProtocolError(
                    kind,
                    "value",
                    _where("layers[" + str(i) + "].index", first + 11 * i if first >= 0 else -1),
                    "expected an index below total_layers "
                    + str(total)
                    + ", got "
                    + str(layer["index"]),
                )


def _offset_of(kind: str, name: str) -> int:
    # Offset of a top-level fixed-size field placed before any variable-size field.
    pos = HEADER_BYTES
    for spec in _FIELDS[kind]:
        if spec[0] == name:
            return pos
        if spec[1] not in _INT_SIZES:
            return -1
        pos += _INT_SIZES[spec[1]]
    return -1


def decode(payload: bytes) -> dict:
    """Decode one agent protocol v1 payload (bytes-like) into a message dict.

    Raises AgentProtocolError (and nothing else) when the payload is empty, truncated, longer
    than MAX_MESSAGE_BYTES, of another version or kind, or any field is out of its bounds.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise AgentProtocolError(
            "", "field", "payload", "expected bytes, got " + type(payload).__name__
        )
    d = bytes(payload)
    n = len(d)
    if n > MAX_MESSAGE_BYTES:
        raise AgentProtocolError(
            "",
            "too_large",
            "payload",
            "expected at most " + str(MAX_MESSAGE_BYTES) + " bytes, got " + str(n),
        )
    if n < HEADER_BYTES:
        raise AgentProtocolError(
            "", "truncated", "header", "expected 2 bytes (version, kind), got " + str(n)
        )
    if d[0] != VERSION:
        raise AgentProtocolError(
            "",
            "version",
            _where("version", 0),
            "expected 1 (this reader speaks v1), got " + str(d[0]),
        )
    kind = KIND_NAMES.get(d[1])
    if kind is None:
        raise AgentProtocolError(
            "", "kind", _where("kind", 1), "expected 1..8 (v1 kinds), got " + str(d[1])
        )
    msg: dict = {"kind": kind}
    try:
        pos = _read_fields(kind, _FIELDS[kind], d, HEADER_BYTES, msg, "")
        _check_ext(kind, d, pos)
    except AgentProtocolError:
        raise
    except (IndexError, TypeError, ValueError, KeyError, _STRUCT_ERROR) as exc:
        # Defence in depth: the checks above make this unreachable.
        raise AgentProtocolError(
            kind, "truncated", "payload", "malformed (" + str(exc) + ")"
        ) from None
    if pos < n:
        msg["ext"] = d[pos:]
    # Profile layers start after corr, model, unit, total_layers and the count: offset 9.
    _check_rules(kind, msg, {"error": _offset_of(kind, "error"), "layers": 9})
    return msg


def peek_corr(payload: bytes) -> int:
    """The correlation id of a cmd payload of any version, or 0 when there is none to read.

    Every version keeps version at offset 0, kind at offset 1 and a cmd's corr at offsets 2-3
    (little endian), so an agent can answer a cmd it cannot decode (unsupported_version,
    malformed) with the right corr. Never raises.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)) or len(payload) < 4:
        return 0
    if payload[1] != KIND_CODES["cmd"]:
        return 0
    return payload[2] | (payload[3] << 8)


# ---------------------------------------------------------------------------------------------
# Encoding


def _field_error(kind: str, label: str, problem: str) -> AgentProtocolError:
    return AgentProtocolError(kind, "field", "field '" + label + "'", problem)


def _as_bytes(kind: str, label: str, value: object) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise _field_error(kind, label, "expected bytes, got " + type(value).__name__)


def _write_fields(kind: str, fields: tuple, msg: dict, out: list, prefix: str) -> None:
    if not isinstance(msg, dict):
        raise _field_error(kind, prefix or "message", "expected a dict of fields")
    known = [spec[0] for spec in fields]
    for key in msg:
        if key not in known and not (prefix == "" and (key == "kind" or key == "ext")):
            raise _field_error(
                kind, prefix + str(key), "unknown field (expected " + ", ".join(known) + ")"
            )
    for spec in fields:
        name = spec[0]
        ftype = spec[1]
        label = prefix + name
        if name not in msg:
            raise _field_error(kind, label, "missing")
        value = msg[name]
        if ftype in _INT_SIZES:
            if not isinstance(value, int) or isinstance(value, bool):
                raise _field_error(kind, label, "expected an int, got " + type(value).__name__)
            if value < spec[2] or value > spec[3]:
                raise AgentProtocolError(
                    kind,
                    "value",
                    "field '" + label + "'",
                    "expected " + str(spec[2]) + ".." + str(spec[3]) + ", got " + str(value),
                )
            out.append(struct.pack(_INT_FORMATS[ftype], value))
        elif ftype == _ID8:
            raw = _as_bytes(kind, label, value)
            if len(raw) != HASH_BYTES:
                raise AgentProtocolError(
                    kind,
                    "length",
                    "field '" + label + "'",
                    "expected exactly " + str(HASH_BYTES) + " bytes, got " + str(len(raw)),
                )
            out.append(raw)
        elif ftype in (_STR, _BLOB):
            if ftype == _STR:
                if not isinstance(value, str):
                    raise _field_error(kind, label, "expected a str, got " + type(value).__name__)
                raw = value.encode()
            else:
                raw = _as_bytes(kind, label, value)
            if len(raw) < spec[2] or len(raw) > spec[3]:
                raise AgentProtocolError(
                    kind,
                    "length",
                    "field '" + label + "'",
                    "expected "
                    + str(spec[2])
                    + ".."
                    + str(spec[3])
                    + " bytes, got "
                    + str(len(raw)),
                )
            if ftype == _STR:
                if not _name_ok(raw):
                    raise AgentProtocolError(
                        kind,
                        "value",
                        "field '" + label + "'",
                        "expected printable ASCII without '/', '+', '#' or spaces",
                    )
                out.append(bytes((len(raw),)))
            else:
                out.append(struct.pack("<H", len(raw)))
            out.append(raw)
        else:  # _LIST
            if not isinstance(value, (list, tuple)):
                raise _field_error(kind, label, "expected a list, got " + type(value).__name__)
            if len(value) > spec[2]:
                raise AgentProtocolError(
                    kind,
                    "length",
                    "field '" + label + "'",
                    "expected at most " + str(spec[2]) + " items, got " + str(len(value)),
                )
            out.append(bytes((len(value),)))
            for index, item in enumerate(value):
                _write_fields(kind, spec[3], item, out, label + "[" + str(index) + "].")


def encode(msg: dict) -> bytes:
    """Encode a message dict (see `decode`) into its v1 payload.

    Raises AgentProtocolError (class "field", "value", "length", "extension" or "too_large")
    when a field is missing, unknown, of the wrong type or outside its bounds; the encoder
    applies the decoder's rules, so what it writes, every v1 reader accepts.
    """
    if not isinstance(msg, dict):
        raise AgentProtocolError("", "field", "message", "expected a dict of fields")
    kind = msg.get("kind")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise AgentProtocolError(
            "",
            "kind",
            "field 'kind'",
            "expected one of " + ", ".join(KIND_CODES) + ", got " + repr(kind),
        )
    out = [bytes((VERSION, KIND_CODES[kind]))]
    _write_fields(kind, _FIELDS[kind], msg, out, "")
    _check_rules(kind, msg, {})
    body = b"".join(out)
    ext = _as_bytes(kind, "ext", msg.get("ext", b""))
    _check_ext(kind, body + ext, len(body))
    payload = body + ext
    if len(payload) > MAX_MESSAGE_BYTES:
        raise AgentProtocolError(
            kind,
            "too_large",
            "payload",
            "expected at most " + str(MAX_MESSAGE_BYTES) + " bytes, got " + str(len(payload)),
        )
    return payload


# ---------------------------------------------------------------------------------------------
# JSON form (golden vectors, logs): bytes <-> lowercase hex


def to_json_fields(value: object) -> object:
    """A copy of a message (or any part of one) with every bytes value as lowercase hex."""
    if isinstance(value, dict):
        return {k: to_json_fields(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_fields(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "".join([f"{b:02x}" for b in value])
    return value


def from_json_fields(value: object) -> object:
    """The inverse of `to_json_fields`: the values of BYTES_KEYS become bytes again.

    Raises AgentProtocolError (class "field") when such a value is not an even-length hex str.
    """
    if isinstance(value, list):
        return [from_json_fields(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict = {}
    for key, item in value.items():
        if key in BYTES_KEYS:
            out[key] = unhex(str(value.get("kind", "")), key, item)
        else:
            out[key] = from_json_fields(item)
    return out


def unhex(kind: str, label: str, text: object) -> bytes:
    """Bytes from a hex str (spaces allowed); AgentProtocolError (class "field") otherwise."""
    if not isinstance(text, str):
        raise _field_error(kind, label, "expected a hex str, got " + type(text).__name__)
    digits = text.replace(" ", "")
    if len(digits) % 2:
        raise _field_error(kind, label, "expected an even number of hex digits")
    try:
        return bytes([int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)])
    except ValueError:
        raise _field_error(kind, label, "expected hex digits, got " + repr(text)) from None
