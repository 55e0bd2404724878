"""QemuBoard and run_qemu_firmware on both QEMU boards, with the real HAL selftest firmware."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from host_sdk.build import build_qemu_firmware
from host_sdk.hil import BoardExited, ExpectTimeout, QemuBoard, QemuError, run_qemu_firmware
from tests.host_sdk.hil.qemu_support import (
    ECHO_LINES,
    QEMU_BOARDS,
    SELFTEST,
    SelftestBuilder,
    requires_qemu_and_gcc,
)

pytestmark = [pytest.mark.sim, requires_qemu_and_gcc]

CHECKS = ("memcpy", "data_bss", "float", "now_ms", "cycles")
# The core clock QEMU models (hal/qemu/<board>/shoal_qemu_board.h), in Hz.
CORE_HZ = {"qemu-lm3s6965evb": 12_500_000, "qemu-mps2-an386": 25_000_000}


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_selftest_banner_echo_checks_and_exit_zero(
    board_name: str, selftest_elf: SelftestBuilder
) -> None:
    with QemuBoard(get_board(board_name), selftest_elf(board_name, 0)) as board:
        banner = board.expect(rb"^shoal-selftest board=(\S+) echo_lines=(\d+)$", timeout_s=10)
        assert banner.group(1).decode() == board_name
        assert int(banner.group(2)) == ECHO_LINES
        for line in ["hello qemu", "Mixed Case 123 " + "x" * 60]:
            board.write(line + "\n")
            echoed = board.expect(rb"^echo: (.*)$", timeout_s=5)
            assert echoed.group(1).decode() == line.upper()
        clock = board.expect(rb"^clock: now_ms (\d+) -> (\d+), cycles advanced (\d+)$", 5)
        elapsed_ms = int(clock.group(2)) - int(clock.group(1))
        assert elapsed_ms >= 10
        # shoal_hal_cycles() counts core clocks: elapsed ms times the clock QEMU models, +-1 ms.
        cycles_per_ms = CORE_HZ[board_name] // 1000
        cycles = int(clock.group(3))
        assert (elapsed_ms - 1) * cycles_per_ms <= cycles <= (elapsed_ms + 1) * cycles_per_ms
        code, rest = board.read_until_exit(timeout_s=10)
        assert code == 0
        assert board.exit_code == 0
    text = board.output.decode()
    for check in CHECKS:
        assert f"check {check}: ok" in text
    # The last line is printed just before QEMU exits: it must not be lost.
    assert rest.endswith(f"{len(CHECKS)} passed, 0 failed\n".encode())


@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_failures_become_the_exit_status(board_name: str, selftest_elf: SelftestBuilder) -> None:
    result = run_qemu_firmware(
        get_board(board_name), selftest_elf(board_name, 3), stdin=b"one\ntwo\n", timeout_s=20
    )
    assert result.exit_code == 3
    assert result.output.count(b"check forced: FAILED") == 3
    assert result.output.endswith(f"{len(CHECKS)} passed, 3 failed\n".encode())
    assert b"echo: ONE\necho: TWO\n" in result.output


@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_input_sent_before_the_firmware_boots_is_not_lost(
    board_name: str, selftest_elf: SelftestBuilder
) -> None:
    # run_qemu_firmware writes right after `cont`, racing the reset handler's UART init
    # (enabling the PL011 FIFO there used to flush the first byte).
    for attempt in range(3):
        lines = f"first{attempt}\nsecond{attempt}\n".encode()
        result = run_qemu_firmware(get_board(board_name), selftest_elf(board_name, 0), stdin=lines)
        assert result.exit_code == 0
        assert (
            lines.upper().replace(b"FIRST", b"echo: FIRST").replace(b"SECOND", b"echo: SECOND")
            in result.output
        )


@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_millisecond_clock_follows_host_time(board_name: str, tmp_path: Path) -> None:
    wait_ms = 300
    elf = build_qemu_firmware(
        get_board(board_name),
        [SELFTEST],
        tmp_path,
        defines={"SHOAL_SELFTEST_ECHO_LINES": 0, "SHOAL_SELFTEST_CLOCK_WAIT_MS": wait_ms},
    )
    with QemuBoard(get_board(board_name), elf) as board:
        board.expect(rb"^clock: waiting 300 ms$", timeout_s=10)
        started = time.monotonic()
        board.expect(rb"^clock: now_ms ", timeout_s=10)
        elapsed_s = time.monotonic() - started
        assert board.read_until_exit(timeout_s=10)[0] == 0
    # Without -icount QEMU's virtual clock is the host clock: it can lag under load, never lead.
    assert wait_ms / 1000 * 0.9 <= elapsed_s < wait_ms / 1000 * 4 + 1.0


def test_eight_boards_at_once_and_no_qemu_left(selftest_elf: SelftestBuilder) -> None:
    boards = [QEMU_BOARDS[i % 2] for i in range(8)]
    elfs = {name: selftest_elf(name, 0) for name in QEMU_BOARDS}
    pids: list[int] = []
    pids_lock = threading.Lock()

    def boot_test_exit(index: int) -> int:
        name = boards[index]
        with QemuBoard(get_board(name), elfs[name], name=f"{name}#{index}") as board:
            assert board.pid is not None
            with pids_lock:
                pids.append(board.pid)
            board.expect(rb"^shoal-selftest ", timeout_s=20)
            for line_number in range(ECHO_LINES):
                board.write(f"board {index} line {line_number}\n")
                echoed = board.expect(rb"^echo: (.*)$", timeout_s=20)
                assert echoed.group(1) == f"BOARD {index} LINE {line_number}".encode()
            code, _ = board.read_until_exit(timeout_s=20)
            return code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(boards)) as pool:
        codes = list(pool.map(boot_test_exit, range(len(boards))))
    elapsed = time.monotonic() - started
    assert codes == [0] * len(boards)
    assert len(set(pids)) == len(boards)
    assert all(_process_gone(pid) for pid in pids)
    assert elapsed < 60


def test_close_kills_a_running_board(selftest_elf: SelftestBuilder) -> None:
    board = QemuBoard(get_board("qemu-lm3s6965evb"), selftest_elf("qemu-lm3s6965evb", 0))
    board.start()
    board.expect(rb"^shoal-selftest ", timeout_s=10)
    pid = board.pid
    assert pid is not None and board.exit_code is None  # waiting for input lines
    board.close()
    board.close()  # idempotent
    assert _process_gone(pid)


def test_expect_timeout_shows_output_tail(selftest_elf: SelftestBuilder) -> None:
    board = QemuBoard(get_board("qemu-mps2-an386"), selftest_elf("qemu-mps2-an386", 0))
    with board, pytest.raises(ExpectTimeout) as caught:
        board.expect("never printed", timeout_s=0.5)
    message = str(caught.value)
    assert "never printed" in message and "0.5 s" in message
    assert "shoal-selftest board=qemu-mps2-an386" in message


def test_expect_after_exit_reports_board_exited(selftest_elf: SelftestBuilder) -> None:
    with QemuBoard(get_board("qemu-lm3s6965evb"), selftest_elf("qemu-lm3s6965evb", 0)) as board:
        board.write("a\nb\n")
        with pytest.raises(BoardExited) as caught:
            board.expect("never printed", timeout_s=20)
    assert "status 0" in str(caught.value)
    assert "5 passed, 0 failed" in str(caught.value)


def test_expect_matches_whole_lines_only(selftest_elf: SelftestBuilder) -> None:
    with QemuBoard(get_board("qemu-lm3s6965evb"), selftest_elf("qemu-lm3s6965evb", 0)) as board:
        board.expect(rb"^shoal-selftest ", timeout_s=10)
        board.write("12345\n")
        # Without line anchoring this could match a prefix of the number mid-line.
        assert board.expect(rb"echo: (\d+)$", timeout_s=5).group(1) == b"12345"


def test_read_until_exit_times_out_with_tail(selftest_elf: SelftestBuilder) -> None:
    board = QemuBoard(get_board("qemu-lm3s6965evb"), selftest_elf("qemu-lm3s6965evb", 0))
    tail = re.compile("still running.*shoal-selftest", re.S)
    with board, pytest.raises(ExpectTimeout, match=tail):
        board.read_until_exit(timeout_s=0.5)


@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_unexpected_exception_exits_with_fault_status(board_name: str, tmp_path: Path) -> None:
    source = tmp_path / "trap.c"
    source.write_text(
        '#include <stdio.h>\n#include "shoal_hal.h"\n'
        'int main(void) { shoal_hal_init(); puts("before trap"); __builtin_trap(); return 0; }\n'
    )
    elf = build_qemu_firmware(get_board(board_name), [source], tmp_path)
    result = run_qemu_firmware(get_board(board_name), elf, timeout_s=10)
    assert result.exit_code == 125
    assert b"before trap\n" in result.output
    assert re.search(rb"shoal: unexpected exception, IPSR=0x00000003\n$", result.output)


def test_icount_makes_the_clock_repeatable(tmp_path: Path) -> None:
    source = tmp_path / "count.c"
    source.write_text(
        '#include <stdio.h>\n#include "shoal_hal.h"\n'
        "int main(void) {\n"
        "    volatile unsigned spin;\n"
        "    uint32_t start;\n"
        "    shoal_hal_init();\n"
        "    start = shoal_hal_cycles();\n"
        "    for (spin = 0; spin < 20000u; ++spin) {\n"
        "    }\n"
        '    printf("ticks=%lu\\n", (unsigned long)(shoal_hal_cycles() - start));\n'
        "    return 0;\n"
        "}\n"
    )
    board = get_board("qemu-mps2-an386")
    elf = build_qemu_firmware(board, [source], tmp_path)
    outputs = {run_qemu_firmware(board, elf, icount_shift=4, timeout_s=20).output for _ in range(2)}
    assert len(outputs) == 1, outputs
    ticks = re.search(rb"ticks=(\d+)", outputs.pop())
    assert ticks is not None and int(ticks.group(1)) > 0


def test_qemu_start_failure_shows_qemu_message_and_leaves_nothing(
    selftest_elf: SelftestBuilder,
) -> None:
    board = get_board("qemu-lm3s6965evb")
    assert board.qemu is not None
    broken = dataclasses.replace(
        board, qemu=dataclasses.replace(board.qemu, machine="no-such-machine")
    )
    qemu = QemuBoard(broken, selftest_elf("qemu-lm3s6965evb", 0))
    with pytest.raises(QemuError, match=re.compile("did not start.*no-such-machine", re.S)):
        qemu.start()
    assert qemu.pid is not None and _process_gone(qemu.pid)


def test_bad_elf_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(ShoalInputError, match=r"nothing\.elf: firmware ELF not found"):
        QemuBoard(get_board("qemu-lm3s6965evb"), tmp_path / "nothing.elf")
