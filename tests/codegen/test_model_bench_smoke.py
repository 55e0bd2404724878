"""bench/model_bench.py still runs: `--quick` on one small project model prints its table.

Not a performance check (nothing about the numbers' size is asserted): it keeps the benchmark
script from rotting when the compiler, the oracle or the build helpers change. Every column
must be present and hold a number (or yes/no for bit-exactness), and our output must be
bit-exact with TFLM on the timed input.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from host_sdk.build import have_tool

pytestmark = [
    pytest.mark.gen,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (have_tool("arm-none-eabi-gcc") and have_tool("arm-none-eabi-size")),
        reason="arm-none-eabi-gcc is not installed (apt-get install gcc-arm-none-eabi "
        "binutils-arm-none-eabi libnewlib-arm-none-eabi); the bench counts Cortex-M4 instructions",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("unicorn") is None,
        reason="the unicorn package is not installed (pip install 'shoal[bench]')",
    ),
]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "model_bench.py"
MODEL = "shoal_dense_tiny"
EXPECTED_COLUMNS = [
    "model",
    "MACs",
    "arena B",
    "TFLM min arena B",
    "lower bound B",
    "arena ours/TFLM",
    "host us ours",
    "host us TFLM",
    "speed-up vs TFLM",
    "bit-exact",
    "M4 instr -Os",
    "M4 instr/MAC -Os",
    "M4 instr -O2",
    "M4 instr/MAC -O2",
    ".text B no weights",
    "codegen ms",
]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_quick_bench_prints_a_complete_table(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## MQTT-SN gateway\n\nkept as is\n")
    completed = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--models", MODEL, "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    header_index = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    assert _cells(lines[header_index]) == EXPECTED_COLUMNS
    row = _cells(lines[header_index + 2])
    assert row[0] == MODEL
    values = dict(zip(EXPECTED_COLUMNS, row, strict=True))
    assert values["bit-exact"] == "yes", completed.stdout
    for column in EXPECTED_COLUMNS[1:]:
        if column == "bit-exact":
            continue
        number = float(values[column])  # raises on 'n/a' or garbage
        assert number > 0, f"{column} = {values[column]}"
    assert "Targets (issue 3):" in completed.stdout
    written = results.read_text()
    assert "## MQTT-SN gateway\n\nkept as is" in written, "the other section was not kept"
    assert f"| {MODEL} |" in written.split("## Model compiler", 1)[1]
