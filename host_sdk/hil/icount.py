"""Count the instructions a firmware function executes, with the Unicorn CPU emulator.

Responsible for loading a linked Cortex-M ELF into Unicorn (Thumb, M-profile), calling one
function with up to four integer arguments, and counting every instruction it executes until
it returns: repeatable to the instruction, unlike wall-clock or SysTick timing. Used to
measure instructions per inference of generated model code. Must not model cycles, caches or
peripherals: code that touches MMIO (UART, SysTick) faults here, so measure pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codegen.errors import ShoalInputError
from host_sdk.hil.elf32 import read_elf32

PAGE = 0x1000
RETURN_ADDRESS = 0x0FFF_0000  # mapped, holds nothing: reaching it means the function returned
STACK_TOP = 0x3000_0000  # a private stack, away from the board's SRAM at 0x20000000
DEFAULT_STACK_BYTES = 256 * 1024
_CPACR = 0xE000ED88
_CORES = ("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33")


class InstructionCountError(RuntimeError):
    """The function faulted, did not return within the budget, or Unicorn is missing."""


@dataclass(frozen=True)
class InstructionCount:
    """Instructions executed by one call (including its final return) and its results:
    `return_value` is r0 (integer and pointer results), `return_s0_bits` the raw bits of s0
    (a float result under the hard-float ABI; 0 on cores without an FPU)."""

    instructions: int
    return_value: int
    return_s0_bits: int = 0


def _page_range(start: int, size: int) -> tuple[int, int]:
    begin = start & ~(PAGE - 1)
    end = (start + size + PAGE - 1) & ~(PAGE - 1)
    return begin, end - begin


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for begin, size in sorted(ranges):
        if merged and begin <= merged[-1][0] + merged[-1][1]:
            last_begin, last_size = merged[-1]
            merged[-1] = (last_begin, max(last_size, begin + size - last_begin))
        else:
            merged.append((begin, size))
    return merged


def count_instructions(
    elf: Path,
    entry_symbol: str,
    *,
    args: Sequence[int] = (),
    core: str = "cortex-m4",
    max_instructions: int = 100_000_000,
    stack_bytes: int = DEFAULT_STACK_BYTES,
) -> InstructionCount:
    """Call `entry_symbol(args...)` in `elf` on an emulated `core`; count its instructions.

    `args` are up to four 32-bit integers (r0..r3, AAPCS); pointers must point into the ELF's
    own memory. Memory is the ELF's loadable segments (`.data` already at its RAM address,
    `.bss` zeroed) plus a private `stack_bytes` stack. The FPU is enabled, so hard-float code
    runs. Raises InstructionCountError when the function faults or exceeds `max_instructions`.

    Counted: every instruction Unicorn executes, one hook call each (~1.5 million per second
    here). Instructions skipped inside an IT block (condition failed) are not counted: Unicorn
    does not report them, although a real core spends a cycle issuing each.
    """
    try:
        import unicorn
        from unicorn import arm_const
    except ImportError as exc:  # pragma: no cover - the bench extra installs it
        raise InstructionCountError(
            "the 'unicorn' package is needed to count instructions (pip install unicorn)"
        ) from exc
    if core not in _CORES:
        raise ShoalInputError(f"core {core!r}: not supported; accepted: {', '.join(_CORES)}")
    if len(args) > 4:
        raise ShoalInputError(f"{entry_symbol}: at most 4 integer arguments, got {len(args)}")
    image = read_elf32(elf)
    if entry_symbol not in image.symbols:
        raise ShoalInputError(f"{elf}: symbol {entry_symbol!r} not found in its symbol table")

    uc: Any = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
    model = getattr(arm_const, "UC_CPU_ARM_" + core.upper().replace("-", "_"))
    uc.ctl_set_cpu_model(model)

    regions = [_page_range(s.address, s.memory_bytes) for s in image.segments]
    regions.append(_page_range(RETURN_ADDRESS, 4))
    regions.append((STACK_TOP - stack_bytes, stack_bytes))
    for begin, size in _merge(regions):
        uc.mem_map(begin, size, unicorn.UC_PROT_ALL)
    for segment in image.segments:
        uc.mem_write(segment.address, segment.data)
        if segment.memory_bytes > len(segment.data):
            zeros = bytes(segment.memory_bytes - len(segment.data))
            uc.mem_write(segment.address + len(segment.data), zeros)

    # Give the FPU full access, as the reset handler does, so hard-float code does not fault.
    uc.mem_map(_CPACR & ~(PAGE - 1), PAGE, unicorn.UC_PROT_ALL)
    uc.mem_write(_CPACR, (0xF << 20).to_bytes(4, "little"))
    uc.reg_write(arm_const.UC_ARM_REG_FPEXC, 1 << 30)

    counter = [0]

    def on_instruction(_uc: Any, _address: int, _size: int, _data: Any) -> None:
        counter[0] += 1
        if counter[0] > max_instructions:
            _uc.emu_stop()

    uc.hook_add(unicorn.UC_HOOK_CODE, on_instruction)
    for index, value in enumerate(args):
        uc.reg_write(arm_const.UC_ARM_REG_R0 + index, value & 0xFFFFFFFF)
    uc.reg_write(arm_const.UC_ARM_REG_SP, STACK_TOP)
    uc.reg_write(arm_const.UC_ARM_REG_LR, RETURN_ADDRESS | 1)
    start = image.symbols[entry_symbol] | 1
    try:
        uc.emu_start(start, RETURN_ADDRESS)
    except unicorn.UcError as exc:
        pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
        raise InstructionCountError(
            f"{elf}: {entry_symbol} faulted after {counter[0]} instructions at pc=0x{pc:08x}: "
            f"{exc} (MMIO and semihosting are not emulated; measure pure functions)"
        ) from exc
    pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
    if counter[0] > max_instructions or pc != RETURN_ADDRESS:
        raise InstructionCountError(
            f"{elf}: {entry_symbol} did not return within {max_instructions} instructions "
            f"(stopped at pc=0x{pc:08x})"
        )
    has_fpu = core in ("cortex-m4", "cortex-m7", "cortex-m33")
    return InstructionCount(
        instructions=counter[0],
        return_value=uc.reg_read(arm_const.UC_ARM_REG_R0),
        return_s0_bits=uc.reg_read(arm_const.UC_ARM_REG_S0) if has_fpu else 0,
    )
