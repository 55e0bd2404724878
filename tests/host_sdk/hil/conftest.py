"""Fixtures for the QEMU virtual-board tests: selftest firmware built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.loaders.board_loader import get_board
from host_sdk.build import build_qemu_firmware
from tests.host_sdk.hil.qemu_support import ECHO_LINES, SELFTEST, SelftestBuilder


@pytest.fixture(scope="session")
def selftest_elf(tmp_path_factory: pytest.TempPathFactory) -> SelftestBuilder:
    """build(board_name, forced_failures) -> ELF of the HAL selftest (cached per session)."""
    cache: dict[tuple[str, int], Path] = {}
    root = tmp_path_factory.mktemp("selftest")

    def build(board_name: str, forced_failures: int = 0) -> Path:
        key = (board_name, forced_failures)
        if key not in cache:
            cache[key] = build_qemu_firmware(
                get_board(board_name),
                [SELFTEST],
                root / f"{board_name}-{forced_failures}",
                defines={
                    "SHOAL_SELFTEST_ECHO_LINES": ECHO_LINES,
                    "SHOAL_SELFTEST_FORCED_FAILURES": forced_failures,
                },
                name="hal_selftest",
            )
        return cache[key]

    return build
