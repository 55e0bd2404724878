"""A private Mosquitto broker on 127.0.0.1, started as a subprocess with a temporary config.

Responsible for the broker's life cycle only (config, start, readiness, restart, stop); it does
not publish or subscribe. Used by `shoal demo`, the gateway's tests and fleet simulations. Code
that talks to the broker uses its URL and standard MQTT, so the same code runs against any
broker (EMQX, VerneMQ, HiveMQ) when one machine is not enough.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


# MQTT 3.1.1 CONNECT: protocol "MQTT" level 4, clean session, keep-alive 60 s, empty client id.
_MQTT_PROBE_CONNECT = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 60, 0, 0])


class BrokerError(RuntimeError):
    """The broker could not be found or did not start; the message says why."""


def find_mosquitto() -> str | None:
    """Path of the mosquitto executable (Debian installs it in /usr/sbin), or None."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin"])
    return shutil.which("mosquitto", path=search)


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host` (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class MosquittoBroker:
    """One mosquitto process listening on 127.0.0.1:`port` (0: pick a free port).

    `persistence` keeps sessions and retained messages across `restart()`. `extra_config` lines
    are appended to the generated config (e.g. `password_file ...`). Use as a context manager or
    call `start()`/`stop()`; `stop()` is idempotent and always reaps the process.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        persistence: bool = False,
        extra_config: Sequence[str] = (),
        executable: str | None = None,
    ) -> None:
        self.port = port or free_tcp_port()
        self.host = "127.0.0.1"
        self.persistence = persistence
        self.extra_config = tuple(extra_config)
        self.executable = executable or find_mosquitto()
        self._workdir = Path(tempfile.mkdtemp(prefix="shoal-mosquitto-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`mqtt://127.0.0.1:PORT`."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the broker writes its log."""
        return self._workdir / "mosquitto.log"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def _write_config(self) -> Path:
        lines = [
            f"listener {self.port} {self.host}",
            # Started as root, mosquitto drops to the user 'mosquitto', who could not write the
            # log and persistence files in our private folder: stay the current user instead.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self._workdir}/",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 100000",
            *self.extra_config,
        ]
        config = self._workdir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> MosquittoBroker:
        """Start the broker and wait until it accepts TCP connections."""
        if self._process is not None:
            return self
        if self.executable is None:
            raise BrokerError(
                "mosquitto is not installed (Debian package 'mosquitto'); "
                "install it with: apt-get install mosquitto"
            )
        config = self._write_config()
        self._process = subprocess.Popen(
            [self.executable, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is None and self._answers_mqtt():
                return self
            if self._process.poll() is not None:
                stderr = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                self._process = None
                raise BrokerError(
                    f"mosquitto exited at start on port {self.port}: {stderr.strip()} "
                    f"{self._log_tail()}"
                )
            time.sleep(0.02)
        self.stop()
        raise BrokerError(
            f"mosquitto did not accept connections on port {self.port} within "
            f"{READY_TIMEOUT_S} s {self._log_tail()}"
        )

    def _answers_mqtt(self) -> bool:
        """True when an MQTT CONNECT on the port gets a CONNACK: a bare TCP connect could reach
        some other process that owns the port."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as probe:
                probe.sendall(_MQTT_PROBE_CONNECT)
                return probe.recv(4)[:1] == b"\x20"
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return "(log: " + " | ".join(self.log_path.read_text().splitlines()[-5:]) + ")"
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def kill(self) -> None:
        """SIGKILL the broker (a crash: no final persistence save) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port (sessions survive when `persistence`)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the broker and remove its working folder."""
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
