"""Just enough of ELF32 (little-endian Arm) to load a firmware image and find its symbols.

Responsible for reading loadable segments (PT_LOAD) and function/object symbols from
`.symtab`. Must not interpret Arm code or relocations; images are fully linked executables.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import ShoalInputError

_PT_LOAD = 1
_SHT_SYMTAB = 2
_EM_ARM = 40


@dataclass(frozen=True)
class Segment:
    """A loadable segment: `data` (file bytes) at `address`, zero-filled up to `memory_bytes`."""

    address: int
    data: bytes
    memory_bytes: int


@dataclass(frozen=True)
class ElfImage:
    """The loadable parts of an executable and its symbol addresses (Thumb bit cleared)."""

    entry: int
    segments: tuple[Segment, ...]
    symbols: dict[str, int]
    symbol_sizes: dict[str, int]


def read_elf32(path: Path) -> ElfImage:
    """Parse the ELF32 little-endian Arm executable at `path`."""
    blob = Path(path).read_bytes() if Path(path).is_file() else None
    if blob is None:
        raise ShoalInputError(f"{path}: ELF file not found")
    if blob[:4] != b"\x7fELF" or len(blob) < 52:
        raise ShoalInputError(f"{path}: not an ELF file (bad magic)")
    if blob[4] != 1 or blob[5] != 1:
        raise ShoalInputError(f"{path}: expected a 32-bit little-endian ELF (Arm Cortex-M)")
    (machine,) = struct.unpack_from("<H", blob, 18)
    if machine != _EM_ARM:
        raise ShoalInputError(f"{path}: ELF machine {machine} is not Arm ({_EM_ARM})")
    entry, phoff, shoff = struct.unpack_from("<III", blob, 24)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", blob, 42)

    segments = []
    for index in range(phnum):
        p_type, p_offset, p_vaddr, _paddr, p_filesz, p_memsz = struct.unpack_from(
            "<IIIIII", blob, phoff + index * phentsize
        )
        if p_type == _PT_LOAD and p_memsz > 0:
            segments.append(Segment(p_vaddr, blob[p_offset : p_offset + p_filesz], p_memsz))

    sections = [
        struct.unpack_from("<IIIIIIIIII", blob, shoff + index * shentsize) for index in range(shnum)
    ]
    symbols: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if sh_type != _SHT_SYMTAB or entsize == 0:
            continue
        strtab_offset = sections[link][4]
        for at in range(offset, offset + size, entsize):
            st_name, st_value, st_size, st_info = struct.unpack_from("<IIIB", blob, at)
            if st_name == 0 or (st_info & 0xF) not in (1, 2):  # STT_OBJECT, STT_FUNC
                continue
            end = blob.index(b"\0", strtab_offset + st_name)
            name = blob[strtab_offset + st_name : end].decode(errors="replace")
            symbols[name] = st_value & ~1
            sizes[name] = st_size
    return ElfImage(entry=entry, segments=tuple(segments), symbols=symbols, symbol_sizes=sizes)
