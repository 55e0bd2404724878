"""A minimal QMP (QEMU Machine Protocol) client over a unix socket.

Responsible for the handshake, sending one command at a time and returning its result,
skipping asynchronous events. Must not know about boards or serial ports; `host_sdk.hil.qemu`
decides which commands to send.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class QmpError(RuntimeError):
    """QMP refused a command, the connection broke, or QEMU did not answer in time."""


class QmpClient:
    """One QMP connection. `connect()` retries until QEMU has created the socket."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._buffer = b""

    def connect(
        self, path: Path, timeout_s: float, alive: Callable[[], bool] | None = None
    ) -> None:
        """Connect to the socket at `path` and negotiate capabilities.

        Retries for up to `timeout_s` seconds while the socket does not exist yet; `alive`, if
        given, is a callable returning False once QEMU has died (no point waiting further).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise QmpError(f"QMP socket {path} did not appear in {timeout_s} s") from exc
                if alive is not None and not alive():
                    raise QmpError("QEMU exited before its QMP socket was ready") from exc
                time.sleep(0.005)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        self._sock = sock
        greeting = self._read_message()
        if "QMP" not in greeting:
            raise QmpError(f"unexpected QMP greeting: {greeting!r}")
        self.execute("qmp_capabilities")

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run `command` and return its "return" value; QmpError on an "error" reply."""
        if self._sock is None:
            raise QmpError(f"QMP not connected (command {command!r})")
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            raise QmpError(f"QMP connection lost sending {command!r}: {exc}") from exc
        while True:
            reply = self._read_message()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise QmpError(f"QMP {command!r} failed: {reply['error']}")
            # Anything else is an asynchronous event (STOP, RESUME, SHUTDOWN...): not our reply.

    def _read_message(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(65536)
            except OSError as exc:
                raise QmpError(f"QMP connection lost: {exc}") from exc
            if not chunk:
                raise QmpError("QMP connection closed by QEMU")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise QmpError(f"QMP sent something that is not JSON: {line[:200]!r}") from exc
        if not isinstance(message, dict):
            raise QmpError(f"QMP sent a non-object: {line[:200]!r}")
        return message

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
