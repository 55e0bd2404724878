"""The C agent protocol codec (firmware_templates/c/agent): every golden vector both ways in a
gcc host build with ASan/UBSan, the same build fed the invalid vectors, random and mutated
payloads (its error codes must match the Python codec's classes), and an arm-none-eabi-gcc
Cortex-M4 -Os compile with warnings as errors."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sdk.agent import protocol
from tests.firmware.conftest import (
    C_ROOT,
    PROJECT_ROOT,
    SANITIZERS,
    TEST_C_DIR,
    WARNINGS,
    compile_program,
)

pytestmark = pytest.mark.gen

AGENT_DIR = C_ROOT / "agent"
SOURCES = [AGENT_DIR / "shoal_agent_protocol.c"]
VECTORS = json.loads(
    (PROJECT_ROOT / "firmware_templates" / "agent_protocol_vectors.json").read_text()
)
ERROR_CODES = {
    "truncated": -2,
    "too_large": -3,
    "version": -4,
    "kind": -5,
    "length": -6,
    "value": -7,
    "extension": -8,
}
KIND_MACROS = {name: "SHOAL_AGENT_" + name.upper() for name in protocol.KIND_CODES}
LISTS = {"models": "model_count", "params": "param_count", "layers": "layer_count"}
BYTES_FIELDS = {"role", "board", "generator", "name", "args", "result", "ext"}
ID_FIELDS = {"firmware_id", "hash"}
RESULT_LINE = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def _c_array(name: str, data: bytes) -> str:
    body = ", ".join(f"0x{b:02x}" for b in data) if data else "0x00"
    return f"static const uint8_t {name}[] = {{{body}}};\n"


def _c_int(value: int) -> str:
    if value == -(2**31):
        return "(-2147483647 - 1)"
    return f"({value})" if value < 0 else f"{value}u"


def _assignments(prefix: str, lvalue: str, fields: dict[str, Any], arrays: list[str]) -> list[str]:
    lines = []
    for key, value in fields.items():
        target = f"{lvalue}{key}"
        if key == "kind":
            lines.append(f"    {target} = {KIND_MACROS[value]};")
        elif key in LISTS:
            lines.append(f"    {lvalue}{LISTS[key]} = {len(value)}u;")
            for i, item in enumerate(value):
                lines += _assignments(f"{prefix}_{key}{i}", f"{lvalue}{key}[{i}].", item, arrays)
        elif key in ID_FIELDS:
            array = f"{prefix}_{key}"
            arrays.append(_c_array(array, bytes.fromhex(value)))
            lines.append(f"    memcpy({target}, {array}, SHOAL_AGENT_HASH_BYTES);")
        elif key in BYTES_FIELDS:
            data = (
                value.encode()
                if key in {"role", "board", "generator", "name"}
                else bytes.fromhex(value)
            )
            if data:
                array = f"{prefix}_{key}"
                arrays.append(_c_array(array, data))
                lines.append(f"    {target}.ptr = {array};")
                lines.append(f"    {target}.len = {len(data)}u;")
        else:
            lines.append(f"    {target} = {_c_int(value)};")
    return lines


def vectors_include(vectors: dict[str, Any]) -> str:
    """agent_vectors.inc for tests/firmware/c/test_agent_protocol.c, from the JSON vectors."""
    arrays: list[str] = []
    fills: list[str] = []
    valid_rows: list[str] = []
    for i, vec in enumerate(vectors["valid"]):
        arrays.append(_c_array(f"valid{i}_bytes", bytes.fromhex(vec["hex"])))
        body = _assignments(f"valid{i}", "m->", vec["fields"], arrays)
        fills.append(
            f"static void valid{i}_fill(shoal_agent_msg *m)\n{{\n" + "\n".join(body) + "\n}\n"
        )
        size = len(bytes.fromhex(vec["hex"]))
        valid_rows.append(
            f"    {{{json.dumps(vec['name'])}, valid{i}_bytes, {size}u, valid{i}_fill}},"
        )
    invalid_rows = []
    for i, vec in enumerate(vectors["invalid"]):
        data = bytes.fromhex(vec["hex"])
        arrays.append(_c_array(f"invalid{i}_bytes", data))
        invalid_rows.append(
            f"    {{{json.dumps(vec['name'])}, invalid{i}_bytes, {len(data)}u, {ERROR_CODES[vec['error']]}}},"
        )
    return (
        "/* Written by tests/firmware/test_agent_protocol_c.py from agent_protocol_vectors.json. */\n"
        + "".join(arrays)
        + "\n".join(fills)
        + "static const valid_vector VALID[] = {\n"
        + "\n".join(valid_rows)
        + "\n};\n"
        + "static const invalid_vector INVALID[] = {\n"
        + "\n".join(invalid_rows)
        + "\n};\n"
        + "#define VALID_COUNT (sizeof(VALID) / sizeof(VALID[0]))\n"
        + "#define INVALID_COUNT (sizeof(INVALID) / sizeof(INVALID[0]))\n"
    )


@pytest.fixture(scope="module")
def self_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("agent_c")
    (build / "agent_vectors.inc").write_text(vectors_include(VECTORS))
    return compile_program(
        build / "test_agent_protocol",
        [TEST_C_DIR / "test_agent_protocol.c", *SOURCES],
        [f"-I{AGENT_DIR}", f"-I{build}", *SANITIZERS],
    )


def test_golden_vectors_pass_in_the_c_host_build(self_test: Path) -> None:
    proc = subprocess.run([str(self_test)], capture_output=True, text=True, timeout=60, check=False)
    output = proc.stdout + proc.stderr
    match = RESULT_LINE.search(proc.stdout)
    assert match is not None, output
    passed, failed = int(match.group(1)), int(match.group(2))
    assert failed == 0 and proc.returncode == 0, output
    # encode, decode, peek-corr and short-buffer checks per valid vector, one per invalid one.
    assert passed == 4 * len(VECTORS["valid"]) + len(VECTORS["invalid"]), output


def _python_code(data: bytes) -> int:
    try:
        protocol.decode(data)
    except protocol.AgentProtocolError as exc:
        return ERROR_CODES[exc.error_class]
    return len(data)


def _run_fuzz(exe: Path, payloads: list[bytes]) -> list[int]:
    blob = b"".join(len(p).to_bytes(2, "little") + p for p in payloads)
    proc = subprocess.run(
        [str(exe), "--fuzz"], input=blob, capture_output=True, timeout=120, check=False
    )
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, f"harness failed (status {proc.returncode}):\n{err[-4000:]}"
    lines = proc.stdout.decode().splitlines()
    assert lines[-1].startswith(f"inputs={len(payloads)} "), lines[-1]
    return [int(line) for line in lines[:-1]]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out.insert(pos, rng.randrange(256))
        elif op == 2 and out:
            del out[pos % len(out)]
        else:
            del out[pos:]
    return bytes(out)


def test_invalid_vectors_and_mutations_agree_with_python_under_sanitizers(self_test: Path) -> None:
    rng = random.Random(2026)
    valid = [bytes.fromhex(v["hex"]) for v in VECTORS["valid"]]
    payloads = [bytes.fromhex(v["hex"]) for v in VECTORS["invalid"]] + valid
    payloads += [_mutate(rng.choice(valid), rng) for _ in range(3000)]
    codes = _run_fuzz(self_test, payloads)
    assert len(codes) == len(payloads)
    expected = [_python_code(p) for p in payloads]
    mismatches = [
        (p.hex(), c, e) for p, c, e in zip(payloads, codes, expected, strict=True) if c != e
    ]
    assert not mismatches, mismatches[:5]
    assert sum(c >= 0 for c in codes) > len(valid)  # some mutations stay valid (and re-encode)


@settings(max_examples=10, deadline=None)
@given(
    batch=st.lists(
        st.one_of(st.binary(max_size=300), st.binary(max_size=60).map(lambda b: b"\x01" + b)),
        min_size=50,
        max_size=200,
    )
)
def test_random_bytes_under_sanitizers_agree_with_python(
    self_test: Path, batch: list[bytes]
) -> None:
    codes = _run_fuzz(self_test, batch)
    expected = [_python_code(p) for p in batch]
    assert codes == expected


def test_codec_compiles_for_cortex_m4_without_warnings(tmp_path: Path) -> None:
    compiler = "arm-none-eabi-gcc"
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed, so the Cortex-M build cannot be checked")
    obj = tmp_path / "shoal_agent_protocol.o"
    cmd = [
        compiler,
        *WARNINGS,
        "-Wconversion",
        "-Wsign-conversion",
        "-pedantic",
        "-mcpu=cortex-m4",
        "-mthumb",
        "-Os",
        f"-I{AGENT_DIR}",
        "-c",
        str(SOURCES[0]),
        "-o",
        str(obj),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    size = subprocess.run(
        ["arm-none-eabi-size", str(obj)], capture_output=True, text=True, timeout=30, check=True
    )
    text_bytes = int(size.stdout.splitlines()[1].split()[0])
    assert 0 < text_bytes < 6 * 1024, size.stdout  # a codec, not a library: keep it small
