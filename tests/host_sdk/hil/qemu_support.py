"""Shared constants of the QEMU virtual-board tests (imported by the tests and conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from codegen.resources import templates_dir
from host_sdk.build import have_tool

SELFTEST = templates_dir() / "c" / "selftest" / "hal_selftest.c"
QEMU_BOARDS = ("qemu-lm3s6965evb", "qemu-mps2-an386")
ECHO_LINES = 2

# Applied by the test modules, so a machine without the tools skips with the reason.
requires_qemu_and_gcc = pytest.mark.skipif(
    not (have_tool("qemu-system-arm") and have_tool("arm-none-eabi-gcc")),
    reason="qemu-system-arm or arm-none-eabi-gcc is not installed "
    "(apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)",
)

SelftestBuilder = Callable[[str, int], Path]
