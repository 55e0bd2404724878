"""QEMU HAL with the console on UART1 (SHOAL_HAL_CONSOLE_UART=1) and the link on UART0, run by
QemuBoard's `serial_link`, plus shoal_hal_reset and .noinit RAM across a QEMU machine reset.

The firmware (firmware/console_link.c) echoes link bytes upper-cased on the link and logs them
on the console; the test checks that each side carries only its own bytes, that a reset boots
the same ELF again with .noinit kept and both connections open, and the exit status.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from codegen.loaders.board_loader import get_board
from host_sdk.build import build_qemu_firmware
from host_sdk.hil.qemu import QemuBoard, qemu_available, qemu_command

FIRMWARE = Path(__file__).resolve().parent / "firmware" / "console_link.c"
QEMU_BOARDS = ("qemu-lm3s6965evb", "qemu-mps2-an386")
LINK_SERVER = "tcp:127.0.0.1:0,server=on,wait=off,nodelay=on"


@pytest.mark.unit
def test_serial_link_takes_uart0_and_the_console_moves_to_the_second_serial(
    tmp_path: Path,
) -> None:
    if not qemu_available():
        pytest.skip("qemu-system-arm is not installed (qemu_command looks it up)")
    board = get_board("qemu-lm3s6965evb")
    elf = tmp_path / "x.elf"
    plain = qemu_command(board, elf, tmp_path / "qmp")
    linked = qemu_command(board, elf, tmp_path / "qmp", serial_link="tcp:127.0.0.1:4000")
    serials = [linked[i + 1] for i, arg in enumerate(linked) if arg == "-serial"]
    assert serials == ["tcp:127.0.0.1:4000", LINK_SERVER]
    assert [plain[i + 1] for i, arg in enumerate(plain) if arg == "-serial"] == [LINK_SERVER]


def _read_until(link: socket.socket, wanted: bytes, timeout_s: float) -> bytes:
    received = b""
    deadline = time.monotonic() + timeout_s
    while wanted not in received:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"link: {wanted!r} not received, got {received!r}"
        link.settimeout(remaining)
        chunk = link.recv(4096)
        assert chunk, f"link closed; got {received!r}"
        received += chunk
    return received


@pytest.mark.sim
@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_console_on_uart1_link_on_uart0_and_reset_keeps_noinit(
    board_name: str, tmp_path: Path
) -> None:
    if not qemu_available():
        pytest.skip("qemu-system-arm is not installed")
    board = get_board(board_name)
    elf = build_qemu_firmware(
        board, [FIRMWARE], tmp_path, defines={"SHOAL_HAL_CONSOLE_UART": 1}, name="console_link"
    )
    qemu = QemuBoard(board, elf, serial_link=LINK_SERVER)
    link = None
    try:
        qemu.start(resume=False)
        link = socket.create_connection(("127.0.0.1", qemu.link_port()), 10)
        qemu.wait_link_connected()
        qemu.resume()
        qemu.expect(rb"^boot 1$", 10)
        link.sendall(b"ab")
        assert _read_until(link, b"AB", 10) == b"AB"  # nothing of the console on the link
        qemu.expect(rb"^got a\ngot b$", 10)
        assert b"AB" not in qemu.output  # nothing of the link on the console
        link.sendall(b"r")
        qemu.expect(rb"^got r\nboot 2$", 10)  # same process, .noinit kept, console still open
        link.sendall(b"c")
        assert _read_until(link, b"C", 10) == b"C"  # the link survived the reset too
        link.sendall(b"x")
        code, _ = qemu.read_until_exit(10)
        assert code == 0
    finally:
        if link is not None:
            link.close()
        qemu.close()
