"""PlatformIO projects for the real boards: `platformio.ini` and the files PlatformIO needs.

Responsible for: the text of a well-formed `platformio.ini` for a board whose TOML says
`build_system = "platformio"` (one `[env:<board>]`: platform and board from the TOML, the
framework only where the board has one, build_flags = the board's cflags exactly, then
-Wall -Wextra -Werror, the defines and include/library paths), and of the helper files such a
project carries:

- bare-metal Cortex-M boards (nucleo-f446re, nrf52840-dk, rpi-pico-w: no framework, Shoal's
  register-level HAL in `firmware_templates/c/hal/<family>` plus `hal/mcu_common`): a flat
  project folder (`src_dir = .`, `build_src_filter` naming every source), the board's linker
  script as `board_build.ldscript`, `shoal_pio_link.py` (an extra script that gives the linker
  the machine flags, newlib-nano and -nostartfiles: PlatformIO passes build_flags such as
  -mfloat-abi only to the compiler) and, for the RP2040, `shoal_boot2.py` + `shoal_boot2.S`
  (a pre-script that assembles the second-stage boot and patches its CRC32 at build time);
- the ESP32 (espidf framework, UDP over Wi-Fi): the ESP-IDF layout PlatformIO expects
  (`CMakeLists.txt` at the root and in `src/`, sources in `src/`), Wi-Fi credentials taken
  from the environment at build time (`${sysenv.SHOAL_WIFI_SSID}`), never written down.

`write_platformio_project` writes a complete project (HAL files, the caller's sources, the
ini, a README) into an empty folder. Must not: run PlatformIO or a compiler, or download
anything; compile checks live in tests/codegen/test_platformio_projects.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from codegen import __version__
from codegen.emit.environment import TEMPLATES_DIR
from codegen.errors import ShoalInputError
from codegen.ir.board import Board

# Board name -> folder under firmware_templates/c/hal of its register-level HAL.
BARE_METAL_HALS: dict[str, str] = {
    "nucleo-f446re": "stm32f4",
    "nrf52840-dk": "nrf52840",
    "rpi-pico-w": "rp2040",
}
# Board name -> folder of its ESP-IDF platform layer.
ESPIDF_HALS: dict[str, str] = {"esp32-devkitc": "esp32"}
MCU_COMMON = "mcu_common"
LDSCRIPT = "shoal_board.ld"
LINK_SCRIPT = "shoal_pio_link.py"
BOOT2_SCRIPT = "shoal_boot2.py"
BOOT2_SOURCE = "shoal_boot2.S"
BOOT2_IMAGE = "shoal_boot2_image.c"
# Linker flags of every bare-metal image (as host_sdk.build.qemu_firmware uses them).
LINK_FLAGS = ("--specs=nano.specs", "--specs=nosys.specs", "-nostartfiles", "-Wl,--gc-sections")
# Libraries every bare-metal image links (libm: the agent rounds with lroundf).
LINK_LIBS = ("m",)
STRICT_WARNINGS = ("-Wall", "-Wextra", "-Werror")
MONITOR_BAUD = 115200
# Environment variables the ESP32 project reads at build time for the Wi-Fi station.
WIFI_ENV = ("SHOAL_WIFI_SSID", "SHOAL_WIFI_PASSWORD")
_DEFINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(=.*)?$")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.(c|S)$")
# ESP-IDF's own headers are not warning-free under -Wextra -Werror in every release, and this
# repository cannot compile them to find out: the ESP32 env keeps warnings, without -Werror.
ESP_WARNINGS = ("-Wall", "-Wextra")


def supported_boards() -> tuple[str, ...]:
    """Boards this module writes projects for."""
    return tuple(sorted((*BARE_METAL_HALS, *ESPIDF_HALS)))


def _check_board(board: Board) -> None:
    if board.toolchain.build_system != "platformio":
        raise ShoalInputError(
            f"board '{board.name}': field 'toolchain.build_system' is "
            f"{board.toolchain.build_system!r}; PlatformIO projects are written only for boards "
            f'with build_system = "platformio" ({", ".join(supported_boards())})'
        )
    if board.name not in BARE_METAL_HALS and board.name not in ESPIDF_HALS:
        raise ShoalInputError(
            f"board '{board.name}': no Shoal platform layer for PlatformIO; supported: "
            f"{', '.join(supported_boards())}"
        )
    if board.name in BARE_METAL_HALS and board.toolchain.platformio_framework:
        raise ShoalInputError(
            f"board '{board.name}': field 'toolchain.platformio_framework' is "
            f"{board.toolchain.platformio_framework!r}, but Shoal builds this board bare metal "
            "(its own HAL); remove the field"
        )


def is_bare_metal(board: Board) -> bool:
    """True for the boards built with Shoal's register-level HAL (no PlatformIO framework)."""
    return board.name in BARE_METAL_HALS


def _flag_line(flag: str) -> str:
    """One build_flags entry; quoted when it holds quotes or spaces (PlatformIO's syntax)."""
    if "\n" in flag or "'" in flag or "%" in flag:
        raise ShoalInputError(
            f"build flag {flag!r}: newlines, single quotes and '%' cannot be written into "
            "platformio.ini; use plain text"
        )
    return f"'{flag}'" if any(c in flag for c in ' "') else flag


def _define_flags(defines: Sequence[str]) -> list[str]:
    flags = []
    for define in defines:
        if not _DEFINE.match(define):
            raise ShoalInputError(
                f"define {define!r}: expected NAME or NAME=VALUE with NAME a C identifier"
            )
        flags.append(f"-D{define}")
    return flags


def _check_sources(sources: Sequence[str]) -> None:
    if not sources:
        raise ShoalInputError("platformio_ini: no sources given; name at least one .c file")
    for name in sources:
        if not _SOURCE_NAME.match(name):
            raise ShoalInputError(
                f"source {name!r}: expected a plain file name ending in .c or .S "
                "(the project folder is flat)"
            )


def build_flags(board: Board, *, defines: Sequence[str] = (), esp_idf: bool = False) -> list[str]:
    """build_flags of the board's env: its cflags exactly, the warnings (-Werror too on bare
    metal), the defines and (bare metal) the project folder as include and linker-script path."""
    warnings = ESP_WARNINGS if esp_idf else STRICT_WARNINGS
    flags = [*board.toolchain.cflags, *warnings, *_define_flags(defines)]
    if not esp_idf:
        flags += ["-I$PROJECT_DIR", "-L$PROJECT_DIR"]
    return flags


def platformio_ini(
    board: Board,
    *,
    sources: Sequence[str],
    defines: Sequence[str] = (),
    stamp: str | None = None,
    monitor_speed: int = MONITOR_BAUD,
) -> str:
    """The text of `platformio.ini` for `board` building `sources` (file names in the project
    folder; in `src/` for the ESP32). `defines` are NAME or NAME=VALUE (a string value carries
    its C quotes, e.g. SHOAL_BOARD_NAME="x"). `stamp` becomes the first comment line.
    Raises ShoalInputError for a board without build_system = "platformio" or without a
    Shoal platform layer, a bad define or a source name that is not a plain .c/.S file."""
    _check_board(board)
    _check_sources(sources)
    if monitor_speed <= 0:
        raise ShoalInputError(f"monitor_speed {monitor_speed}: expected a positive baud rate")
    tool = board.toolchain
    esp_idf = board.name in ESPIDF_HALS
    lines = [f"; {stamp or _default_stamp(board)}"]
    if esp_idf:
        lines += [
            "; ESP-IDF project: sources in src/, CMakeLists.txt at the root and in src/.",
            "; Wi-Fi credentials come from the environment at build time:",
            ";   SHOAL_WIFI_SSID=... SHOAL_WIFI_PASSWORD=... pio run",
            "; Not compiled by Shoal's tests (no xtensa-esp32-elf toolchain or ESP-IDF there).",
        ]
        defines = [
            *defines,
            *(f'{name}="${{sysenv.{name}}}"' for name in WIFI_ENV),
        ]
    else:
        lines += [
            f"; Bare metal (no framework): Shoal's register-level HAL for {board.mcu}",
            f"; (firmware_templates/c/hal/{BARE_METAL_HALS[board.name]} + hal/{MCU_COMMON}),"
            " copied flat into this folder.",
            "",
            "[platformio]",
            "src_dir = .",
            "include_dir = .",
        ]
    lines += ["", f"[env:{board.name}]", f"platform = {tool.platformio_platform}"]
    lines.append(f"board = {tool.platformio_board}")
    if tool.platformio_framework:
        lines.append(f"framework = {tool.platformio_framework}")
    lines.append("build_flags =")
    lines += [f"    {_flag_line(f)}" for f in build_flags(board, defines=defines, esp_idf=esp_idf)]
    if not esp_idf:
        lines.append("build_src_filter =")
        lines.append("    -<*>")
        lines += [f"    +<{name}>" for name in sources]
        lines.append(f"board_build.ldscript = {LDSCRIPT}")
        scripts = [f"post:{LINK_SCRIPT}"]
        if board.name == "rpi-pico-w":
            scripts.insert(0, f"pre:{BOOT2_SCRIPT}")
        lines.append("extra_scripts =")
        lines += [f"    {s}" for s in scripts]
    lines.append(f"monitor_speed = {monitor_speed}")
    return "\n".join(lines) + "\n"


def _default_stamp(board: Board) -> str:
    return f"Generated by Shoal {__version__} for board {board.name}. Do not edit."


def link_script(board: Board, *, extra_link_flags: Sequence[str] = ()) -> str:
    """`shoal_pio_link.py`: a PlatformIO post-script giving the linker the board's machine
    flags (-mcpu, -mthumb, float ABI), newlib-nano with Shoal's syscalls, -nostartfiles and
    libm."""
    machine = [f for f in board.toolchain.cflags if f.startswith("-m")]
    flags = [*machine, *LINK_FLAGS, *extra_link_flags]
    return (
        f'"""{_default_stamp(board)}\n\n'
        "PlatformIO extra script (post): PlatformIO hands build_flags such as -mfloat-abi only\n"
        "to the compiler; the linker needs the same machine flags to pick the right newlib\n"
        'multilib, and Shoal\'s HAL brings its own startup code and syscalls."""\n\n'
        'Import("env")  # noqa: F821 - provided by PlatformIO (SCons)\n'
        f"env.Append(LINKFLAGS={flags!r})  # noqa: F821\n"
        f"env.Append(LIBS={list(LINK_LIBS)!r})  # noqa: F821\n"
    )


def _template_text(relative: str) -> str:
    return (TEMPLATES_DIR / "c" / relative).read_text()


def hal_files(board: Board) -> dict[str, str]:
    """The platform layer of `board` (file name -> text), flat: for bare-metal boards the
    shared Cortex-M files, the family's files, shoal_hal.h and (RP2040) the boot2 source and
    script; for the ESP32 its ESP-IDF layer and shoal_hal.h."""
    _check_board(board)
    names = ["hal/shoal_hal.h"]
    if board.name in BARE_METAL_HALS:
        family = BARE_METAL_HALS[board.name]
        for folder in (MCU_COMMON, family):
            base = TEMPLATES_DIR / "c" / "hal" / folder
            names += sorted(
                f"hal/{folder}/{p.name}"
                for p in base.iterdir()
                if p.is_file() and p.suffix in (".c", ".h", ".ld")
            )
        if family == "rp2040":
            names += [f"hal/rp2040/boot2/{BOOT2_SOURCE}", f"hal/rp2040/boot2/{BOOT2_SCRIPT}"]
    else:
        base = TEMPLATES_DIR / "c" / "hal" / ESPIDF_HALS[board.name]
        names += sorted(
            f"hal/{base.name}/{p.name}" for p in base.iterdir() if p.suffix in (".c", ".h")
        )
    files: dict[str, str] = {}
    for relative in names:
        name = Path(relative).name
        if name in files:
            raise ShoalInputError(f"board '{board.name}': HAL file name {name} appears twice")
        files[name] = _template_text(relative)
    return files


def espidf_cmake_files(project_name: str, sources: Sequence[str]) -> dict[str, str]:
    """The ESP-IDF CMake files PlatformIO's espidf builder expects: root and `src/`."""
    if not re.match(r"^[A-Za-z0-9_-]+$", project_name):
        raise ShoalInputError(
            f"project name {project_name!r}: expected letters, digits, '_' and '-'"
        )
    _check_sources(sources)
    root = (
        "# ESP-IDF project file (PlatformIO espidf builder); written by Shoal.\n"
        "cmake_minimum_required(VERSION 3.16.0)\n"
        "include($ENV{IDF_PATH}/tools/cmake/project.cmake)\n"
        f"project({project_name})\n"
    )
    component = (
        "# The main component: the firmware sources in src/; written by Shoal.\n"
        "idf_component_register(\n"
        "    SRCS " + " ".join(sources) + "\n"
        '    INCLUDE_DIRS "."\n'
        "    REQUIRES driver esp_event esp_netif esp_timer esp_wifi nvs_flash lwip\n"
        ")\n"
    )
    return {"CMakeLists.txt": root, "src/CMakeLists.txt": component}


def project_files(
    board: Board,
    app_files: Mapping[str, str],
    *,
    defines: Sequence[str] = (),
    stamp: str | None = None,
    extra_link_flags: Sequence[str] = (),
) -> dict[str, str]:
    """Every file of a PlatformIO project for `board` (relative path -> text): the HAL, the
    caller's `app_files` (flat names), platformio.ini and its scripts, and a README."""
    platform = hal_files(board)
    clash = sorted(set(platform) & set(app_files))
    if clash:
        raise ShoalInputError(
            f"project files {', '.join(clash)}: the names are taken by the board's platform layer"
        )
    merged = {**platform, **app_files}
    sources = sorted(n for n in merged if n.endswith(".c"))
    files: dict[str, str] = {}
    if board.name in ESPIDF_HALS:
        for name, text in merged.items():
            files[f"src/{name}"] = text
        files.update(espidf_cmake_files(re.sub(r"[^A-Za-z0-9_-]", "_", board.name), sources))
    else:
        files.update(merged)
        files[LINK_SCRIPT] = link_script(board, extra_link_flags=extra_link_flags)
    files["platformio.ini"] = platformio_ini(board, sources=sources, defines=defines, stamp=stamp)
    files["README.md"] = _readme(board)
    return files


def _readme(board: Board) -> str:
    head = f"# Shoal firmware for {board.name} ({board.mcu})\n\n"
    if board.name in ESPIDF_HALS:
        return head + (
            "ESP-IDF project for PlatformIO (`framework = espidf`). Build and flash:\n\n"
            "    SHOAL_WIFI_SSID=mynet SHOAL_WIFI_PASSWORD=secret pio run -t upload\n\n"
            "The MQTT-SN link is UDP over Wi-Fi (lwIP sockets, `shoal_hal_esp32.h`).\n"
            "Shoal's own tests cannot compile this project (no xtensa-esp32-elf toolchain or\n"
            "ESP-IDF on the machines that run them): it is checked for form only.\n"
        )
    text = head + (
        "Bare-metal project (no PlatformIO framework): Shoal's register-level HAL, startup code\n"
        f"and linker script ({LDSCRIPT}) are in this folder. Build with `pio run`, or without\n"
        "PlatformIO:\n\n"
        f"    arm-none-eabi-gcc {' '.join(build_flags(board)).replace('$PROJECT_DIR', '.')} \\\n"
        f"        *.c {' '.join(LINK_FLAGS)} -T {LDSCRIPT} -o firmware.elf -lm\n\n"
        "The link UART (MQTT-SN frames to `shoal gateway`'s serial link) and the console UART\n"
        "are listed in the HAL source's header comment.\n"
    )
    if board.name == "rpi-pico-w":
        text += (
            f"\n`{BOOT2_IMAGE}` is the RP2040 second-stage boot with its CRC32; `pio run`\n"
            f"rebuilds it from `{BOOT2_SOURCE}` through `{BOOT2_SCRIPT}` (extra script). Turn\n"
            "the ELF into a UF2 or flash it with a debug probe (SWD).\n"
        )
    return text


def agent_platformio_files(
    board: Board,
    *,
    sources: Sequence[str],
    defines: Sequence[str],
    stamp: str,
    extra_link_flags: Sequence[str] = (),
) -> dict[str, str]:
    """The PlatformIO files of a generated C agent (codegen.emit.c_agent) for a bare-metal
    board, whose HAL and sources the agent generator already copies flat: platformio.ini,
    shoal_pio_link.py and, for the RP2040, the boot2 source and script (each with `stamp`)."""
    _check_board(board)
    if board.name not in BARE_METAL_HALS:
        raise ShoalInputError(
            f"board '{board.name}': the C agent's PlatformIO project is written for the "
            f"bare-metal boards only ({', '.join(sorted(BARE_METAL_HALS))})"
        )
    files = {
        "platformio.ini": platformio_ini(board, sources=sources, defines=defines, stamp=stamp),
        LINK_SCRIPT: f"# {stamp}\n" + link_script(board, extra_link_flags=extra_link_flags),
    }
    if board.name == "rpi-pico-w":
        boot2 = "hal/rp2040/boot2/"
        files[BOOT2_SOURCE] = f"/* {stamp} */\n" + _template_text(boot2 + BOOT2_SOURCE)
        files[BOOT2_SCRIPT] = f"# {stamp}\n" + _template_text(boot2 + BOOT2_SCRIPT)
    return files


def write_platformio_project(
    board: Board,
    out_dir: Path,
    app_files: Mapping[str, str],
    *,
    defines: Sequence[str] = (),
    stamp: str | None = None,
    extra_link_flags: Sequence[str] = (),
) -> list[Path]:
    """Write `project_files(...)` into `out_dir` (created; must be new or empty). Everything is
    computed before the first write, so a refusal writes nothing. Returns the paths written."""
    files = project_files(
        board, app_files, defines=defines, stamp=stamp, extra_link_flags=extra_link_flags
    )
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ShoalInputError(f"{out_dir}: exists and is not an empty folder; choose a new one")
    written = []
    for relative, text in sorted(files.items()):
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
