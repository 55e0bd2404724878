"""`shoal run DIR`: start a generated agent on its virtual board and stream its console.

Thin: parses arguments, opens the agent with `host_sdk.agent.virtual.open_agent`, prints every
console line on stdout as it arrives (or one JSON object per event with `--json`) and stops the
agent when it is told to. Notes about the run go to stderr, so stdout is the agent's console.
Must not generate or build (`shoal gen`, `shoal build`), nor end any process but its agent.

Exit status: the agent's own when it exits by itself (128+N when signal N ended it); 0 when
`--timeout` seconds passed and it was stopped; 128+N when this command got signal N (SIGINT
from Ctrl-C: 130, SIGTERM: 143) and stopped the agent; 1 when the agent could not be started
(e.g. no gateway serial listener for a QEMU board); 2 for bad input (one line naming the
folder and what is wrong, e.g. a project that was never built).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from codegen.errors import ShoalInputError
from host_sdk.agent.virtual import AgentError, BootReport, VirtualAgent, open_agent

EXIT_OK = 0
EXIT_FAILURE = 1
READ_SLICE_S = 0.1
EXIT_WAIT_S = 5.0  # console closed: how long the agent gets to exit by itself


def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir", type=Path, help="a project written by `shoal gen` (C: built by `shoal build`)"
    )
    parser.add_argument(
        "--gateway",
        metavar="HOST:PORT",
        help="the gateway's UDP listener, for native and micropython-unix agents "
        "(default: the address in the role spec)",
    )
    parser.add_argument(
        "--serial-gateway",
        metavar="HOST:PORT",
        help="the gateway's serial listener (`shoal gateway --serial-listen`), for QEMU boards",
    )
    parser.add_argument(
        "--serial-reconnect",
        metavar="S",
        type=int,
        help="QEMU boards: reconnect the link S seconds after the gateway closed it (and start "
        "before the gateway listens); default: no reconnect, a missing listener is an error",
    )
    parser.add_argument("--client-id", metavar="ID", help="client id (default: the role spec's)")
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=float,
        help="stop the agent after S seconds (default: run until it exits or Ctrl-C)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per line: start, console, boot, exit events",
    )


class _Printer:
    """Console lines and events to stdout, as text or JSON lines; notes to stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def event(self, name: str, /, **fields: Any) -> None:
        if self.as_json:
            print(json.dumps({"event": name, **fields}, sort_keys=True), flush=True)

    def console(self, line: str) -> None:
        if self.as_json:
            self.event("console", line=line)
        else:
            print(line, flush=True)

    def note(self, text: str) -> None:
        print(f"shoal run: {text}", file=sys.stderr, flush=True)


def _status_of(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _check_boot(agent: VirtualAgent, report: BootReport, printer: _Printer) -> None:
    printer.event("boot", **report.to_json())
    expected = agent.project.firmware_id
    if expected is not None and report.firmware_id != expected:
        printer.note(
            f"warning: the agent reports firmware {report.firmware_id} but {agent.project.path} "
            f"says {expected} (rebuild it: shoal build {agent.project.path})"
        )


def run_agent(agent: VirtualAgent, printer: _Printer, timeout_s: float | None) -> int:
    """Start `agent`, stream its console until it exits, a signal comes or `timeout_s` passes;
    stop it in every case. Returns the exit status described in the module docstring."""
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {
        signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    reason = "exited"
    try:
        try:
            agent.start()
        except AgentError as exc:
            printer.note(f"error: {exc}")
            return EXIT_FAILURE
        printer.note(
            f"started {agent.name} (pid {agent.pid}, board {agent.project.board.name}, "
            f"running {agent.project.executable})"
        )
        printer.event(
            "start",
            kind=agent.kind,
            pid=agent.pid,
            project=str(agent.project.path),
            board=agent.project.board.name,
            firmware_id=agent.project.firmware_id,
        )
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        shown = 0
        boot_seen = False
        while True:
            lines = agent.read_lines(shown, READ_SLICE_S)
            for line in lines:
                printer.console(line)
            shown += len(lines)
            if not boot_seen and lines:
                try:
                    report = agent.complete_boot_report()
                except AgentError as exc:  # a garbled boot line: say so, keep streaming
                    boot_seen = True
                    printer.note(f"warning: {exc}")
                else:
                    if report is not None:
                        boot_seen = True
                        _check_boot(agent, report, printer)
            if received:
                reason = "signal"
                break
            if not lines and agent.console_ended:
                agent.wait_exit(EXIT_WAIT_S)  # its own exit status, not our SIGTERM's
                break
            if deadline is not None and time.monotonic() >= deadline:
                reason = "timeout"
                break
    except BrokenPipeError:  # stdout closed (e.g. piped into head): stop quietly
        reason = "stdout closed"
    finally:
        agent.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    returncode = agent.returncode
    if reason == "signal":
        status = 128 + received[0]
        printer.note(f"stopped the agent on {signal.Signals(received[0]).name}")
    elif reason == "timeout":
        status = EXIT_OK
        printer.note(f"stopped the agent after {timeout_s} s")
    elif reason == "stdout closed":
        status = EXIT_OK
    else:
        status = _status_of(returncode if returncode is not None else 1)
        printer.note(f"the agent exited with status {returncode}")
    if reason != "stdout closed":
        printer.event("exit", reason=reason, status=status, agent_returncode=returncode)
    return status


def run_run(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.timeout > 0:
        raise ShoalInputError(f"--timeout: {args.timeout} is not a positive number of seconds")
    agent = open_agent(
        args.dir,
        gateway=args.gateway,
        client_id=args.client_id,
        serial_gateway=args.serial_gateway,
        serial_reconnect_s=args.serial_reconnect,
    )
    return run_agent(agent, _Printer(args.json), args.timeout)
