"""`shoal check` and `shoal gen-model`: the model compiler's commands.

Thin: each parses its arguments, calls one public function (`codegen.check.check_model`,
`codegen.model_compiler.generate_model`) and prints the result as text or JSON. Exit codes
follow `host_sdk.cli`: a model that will not deploy, or cannot be compiled, is bad input (2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from codegen.check import DEFAULT_HEADROOM, check_model, format_report
from codegen.loaders.board_loader import get_board
from codegen.model_compiler import BACKENDS, generate_model

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def configure_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a full-integer int8 .tflite model")
    parser.add_argument("--board", required=True, help="board name (see `shoal boards`)")
    parser.add_argument("--backend", choices=BACKENDS, default="c", help="firmware language")
    parser.add_argument(
        "--headroom",
        type=float,
        default=DEFAULT_HEADROOM,
        help=f"fraction of RAM and flash kept free (default {DEFAULT_HEADROOM})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def run_check(args: argparse.Namespace) -> int:
    report = check_model(
        args.model, get_board(args.board), backend=args.backend, headroom=args.headroom
    )
    if args.json:
        document = dataclasses.asdict(report)
        document["ok"] = report.ok
        print(json.dumps(document, indent=2))
    else:
        print(format_report(report))
    if report.ok:
        return EXIT_OK
    print(
        f"shoal check: error: {args.model} is not deployable on {args.board}: {report.verdict}"
        f" ({len(report.reasons)} reason(s) above)",
        file=sys.stderr,
    )
    return EXIT_BAD_INPUT


def configure_gen_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a full-integer int8 .tflite model")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    parser.add_argument("--backend", choices=BACKENDS, default="c", help="firmware language")
    parser.add_argument(
        "--prefix", help="C identifier prefixing every symbol (default: the model file's stem)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def run_gen_model(args: argparse.Namespace) -> int:
    result = generate_model(args.model, args.out, prefix=args.prefix, backend=args.backend)
    summary = result.summary
    if args.json:
        print(
            json.dumps(
                {
                    "prefix": result.prefix,
                    "backend": result.backend,
                    "out_dir": str(result.out_dir),
                    "files": [str(path) for path in result.files],
                    "summary": dataclasses.asdict(summary),
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(f"wrote {len(result.files)} files to {result.out_dir} (prefix {result.prefix}):")
    for path in result.files:
        print(f"  {path.name}")
    print(
        f"arena {summary.arena_bytes} B (liveness lower bound "
        f"{summary.liveness_lower_bound_bytes} B), weights {summary.weights_bytes} B, "
        f"input {summary.input_bytes} B, output {summary.output_bytes} B, "
        f"{sum(summary.macs_per_op)} MACs"
    )
    return EXIT_OK
