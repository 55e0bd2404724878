"""End to end: a native C agent generated from a role spec, with mosquitto and `shoal gateway`.

The agent (codegen.emit.c_agent, built with the generated Makefile) connects over UDP to a
`shoal gateway` process bridged to a real mosquitto; a paho probe plays the fleet. Checked: the
boot line and the birth carry the firmware id of agent.json and the model's SHA-256 prefix; an
infer command is answered with exactly TFLM's output bytes; heartbeats arrive; a profile
command returns one entry per layer before its resp; a killed agent's will appears.
Every process is stopped in a `finally` (by the harness objects that started it).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import struct
import subprocess
import time
from pathlib import Path

import gateway_harness as harness  # tests/host_sdk/mqttsn, put on sys.path by conftest.py
import numpy as np
import pytest

from codegen.emit.c_agent import generate_c_agent
from codegen.loaders.board_loader import get_board
from codegen.loaders.role_loader import load_role_spec
from codegen.model_compiler import load_model, plan_model
from host_sdk.agent import protocol

REPO = Path(__file__).resolve().parents[3]
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def _wait_payloads(probe_client, topic: str, predicate, timeout_s: float) -> list[dict]:
    """Decoded payloads on `topic` once predicate(decoded list) holds (fails after timeout_s)."""
    harness_msgs = probe_client.wait_for(
        lambda msgs: predicate([protocol.decode(p) for t, p, _q, _r in msgs if t == topic]),
        timeout_s,
    )
    return [protocol.decode(p) for t, p, _q, _r in harness_msgs if t == topic]


def probe_resps(probe_client, base: str) -> list[dict]:
    return [protocol.decode(p) for p in probe_client.payloads(f"{base}/resp")]


def test_native_agent_birth_infer_heartbeat_profile_will(broker, probe, tmp_path: Path) -> None:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc and make are needed to build the native agent")
    run_tflm = pytest.importorskip("host_sdk.verify.tflm_oracle").run_tflm
    spec_text = EXAMPLE.read_text().replace("../../tests/data/shoal_kws_tiny.tflite", str(MODEL))
    spec_text = spec_text.replace("heartbeat_s: 10", "heartbeat_s: 1")
    # Publish every result (the best softmax score is never below 0).
    spec_text = spec_text.replace("threshold: 0.6", "threshold: 0.0")
    assert "heartbeat_s: 1}" in spec_text and "threshold: 0.0" in spec_text
    spec_path = tmp_path / "kws.yaml"
    spec_path.write_text(spec_text)
    role = load_role_spec(spec_path)
    out = tmp_path / "agent"
    generate_c_agent(role, get_board("native"), out)
    built = subprocess.run(["make"], cwd=out, capture_output=True, text=True, timeout=180)
    assert built.returncode == 0, built.stdout + built.stderr
    manifest = json.loads((out / "agent.json").read_text())
    firmware_id = bytes.fromhex(manifest["firmware_id"])
    model_hash = hashlib.sha256(MODEL.read_bytes()).digest()[:8]

    client_id = harness.unique("kws")
    base = f"shoal/v1/{role.role}/{client_id}"
    probe.subscribe(f"{base}/#", qos=1)
    keyword_topic = f"shoal/{client_id}/{role.role}/keyword"
    probe.subscribe(keyword_topic, qos=1)
    gateway = harness.ShoalGatewayProcess(broker.url, "--state-dir", str(tmp_path / "gw"))
    agent = None
    try:
        agent = harness.ClientProcess(
            [str(out / "agent"), "--gateway", f"127.0.0.1:{gateway.port}",
             "--client-id", client_id, "--keepalive", "2"]
        )  # fmt: skip
        boot = agent.lines[agent.wait_line("SHOAL-AGENT BOOT", 10)]
        assert f"firmware={manifest['firmware_id']}" in boot
        assert f"models=kws:{model_hash.hex()}" in boot
        assert f"role={role.role} board=native" in boot

        births = _wait_payloads(probe, f"{base}/birth", lambda b: len(b) >= 1, 15)
        birth = births[0]
        assert birth["role"] == role.role and birth["board"] == "native"
        assert birth["firmware_id"] == firmware_id
        assert [(m["hash"], m["name"]) for m in birth["models"]] == [(model_hash, "kws")]
        assert birth["generator"] == manifest["generator"]
        assert 0 < birth["free_ram"] < get_board("native").memory.app_ram_bytes
        boots = _wait_payloads(probe, f"{base}/boot", lambda b: len(b) >= 1, 10)
        assert boots[0]["incarnation"] == birth["incarnation"]
        assert boots[0]["firmware_id"] == firmware_id

        # infer: random int8 input -> exactly TFLM's output bytes
        shape = role.models[0].input_shape
        rng = np.random.default_rng(8)
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        expected = run_tflm(MODEL.read_bytes(), [x])[0].tobytes()
        cmd = {"kind": "cmd", "corr": 4242, "code": 1, "args": b"\x00" + x.tobytes()}
        probe.publish(f"{base}/cmd", protocol.encode(cmd), qos=1)
        resps = _wait_payloads(
            probe, f"{base}/resp", lambda r: any(m["corr"] == 4242 for m in r), 15
        )
        resp = next(m for m in resps if m["corr"] == 4242)
        assert (resp["code"], resp["state"], resp["error"]) == (1, 0, 0)
        assert resp["result"] == expected

        # The on_command trigger publishes that result too (binary layout, top 2, best first);
        # the periodic trigger publishes results of the simulated sensor every 500 ms.
        plan = plan_model(load_model(MODEL))
        real = (
            np.frombuffer(expected, np.int8).astype(np.float32) - np.float32(plan.output.zero_point)
        ) * np.float32(plan.output.scale)
        order = sorted(range(len(real)), key=lambda i: (-real[i], i))[:2]
        entries = b"".join(
            struct.pack("<Bh", i, min(32767, math.floor(float(real[i]) * 32768 + 0.5)))
            for i in order
        )
        keywords = probe.wait_for(lambda msgs: sum(t == keyword_topic for t, *_ in msgs) >= 3, 15)
        payloads = [p for t, p, _q, _r in keywords if t == keyword_topic]
        assert all(p[:2] == b"\x01\x01" and p[6] == 2 and len(p) == 13 for p in payloads)
        seqs = [struct.unpack_from("<I", p, 2)[0] for p in payloads]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert entries in [p[7:] for p in payloads], (entries.hex(), [p.hex() for p in payloads])

        # a burst: another version (corr still read), a truncated v1 cmd and an infer, all
        # answered with their corr (queued, not "busy")
        burst = [
            (bytes([2, 5, 0x34, 0x12, 1, 0, 0]), 0x1234, 10),  # unsupported_version
            (bytes([1, 5, 0x35, 0x12, 1, 9]), 0x1235, 11),  # malformed (args cut short)
            (protocol.encode({**cmd, "corr": 0x1236}), 0x1236, 0),
        ]
        for payload, _corr, _error in burst:
            probe.publish(f"{base}/cmd", payload, qos=1)
        wanted = {corr for _p, corr, _e in burst}
        resps = _wait_payloads(
            probe, f"{base}/resp", lambda r: wanted <= {m["corr"] for m in r}, 15
        )
        for _payload, corr, error in burst:
            answer = next(m for m in resps if m["corr"] == corr)
            assert answer["error"] == error, answer
        assert next(m for m in resps if m["corr"] == 0x1236)["result"] == expected

        # a wrong input size is rejected with input_size, same corr
        bad = {"kind": "cmd", "corr": 7, "code": 1, "args": b"\x00\x01\x02"}
        probe.publish(f"{base}/cmd", protocol.encode(bad), qos=1)
        resps = _wait_payloads(probe, f"{base}/resp", lambda r: any(m["corr"] == 7 for m in r), 15)
        assert next(m for m in resps if m["corr"] == 7)["error"] == 4  # input_size

        # profile: one entry per layer, before the resp of that corr
        profile_cmd = {"kind": "cmd", "corr": 99, "code": 4, "args": b"\x00"}
        probe.publish(f"{base}/cmd", protocol.encode(profile_cmd), qos=1)
        _wait_payloads(probe, f"{base}/resp", lambda r: any(m["corr"] == 99 for m in r), 15)
        profiles = [p for p in _wait_payloads(probe, f"{base}/profile", bool, 5) if p["corr"] == 99]
        layers = [layer for p in profiles for layer in p["layers"]]
        total = profiles[0]["total_layers"]
        assert total == manifest["models"][0]["layers"] and total >= 2
        assert sorted(layer["index"] for layer in layers) == list(range(total))
        assert all(p["unit"] == 0 and p["model"] == 0 for p in profiles)
        assert sum(layer["macs"] for layer in layers) > 0
        assert any(layer["time"] > 0 for layer in layers)

        # status: the status message (idle, this boot) comes before the resp of its corr
        status_cmd = {"kind": "cmd", "corr": 55, "code": 3, "args": b""}
        probe.publish(f"{base}/cmd", protocol.encode(status_cmd), qos=1)
        _wait_payloads(probe, f"{base}/resp", lambda r: any(m["corr"] == 55 for m in r), 15)
        statuses = _wait_payloads(probe, f"{base}/status", bool, 5)
        assert (statuses[-1]["state"], statuses[-1]["incarnation"]) == (1, birth["incarnation"])
        # unknown code -> rejected/unknown_command; sleep is not done natively -> not_supported
        for corr, code, error in ((56, 77, 1), (57, 6, 12)):
            cmd = {"kind": "cmd", "corr": corr, "code": code, "args": b""}
            probe.publish(f"{base}/cmd", protocol.encode(cmd), qos=1)
            resps = _wait_payloads(
                probe, f"{base}/resp", lambda r, c=corr: any(m["corr"] == c for m in r), 15
            )
            answer = next(m for m in resps if m["corr"] == corr)
            assert (answer["code"], answer["state"], answer["error"]) == (code, 2, error)

        # heartbeat: at 1 s, at least two arrive, counting the infer and the commands
        hbs = _wait_payloads(probe, f"{base}/hb", lambda h: len(h) >= 2, 10)
        assert hbs[-1]["incarnation"] == birth["incarnation"]
        assert hbs[-1]["seq"] > hbs[0]["seq"]
        _wait_payloads(probe, f"{base}/hb", lambda h: h[-1]["inferences"] >= 2, 5)

        # reboot: accepted, then (re-executed, clean DISCONNECT) a boot naming the command, with
        # the next incarnation, and a new birth
        reboot_cmd = {"kind": "cmd", "corr": 58, "code": 5, "args": b""}
        probe.publish(f"{base}/cmd", protocol.encode(reboot_cmd), qos=1)
        boots = _wait_payloads(probe, f"{base}/boot", lambda b: any(m["corr"] == 58 for m in b), 15)
        reboot = next(m for m in boots if m["corr"] == 58)
        assert reboot["reset_cause"] == 1 and reboot["firmware_id"] == firmware_id
        assert reboot["incarnation"] == (birth["incarnation"] + 1) % 2**32
        answer = next(m for m in probe_resps(probe, base) if m["corr"] == 58)
        assert (answer["state"], answer["error"]) == (1, 0)  # accepted: the boot is the end
        births = _wait_payloads(probe, f"{base}/birth", lambda b: len(b) >= 2, 10)
        assert births[-1]["incarnation"] == reboot["incarnation"]
        assert not probe.payloads(f"{base}/will"), "a reboot disconnects cleanly: no will"
        birth = births[-1]

        # kill: the gateway publishes the will after 1.5 x keep-alive (3 s)
        agent.kill()
        t0 = time.monotonic()
        wills = _wait_payloads(probe, f"{base}/will", lambda w: len(w) >= 1, 15)
        assert wills[0]["kind"] == "will"
        assert wills[0]["incarnation"] == birth["incarnation"]
        assert time.monotonic() - t0 < 15
    finally:
        if agent is not None:
            agent.stop()
        gateway.stop()


VIBRATION = REPO / "examples" / "roles" / "vibration_anomaly.yaml"
REPLAY = REPO / "tests" / "data" / "roles" / "vibration_replay.csv"
DENSE = REPO / "tests" / "data" / "shoal_dense_tiny.tflite"


def test_native_agent_publishes_json_results_of_a_replayed_sensor(
    broker, probe, tmp_path: Path
) -> None:
    """Replayed samples through a float32-input model, published as JSON every 200 ms; each
    result is TFLM's output for one of the windows the replay loop can produce."""
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc and make are needed to build the native agent")
    run_tflm_invocations = pytest.importorskip("host_sdk.verify.tflm_oracle").run_tflm_invocations
    text = VIBRATION.read_text()
    for old, new in {
        "../../tests/data/shoal_dense_tiny.tflite": str(DENSE),
        "adc: {channel: 3, scale: 0.001, offset: -1.65}": (
            f"simulated: {{generator: replay, file: {REPLAY}}}"
        ),
        "board: nucleo-f446re": "board: native",
        "on_threshold: {source: vibration, above: 1.5, run: [health]}": (
            "periodic: {period_ms: 200, run: [health]}"
        ),
        "threshold: 0.5": "threshold: 0.0",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    spec_path = tmp_path / "vibration.yaml"
    spec_path.write_text(text)
    role = load_role_spec(spec_path)
    out = tmp_path / "agent"
    generate_c_agent(role, get_board("native"), out)
    built = subprocess.run(["make"], cwd=out, capture_output=True, text=True, timeout=180)
    assert built.returncode == 0, built.stdout + built.stderr

    lines = REPLAY.read_text().splitlines()
    samples = [float(x) for x in lines if x.strip() and not x.lstrip().startswith("#")]
    windows = [
        np.array([[samples[(start + i) % len(samples)] for i in range(16)]], np.float32)
        for start in range(len(samples))
    ]
    outputs = [o[0][0] for o in run_tflm_invocations(DENSE.read_bytes(), [[w] for w in windows])]
    labels = ["normal", "imbalance", "bearing_wear"]
    possible = {(labels[int(np.argmax(o))], round(float(np.max(o)), 4)) for o in outputs}

    client_id = harness.unique("vib")
    topic = f"plant/{role.role}/{client_id}/health"
    probe.subscribe(topic, qos=1)
    probe.subscribe(f"shoal/v1/{role.role}/{client_id}/#", qos=1)
    gateway = harness.ShoalGatewayProcess(broker.url, "--state-dir", str(tmp_path / "gw"))
    agent = None
    try:
        agent = harness.ClientProcess(
            [str(out / "agent"), "--gateway", f"127.0.0.1:{gateway.port}",
             "--client-id", client_id]
        )  # fmt: skip
        boot = agent.lines[agent.wait_line("SHOAL-AGENT BOOT", 10)]
        assert "role=vibration board=native" in boot
        agent.wait_line("NOTE not implemented by the native agent yet: duty_cycle", 5)
        messages = probe.wait_for(lambda m: sum(t == topic for t, *_ in m) >= 3, 15)
        results = [json.loads(p) for t, p, _q, _r in messages if t == topic]
        seqs = [r["seq"] for r in results]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        for result in results:
            assert result["model"] == "health"
            assert result["top"] == [[result["label"], result["score"]]]
            assert (result["label"], round(result["score"], 4)) in possible, (result, possible)

        # sleep 2 s (MQTT-SN DISCONNECT with duration): ok, asleep, then connected again with a
        # new birth; a command sent while it sleeps is held by the gateway and still answered
        base = f"shoal/v1/{role.role}/{client_id}"
        _wait_payloads(probe, f"{base}/birth", lambda b: len(b) >= 1, 10)
        sleep_cmd = {"kind": "cmd", "corr": 31, "code": 6, "args": struct.pack("<I", 2)}
        probe.publish(f"{base}/cmd", protocol.encode(sleep_cmd), qos=1)
        asleep = agent.wait_line("SLEEP 2", 10)
        resps = _wait_payloads(probe, f"{base}/resp", lambda r: any(m["corr"] == 31 for m in r), 10)
        answer = next(m for m in resps if m["corr"] == 31)
        assert (answer["state"], answer["error"]) == (0, 0)
        status_cmd = {"kind": "cmd", "corr": 32, "code": 3, "args": b""}
        probe.publish(f"{base}/cmd", protocol.encode(status_cmd), qos=1)
        agent.wait_line("WAKE", 10, after=asleep)
        _wait_payloads(probe, f"{base}/birth", lambda b: len(b) >= 2, 10)
        _wait_payloads(probe, f"{base}/resp", lambda r: any(m["corr"] == 32 for m in r), 10)
    finally:
        if agent is not None:
            agent.stop()
        gateway.stop()
