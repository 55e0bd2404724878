"""Boards as data: the frozen description of one target a Shoal firmware can run on.

Filled by `codegen.loaders.board_loader` from a file in `boards/`; read by the planners (does a
model fit? how long will it take?) and by the host SDK (which compiler, which flasher). The
vocabularies below are closed: a board file using anything else is rejected, so adding a new
value is a deliberate change here, with the code that supports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BOARD_KINDS = ("virtual", "real")
CORES = (
    "x86-64",
    "cortex-m0plus",
    "cortex-m3",
    "cortex-m4",
    "cortex-m4f",
    "cortex-m7",
    "xtensa-lx6",
)
COMPILERS = ("gcc", "arm-none-eabi-gcc", "xtensa-esp32-elf-gcc", "none")
BUILD_SYSTEMS = ("native", "make", "platformio", "micropython")
FLASH_METHODS = (
    "native",
    "qemu",
    "micropython-unix",
    "esptool",
    "mpremote",
    "uf2",
    "pyocd",
    "openocd",
    "platformio",
)
TRANSPORTS = ("udp", "uart")
# Sensor drivers a role spec may use on a board (see codegen.ir.role); a virtual board only
# offers `simulated` (generated or replayed samples).
SENSOR_DRIVERS = ("simulated", "adc", "i2c", "uart_lines")
MPY_CROSS_ARCHS = ("x64", "armv6m", "armv7m", "armv7emsp", "armv7emdp", "xtensawin", "rv32imc")


@dataclass(frozen=True)
class Memory:
    """Memory of the board in bytes; `app_*` is what is left for Shoal's firmware after the
    vendor runtime (RTOS, Wi-Fi stack, MicroPython heap reservations, bootloader)."""

    ram_bytes: int
    flash_bytes: int
    app_ram_bytes: int
    app_flash_bytes: int


@dataclass(frozen=True)
class Toolchain:
    """How C firmware for the board is compiled."""

    compiler: str
    cflags: tuple[str, ...]
    build_system: str
    platformio_platform: str | None = None
    platformio_board: str | None = None
    platformio_framework: str | None = None


@dataclass(frozen=True)
class MicroPythonSupport:
    """Whether MicroPython firmware can target the board, and for which `mpy-cross -march`."""

    supported: bool
    mpy_cross_march: str | None = None
    port: str | None = None


@dataclass(frozen=True)
class Qemu:
    """How a virtual board is emulated (`qemu-system-arm -M machine -cpu cpu`)."""

    machine: str
    cpu: str
    uart: str
    uart_base_address: int


@dataclass(frozen=True)
class Board:
    """One target. `cycles_per_int8_mac` is an estimate used only for latency estimates;
    `sources` says, field by field, where each figure came from."""

    name: str
    description: str
    kind: str
    mcu: str
    core: str
    clock_hz: int
    fpu: bool
    dsp: bool
    memory: Memory
    toolchain: Toolchain
    flash_methods: tuple[str, ...]
    transports: tuple[str, ...]
    micropython: MicroPythonSupport
    cycles_per_int8_mac: float
    sources: tuple[tuple[str, str], ...] = field(default=())
    qemu: Qemu | None = None
    sensor_drivers: tuple[str, ...] = ("simulated",)

    @property
    def supports_c(self) -> bool:
        """True when C firmware can be built for the board."""
        return self.toolchain.compiler != "none"
