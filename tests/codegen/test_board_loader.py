"""Every board file loads and validates; broken board files give the promised errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codegen.errors import ShoalInputError
from codegen.ir.board import COMPILERS, CORES, FLASH_METHODS, MPY_CROSS_ARCHS, TRANSPORTS
from codegen.loaders.board_loader import board_paths, get_board, load_board, load_boards
from codegen.resources import boards_dir

pytestmark = pytest.mark.unit

REQUIRED_BOARDS = {
    "native",
    "qemu-lm3s6965evb",
    "qemu-mps2-an386",
    "micropython-unix",
    "esp32-devkitc",
    "rpi-pico-w",
    "nucleo-f446re",
    "nrf52840-dk",
}


def test_every_board_file_loads_and_the_required_boards_exist() -> None:
    boards = load_boards()
    assert set(boards) >= REQUIRED_BOARDS
    assert len(boards) == len(board_paths())


@pytest.mark.parametrize("path", board_paths(), ids=lambda p: p.stem)
def test_board_file_is_consistent(path: Path) -> None:
    board = load_board(path)
    assert board.name == path.stem
    assert board.core in CORES and board.toolchain.compiler in COMPILERS
    assert set(board.flash_methods) <= set(FLASH_METHODS)
    assert set(board.transports) <= set(TRANSPORTS)
    assert 0 < board.memory.app_ram_bytes <= board.memory.ram_bytes
    assert 0 < board.memory.app_flash_bytes <= board.memory.flash_bytes
    if board.micropython.supported:
        assert board.micropython.mpy_cross_march in MPY_CROSS_ARCHS
    sourced = {field for field, _ in board.sources}
    assert {"clock_hz", "memory", "cycles_per_int8_mac"} <= sourced


def test_known_figures_of_the_virtual_boards() -> None:
    lm3s = get_board("qemu-lm3s6965evb")
    assert (lm3s.core, lm3s.memory.ram_bytes, lm3s.memory.flash_bytes) == (
        "cortex-m3",
        64 * 1024,
        256 * 1024,
    )
    assert lm3s.qemu is not None and lm3s.qemu.uart == "pl011"
    assert lm3s.qemu.uart_base_address == 0x4000C000
    an386 = get_board("qemu-mps2-an386")
    assert an386.dsp and an386.qemu is not None and an386.qemu.uart == "cmsdk"
    assert get_board("micropython-unix").micropython.supported
    assert get_board("esp32-devkitc").micropython.mpy_cross_march == "xtensawin"
    assert get_board("rpi-pico-w").micropython.mpy_cross_march == "armv6m"


def test_unknown_board_lists_the_known_ones() -> None:
    with pytest.raises(ShoalInputError, match=r"unknown board 'nope'; known boards: .*native"):
        get_board("nope")


def _broken_copy(tmp_path: Path, old: str, new: str, name: str = "qemu-lm3s6965evb") -> Path:
    text = (boards_dir() / f"{name}.toml").read_text()
    assert old in text, f"test setup: {old!r} not in the board file"
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'core = "cortex-m3"',
            'core = "cortex-m33"',
            r"field 'core': 'cortex-m33' is not one of: ",
        ),
        (
            "ram_bytes = 65_536",
            'ram_bytes = "64k"',
            r"field 'memory.ram_bytes': expected a positive",
        ),
        (
            "app_ram_bytes = 61_440",
            "app_ram_bytes = 99_999",
            r"'memory.app_ram_bytes': 99999 exceeds",
        ),
        (
            'transports = ["uart"]',
            'transports = ["can"]',
            r"'transports': 'can' is not one of: udp",
        ),
        ("clock_hz = 50_000_000", "clock_hz = 0", r"field 'clock_hz': expected a positive integer"),
        ("fpu = false", "fpu = 0", r"field 'fpu': expected true or false"),
        (
            "fpu = false",
            "fpu = false\nflash_size = 3",
            r"unknown field 'flash_size' \(fields accepted",
        ),
        ('uart = "pl011"', 'uart = "16550"', r"'qemu.uart': '16550' is not one of: pl011, cmsdk"),
        ('cycles_per_int8_mac = "estimate', 'cpm = "estimate', r"'sources.cpm': names a field"),
        (
            'name = "qemu-lm3s6965evb"',
            'name = "other"',
            r"'name': 'other' must equal the file name",
        ),
        ('name = "qemu-lm3s6965evb"\n', "", r"missing required field 'name'"),
        ("[memory]", "[memory\n", r"not valid TOML"),
    ],
)
def test_broken_board_file_names_file_field_and_what_is_accepted(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = _broken_copy(tmp_path, old, new)
    with pytest.raises(ShoalInputError, match=message) as caught:
        load_board(path)
    assert str(path) in str(caught.value)


def test_micropython_support_needs_a_march(tmp_path: Path) -> None:
    path = _broken_copy(tmp_path, 'mpy_cross_march = "armv6m"\n', "", name="rpi-pico-w")
    with pytest.raises(ShoalInputError, match=r"'micropython.mpy_cross_march': required when"):
        load_board(path)


def test_a_new_board_is_just_a_file(tmp_path: Path) -> None:
    shutil.copy(boards_dir() / "nucleo-f446re.toml", tmp_path / "nucleo-f446re.toml")
    text = (tmp_path / "nucleo-f446re.toml").read_text().replace("nucleo-f446re", "my-board")
    (tmp_path / "my-board.toml").write_text(text)
    assert set(load_boards(tmp_path)) == {"nucleo-f446re", "my-board"}


def test_binary_garbage_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "junk.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ShoalInputError, match=r"junk.toml: not UTF-8 text"):
        load_board(path)
