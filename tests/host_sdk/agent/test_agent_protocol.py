"""The Python agent protocol codec: golden vectors both ways, a second independent encoder,
round trips of random valid messages, and fuzzing of the decoder (only AgentProtocolError)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from agent_reference import reference_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sdk.agent import protocol
from host_sdk.agent.protocol import AgentProtocolError, decode, encode

pytestmark = pytest.mark.unit

PROJECT_ROOT = Path(__file__).resolve().parents[3]
VECTORS_PATH = PROJECT_ROOT / "firmware_templates" / "agent_protocol_vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text())
VALID = VECTORS["valid"]
INVALID = VECTORS["invalid"]
DOC = (PROJECT_ROOT / "docs" / "agent_protocol.md").read_text()


def test_vectors_cover_every_kind_and_error_class() -> None:
    assert VECTORS["version"] == protocol.VERSION == 1
    assert {v["fields"]["kind"] for v in VALID} == set(protocol.KIND_CODES)
    decode_classes = set(protocol.ERROR_CLASSES) - {"field"}  # "field" is encode-only
    assert {v["error"] for v in INVALID} == decode_classes
    names = [v["name"] for v in VALID + INVALID]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("vector", VALID, ids=[v["name"] for v in VALID])
def test_valid_vector_encodes_to_its_bytes_and_decodes_to_its_fields(vector: dict) -> None:
    fields = protocol.from_json_fields(vector["fields"])
    raw = bytes.fromhex(vector["hex"])
    assert encode(fields) == raw
    assert decode(raw) == fields
    assert reference_encode(fields) == raw  # the vectors agree with the document's tables too
    assert protocol.to_json_fields(decode(raw)) == vector["fields"]


@pytest.mark.parametrize("vector", INVALID, ids=[v["name"] for v in INVALID])
def test_invalid_vector_is_rejected_with_its_error_class(vector: dict) -> None:
    with pytest.raises(AgentProtocolError) as info:
        decode(bytes.fromhex(vector["hex"]))
    assert info.value.error_class == vector["error"]
    text = str(info.value)
    assert text.startswith("agent ") and "expected" in text, text
    assert "\n" not in text


def test_error_text_names_kind_field_offset_and_expectation() -> None:
    with pytest.raises(
        AgentProtocolError,
        match=re.escape("agent status message: field 'state' at offset 6: expected 0..4, got 5"),
    ):
        decode(bytes.fromhex("010407000000" + "05" + "00" * 9))
    with pytest.raises(AgentProtocolError, match=r"agent birth message: field 'models\[0\]\.name'"):
        decode(bytes.fromhex(VALID[0]["hex"])[:-2])


@pytest.mark.parametrize(
    ("msg", "error_class", "text"),
    [
        ({"kind": "will"}, "field", "field 'incarnation': missing"),
        ({"kind": "will", "incarnation": 1, "extra": 2}, "field", "'extra': unknown field"),
        ({"kind": "will", "incarnation": -1}, "value", "expected 0..4294967295, got -1"),
        ({"kind": "will", "incarnation": "1"}, "field", "expected an int, got str"),
        ({"kind": "will", "incarnation": True}, "field", "expected an int, got bool"),
        ({"kind": "nope"}, "kind", "expected one of birth, will"),
        ({"kind": "cmd", "corr": 1, "code": 1, "args": "00"}, "field", "expected bytes, got str"),
        ({"kind": "cmd", "corr": 1, "code": 1, "args": bytes(2049)}, "length", "0..2048 bytes"),
        ({"kind": "cmd", "corr": 1, "code": 1, "args": bytes(2042)}, "too_large", "at most 2048"),
        ({"kind": "will", "incarnation": 1, "ext": b"\x05"}, "extension", "1 byte left"),
        (
            {
                "kind": "resp",
                "corr": 1,
                "code": 1,
                "state": 2,
                "error": 0,
                "latency_us": 0,
                "result": b"",
            },
            "value",
            "non-zero error",
        ),
        (
            {
                "kind": "status",
                "incarnation": 1,
                "state": 1,
                "uptime_s": 0,
                "free_ram": 0,
                "params": [{"id": 1}],
            },
            "field",
            "'params[0].value': missing",
        ),
        (
            {
                "kind": "boot",
                "incarnation": 1,
                "reset_cause": 0,
                "corr": 0,
                "boot_ms": 0,
                "free_ram": 0,
                "firmware_id": b"short",
            },
            "length",
            "exactly 8 bytes",
        ),
    ],
)
def test_encode_rejects_bad_fields(msg: dict, error_class: str, text: str) -> None:
    with pytest.raises(AgentProtocolError) as info:
        encode(msg)
    assert info.value.error_class == error_class
    assert text in str(info.value)


def test_document_lists_every_error_code_and_kind() -> None:
    for name, code in protocol.ERROR_CODES.items():
        assert re.search(rf"\|\s*{code}\s*\|\s*`{name}`", DOC), name
    for name, code in protocol.KIND_CODES.items():
        assert re.search(rf"\|\s*{code}\s*\|\s*`{name}`", DOC), name
    assert f"{protocol.MAX_MESSAGE_BYTES}" in DOC


# --- random valid messages (built from the document's bounds, not from the codec's tables) ---

U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
NAME_CHARS = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in "/+#"]


def names(max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=NAME_CHARS, min_size=1, max_size=max_size)


ids8 = st.binary(min_size=8, max_size=8)
ext = st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=6)), max_size=3).map(
    lambda records: b"".join(bytes([t, len(v)]) + v for t, v in records)
)


def _with_kind(kind: str, **fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"kind": st.just(kind), **fields})


def _resp() -> st.SearchStrategy[dict[str, Any]]:
    base = dict(corr=U16, code=st.integers(0, 255), latency_us=U32, result=st.binary(max_size=300))
    good = _with_kind("resp", state=st.sampled_from([0, 1]), error=st.just(0), **base)
    bad = _with_kind("resp", state=st.sampled_from([2, 3, 4]), error=st.integers(1, 255), **base)
    return st.one_of(good, bad)


def _profile() -> st.SearchStrategy[dict[str, Any]]:
    layer = st.fixed_dictionaries(
        {"index": st.integers(0, 99), "op": st.integers(0, 255), "time": U32, "macs": U32}
    )
    return _with_kind(
        "profile",
        corr=U16,
        model=st.integers(0, 3),
        unit=st.integers(0, 2),
        total_layers=st.integers(100, 0xFFFF),
        layers=st.lists(layer, max_size=20),
    )


messages = st.one_of(
    _with_kind(
        "birth",
        incarnation=U32,
        role=names(16),
        board=names(32),
        firmware_id=ids8,
        generator=names(16),
        free_ram=U32,
        max_payload=st.integers(64, 2048),
        models=st.lists(st.fixed_dictionaries({"hash": ids8, "name": names(16)}), max_size=4),
    ),
    _with_kind("will", incarnation=U32),
    _with_kind(
        "hb",
        incarnation=U32,
        seq=U32,
        uptime_s=U32,
        inferences=U32,
        commands=U32,
        errors=U32,
        reconnects=U16,
        latency_us=U32,
        free_ram=U32,
    ),
    _with_kind(
        "status",
        incarnation=U32,
        state=st.integers(0, 4),
        uptime_s=U32,
        free_ram=U32,
        params=st.lists(
            st.fixed_dictionaries(
                {"id": st.integers(0, 255), "value": st.integers(-(2**31), 2**31 - 1)}
            ),
            max_size=16,
        ),
    ),
    _with_kind(
        "cmd", corr=st.integers(1, 0xFFFF), code=st.integers(1, 255), args=st.binary(max_size=300)
    ),
    _resp(),
    _profile(),
    _with_kind(
        "boot",
        incarnation=U32,
        reset_cause=st.integers(0, 6),
        corr=U16,
        boot_ms=U32,
        free_ram=U32,
        firmware_id=ids8,
    ),
)


@settings(max_examples=400, deadline=None)
@given(msg=messages, extension=ext)
def test_random_valid_messages_round_trip_and_match_the_reference_encoder(
    msg: dict[str, Any], extension: bytes
) -> None:
    if extension:
        msg = {**msg, "ext": extension}
    raw = encode(msg)
    assert raw == reference_encode(msg)
    assert decode(raw) == msg
    if msg["kind"] != "cmd" and msg["kind"] != "resp" and not extension:
        assert len(raw) <= protocol.SMALL_DEVICE_PAYLOAD_BYTES


def _expect_only_protocol_errors(data: bytes) -> None:
    try:
        msg = decode(data)
    except AgentProtocolError as exc:
        assert exc.error_class in protocol.ERROR_CLASSES
        return
    # Whatever decodes is canonical: encoding it gives the same bytes back.
    assert encode(msg) == data


@settings(max_examples=1500, deadline=None)
@given(data=st.one_of(st.binary(max_size=80), st.binary(max_size=40).map(lambda b: b"\x01" + b)))
def test_decoding_random_bytes_raises_only_agent_protocol_error(data: bytes) -> None:
    _expect_only_protocol_errors(data)


@settings(max_examples=1500, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, len(VALID) - 1))
def test_decoding_mutated_vectors_raises_only_agent_protocol_error(seed: int, which: int) -> None:
    rng = random.Random(seed)
    data = bytearray.fromhex(VALID[which]["hex"])
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[pos % len(data)] ^= 1 << rng.randrange(8)
        elif op == 1:
            data.insert(pos, rng.randrange(256))
        elif op == 2 and data:
            del data[pos % len(data)]
        else:
            del data[pos:]
    _expect_only_protocol_errors(bytes(data))


@pytest.mark.parametrize(
    "garbage", [None, 5, "0103", [1, 3], bytearray(b"\x01\x02"), memoryview(b"\x01")]
)
def test_decode_of_non_bytes_or_short_bytes_likes_raises_agent_protocol_error(garbage: Any) -> None:
    with pytest.raises(AgentProtocolError):
        decode(garbage)


def test_largest_messages_have_the_sizes_the_document_states() -> None:
    by_name = {v["name"]: len(bytes.fromhex(v["hex"])) for v in VALID}
    largest_birth = {
        **protocol.from_json_fields(VALID[2]["fields"]),
        "models": [{"hash": bytes(8), "name": "n" * 16}] * 4,
    }
    assert len(encode(largest_birth)) == 188
    assert by_name["status, sixteen params"] == 96
    assert by_name["profile, twenty layers (the most one report holds)"] == 229
    assert by_name["will"] == 6 and by_name["heartbeat"] == 36
    assert by_name["boot after power on"] == 25
    for kind, low, high in [
        ("birth", 27, 188),
        ("will", 6, 6),
        ("hb", 36, 36),
        ("status", 16, 96),
        ("profile", 9, 229),
        ("boot", 25, 25),
    ]:
        sizes = f"{low}..{high}" if low != high else f"{low}"
        assert re.search(
            rf"\|\s*{protocol.KIND_CODES[kind]}\s*\|\s*`{kind}`\s*\|\s*{re.escape(sizes)}\s*\|", DOC
        ), kind


@pytest.mark.parametrize(
    ("payload", "corr"),
    [
        ("01050201" + "01" + "0000", 0x0102),
        ("02050302ffff", 0x0203),  # a newer version: still readable
        ("0105", 0),
        ("01030201", 0),  # not a cmd
        ("", 0),
    ],
)
def test_peek_corr_reads_the_correlation_id_of_any_version(payload: str, corr: int) -> None:
    assert protocol.peek_corr(bytes.fromhex(payload)) == corr


def test_peek_corr_agrees_with_decode_on_cmd_vectors() -> None:
    for vec in VALID:
        raw = bytes.fromhex(vec["hex"])
        expected = vec["fields"]["corr"] if vec["fields"]["kind"] == "cmd" else 0
        assert protocol.peek_corr(raw) == expected, vec["name"]
