"""`shoal build DIR`: build a project written by `shoal gen` and print its size report.

Thin: parses arguments, calls `host_sdk.build.agent_build.build_project` and prints the report
as text or JSON. Exit codes follow `host_sdk.cli`: 0 built and fits the board, 1 a tool is
missing (the message names it and how to install it), the build failed (the tool's last
lines follow the message) or the result does not fit the board's budget, 2 bad usage or DIR is
not a generated project. Errors are one line on stderr (a failed build adds the tool's last
lines, indented); never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from host_sdk.build.agent_build import build_project, format_build_report
from host_sdk.build.qemu_firmware import BuildError
from host_sdk.build.toolchain import ToolNotFoundError

EXIT_OK = 0
EXIT_FAILED = 1  # host_sdk.cli's "the operation failed" (a missing tool included, as doctor)


def configure_build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="a project folder written by `shoal gen -o`")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def run_build(args: argparse.Namespace) -> int:
    try:
        result = build_project(args.dir)
    except (ToolNotFoundError, BuildError) as exc:
        print(f"shoal build: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        print(format_build_report(result))
    return EXIT_OK if result.size.fits else EXIT_FAILED
