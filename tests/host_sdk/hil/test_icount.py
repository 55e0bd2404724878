"""Instruction counting with Unicorn on real arm-none-eabi-gcc output."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
from pathlib import Path

import pytest

from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from host_sdk.build import build_qemu_firmware, find_tool, have_tool
from host_sdk.hil.elf32 import read_elf32
from host_sdk.hil.icount import InstructionCountError, count_instructions

pytestmark = [
    pytest.mark.gen,
    pytest.mark.skipif(
        not have_tool("arm-none-eabi-gcc"),
        reason="arm-none-eabi-gcc is not installed (apt-get install gcc-arm-none-eabi)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("unicorn") is None,
        reason="the unicorn package is not installed (pip install 'shoal[bench]')",
    ),
]

TABLE = [
    3,
    1,
    4,
    1,
    5,
    9,
    2,
    6,
    5,
    3,
    5,
    8,
    9,
    7,
    9,
    3,
    2,
    3,
    8,
    4,
    6,
    2,
    6,
    4,
    3,
    3,
    8,
    3,
    2,
    7,
    9,
    5,
]
MEASURED = ["shoal_sum_first", "shoal_spin", "shoal_scale", "shoal_touch_uart", "shoal_clamp_sum"]
SOURCE = (
    "#include <stdint.h>\n"
    '#include "shoal_hal.h"\n'
    f"static const int32_t shoal_table[{len(TABLE)}] = {{{', '.join(map(str, TABLE))}}};\n"
    "int32_t shoal_bias = 7; /* .data: must be loaded at its RAM address */\n"
    "int32_t shoal_sum_first(uint32_t n);\n"
    "uint32_t shoal_spin(uint32_t n);\n"
    "float shoal_scale(uint32_t n);\n"
    "uint32_t shoal_touch_uart(void);\n"
    "int32_t shoal_clamp_sum(uint32_t n, int32_t limit);\n"
    "int32_t shoal_clamp_sum(uint32_t n, int32_t limit)\n"
    "{\n"
    "    int32_t total = 0;\n"
    "    uint32_t i;\n"
    f"    for (i = 0; i < n && i < {len(TABLE)}u; ++i) {{\n"
    "        int32_t v = shoal_table[i];\n"
    "        total += v > limit ? limit : v; /* conditional execution (IT blocks) */\n"
    "    }\n"
    "    return total;\n"
    "}\n"
    "int32_t shoal_sum_first(uint32_t n)\n"
    "{\n"
    "    int32_t total = shoal_bias;\n"
    "    uint32_t i;\n"
    f"    for (i = 0; i < n && i < {len(TABLE)}u; ++i) {{\n"
    "        total += shoal_table[i];\n"
    "    }\n"
    "    return total;\n"
    "}\n"
    "uint32_t shoal_spin(uint32_t n)\n"
    "{\n"
    "    uint32_t s = 0;\n"
    "    while (n--) {\n"
    "        s = s * 33u + n;\n"
    "    }\n"
    "    return s;\n"
    "}\n"
    "float shoal_scale(uint32_t n)\n"
    "{\n"
    "    volatile float f = 1.5f;\n"
    "    return f * (float)n;\n"
    "}\n"
    "uint32_t shoal_touch_uart(void)\n"
    "{\n"
    "    return *(volatile uint32_t *)0x40004000u;\n"
    "}\n"
    "int main(void)\n"
    "{\n"
    "    return 0;\n"
    "}\n"
)


@pytest.fixture(scope="module")
def elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("icount")
    source = root / "measured.c"
    source.write_text(SOURCE)
    return {
        core: build_qemu_firmware(
            get_board(board), [source], root / board, opt="-O2", keep_symbols=MEASURED
        )
        for core, board in [("cortex-m3", "qemu-lm3s6965evb"), ("cortex-m4", "qemu-mps2-an386")]
    }


@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_count_grows_linearly_with_loop_iterations(core: str, elfs: dict[str, Path]) -> None:
    counts = {}
    for n in [0, 1, 2, 5, 17, len(TABLE)]:
        result = count_instructions(elfs[core], "shoal_sum_first", args=[n], core=core)
        assert result.return_value == 7 + sum(TABLE[:n])
        counts[n] = result.instructions
    per_iteration = counts[2] - counts[1]
    assert per_iteration > 0
    # -O2 may peel the first iteration, so the line is fitted from n >= 1.
    for n in [5, 17, len(TABLE)]:
        assert counts[n] == counts[1] + (n - 1) * per_iteration
    assert counts[0] < counts[1]


def test_count_is_repeatable_and_results_are_right(elfs: dict[str, Path]) -> None:
    n = 20_000
    expected = 0
    for k in range(n - 1, -1, -1):
        expected = (expected * 33 + k) & 0xFFFFFFFF
    first = count_instructions(elfs["cortex-m4"], "shoal_spin", args=[n])
    second = count_instructions(elfs["cortex-m4"], "shoal_spin", args=[n])
    assert first == second
    assert first.return_value == expected
    assert first.instructions > 3 * n


@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_conditional_code_gives_right_results_and_same_count_either_way(
    core: str, elfs: dict[str, Path]
) -> None:
    # clamp_sum's loop body is an IT block with one instruction per arm: whichever arm runs,
    # each iteration executes the same number of instructions.
    counts = {}
    for limit in (0, 100):
        result = count_instructions(
            elfs[core], "shoal_clamp_sum", args=[len(TABLE), limit], core=core
        )
        assert result.return_value == sum(min(v, limit) for v in TABLE)
        counts[limit] = result.instructions
    assert counts[0] == counts[100]


def test_hard_float_result_is_in_s0(elfs: dict[str, Path]) -> None:
    result = count_instructions(elfs["cortex-m4"], "shoal_scale", args=[4])
    assert struct.unpack("<f", struct.pack("<I", result.return_s0_bits))[0] == 6.0


def test_soft_float_result_is_in_r0(elfs: dict[str, Path]) -> None:
    result = count_instructions(elfs["cortex-m3"], "shoal_scale", args=[4], core="cortex-m3")
    assert struct.unpack("<f", struct.pack("<I", result.return_value))[0] == 6.0


def test_mmio_access_and_budget_are_clear_errors(elfs: dict[str, Path]) -> None:
    with pytest.raises(InstructionCountError, match="shoal_touch_uart faulted"):
        count_instructions(elfs["cortex-m4"], "shoal_touch_uart")
    with pytest.raises(InstructionCountError, match="did not return within 100 instructions"):
        count_instructions(elfs["cortex-m4"], "shoal_spin", args=[1000], max_instructions=100)
    with pytest.raises(ShoalInputError, match="symbol 'no_such_function' not found"):
        count_instructions(elfs["cortex-m4"], "no_such_function")
    with pytest.raises(ShoalInputError, match="core 'cortex-a53'"):
        count_instructions(elfs["cortex-m4"], "shoal_spin", core="cortex-a53")


def test_elf_symbols_agree_with_nm(elfs: dict[str, Path]) -> None:
    image = read_elf32(elfs["cortex-m4"])
    listing = subprocess.run(
        [find_tool("arm-none-eabi-gcc").replace("gcc", "nm"), str(elfs["cortex-m4"])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    nm = {
        name: int(address, 16)
        for address, kind, name in (
            line.split() for line in listing.splitlines() if len(line.split()) == 3
        )
        if kind in "TtDdRrBb"
    }
    for name in [*MEASURED, "shoal_bias", "main"]:
        assert image.symbols[name] == nm[name] & ~1, name
