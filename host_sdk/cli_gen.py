"""`shoal gen SPEC --board BOARD -o DIR`: generate an agent's firmware project from a role spec.

Thin: parses arguments, picks the backend and calls one public function
(`codegen.agent_compiler.generate_agent` for MicroPython; `codegen.emit.c_agent.generate_c_agent`
for C, imported lazily because it may not exist in this tree) and prints what was written as text
or JSON. Exit codes follow `host_sdk.cli`: 0 written, 2 bad usage or bad input (nothing written).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

from codegen.agent_compiler import generate_agent
from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from codegen.loaders.board_loader import get_board
from codegen.loaders.role_loader import load_role_spec

EXIT_OK = 0
BACKENDS = ("c", "micropython")


def configure_gen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="a role spec (YAML)")
    parser.add_argument(
        "--board", default=None, help="board name (see `shoal boards`; default: the spec's)"
    )
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="firmware language (default: C when the board has a C toolchain, else MicroPython)",
    )
    parser.add_argument(
        "--transport",
        choices=("udp", "uart"),
        default=None,
        help="MicroPython: the link to the gateway on a board that has both (default: udp, "
        "i.e. Wi-Fi on real boards; uart: Shoal serial frames over machine.UART)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def choose_backend(board: Board, requested: str | None) -> str:
    """MicroPython for boards without a C compiler (or when asked), C otherwise."""
    if requested is not None:
        return requested
    return "micropython" if board.toolchain.compiler == "none" else "c"


def _generate_c(spec: Path, board: Board, out: Path) -> dict[str, Any]:
    try:
        module = importlib.import_module("codegen.emit.c_agent")
    except ImportError:
        module = None
    generate_c_agent = getattr(module, "generate_c_agent", None)
    if generate_c_agent is None:
        raise ShoalInputError(
            f"board '{board.name}': the C agent generator is not available yet in this Shoal; "
            "MicroPython boards work now (shoal gen SPEC --board micropython-unix, or "
            "--backend micropython on a board that runs MicroPython)"
        )
    role = load_role_spec(spec)
    files = generate_c_agent(role, board, out)
    return {
        "backend": "c",
        "role": role.role,
        "name": role.name,
        "board": board.name,
        "out_dir": str(out),
        "files": [str(path) for path in files],
    }


def run_gen(args: argparse.Namespace) -> int:
    board_name = args.board or load_role_spec(args.spec).board
    board = get_board(board_name)
    backend = choose_backend(board, args.backend)
    if backend == "c":
        if args.transport is not None:
            raise ShoalInputError(
                f"--transport {args.transport}: applies to MicroPython agents (the C agent's "
                f"transport follows board '{board.name}'); drop it or add --backend micropython"
            )
        document = _generate_c(args.spec, board, args.out)
    else:
        result = generate_agent(args.spec, board.name, args.out, transport=args.transport)
        document = {
            "backend": "micropython",
            "role": result.role,
            "name": result.name,
            "board": result.board,
            "client_id": result.client_id,
            "out_dir": str(result.out_dir),
            "files": [str(path) for path in result.files],
            "firmware_id": result.firmware_id,
            "model_hashes": result.model_hashes,
            "generator": result.generator,
            "mpy_cross_march": result.mpy_cross_march,
            "transport": result.transport,
            "link": result.link,
        }
    if args.json:
        print(json.dumps(document, indent=2, sort_keys=True))
        return EXIT_OK
    print(
        f"wrote {len(document['files'])} files to {document['out_dir']} "
        f"({document['backend']} agent {document['name']}, role {document['role']}, "
        f"board {document['board']}):"
    )
    for path in document["files"]:
        print(f"  {Path(path).name}")
    if "firmware_id" in document:
        print(f"firmware id {document['firmware_id'][:16]} (sha256 {document['firmware_id']})")
        for name, digest in document["model_hashes"].items():
            print(f"model {name}: {digest}")
        if document["link"] != "udp":
            what = "Wi-Fi and gateway" if document["link"] == "wifi" else "the UART"
            print(f"link {document['link']}: set {what} in shoal_config.py before copying")
    return EXIT_OK
