"""Build the RP2040 second-stage boot image (256 bytes at flash 0x10000000) for Shoal firmware.

Responsible for: assembling `shoal_boot2.S` with arm-none-eabi-gcc, extracting its code with
arm-none-eabi-objcopy, checking it fits 252 bytes, padding it and appending the CRC32 the boot
ROM checks (RP2040 datasheet 2.8.1.3: polynomial 0x04C11DB7, initial value 0xFFFFFFFF, bits not
reflected, no final XOR; stored little-endian in bytes 252..255), and writing
`shoal_boot2_image.c`, which puts the 256 bytes in section `.boot2` for the linker script (an
existing file that already holds the same 256 bytes is left as it is).

Three ways in: `python shoal_boot2.py OUT.c [--cc GCC] [--objcopy OBJCOPY]` (Makefiles, tests);
`build_boot2_source(...)` from Python; and as a PlatformIO `extra_scripts = pre:shoal_boot2.py`,
where it assembles `shoal_boot2.S` from the project folder and writes `shoal_boot2_image.c` into
the project's source folder before PlatformIO scans the sources, using the
toolchain of the platform's `toolchain-gccarmnoneeabi` package (or PATH).
Must not: depend on anything outside the Python standard library (PlatformIO runs it in its own
interpreter); it writes only the output file, through a temporary name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BOOT2_BYTES = 256
BOOT2_CODE_BYTES = 252
CRC_POLY = 0x04C11DB7
# PlatformIO executes extra scripts without __file__; there the project folder is used.
HERE = Path(globals().get("__file__", ".")).resolve().parent
SOURCE_NAME = "shoal_boot2.S"


class Boot2Error(RuntimeError):
    """The boot stage could not be built (tool missing or failing, code too large)."""


def crc32_rp2040(data: bytes) -> int:
    """CRC-32/MPEG-2 of `data`: what the RP2040 boot ROM computes over boot2's first 252 bytes."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def boot2_image(code: bytes) -> bytes:
    """Pad `code` to 252 bytes with zeros and append its CRC32 (little-endian): 256 bytes."""
    if len(code) > BOOT2_CODE_BYTES:
        raise Boot2Error(
            f"boot2 code is {len(code)} bytes; the RP2040 boot ROM runs at most "
            f"{BOOT2_CODE_BYTES} (plus a 4-byte CRC)"
        )
    padded = code + bytes(BOOT2_CODE_BYTES - len(code))
    return padded + crc32_rp2040(padded).to_bytes(4, "little")


def image_source(image: bytes) -> str:
    """C source placing `image` (256 bytes) in section .boot2."""
    if len(image) != BOOT2_BYTES:
        raise Boot2Error(f"boot2 image must be {BOOT2_BYTES} bytes, got {len(image)}")
    rows = []
    for start in range(0, BOOT2_BYTES, 12):
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in image[start : start + 12]) + ",")
    crc = int.from_bytes(image[BOOT2_CODE_BYTES:], "little")
    return (
        "/* shoal_boot2_image.c - RP2040 second-stage boot (made by shoal_boot2.py from\n"
        f" * shoal_boot2.S; CRC32 0x{crc:08x} over the first 252 bytes). Do not edit. */\n"
        "#include <stdint.h>\n\n"
        'const uint8_t shoal_boot2_image[256] __attribute__((section(".boot2"), used)) = {\n'
        + "\n".join(rows)
        + "\n};\n"
    )


def image_of_source(text: str) -> bytes | None:
    """The 256 bytes a shoal_boot2_image.c holds, or None when it holds something else."""
    start = text.find("{")
    if start < 0:
        return None
    values = re.findall(r"0x([0-9a-fA-F]{2})\b", text[start:])
    return bytes(int(v, 16) for v in values) if len(values) == BOOT2_BYTES else None


def assemble(source: Path, cc: str, objcopy: str) -> bytes:
    """The machine code of `source` (its .text.shoal_boot2 section) as bytes."""
    with tempfile.TemporaryDirectory(prefix="shoal-boot2-") as work:
        obj = Path(work) / "boot2.o"
        binary = Path(work) / "boot2.bin"
        steps = (
            [cc, "-mcpu=cortex-m0plus", "-mthumb", "-c", str(source), "-o", str(obj)],
            [objcopy, "-O", "binary", "-j", ".text.shoal_boot2", str(obj), str(binary)],
        )
        for command in steps:
            try:
                result = subprocess.run(
                    command, capture_output=True, text=True, timeout=60, check=False
                )
            except OSError as exc:
                raise Boot2Error(f"cannot run {command[0]}: {exc}") from exc
            if result.returncode != 0:
                raise Boot2Error(f"{' '.join(command)} failed:\n{result.stderr.strip()}")
        return binary.read_bytes()


def build_boot2_source(
    out: Path,
    *,
    source: Path | None = None,
    cc: str = "arm-none-eabi-gcc",
    objcopy: str = "arm-none-eabi-objcopy",
) -> bytes:
    """Assemble `source` (default: shoal_boot2.S beside this script), write the C image to
    `out`; returns the 256-byte image."""
    image = boot2_image(assemble(source or HERE / SOURCE_NAME, cc, objcopy))
    out = Path(out)
    if out.is_file() and image_of_source(out.read_text()) == image:
        return image  # already right: keep the file (and any stamp or hash recorded for it)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(image_source(image))
    os.replace(temporary, out)
    return image


def _platformio() -> None:
    """Run as a PlatformIO pre-script: write src/shoal_boot2_image.c of the project."""
    env = globals()["env"]
    project_dir = Path(env.subst("$PROJECT_DIR"))
    source_dir = Path(env.subst("$PROJECT_SRC_DIR"))
    bin_dir = ""
    try:
        bin_dir = os.path.join(
            env.PioPlatform().get_package_dir("toolchain-gccarmnoneeabi") or "", "bin"
        )
    except Exception:  # a platform without that package: fall back to PATH
        bin_dir = ""
    cc = shutil.which("arm-none-eabi-gcc", path=bin_dir or None) or "arm-none-eabi-gcc"
    objcopy = shutil.which("arm-none-eabi-objcopy", path=bin_dir or None) or "arm-none-eabi-objcopy"
    build_boot2_source(
        source_dir / "shoal_boot2_image.c", source=project_dir / SOURCE_NAME, cc=cc, objcopy=objcopy
    )


def main(argv: list[str]) -> int:
    """Command line: shoal_boot2.py OUT.c [--cc GCC] [--objcopy OBJCOPY]."""
    args = list(argv)
    tools = {"--cc": "arm-none-eabi-gcc", "--objcopy": "arm-none-eabi-objcopy"}
    for flag in tools:
        if flag in args:
            at = args.index(flag)
            if at + 1 >= len(args):
                print(f"shoal_boot2.py: {flag} needs a program name", file=sys.stderr)
                return 2
            tools[flag] = args[at + 1]
            del args[at : at + 2]
    if len(args) != 1:
        print("usage: shoal_boot2.py OUT.c [--cc GCC] [--objcopy OBJCOPY]", file=sys.stderr)
        return 2
    try:
        build_boot2_source(Path(args[0]), cc=tools["--cc"], objcopy=tools["--objcopy"])
    except Boot2Error as exc:
        print(f"shoal_boot2.py: {exc}", file=sys.stderr)
        return 1
    return 0


if "Import" in globals():  # executed by PlatformIO's SCons as an extra script
    globals()["Import"]("env")
    _platformio()
elif __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
