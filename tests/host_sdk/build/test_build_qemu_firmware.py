"""build_qemu_firmware and size_of with the real arm-none-eabi-gcc."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from codegen.resources import templates_dir
from host_sdk.build import BuildError, build_qemu_firmware, have_tool, size_of

pytestmark = [
    pytest.mark.gen,
    pytest.mark.skipif(
        not have_tool("arm-none-eabi-gcc"),
        reason="arm-none-eabi-gcc is not installed (apt-get install gcc-arm-none-eabi)",
    ),
]

QEMU_BOARDS = ["qemu-lm3s6965evb", "qemu-mps2-an386"]
SELFTEST = templates_dir() / "c" / "selftest" / "hal_selftest.c"

_BSS_PROGRAM = """
#include <stdint.h>
#include "shoal_hal.h"
static volatile uint8_t scratch[BSS_BYTES];
int main(void)
{
    shoal_hal_init();
    scratch[0] = 1u;
    return scratch[0] == 1u ? 0 : 1;
}
"""


@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_selftest_builds_warning_free_with_extra_warnings(board_name: str, tmp_path: Path) -> None:
    # -Werror is always on; these extra warnings keep the HAL honest beyond -Wall -Wextra.
    elf = build_qemu_firmware(
        get_board(board_name),
        [SELFTEST],
        tmp_path,
        name="selftest",
        extra_cflags=["-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wundef"],
    )
    assert elf == tmp_path / "selftest.elf"
    assert elf.read_bytes()[:4] == b"\x7fELF"
    assert (tmp_path / "selftest.map").is_file()
    sizes = size_of(elf)
    assert set(sizes) == {"text", "data", "bss"}
    assert 1000 < sizes["text"] < 64 * 1024
    assert sizes["data"] >= 4  # the selftest's initialised word lives in .data


def test_size_of_tracks_bss_exactly(tmp_path: Path) -> None:
    source = tmp_path / "bss.c"
    source.write_text(_BSS_PROGRAM)
    board = get_board("qemu-lm3s6965evb")
    small = size_of(build_qemu_firmware(board, [source], tmp_path / "a", defines={"BSS_BYTES": 64}))
    large = size_of(
        build_qemu_firmware(board, [source], tmp_path / "b", defines={"BSS_BYTES": 1088})
    )
    assert large["bss"] - small["bss"] == 1024
    assert large["text"] == small["text"]


def test_bss_larger_than_ram_fails_at_link_time(tmp_path: Path) -> None:
    source = tmp_path / "bss.c"
    source.write_text(_BSS_PROGRAM)
    with pytest.raises(BuildError, match=r"overlap the stack|overflowed|will not fit"):
        build_qemu_firmware(
            get_board("qemu-lm3s6965evb"), [source], tmp_path, defines={"BSS_BYTES": 63 * 1024}
        )


def test_compile_error_names_file_and_carries_stderr(tmp_path: Path) -> None:
    source = tmp_path / "broken.c"
    source.write_text("int main(void) { return undefined_thing; }\n")
    with pytest.raises(BuildError) as caught:
        build_qemu_firmware(get_board("qemu-mps2-an386"), [source], tmp_path)
    message = str(caught.value)
    assert "qemu-mps2-an386" in message
    assert "broken.c" in message and "undefined_thing" in message
    assert "undefined_thing" in caught.value.stderr
    assert caught.value.command[0].endswith("arm-none-eabi-gcc")


def test_warnings_are_errors(tmp_path: Path) -> None:
    source = tmp_path / "warns.c"
    source.write_text("int main(void) { int unused_local; return 0; }\n")
    with pytest.raises(BuildError, match="unused_local"):
        build_qemu_firmware(get_board("qemu-lm3s6965evb"), [source], tmp_path)
    elf = build_qemu_firmware(
        get_board("qemu-lm3s6965evb"), [source], tmp_path, warnings_as_errors=False
    )
    assert elf.is_file()


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    board = get_board("qemu-lm3s6965evb")
    with pytest.raises(ShoalInputError, match=r"missing\.c: C source file not found"):
        build_qemu_firmware(board, [tmp_path / "missing.c"], tmp_path)
    with pytest.raises(ShoalInputError, match="no C sources"):
        build_qemu_firmware(board, [], tmp_path)
    with pytest.raises(ShoalInputError, match=r"define '1BAD'"):
        build_qemu_firmware(board, [SELFTEST], tmp_path, defines={"1BAD": 1})
    with pytest.raises(ShoalInputError, match=r"board 'native'.*no \[qemu\] table"):
        build_qemu_firmware(get_board("native"), [SELFTEST], tmp_path)
    with pytest.raises(ShoalInputError, match="ELF file not found"):
        size_of(tmp_path / "nothing.elf")
