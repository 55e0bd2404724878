"""Build firmware for Shoal's boards.

Responsible for driving compilers (today: arm-none-eabi-gcc for the QEMU Cortex-M boards) and
reporting what they produced. Must not run or flash firmware; `host_sdk.hil` runs it.
"""

from host_sdk.build.qemu_firmware import (
    BuildError,
    QemuPlatform,
    build_qemu_firmware,
    qemu_platform,
    size_of,
)
from host_sdk.build.toolchain import ToolNotFoundError, find_tool, have_tool

__all__ = [
    "BuildError",
    "QemuPlatform",
    "ToolNotFoundError",
    "build_qemu_firmware",
    "find_tool",
    "have_tool",
    "qemu_platform",
    "size_of",
]
