"""Build helpers for the C firmware tests: compile sources from firmware_templates/c with gcc."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
C_ROOT = PROJECT_ROOT / "firmware_templates" / "c"
MQTTSN_DIR = C_ROOT / "mqttsn"
HAL_DIR = C_ROOT / "hal"
APPS_DIR = C_ROOT / "apps"
TEST_C_DIR = Path(__file__).resolve().parent / "c"

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]

CODEC_SOURCES = [MQTTSN_DIR / "shoal_mqttsn_codec.c", MQTTSN_DIR / "shoal_frame.c"]
CLIENT_SOURCES = [*CODEC_SOURCES, MQTTSN_DIR / "shoal_mqttsn_client.c"]

BuildFn = Callable[[str, Sequence[Path], Sequence[str]], Path]


def compile_program(
    out: Path, sources: Sequence[Path], extra_flags: Sequence[str] = (), compiler: str = "gcc"
) -> Path:
    """Compile and link `sources` into `out`; fails the test with the compiler output."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed, so the C sources cannot be built")
    cmd = [
        compiler,
        *WARNINGS,
        *extra_flags,
        f"-I{MQTTSN_DIR}",
        f"-I{HAL_DIR}",
        f"-I{HAL_DIR / 'posix'}",
        *[str(s) for s in sources],
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(f"compile failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return out


@pytest.fixture(scope="session")
def c_build(tmp_path_factory: pytest.TempPathFactory) -> BuildFn:
    """Return build(name, sources, flags) -> executable path, cached per session."""
    build_dir = tmp_path_factory.mktemp("c_build")
    cache: dict[tuple[str, tuple[str, ...]], Path] = {}

    def build(name: str, sources: Sequence[Path], flags: Sequence[str] = ()) -> Path:
        key = (name, tuple(flags))
        if key not in cache:
            cache[key] = compile_program(build_dir / name, sources, flags)
        return cache[key]

    return build


@pytest.fixture(scope="session")
def codec_cli(c_build: BuildFn) -> Path:
    """The stdin/stdout codec front end (tests/firmware/c/mqttsn_codec_cli.c), with sanitizers."""
    return c_build(
        "mqttsn_codec_cli", [TEST_C_DIR / "mqttsn_codec_cli.c", *CODEC_SOURCES], SANITIZERS
    )


@pytest.fixture(scope="session")
def native_client(c_build: BuildFn) -> Path:
    """apps/mqttsn_native_client.c built for this host, with sanitizers."""
    return c_build(
        "mqttsn_native_client",
        [
            APPS_DIR / "mqttsn_native_client.c",
            *CLIENT_SOURCES,
            HAL_DIR / "posix" / "shoal_hal_posix.c",
        ],
        SANITIZERS,
    )
