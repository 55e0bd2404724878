"""The QEMU platform files agree with the board files they implement."""

from __future__ import annotations

import re

import pytest

from codegen.loaders.board_loader import get_board
from host_sdk.build import qemu_platform

pytestmark = pytest.mark.unit

QEMU_BOARDS = ["qemu-lm3s6965evb", "qemu-mps2-an386"]
_SIZE = re.compile(r"(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+),\s*LENGTH\s*=\s*(\d+)K")
_STACK = re.compile(r"__shoal_stack_bytes\s*=\s*(\d+)K;")


@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_linker_script_memory_matches_board_file(board_name: str) -> None:
    board = get_board(board_name)
    script = qemu_platform(board).linker_script.read_text()
    regions = {
        name: (int(origin, 16), int(kib) * 1024) for name, origin, kib in _SIZE.findall(script)
    }
    assert regions["FLASH"] == (0x00000000, board.memory.flash_bytes)
    assert regions["RAM"] == (0x20000000, board.memory.ram_bytes)
    stack = _STACK.search(script)
    assert stack is not None
    assert int(stack.group(1)) * 1024 == board.memory.ram_bytes - board.memory.app_ram_bytes


@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_platform_has_startup_and_one_uart_driver(board_name: str) -> None:
    board = get_board(board_name)
    assert board.qemu is not None
    names = [p.name for p in qemu_platform(board).sources]
    assert "shoal_startup.c" in names
    assert names.count(f"shoal_uart_{board.qemu.uart}.c") == 1
    assert not any(
        n.startswith("shoal_uart_") and n != f"shoal_uart_{board.qemu.uart}.c" for n in names
    )
