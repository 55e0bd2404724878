"""Where Shoal finds the external programs it builds and emulates with.

Responsible for the one lookup of each tool (arm-none-eabi-gcc, arm-none-eabi-size,
qemu-system-arm, ...) and for the error that says how to install a missing one. Must not run
the tools; the builders and virtual boards do.
"""

from __future__ import annotations

import shutil

ARM_GCC = "arm-none-eabi-gcc"
ARM_SIZE = "arm-none-eabi-size"
QEMU_SYSTEM_ARM = "qemu-system-arm"

# Debian package names, for the message that tells the user what to install.
_INSTALL_HINTS = {
    ARM_GCC: "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    ARM_SIZE: "apt-get install binutils-arm-none-eabi",
    QEMU_SYSTEM_ARM: "apt-get install qemu-system-arm",
}


class ToolNotFoundError(RuntimeError):
    """An external program Shoal needs is not on PATH; the message says how to install it."""


def have_tool(name: str) -> bool:
    """True when the program `name` is on PATH."""
    return shutil.which(name) is not None


def find_tool(name: str) -> str:
    """Absolute path of the program `name` on PATH, or ToolNotFoundError naming the fix."""
    path = shutil.which(name)
    if path is None:
        hint = _INSTALL_HINTS.get(name, f"install {name}")
        raise ToolNotFoundError(f"{name} not found on PATH; install it with: {hint}")
    return path
