"""Read board files (`boards/<name>.toml`) into `codegen.ir.board.Board`.

Every field is checked: its type, its range, and for closed vocabularies its value. Unknown
fields are rejected too, because a misspelt field silently falling back to a default is how a
model ends up "fitting" a board it does not fit. Errors name the file, the dotted field and
what is accepted.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from codegen.errors import ShoalInputError
from codegen.ir.board import (
    BOARD_KINDS,
    BUILD_SYSTEMS,
    COMPILERS,
    CORES,
    FLASH_METHODS,
    MPY_CROSS_ARCHS,
    SENSOR_DRIVERS,
    TRANSPORTS,
    Board,
    Memory,
    MicroPythonSupport,
    Qemu,
    Toolchain,
)
from codegen.resources import boards_dir

BOARD_FILE_SUFFIX = ".toml"
T = TypeVar("T")


class _Table:
    """One TOML table being read, remembering which keys were consumed."""

    def __init__(self, path: Path, prefix: str, data: dict[str, Any]) -> None:
        self.path = path
        self.prefix = prefix
        self.data = data
        self.used: set[str] = set()

    def error(self, key: str, problem: str) -> ShoalInputError:
        return ShoalInputError(f"{self.path}: field '{self.prefix}{key}': {problem}")

    def _get(self, key: str, required: bool) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise ShoalInputError(f"{self.path}: missing required field '{self.prefix}{key}'")
            return None
        return self.data[key]

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key)
        assert value is not None
        return value

    def choice(self, key: str, allowed: Iterable[str], *, required: bool = True) -> str | None:
        value = self.text(key, required=required)
        allowed = tuple(allowed)
        if value is not None and value not in allowed:
            raise self.error(key, f"{value!r} is not one of: {', '.join(allowed)}")
        return value

    def required_choice(self, key: str, allowed: Iterable[str]) -> str:
        value = self.choice(key, allowed)
        assert value is not None
        return value

    def boolean(self, key: str) -> bool:
        value = self._get(key, True)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def positive_int(self, key: str) -> int:
        value = self._get(key, True)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(key, f"expected a positive integer, got {value!r}")
        return value

    def positive_number(self, key: str) -> float:
        value = self._get(key, True)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.error(key, f"expected a positive number, got {value!r}")
        return float(value)

    def choices(
        self, key: str, allowed: Iterable[str], *, allow_empty: bool = False
    ) -> tuple[str, ...]:
        value = self._get(key, True)
        allowed = tuple(allowed)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of strings from: {', '.join(allowed)}")
        if not value and not allow_empty:
            raise self.error(key, f"expected at least one of: {', '.join(allowed)}")
        for item in value:
            if item not in allowed:
                raise self.error(key, f"{item!r} is not one of: {', '.join(allowed)}")
        if len(set(value)) != len(value):
            raise self.error(key, "lists a value twice")
        return tuple(value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self._get(key, True)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f"expected a list of non-empty strings, got {value!r}")
        return tuple(value)

    def table(self, key: str, *, required: bool = True) -> _Table | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table ([{self.prefix}{key}]), got {value!r}")
        return _Table(self.path, f"{self.prefix}{key}.", value)

    def required_table(self, key: str) -> _Table:
        value = self.table(key)
        assert value is not None
        return value

    def finish(self) -> None:
        """Reject keys nobody read: they are misspellings or fields this version does not know."""
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise ShoalInputError(
                f"{self.path}: unknown field '{self.prefix}{unknown[0]}'"
                f" (fields accepted here: {known})"
            )


def load_board(path: Path) -> Board:
    """Read and validate one board file; the board's name must equal the file's stem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ShoalInputError(f"{path}: cannot read board file: {exc.strerror}") from exc
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ShoalInputError(f"{path}: not UTF-8 text (board files are TOML)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ShoalInputError(f"{path}: not valid TOML: {exc}") from exc
    top = _Table(path, "", document)
    name = top.required_text("name")
    if name != path.stem:
        raise top.error("name", f"{name!r} must equal the file name stem {path.stem!r}")
    board = Board(
        name=name,
        description=top.required_text("description"),
        kind=top.required_choice("kind", BOARD_KINDS),
        mcu=top.required_text("mcu"),
        core=top.required_choice("core", CORES),
        clock_hz=top.positive_int("clock_hz"),
        fpu=top.boolean("fpu"),
        dsp=top.boolean("dsp"),
        memory=_memory(top.required_table("memory")),
        toolchain=_toolchain(top.required_table("toolchain")),
        flash_methods=top.choices("flash_methods", FLASH_METHODS),
        transports=top.choices("transports", TRANSPORTS),
        micropython=_micropython(top.required_table("micropython")),
        cycles_per_int8_mac=top.positive_number("cycles_per_int8_mac"),
        sources=_sources(top.required_table("sources"), document),
        qemu=_qemu(top.table("qemu", required=False)),
        sensor_drivers=_sensor_drivers(top),
    )
    top.finish()
    if board.kind == "virtual" and board.core.startswith("cortex") and board.qemu is None:
        raise top.error("qemu", "a virtual Cortex-M board needs a [qemu] table")
    return board


def _sensor_drivers(top: _Table) -> tuple[str, ...]:
    """Optional `sensor_drivers` list; a board file without it offers only `simulated`."""
    if "sensor_drivers" not in top.data:
        top.used.add("sensor_drivers")
        return ("simulated",)
    return top.choices("sensor_drivers", SENSOR_DRIVERS)


def _memory(table: _Table) -> Memory:
    memory = Memory(
        ram_bytes=table.positive_int("ram_bytes"),
        flash_bytes=table.positive_int("flash_bytes"),
        app_ram_bytes=table.positive_int("app_ram_bytes"),
        app_flash_bytes=table.positive_int("app_flash_bytes"),
    )
    table.finish()
    if memory.app_ram_bytes > memory.ram_bytes:
        raise table.error("app_ram_bytes", f"{memory.app_ram_bytes} exceeds ram_bytes")
    if memory.app_flash_bytes > memory.flash_bytes:
        raise table.error("app_flash_bytes", f"{memory.app_flash_bytes} exceeds flash_bytes")
    return memory


def _toolchain(table: _Table) -> Toolchain:
    toolchain = Toolchain(
        compiler=table.required_choice("compiler", COMPILERS),
        cflags=table.strings("cflags"),
        build_system=table.required_choice("build_system", BUILD_SYSTEMS),
        platformio_platform=table.text("platformio_platform", required=False),
        platformio_board=table.text("platformio_board", required=False),
        platformio_framework=table.text("platformio_framework", required=False),
    )
    table.finish()
    if toolchain.build_system == "platformio" and not (
        toolchain.platformio_platform and toolchain.platformio_board
    ):
        raise table.error(
            "build_system", "'platformio' needs platformio_platform and platformio_board"
        )
    return toolchain


def _micropython(table: _Table) -> MicroPythonSupport:
    support = MicroPythonSupport(
        supported=table.boolean("supported"),
        mpy_cross_march=table.choice("mpy_cross_march", MPY_CROSS_ARCHS, required=False),
        port=table.text("port", required=False),
    )
    table.finish()
    if support.supported and support.mpy_cross_march is None:
        raise table.error("mpy_cross_march", "required when supported = true")
    return support


def _qemu(table: _Table | None) -> Qemu | None:
    if table is None:
        return None
    qemu = Qemu(
        machine=table.required_text("machine"),
        cpu=table.required_text("cpu"),
        uart=table.required_choice("uart", ("pl011", "cmsdk")),
        uart_base_address=table.positive_int("uart_base_address"),
    )
    table.finish()
    return qemu


# Figures whose origin a board file must state in its [sources] table.
SOURCED_FIGURES = ("clock_hz", "memory", "cycles_per_int8_mac")


def _sources(table: _Table, document: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    entries = []
    for key in sorted(table.data):
        entries.append((key, table.required_text(key)))
        if key.split(".")[0] not in document:
            raise table.error(key, "names a field this board file does not have")
    table.finish()
    for figure in SOURCED_FIGURES:
        if figure not in table.data:
            raise table.error(figure, "missing: say where this figure came from")
    return tuple(entries)


def board_paths(directory: Path | None = None) -> list[Path]:
    """The board files in `directory` (default: Shoal's own boards/), sorted by name."""
    folder = directory if directory is not None else boards_dir()
    return sorted(folder.glob(f"*{BOARD_FILE_SUFFIX}"))


def load_boards(directory: Path | None = None) -> dict[str, Board]:
    """Every board in `directory` (default: Shoal's own boards/), by name."""
    return {path.stem: load_board(path) for path in board_paths(directory)}


def get_board(name: str, directory: Path | None = None) -> Board:
    """One board by name, or a ShoalInputError listing the boards that exist."""
    paths = {path.stem: path for path in board_paths(directory)}
    if name not in paths:
        raise ShoalInputError(
            f"unknown board {name!r}; known boards: {', '.join(sorted(paths)) or '(none)'}"
        )
    return load_board(paths[name])
