"""Run a generated MicroPython agent on the real MicroPython unix port: the first runner, kept for
its callers; new code uses `host_sdk.agent.virtual.open_agent`, which serves every virtual kind.

Responsible for the `run_micropython_agent` / `AgentProcess` interface (console `lines`,
`wait_line`, `output()`, `running()`, `kill()`, `stop()`, `pid`) on top of
`virtual.MicroPythonUnixAgent`, which starts the unix port on the project's `main.py` with
MICROPYPATH set to the project and stops it so that no process is left behind. It must not
generate, build or judge anything: what the agent says on MQTT is for the caller to read.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from codegen.errors import ShoalInputError
from host_sdk.agent.virtual import MicroPythonUnixAgent, load_project

DEFAULT_HEAP_BYTES = 8 * 1024 * 1024


class AgentProcess:
    """One agent on the unix port. `lines` holds its console output (stdout and stderr merged);
    `kill()` ends it without a clean MQTT-SN DISCONNECT (so its will is published), `stop()`
    ends it whatever its state and reaps it. Both are safe to call more than once."""

    def __init__(self, agent: MicroPythonUnixAgent) -> None:
        self.agent = agent
        self.argv = agent.command()
        if not agent.running:
            agent.start()

    @property
    def lines(self) -> list[str]:
        return self.agent.lines

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self.agent.process is not None
        return self.agent.process

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_line(self, prefix: str, timeout_s: float = 20.0) -> str | None:
        """The first console line starting with `prefix`, waiting up to `timeout_s` seconds;
        None when it does not come (or the process ended without it)."""
        return self.agent.wait_line(prefix, timeout_s)

    def output(self) -> str:
        return self.agent.output

    def running(self) -> bool:
        return self.agent.running

    def kill(self) -> None:
        """SIGKILL, as a power cut would: no DISCONNECT, the gateway publishes the will."""
        self.agent.kill()

    def stop(self) -> None:
        self.agent.stop()


def run_micropython_agent(
    project_dir: Path | str,
    gateway: tuple[str, int] | None = None,
    *,
    heap_bytes: int = DEFAULT_HEAP_BYTES,
) -> AgentProcess:
    """Start the agent in `project_dir` on the unix port (heap `heap_bytes` bytes); `gateway`
    (host, UDP port) overrides the spec's gateway address. Returns at once; call `stop()`."""
    project_path = Path(project_dir).resolve()
    if not (project_path / "main.py").is_file():
        raise ShoalInputError(
            f"{project_path}: no main.py here (expected a project written by `shoal gen` for a "
            "MicroPython board)"
        )
    project = load_project(project_path)
    agent = MicroPythonUnixAgent(project, gateway=gateway, heap_bytes=heap_bytes)
    return AgentProcess(agent)
