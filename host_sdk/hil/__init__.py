"""Virtual boards for hardware-in-the-loop style tests without hardware.

Responsible for running firmware on emulated boards (QEMU Cortex-M today) and talking to it
the way a test talks to a real device (write, expect, exit status). Must not build firmware;
`host_sdk.build` does.
"""

from host_sdk.hil.qemu import (
    BoardExited,
    ExpectTimeout,
    QemuBoard,
    QemuError,
    QemuResult,
    qemu_available,
    qemu_command,
    run_qemu_firmware,
)

__all__ = [
    "BoardExited",
    "ExpectTimeout",
    "QemuBoard",
    "QemuError",
    "QemuResult",
    "qemu_available",
    "qemu_command",
    "run_qemu_firmware",
]
