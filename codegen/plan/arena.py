"""Static arena placement: offsets for buffers with known lifetimes (one arena, no malloc).

Responsible for: greedy-by-size placement of buffers whose [first_op, last_op] lifetimes
overlap, with every offset aligned, and the resulting arena size in bytes.

Must not: know about tensors, ops or aliasing (the model planner decides what a buffer is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ARENA_ALIGNMENT = 16


@dataclass(frozen=True)
class BufferRequest:
    """A buffer of `byte_size` bytes live from op `first_op` to op `last_op` inclusive."""

    key: int
    byte_size: int
    first_op: int
    last_op: int

    def overlaps(self, other: BufferRequest) -> bool:
        return self.first_op <= other.last_op and other.first_op <= self.last_op


@dataclass(frozen=True)
class ArenaPlan:
    """Byte offset per buffer key, and the arena size (bytes, a multiple of the alignment)."""

    offsets: tuple[tuple[int, int], ...]
    arena_bytes: int

    def offset(self, key: int) -> int:
        return dict(self.offsets)[key]


def align_up(value: int, alignment: int = ARENA_ALIGNMENT) -> int:
    return (value + alignment - 1) // alignment * alignment


def plan_arena(requests: Sequence[BufferRequest], alignment: int = ARENA_ALIGNMENT) -> ArenaPlan:
    """Place the largest buffers first, each at the lowest aligned offset that fits.

    Buffers whose lifetimes overlap never share bytes; zero-sized buffers get offset 0.
    """
    placed: list[tuple[BufferRequest, int]] = []
    offsets: dict[int, int] = {}
    order = sorted(requests, key=lambda r: (-r.byte_size, r.first_op, r.key))
    for request in order:
        if request.byte_size == 0:
            offsets[request.key] = 0
            continue
        busy = sorted(
            (offset, offset + other.byte_size)
            for other, offset in placed
            if other.overlaps(request)
        )
        candidate = 0
        for start, end in busy:
            if candidate + request.byte_size <= start:
                break
            candidate = max(candidate, align_up(end, alignment))
        offsets[request.key] = candidate
        placed.append((request, candidate))
    arena = max((offset + r.byte_size for r, offset in placed), default=0)
    return ArenaPlan(offsets=tuple(sorted(offsets.items())), arena_bytes=align_up(arena, alignment))
