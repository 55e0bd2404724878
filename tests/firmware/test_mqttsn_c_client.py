"""The C MQTT-SN client state machine (fake transport and clock, in C), and the build rules every
C source must meet: warning-free on the host gcc and on arm-none-eabi-gcc for Cortex-M4, small."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.firmware.conftest import (
    APPS_DIR,
    CLIENT_SOURCES,
    HAL_DIR,
    MQTTSN_DIR,
    SANITIZERS,
    TEST_C_DIR,
    WARNINGS,
    BuildFn,
)

pytestmark = pytest.mark.gen

RESULT_LINE = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os", *WARNINGS]
# Sources with no OS dependency: these must build for a bare-metal Cortex-M.
PORTABLE_SOURCES = [*CLIENT_SOURCES, HAL_DIR / "shoal_uart_transport.c"]
# Bare-metal programs (they use the platform layer hal/shoal_hal.h).
CORTEX_M_SOURCES = [APPS_DIR / "mqttsn_uart_demo.c"]
HOST_ONLY_SOURCES = [HAL_DIR / "posix" / "shoal_hal_posix.c", APPS_DIR / "mqttsn_native_client.c"]
# Budget for client + codec .text on Cortex-M4 -Os (bytes); measured about 8 KiB.
TEXT_BUDGET_BYTES = 12 * 1024


def test_client_state_machine(c_build: BuildFn) -> None:
    exe = c_build(
        "test_mqttsn_client", [TEST_C_DIR / "test_mqttsn_client.c", *CLIENT_SOURCES], SANITIZERS
    )
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    match = RESULT_LINE.search(proc.stdout)
    assert match is not None, proc.stdout + proc.stderr
    assert int(match.group(2)) == 0, proc.stdout + proc.stderr
    assert int(match.group(1)) >= 100, proc.stdout
    assert proc.returncode == 0


def compile_object(compiler: str, source: Path, out: Path, flags: list[str]) -> None:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    cmd = [
        compiler,
        *flags,
        f"-I{MQTTSN_DIR}",
        f"-I{HAL_DIR}",
        f"-I{HAL_DIR / 'posix'}",
        "-c",
        str(source),
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    assert proc.stderr == "", f"warnings from {source.name}:\n{proc.stderr}"


@pytest.mark.parametrize("source", PORTABLE_SOURCES + HOST_ONLY_SOURCES, ids=lambda p: p.name)
def test_host_gcc_builds_without_warnings(source: Path, tmp_path: Path) -> None:
    compile_object("gcc", source, tmp_path / "out.o", [*WARNINGS, "-pedantic"])


@pytest.mark.parametrize("source", PORTABLE_SOURCES + CORTEX_M_SOURCES, ids=lambda p: p.name)
def test_cortex_m4_builds_without_warnings(source: Path, tmp_path: Path) -> None:
    compile_object("arm-none-eabi-gcc", source, tmp_path / "out.o", ARM_FLAGS)


def test_cortex_m4_text_size_of_client_and_codec(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-size") is None:
        pytest.skip("arm-none-eabi-size is not installed")
    objects = []
    for source in CLIENT_SOURCES:
        obj = tmp_path / (source.stem + ".o")
        compile_object("arm-none-eabi-gcc", source, obj, ARM_FLAGS)
        objects.append(obj)
    proc = subprocess.run(
        ["arm-none-eabi-size", "-t", *map(str, objects)],
        capture_output=True,
        text=True,
        check=True,
    )
    total_line = proc.stdout.strip().splitlines()[-1]
    text_bytes = int(total_line.split()[0])
    print(f"Cortex-M4 -Os .text, client + codec + framing: {text_bytes} bytes\n{proc.stdout}")
    assert 0 < text_bytes <= TEXT_BUDGET_BYTES, proc.stdout
