"""The `shoal` command: a table of subcommands, each a thin call of a public library function.

Exit codes: 0 success, 1 the operation failed (e.g. `doctor --strict` found a required tool
missing), 2 bad usage or bad input (a one-line error; no traceback unless `--debug`).
This module parses arguments and prints results; the work happens in the library.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from codegen import __version__
from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from codegen.loaders.board_loader import get_board, load_boards
from host_sdk import cli_build, cli_gateway, cli_gen, cli_model, cli_run, cli_spec, cli_verify
from host_sdk.doctor import missing_required, run_doctor

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class ShoalArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


@dataclass(frozen=True)
class Command:
    """One `shoal` subcommand: `configure` adds its arguments, `run` does it and returns the
    exit status."""

    name: str
    summary: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


# --- shoal boards ------------------------------------------------------------------------------


def _configure_boards(parser: argparse.ArgumentParser) -> None:
    _add_json_flag(parser)
    actions = parser.add_subparsers(dest="boards_action", metavar="{list,show}")
    listing = actions.add_parser("list", help="list every board (the default)")
    _add_json_flag(listing)
    show = actions.add_parser("show", help="print everything known about one board")
    show.add_argument("name", help="board name, as listed by `shoal boards`")
    _add_json_flag(show)


def _kib(num_bytes: int) -> str:
    return f"{num_bytes // 1024} KiB" if num_bytes < 1024 * 1024 else f"{num_bytes >> 20} MiB"


def _board_row(board: Board) -> list[str]:
    return [
        board.name,
        board.kind,
        board.core,
        f"{board.clock_hz / 1e6:g} MHz",
        _kib(board.memory.app_ram_bytes),
        _kib(board.memory.app_flash_bytes),
        "yes" if board.supports_c else "no",
        (board.micropython.mpy_cross_march or "?") if board.micropython.supported else "no",
        ",".join(board.transports),
    ]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned text columns separated by two spaces."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def _run_boards(args: argparse.Namespace) -> int:
    if args.boards_action == "show":
        board = get_board(args.name)
        if args.json:
            _print_json(dataclasses.asdict(board))
        else:
            print(format_board(board))
        return EXIT_OK
    boards = list(load_boards().values())
    if args.json:
        _print_json([dataclasses.asdict(board) for board in boards])
        return EXIT_OK
    header = [
        "NAME",
        "KIND",
        "CORE",
        "CLOCK",
        "APP RAM",
        "APP FLASH",
        "C",
        "MICROPYTHON",
        "TRANSPORTS",
    ]
    print(format_table(header, [_board_row(board) for board in boards]))
    return EXIT_OK


def _micropython_summary(board: Board) -> str:
    support = board.micropython
    if not support.supported:
        return "no"
    return f"yes (port {support.port}, mpy-cross -march={support.mpy_cross_march})"


def format_board(board: Board) -> str:
    """A human-readable description of one board, with where each figure came from."""
    memory = board.memory
    toolchain = board.toolchain
    lines = [
        f"{board.name}: {board.description}",
        f"  kind         {board.kind}",
        f"  mcu          {board.mcu}",
        f"  core         {board.core} (fpu: {'yes' if board.fpu else 'no'}, "
        f"dsp: {'yes' if board.dsp else 'no'})",
        f"  clock        {board.clock_hz} Hz",
        f"  ram          {memory.ram_bytes} B ({memory.app_ram_bytes} B for the application)",
        f"  flash        {memory.flash_bytes} B ({memory.app_flash_bytes} B for the application)",
        f"  compiler     {toolchain.compiler} {' '.join(toolchain.cflags)}".rstrip(),
        f"  build        {toolchain.build_system}",
    ]
    if toolchain.platformio_platform:
        lines.append(
            f"  platformio   platform={toolchain.platformio_platform} "
            f"board={toolchain.platformio_board} "
            f"framework={toolchain.platformio_framework or 'none (bare metal, Shoal HAL)'}"
        )
    lines += [
        f"  flash with   {', '.join(board.flash_methods)}",
        f"  transports   {', '.join(board.transports)}",
        f"  micropython  {_micropython_summary(board)}",
        f"  int8 MAC     ~{board.cycles_per_int8_mac:g} cycles (estimate for latency figures)",
    ]
    if board.qemu is not None:
        lines.append(
            f"  qemu         -M {board.qemu.machine} -cpu {board.qemu.cpu}, "
            f"{board.qemu.uart} UART at 0x{board.qemu.uart_base_address:08X}"
        )
    lines.append("  sources:")
    lines += [f"    {field}: {source}" for field, source in board.sources]
    return "\n".join(lines)


# --- shoal doctor ------------------------------------------------------------------------------


def _configure_doctor(parser: argparse.ArgumentParser) -> None:
    _add_json_flag(parser)
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a required tool is missing"
    )


def _run_doctor(args: argparse.Namespace) -> int:
    statuses = run_doctor()
    missing = missing_required(statuses)
    if args.json:
        _print_json([dataclasses.asdict(status) for status in statuses])
    else:
        rows = [
            [
                status.name,
                status.version or "-" if status.found else "MISSING",
                "required" if status.required else "optional",
                status.unlocks,
            ]
            for status in statuses
        ]
        print(format_table(["TOOL", "VERSION", "NEED", "UNLOCKS"], rows))
        if missing:
            names = ", ".join(status.name for status in missing)
            print(f"\nmissing required tools: {names} (the tests that need them skip)")
    return EXIT_FAILURE if (args.strict and missing) else EXIT_OK


COMMANDS: tuple[Command, ...] = (
    Command("boards", "list supported boards, or show one", _configure_boards, _run_boards),
    Command(
        "check",
        "will this model deploy on this board? ops, RAM, flash, latency, verdict",
        cli_model.configure_check,
        cli_model.run_check,
    ),
    Command(
        "gen-model",
        "compile a .tflite model into C or MicroPython sources",
        cli_model.configure_gen_model,
        cli_model.run_gen_model,
    ),
    Command(
        "verify",
        "run generated C or MicroPython next to TFLM on your inputs: bit-exact or not",
        cli_verify.configure_verify,
        cli_verify.run_verify,
    ),
    Command(
        "doctor",
        "report toolchains, emulators and brokers found here",
        _configure_doctor,
        _run_doctor,
    ),
    Command(
        "gateway",
        "run the MQTT-SN gateway (UDP and serial devices to an MQTT broker)",
        cli_gateway.configure_gateway,
        cli_gateway.run_gateway_command,
    ),
    Command(
        "spec", "check agent role specs and fleet files", cli_spec.configure_spec, cli_spec.run_spec
    ),
    Command(
        "gen",
        "generate an agent's firmware from a role spec",
        cli_gen.configure_gen,
        cli_gen.run_gen,
    ),
    Command(
        "build",
        "build a generated project and print its size against the board",
        cli_build.configure_build,
        cli_build.run_build,
    ),
    Command(
        "run",
        "start a generated agent on its virtual board and stream its console",
        cli_run.configure_run,
        cli_run.run_run,
    ),
)


def build_parser(commands: Sequence[Command] = COMMANDS) -> ShoalArgumentParser:
    """The argument parser for `shoal` with one subparser per command."""
    parser = ShoalArgumentParser(
        prog="shoal",
        description="Compile models and agent roles into MCU firmware; flash, test and operate "
        "the fleet.",
    )
    parser.add_argument("--version", action="version", version=f"shoal {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        sub = subcommands.add_parser(
            command.name, help=command.summary, description=command.summary
        )
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `shoal` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ShoalInputError as exc:
        if args.debug:
            raise
        print(f"shoal {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in Shoal: say so in one line unless debugging
        if args.debug:
            raise
        print(
            f"shoal {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(rerun with --debug for a traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
