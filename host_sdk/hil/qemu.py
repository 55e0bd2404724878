"""QEMU Cortex-M virtual boards: run a firmware ELF and talk to its UART.

Responsible for one qemu-system-arm process per board: start it paused with QMP on a unix
socket and the UART on a TCP port of 127.0.0.1, connect to that port before the CPU runs (so
no early output is lost), resume, and give tests pytest-embedded style `write`/`expect`, plus
the exit status the firmware passed to semihosting. Must not build firmware
(`host_sdk.build` does) or end any process other than the QEMU it started.

Why a plain socket rather than pyserial's `socket://`: pyserial's read raises when the peer
closes and drops the bytes it had collected in that call, which loses the last lines a
firmware prints before it exits. Here every received byte is appended to a buffer first and
end-of-stream is only a flag.

Link and console: by default UART0 is the one serial port (console and test input). With
`serial_link`, UART0 is that QEMU -serial backend instead (the MQTT-SN link to a gateway,
e.g. `tcp:127.0.0.1:PORT,nodelay=on` with the gateway listening, or a TCP server the gateway
connects to), and the console this class reads is UART1 (QEMU's second -serial), where
firmware built with SHOAL_HAL_CONSOLE_UART=1 prints.

Measured quirks this module handles:
- QEMU's TCP chardev accepts the connection in its main loop; `cont` is sent only after QMP
  `query-chardev` shows the serial port connected, or the banner could be dropped.
- The CMSDK UART (mps2) offers the next received byte only when QEMU's main loop runs again;
  a QMP command after each write wakes it (otherwise the first byte can wait ~1 s).
"""

from __future__ import annotations

import contextlib
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from host_sdk.build.toolchain import QEMU_SYSTEM_ARM, find_tool
from host_sdk.hil.qmp import QmpClient, QmpError

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
TAIL_BYTES = 2000
_CHARDEV_PORT = re.compile(r"tcp:[^:,]+:(\d+)")
_CONSOLE_SERVER = "tcp:127.0.0.1:0,server=on,wait=off,nodelay=on"


class QemuError(RuntimeError):
    """QEMU could not be started or the board did not behave; the message shows its output."""


class ExpectTimeout(QemuError, AssertionError):
    """expect()/read_until_exit() ran out of time; the message shows the output tail."""


class BoardExited(QemuError, AssertionError):
    """The firmware exited before the expected output appeared."""


@dataclass(frozen=True)
class QemuResult:
    """A finished run: the firmware's semihosting exit status and everything it printed."""

    exit_code: int
    output: bytes


def qemu_command(
    board: Board,
    elf: Path,
    qmp_socket: Path,
    *,
    icount_shift: int | None = None,
    serial_link: str | None = None,
) -> list[str]:
    """The qemu-system-arm argv that runs `elf` on `board`, paused, with QMP at `qmp_socket`.

    The console is a TCP server on 127.0.0.1 (port chosen by QEMU): UART0, or UART1 when
    `serial_link` (a QEMU -serial backend) takes UART0.
    """
    if board.qemu is None:
        raise ShoalInputError(
            f"board '{board.name}': has no [qemu] table, so it cannot run under QEMU"
        )
    command = [
        find_tool(QEMU_SYSTEM_ARM),
        "-M",
        board.qemu.machine,
        "-cpu",
        board.qemu.cpu,
        "-nographic",
        "-monitor",
        "none",
        *(("-serial", serial_link) if serial_link is not None else ()),
        "-serial",
        _CONSOLE_SERVER,
        "-semihosting-config",
        "enable=on,target=native",
        "-qmp",
        f"unix:{qmp_socket},server=on,wait=off",
        "-S",
        "-kernel",
        str(elf),
    ]
    if icount_shift is not None:
        command += ["-icount", f"shift={icount_shift}"]
    return command


class QemuBoard:
    """One emulated board running `elf`. Use as a context manager (or `start()`/`close()`).

    `icount_shift`: when set, QEMU runs with `-icount shift=N` (virtual time advances 2^N ns per
    instruction), so firmware timing measured with SysTick repeats run to run. `name` prefixes
    error messages (useful with several boards per test). `preload` is sent to the UART after
    connecting but before the CPU starts, like input typed ahead: it must survive the
    firmware's UART initialisation. `serial_link`: a QEMU -serial backend for UART0 (the
    firmware's link); the console read by expect() is then UART1. With a link QEMU serves
    (`tcp:...,server=on`), start with `resume=False`, connect the peer to `link_port()`, call
    `wait_link_connected()` and `resume()`.
    """

    def __init__(
        self,
        board: Board,
        elf: Path,
        *,
        icount_shift: int | None = None,
        name: str | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        preload: bytes = b"",
        serial_link: str | None = None,
    ) -> None:
        if not Path(elf).is_file():
            raise ShoalInputError(f"{elf}: firmware ELF not found")
        self.board = board
        self.elf = Path(elf)
        self.name = name or board.name
        self.icount_shift = icount_shift
        self.start_timeout_s = start_timeout_s
        self.preload = preload
        self.serial_link = serial_link
        self._console_label = "serial0" if serial_link is None else "serial1"
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._qmp = QmpClient()
        self._serial: socket.socket | None = None
        self._received = bytearray()  # everything the firmware printed
        self._consumed = 0  # bytes of _received already matched by expect()
        self._eof = False

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> QemuBoard:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """Process id of this board's QEMU, or None before start()."""
        return self._process.pid if self._process is not None else None

    def start(self, resume: bool = True) -> None:
        """Start QEMU paused, connect QMP and the console UART, then let the CPU run (unless
        `resume` is False: then call resume() when the link is ready)."""
        if self._process is not None:
            raise QemuError(f"{self.name}: already started")
        self._workdir = Path(tempfile.mkdtemp(prefix="shoal-qemu-"))
        qmp_socket = self._workdir / "qmp.sock"
        command = qemu_command(
            self.board,
            self.elf,
            qmp_socket,
            icount_shift=self.icount_shift,
            serial_link=self.serial_link,
        )
        log = (self._workdir / "qemu.log").open("wb")
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        try:
            self._qmp.connect(qmp_socket, self.start_timeout_s, alive=self._running)
            port = self._serial_port(self._console_label)
            self._serial = socket.create_connection(("127.0.0.1", port), self.start_timeout_s)
            self._serial.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._wait_serial_connected(self._console_label)
            if self.preload:
                self._serial.sendall(self.preload)
            if resume:
                self._resume()
        except (QmpError, QemuError, OSError) as exc:
            log_text = self.qemu_log()
            self.close()
            raise QemuError(
                f"{self.name}: QEMU did not start: {exc}\ncommand: {' '.join(command)}\n"
                f"QEMU said:\n{log_text}"
            ) from exc
        except BaseException:
            self.close()  # e.g. KeyboardInterrupt: never leave QEMU behind
            raise

    def resume(self) -> None:
        """Let the CPU run (after start(resume=False))."""
        if self._process is None:
            raise QemuError(f"{self.name}: not started")
        self._resume()

    def link_port(self) -> int:
        """TCP port of UART0's link when `serial_link` is a TCP server (`server=on`)."""
        return self._serial_port("serial0")

    def wait_link_connected(self) -> None:
        """Wait (start_timeout_s) until a peer is connected to UART0's TCP server link."""
        self._wait_serial_connected("serial0")

    def _resume(self) -> None:
        try:
            self._qmp.execute("cont")
        except QmpError:
            # A short firmware can run to its semihosting exit before QEMU answers `cont`;
            # its output is safe in the serial socket, so that is not a start failure.
            assert self._process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=STOP_TIMEOUT_S)
            if self._process.poll() is None:
                raise

    def _running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _serial_port(self, label: str) -> int:
        for chardev in self._qmp.execute("query-chardev"):
            if chardev.get("label") == label:
                match = _CHARDEV_PORT.search(str(chardev.get("filename", "")))
                if match:
                    return int(match.group(1))
        raise QemuError(f"{self.name}: QMP query-chardev shows no TCP {label} port")

    def _wait_serial_connected(self, label: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            for chardev in self._qmp.execute("query-chardev"):
                filename = str(chardev.get("filename", ""))
                if chardev.get("label") == label and not filename.startswith("disconnected"):
                    return
            time.sleep(0.001)
        raise QemuError(f"{self.name}: QEMU did not accept the {label} connection")

    def close(self) -> None:
        """Stop QEMU (kill if still running), reap it and remove its temporary folder.

        Idempotent; only ever signals this board's own QEMU process.
        """
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        self._qmp.close()
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def qemu_log(self) -> str:
        """What QEMU itself printed (errors, warnings), not the firmware's UART output."""
        if self._workdir is None:
            return ""
        path = self._workdir / "qemu.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- UART -------------------------------------------------------------------------------

    def write(self, data: bytes | str) -> None:
        """Send `data` (str is UTF-8 encoded) to the firmware's UART."""
        if isinstance(data, str):
            data = data.encode()
        if self._serial is None:
            raise QemuError(f"{self.name}: not started")
        try:
            self._serial.sendall(data)
        except OSError as exc:
            code = self._wait_exit(STOP_TIMEOUT_S)
            raise BoardExited(
                f"{self.name}: cannot write, the firmware has exited (status {code}): {exc}; "
                f"{self._tail_text()}"
            ) from exc
        # Wakes QEMU's main loop so a one-byte-buffer UART (CMSDK) is fed without delay.
        # If QEMU is exiting the QMP call fails; the bytes went to the socket regardless.
        if self._running():
            with contextlib.suppress(QmpError):
                self._qmp.execute("query-status")

    @property
    def output(self) -> bytes:
        """Everything the firmware has printed so far (including what expect() consumed)."""
        return bytes(self._received)

    @property
    def exit_code(self) -> int | None:
        """The firmware's exit status once QEMU has exited, else None."""
        if self._process is None:
            return None
        return self._process.poll()

    def _receive(self, timeout_s: float) -> None:
        """Append whatever arrives within `timeout_s` (at least one read attempt)."""
        if self._serial is None or self._eof:
            return
        readable, _, _ = select.select([self._serial], [], [], max(0.0, timeout_s))
        if not readable:
            return
        try:
            chunk = self._serial.recv(65536)
        except OSError:
            chunk = b""
        if chunk:
            self._received += chunk
        else:
            self._eof = True

    def expect(self, pattern: bytes | str, timeout_s: float = 10.0) -> re.Match[bytes]:
        """Wait for `pattern` (a regex; str is UTF-8 encoded) in the output and return the match.

        Matching is on complete lines only (text up to the last '\\n' received, plus the tail
        once the firmware has exited), with re.MULTILINE, so `$` means end of line and a
        pattern never matches half a line still being printed. Output up to the end of the
        match is consumed; the next expect() searches after it. Raises ExpectTimeout after
        `timeout_s` seconds, or BoardExited if the firmware stops first; both show the output.
        """
        raw = pattern.encode() if isinstance(pattern, str) else pattern
        regex = re.compile(raw, re.MULTILINE)
        deadline = time.monotonic() + timeout_s
        while True:
            pending = bytes(self._received[self._consumed :])
            complete = pending if self._eof else pending[: pending.rfind(b"\n") + 1]
            match = regex.search(complete)
            if match:
                self._consumed += match.end()
                return match
            if self._eof:
                code = self._wait_exit(STOP_TIMEOUT_S)
                raise BoardExited(
                    f"{self.name}: firmware exited (status {code}) before {raw!r} appeared; "
                    f"{self._tail_text()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ExpectTimeout(
                    f"{self.name}: {raw!r} did not appear within {timeout_s} s; {self._tail_text()}"
                )
            self._receive(remaining)

    def read_until_exit(self, timeout_s: float = 30.0) -> tuple[int, bytes]:
        """Wait for the firmware to exit; return (exit status, output not yet consumed).

        Raises ExpectTimeout (with the output tail) if it is still running after `timeout_s`.
        """
        deadline = time.monotonic() + timeout_s
        while not self._eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ExpectTimeout(
                    f"{self.name}: firmware still running after {timeout_s} s; {self._tail_text()}"
                )
            self._receive(remaining)
        code = self._wait_exit(max(0.1, deadline - time.monotonic()))
        rest = bytes(self._received[self._consumed :])
        self._consumed = len(self._received)
        return code, rest

    def _wait_exit(self, timeout_s: float) -> int:
        assert self._process is not None
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ExpectTimeout(
                f"{self.name}: UART closed but QEMU did not exit within {timeout_s} s; "
                f"{self._tail_text()}"
            ) from exc

    def _tail_text(self) -> str:
        tail = bytes(self._received[-TAIL_BYTES:])
        cut = len(self._received) > TAIL_BYTES
        text = tail.decode("utf-8", errors="backslashreplace")
        log = self.qemu_log().strip()
        return (
            f"last {len(tail)} bytes of output{' (earlier output cut)' if cut else ''}:\n"
            f"{text}\n" + (f"QEMU log:\n{log}\n" if log else "")
        )


def run_qemu_firmware(
    board: Board,
    elf: Path,
    *,
    stdin: bytes = b"",
    timeout_s: float = 30.0,
    icount_shift: int | None = None,
) -> QemuResult:
    """Run a run-to-completion firmware and return its exit status and everything it printed.

    `stdin` is queued on the UART before the CPU starts (see QemuBoard `preload`).

    Raises ExpectTimeout (with the output tail) if it has not exited after `timeout_s` seconds;
    QEMU is always reaped.
    """
    with QemuBoard(board, elf, icount_shift=icount_shift, preload=stdin) as qemu:
        code, _ = qemu.read_until_exit(timeout_s)
        return QemuResult(exit_code=code, output=qemu.output)


def qemu_available() -> bool:
    """True when qemu-system-arm is on PATH."""
    return shutil.which(QEMU_SYSTEM_ARM) is not None
