"""Shoal's STM32F4 bare-metal HAL (firmware_templates/c/hal/stm32f4, built for nucleo-f446re)
running on QEMU's netduinoplus2 machine.

The netduinoplus2 is an STM32F405 (Cortex-M4F): USART2 at 0x40004400 on IRQ 38, SysTick,
the NVIC, flash at 0x08000000 and SRAM at 0x20000000 are where the STM32F446 has them, so the
nucleo-f446re image (vector table, reset handler, .data/.bss, FPU, SysTick ms clock, the
USART2 receive interrupt and ring) runs unchanged. What QEMU does not model: RCC/PWR/FLASH
(reads are 0, so the HAL's bounded waits time out and it stays on the 16 MHz HSI, as its
fallback promises) and the DWT cycle counter (reads 0, so the selftest's `cycles` check fails
for that reason alone). Ends by the HAL's exit report ("shoal: exit 1"), since a real board
has no semihosting.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from codegen.emit import platformio
from codegen.ir.board import Qemu
from codegen.loaders.board_loader import get_board
from codegen.resources import templates_dir
from host_sdk.hil.qemu import QemuBoard, qemu_available

pytestmark = pytest.mark.sim

SELFTEST = templates_dir() / "c" / "selftest" / "hal_selftest.c"


def _build(project: Path) -> Path:
    """Build the project as its platformio.ini says (board cflags, strict warnings, sources,
    linker script; the link flags of shoal_pio_link.py)."""
    from tests.codegen.test_platformio_projects import _build_like_platformio

    return _build_like_platformio(project, get_board("nucleo-f446re"))


def test_stm32f4_hal_selftest_on_qemu_netduinoplus2(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    if not qemu_available():
        pytest.skip("qemu-system-arm is not installed")
    nucleo = get_board("nucleo-f446re")
    platformio.write_platformio_project(
        nucleo,
        tmp_path / "project",
        {SELFTEST.name: SELFTEST.read_text()},
        defines=('SHOAL_BOARD_NAME="nucleo-f446re"', "SHOAL_SELFTEST_CLOCK_WAIT_MS=20u"),
    )
    elf = _build(tmp_path / "project")
    # QEMU's -serial order on the STM32F405: USART1 first (the HAL's console, unused here:
    # SHOAL_HAL_CONSOLE_UART=0), USART2 second (the link UART QemuBoard reads and writes).
    emulated = dataclasses.replace(
        nucleo,
        qemu=Qemu(
            machine="netduinoplus2", cpu="cortex-m4", uart="stm32", uart_base_address=0x40004400
        ),
    )
    with QemuBoard(emulated, elf, serial_link="null", name="nucleo-on-netduinoplus2") as board:
        board.expect("shoal-selftest board=nucleo-f446re echo_lines=2\n", timeout_s=20)
        board.write("Shoal on stm32\r\n")
        board.expect("echo: SHOAL ON STM32\n", timeout_s=10)
        board.write("second LINE\n")
        board.expect("echo: SECOND LINE\n", timeout_s=10)
        for check in ("memcpy", "data_bss", "float", "now_ms"):
            board.expect(f"check {check}: ok\n", timeout_s=10)
        board.expect("check cycles: FAILED counter did not advance\n", timeout_s=10)
        board.expect("4 passed, 1 failed\n", timeout_s=10)
        board.expect("shoal: exit 1\n", timeout_s=10)
        assert board.exit_code is None, "a real-board HAL parks the core; QEMU keeps running"
