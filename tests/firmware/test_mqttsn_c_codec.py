"""The C MQTT-SN codec and serial framing: hand-written golden vectors (in C), and a cross-check
against the independent Python encoder in mqttsn_reference.py in both directions."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.firmware.conftest import CODEC_SOURCES, SANITIZERS, TEST_C_DIR, BuildFn
from tests.firmware.mqttsn_reference import CodecCli, Fields, encode, frame, valid_messages

pytestmark = pytest.mark.gen

RESULT_LINE = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def run_self_test(exe: Path) -> tuple[int, int, str]:
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    output = proc.stdout + proc.stderr
    match = RESULT_LINE.search(proc.stdout)
    assert match is not None, f"no 'N passed, N failed' line:\n{output}"
    return int(match.group(1)), int(match.group(2)), output


def test_golden_vectors_encode_and_decode(c_build: BuildFn) -> None:
    exe = c_build(
        "test_mqttsn_codec", [TEST_C_DIR / "test_mqttsn_codec.c", *CODEC_SOURCES], SANITIZERS
    )
    passed, failed, output = run_self_test(exe)
    assert failed == 0, output
    assert passed >= 200, output


@pytest.fixture(scope="module")
def cli(codec_cli: Path) -> Iterator[CodecCli]:
    process = CodecCli(codec_cli)
    yield process
    process.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(msg=valid_messages())
def test_c_decodes_reference_encoding_and_reencodes_it(cli: CodecCli, msg: Fields) -> None:
    wire = encode(msg)
    assert cli.decode(wire) == msg
    assert cli.encode(msg) == wire


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=st.binary(min_size=1, max_size=1024))
def test_c_frame_matches_reference_framing(cli: CodecCli, message: bytes) -> None:
    framed = cli.frame(message)
    assert framed == frame(message)
    assert 0 not in framed[:-1]
    messages, counters = cli.unframe(b"\x00" + framed)
    assert messages == [message]
    assert counters == {"ok": 1, "malformed": 0, "oversized": 0}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=5),
    noise=st.binary(max_size=40),
)
def test_frame_decoder_resynchronises_after_noise(
    cli: CodecCli, messages: list[bytes], noise: bytes
) -> None:
    # Noise then a delimiter: whatever the noise does, every later frame must come through.
    stream = noise + b"\x00" + b"".join(frame(m) for m in messages)
    delivered, counters = cli.unframe(stream)
    assert delivered[-len(messages) :] == messages
    assert counters["ok"] == len(delivered)


def test_frame_decoder_drops_corrupt_and_oversized_frames(cli: CodecCli) -> None:
    good = frame(b"\x03\x05\x00")
    corrupt = bytearray(frame(b"\x02\x17"))
    corrupt[1] ^= 0x01
    oversized = frame(bytes([0x41]) * 1100)
    delivered, counters = cli.unframe(bytes(corrupt) + oversized + good)
    assert delivered == [b"\x03\x05\x00"]
    assert counters == {"ok": 1, "malformed": 1, "oversized": 1}


@pytest.mark.parametrize(
    ("name", "datagram", "error"),
    [
        ("length byte larger than the datagram", "0a0c2000010001", -2),
        ("length byte smaller than the datagram", "050c200001000100", -3),
        ("client id of 64 bytes", "46040401003c" + "61" * 64, -5),
        ("truncated PUBLISH", "0c0c20000100", -2),
        ("reserved MsgType", "0203", -4),
    ],
)
def test_reference_gateway_crash_inputs_are_rejected(
    cli: CodecCli, name: str, datagram: str, error: int
) -> None:
    # The malformed shapes the issue says crashed the Paho gateway.
    assert cli.decode(bytes.fromhex(datagram)) == error, name
