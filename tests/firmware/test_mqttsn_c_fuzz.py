"""Fuzz the C MQTT-SN decoder and the serial frame decoder under AddressSanitizer/UBSan.

Hypothesis produces batches of random and mutated datagrams (and mutated serial streams); one
harness process (tests/firmware/c/fuzz_mqttsn.c) checks a whole batch, so sanitizer start-up is
paid once per batch. The harness aborts on any out-of-bounds access or broken invariant
(decode -> encode -> decode must agree).
"""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.firmware.conftest import CODEC_SOURCES, SANITIZERS, TEST_C_DIR, BuildFn
from tests.firmware.mqttsn_reference import Fields, encode, frame, valid_messages

pytestmark = pytest.mark.gen

SUMMARY = re.compile(r"inputs=(\d+) decoded=(\d+) frames=(\d+) malformed_frames=(\d+)")


@pytest.fixture(scope="module")
def fuzz_exe(c_build: BuildFn) -> Path:
    return c_build("fuzz_mqttsn", [TEST_C_DIR / "fuzz_mqttsn.c", *CODEC_SOURCES], SANITIZERS)


def run_batch(exe: Path, records: list[tuple[int, bytes]]) -> tuple[int, int, int, int]:
    blob = b"".join(bytes([mode]) + len(data).to_bytes(2, "big") + data for mode, data in records)
    proc = subprocess.run([str(exe)], input=blob, capture_output=True, timeout=120, check=False)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, f"harness failed (status {proc.returncode}):\n{err[-4000:]}"
    match = SUMMARY.search(proc.stdout.decode())
    assert match is not None, proc.stdout
    inputs, decoded, frames, malformed = (int(g) for g in match.groups())
    assert inputs == len(records)
    return inputs, decoded, frames, malformed


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, insert, delete or truncate a few bytes (the typical damage on a radio link)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out.insert(pos, rng.randrange(256))
        elif op == 2 and out:
            del out[pos % len(out)]
        elif op == 3:
            del out[pos:]
        elif out:
            out[pos % len(out)] = rng.choice([0x00, 0x01, 0xFF, 0xFE, len(out) & 0xFF])
    return bytes(out)


datagram = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda n, t, rest: bytes([n, t]) + rest,
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=40),
    ),
    st.builds(
        lambda t, rest: b"\x01" + len(rest).to_bytes(2, "big") + bytes([t]) + rest,
        st.integers(0, 255),
        st.binary(min_size=0, max_size=400),
    ),
)


@settings(max_examples=25, deadline=None)
@given(
    random_datagrams=st.lists(datagram, min_size=1, max_size=150),
    valid=st.lists(valid_messages(), min_size=1, max_size=60),
    seed=st.integers(0, 2**32 - 1),
)
def test_decoder_survives_random_and_mutated_datagrams(
    fuzz_exe: Path, random_datagrams: list[bytes], valid: list[Fields], seed: int
) -> None:
    rng = random.Random(seed)
    records = [(0, d) for d in random_datagrams]
    for msg in valid:
        wire = encode(msg)
        records.append((0, wire))
        records.append((0, mutate(wire, rng)))
    _, decoded, _, _ = run_batch(fuzz_exe, records)
    # Every unmutated valid message must decode.
    assert decoded >= len(valid)


@settings(max_examples=20, deadline=None)
@given(
    valid=st.lists(valid_messages(), min_size=1, max_size=30),
    noise=st.lists(st.binary(max_size=30), min_size=1, max_size=10),
    seed=st.integers(0, 2**32 - 1),
)
def test_frame_decoder_survives_noisy_streams(
    fuzz_exe: Path, valid: list[Fields], noise: list[bytes], seed: int
) -> None:
    rng = random.Random(seed)
    frames = [frame(encode(m)) for m in valid]
    clean = b"".join(frames)
    noisy = bytearray()
    for i, f in enumerate(frames):
        noisy += noise[i % len(noise)]
        noisy += mutate(f, rng) if rng.random() < 0.5 else f
    records = [(1, clean), (1, bytes(noisy)), (1, mutate(clean, rng))]
    _, decoded, frame_count, _ = run_batch(fuzz_exe, records)
    assert frame_count >= len(valid)
    assert decoded >= len(valid)


def test_decoder_large_seeded_batch(fuzz_exe: Path) -> None:
    """50,000 mutated datagrams from a fixed seed: cheap breadth beyond hypothesis' examples."""
    rng = random.Random(20261127)
    seeds = [
        bytes.fromhex(h)
        for h in (
            "0a040c01003c64657631",  # CONNECT
            "090c20001100026869",  # PUBLISH QoS 1
            "0812200004732f23",  # SUBSCRIBE s/#
            "0712c100050102",  # SUBSCRIBE predefined
            "0813200000000400",  # SUBACK
            "05fe010a0b0217",  # Forwarder Encapsulation
            "0418012c",  # DISCONNECT with duration
            "061664657631",  # PINGREQ with client id
            "070b0011000100",  # REGACK
            "090a00000001612f62",  # REGISTER
        )
    ]
    seeds.append(b"\x01\x01\x2c\x0c\x00\x00\x01\x00\x00" + bytes(291))  # long PUBLISH
    records: list[tuple[int, bytes]] = []
    for _ in range(50000):
        base = rng.choice(seeds)
        records.append((0, mutate(base, rng)))
    inputs, decoded, _, _ = run_batch(fuzz_exe, records)
    assert inputs == 50000
    assert decoded > 0
