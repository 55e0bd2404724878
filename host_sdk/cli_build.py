"""`shoal build DIR`: build a project written by `shoal gen` and print its size report.

Thin: parses arguments, calls `host_sdk.build.agent_build.build_project` and prints the report
as text or JSON. Exit codes follow `host_sdk.cli`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from codegen.errors import ShoalInputError


def configure_build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="a project folder written by `shoal gen`")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def run_build(args: argparse.Namespace) -> int:
    raise ShoalInputError(f"{args.dir}: shoal build is being implemented (issue 8)")
