"""A second, independently written encoder of agent protocol v1 (docs/agent_protocol.md).

Written per message kind straight from the document's layout tables with `struct`, sharing no
code with host_sdk/agent/protocol.py (which is table-driven): tests compare the two on random
valid messages. It encodes valid messages only and checks nothing.
"""

from __future__ import annotations

import struct
from typing import Any

KINDS = {"birth": 1, "will": 2, "hb": 3, "status": 4, "cmd": 5, "resp": 6, "profile": 7, "boot": 8}


def _str8(text: str) -> bytes:
    raw = text.encode("ascii")
    return bytes([len(raw)]) + raw


def _blob16(raw: bytes) -> bytes:
    return struct.pack("<H", len(raw)) + raw


def reference_encode(msg: dict[str, Any]) -> bytes:
    kind = msg["kind"]
    head = bytes([1, KINDS[kind]])
    if kind == "birth":
        body = struct.pack("<I", msg["incarnation"])
        body += _str8(msg["role"]) + _str8(msg["board"]) + msg["firmware_id"]
        body += _str8(msg["generator"]) + struct.pack("<IH", msg["free_ram"], msg["max_payload"])
        body += bytes([len(msg["models"])])
        for model in msg["models"]:
            body += model["hash"] + _str8(model["name"])
    elif kind == "will":
        body = struct.pack("<I", msg["incarnation"])
    elif kind == "hb":
        body = struct.pack(
            "<IIIIIIHII",
            msg["incarnation"],
            msg["seq"],
            msg["uptime_s"],
            msg["inferences"],
            msg["commands"],
            msg["errors"],
            msg["reconnects"],
            msg["latency_us"],
            msg["free_ram"],
        )
    elif kind == "status":
        body = struct.pack(
            "<IBIIB",
            msg["incarnation"],
            msg["state"],
            msg["uptime_s"],
            msg["free_ram"],
            len(msg["params"]),
        )
        for param in msg["params"]:
            body += struct.pack("<Bi", param["id"], param["value"])
    elif kind == "cmd":
        body = struct.pack("<HB", msg["corr"], msg["code"]) + _blob16(msg["args"])
    elif kind == "resp":
        body = struct.pack(
            "<HBBBI", msg["corr"], msg["code"], msg["state"], msg["error"], msg["latency_us"]
        ) + _blob16(msg["result"])
    elif kind == "profile":
        body = struct.pack(
            "<HBBHB",
            msg["corr"],
            msg["model"],
            msg["unit"],
            msg["total_layers"],
            len(msg["layers"]),
        )
        for layer in msg["layers"]:
            body += struct.pack("<HBII", layer["index"], layer["op"], layer["time"], layer["macs"])
    elif kind == "boot":
        body = struct.pack(
            "<IBHII",
            msg["incarnation"],
            msg["reset_cause"],
            msg["corr"],
            msg["boot_ms"],
            msg["free_ram"],
        )
        body += msg["firmware_id"]
    else:
        raise KeyError(kind)
    return head + body + msg.get("ext", b"")
