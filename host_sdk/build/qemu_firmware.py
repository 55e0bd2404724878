"""Build C firmware for the QEMU Cortex-M boards with arm-none-eabi-gcc.

Responsible for turning C sources plus Shoal's QEMU platform layer (firmware_templates/c/hal/
qemu: startup, semihosting, newlib syscalls, the board's UART driver and linker script) into
an ELF that `host_sdk.hil.qemu` can run, and for reporting section sizes. Must not start
QEMU or know what the firmware does; compile errors come back as BuildError carrying the
compiler's own message.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from codegen.resources import templates_dir
from host_sdk.build.toolchain import ARM_GCC, ARM_SIZE, find_tool

COMPILE_TIMEOUT_S = 180.0
# Warnings are errors: generated C must be warning-free, and a warning in the HAL is a bug.
STRICT_WARNINGS = ("-Wall", "-Wextra", "-Werror")
# newlib-nano with our own syscalls (shoal_syscalls.c); nosys covers the ones we do not need.
LINK_FLAGS = (
    "--specs=nano.specs",
    "--specs=nosys.specs",
    "-nostartfiles",
    "-Wl,--gc-sections",
)
_DEFINE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BuildError(RuntimeError):
    """The compiler or linker failed. `stderr` is its output; `command` what was run."""

    def __init__(self, message: str, *, command: Sequence[str], stderr: str) -> None:
        super().__init__(message)
        self.command = list(command)
        self.stderr = stderr


@dataclass(frozen=True)
class QemuPlatform:
    """The platform-layer files for one QEMU board."""

    include_dirs: tuple[Path, ...]
    sources: tuple[Path, ...]
    linker_script: Path
    linker_search_dirs: tuple[Path, ...]


def qemu_platform(board: Board) -> QemuPlatform:
    """The HAL sources, include folders and linker script for `board` (a QEMU board)."""
    if board.qemu is None:
        raise ShoalInputError(
            f"board '{board.name}': has no [qemu] table, so it cannot be built for QEMU; "
            f"QEMU boards: {', '.join(available_qemu_board_folders())}"
        )
    hal_dir = templates_dir() / "c" / "hal"
    common_dir = hal_dir / "qemu" / "common"
    board_dir = hal_dir / "qemu" / board.qemu.machine.replace("-", "_")
    if not board_dir.is_dir():
        raise ShoalInputError(
            f"board '{board.name}': field 'qemu.machine' = {board.qemu.machine!r} has no "
            f"platform folder {board_dir}; supported machines: "
            f"{', '.join(available_qemu_board_folders())}"
        )
    return QemuPlatform(
        include_dirs=(hal_dir, common_dir, board_dir),
        sources=tuple(sorted(common_dir.glob("*.c")) + sorted(board_dir.glob("*.c"))),
        linker_script=board_dir / "shoal_board.ld",
        linker_search_dirs=(common_dir,),
    )


def available_qemu_board_folders() -> list[str]:
    """QEMU machine names that have a platform folder (with '_' for '-')."""
    qemu_dir = templates_dir() / "c" / "hal" / "qemu"
    return sorted(p.name for p in qemu_dir.iterdir() if p.is_dir() and p.name != "common")


def _define_flags(defines: Mapping[str, str | int | None]) -> list[str]:
    flags = []
    for name, value in defines.items():
        if not _DEFINE_NAME.match(name):
            raise ShoalInputError(
                f"define {name!r}: not a C identifier; expected letters, digits and '_'"
            )
        flags.append(f"-D{name}" if value is None else f"-D{name}={value}")
    return flags


def build_qemu_firmware(
    board: Board,
    sources: Sequence[Path],
    out_dir: Path,
    *,
    include_dirs: Sequence[Path] = (),
    defines: Mapping[str, str | int | None] | None = None,
    extra_cflags: Sequence[str] = (),
    opt: str = "-Os",
    name: str = "firmware",
    warnings_as_errors: bool = True,
    keep_symbols: Sequence[str] = (),
) -> Path:
    """Compile and link `sources` with the QEMU platform layer of `board`; return the ELF path.

    Flags, in order: the board's `toolchain.cflags`, `opt` (last -O wins, so it overrides the
    board's), -Wall -Wextra -Werror (unless `warnings_as_errors` is False), `extra_cflags`.
    Defines always set: SHOAL_BOARD_NAME (a string) and SHOAL_QEMU_UART_BASE; `defines` adds
    more (value None means `-DNAME`). `keep_symbols` survive --gc-sections even when nothing
    calls them (functions measured with host_sdk.hil.icount). Writes `<name>.elf` and
    `<name>.map` in `out_dir`.
    Raises ShoalInputError for a non-QEMU board or a missing source, BuildError when the
    compiler fails (its stderr is in the message), ToolNotFoundError without arm-none-eabi-gcc.
    """
    platform = qemu_platform(board)
    assert board.qemu is not None
    if board.toolchain.compiler != ARM_GCC:
        raise ShoalInputError(
            f"board '{board.name}': field 'toolchain.compiler' is {board.toolchain.compiler!r}; "
            f"QEMU firmware is built with {ARM_GCC}"
        )
    if not name or "/" in name or name.startswith("."):
        raise ShoalInputError(f"firmware name {name!r}: expected a plain file stem like 'app'")
    for symbol in keep_symbols:
        if not _DEFINE_NAME.match(symbol):
            raise ShoalInputError(f"keep_symbols: {symbol!r} is not a C identifier")
    if not sources:
        raise ShoalInputError("build_qemu_firmware: no C sources given; pass at least one .c")
    for source in sources:
        if not Path(source).is_file():
            raise ShoalInputError(f"{source}: C source file not found")
    gcc = find_tool(ARM_GCC)
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / f"{name}.elf"
    all_defines: dict[str, str | int | None] = {
        "SHOAL_BOARD_NAME": f'"{board.name}"',
        "SHOAL_QEMU_UART_BASE": f"0x{board.qemu.uart_base_address:08X}u",
    }
    all_defines.update(defines or {})
    command = [
        gcc,
        *board.toolchain.cflags,
        opt,
        *(STRICT_WARNINGS if warnings_as_errors else ()),
        *extra_cflags,
        *_define_flags(all_defines),
        *(f"-I{d}" for d in (*include_dirs, *platform.include_dirs)),
        *(str(s) for s in sources),
        *(str(s) for s in platform.sources),
        *LINK_FLAGS,
        *(f"-Wl,--undefined={symbol}" for symbol in keep_symbols),
        *(f"-L{d}" for d in platform.linker_search_dirs),
        f"-T{platform.linker_script}",
        f"-Wl,-Map={out_dir / (name + '.map')}",
        "-o",
        str(elf),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(
            f"{ARM_GCC} did not finish building {name} for {board.name} in {COMPILE_TIMEOUT_S} s",
            command=command,
            stderr=str(exc.stderr or ""),
        ) from exc
    if result.returncode != 0:
        raise BuildError(
            f"{ARM_GCC} failed building {name} for board {board.name} "
            f"(exit status {result.returncode}):\n{result.stderr.strip()}",
            command=command,
            stderr=result.stderr,
        )
    return elf


def size_of(elf: Path) -> dict[str, int]:
    """Section sizes of `elf` in bytes, as arm-none-eabi-size reports them (Berkeley format).

    `text` is everything in flash except .data's initial values (code, rodata, vectors),
    `data` is initialised RAM (also stored in flash), `bss` is zeroed RAM.
    """
    if not Path(elf).is_file():
        raise ShoalInputError(f"{elf}: ELF file not found")
    command = [find_tool(ARM_SIZE), "-B", str(elf)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise BuildError(
            f"{ARM_SIZE} could not read {elf}: {result.stderr.strip()}",
            command=command,
            stderr=result.stderr,
        )
    lines = result.stdout.strip().splitlines()
    fields = lines[-1].split() if len(lines) >= 2 else []
    if len(fields) < 3 or not all(f.isdigit() for f in fields[:3]):
        raise BuildError(
            f"{ARM_SIZE}: unexpected output for {elf}: {result.stdout!r}",
            command=command,
            stderr=result.stderr,
        )
    text, data, bss = (int(f) for f in fields[:3])
    return {"text": text, "data": data, "bss": bss}
