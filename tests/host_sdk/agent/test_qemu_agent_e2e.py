"""End to end: the C agent generated for a QEMU board, with mosquitto and `shoal gateway`.

The kws example is generated for `qemu-lm3s6965evb` / `qemu-mps2-an386`, built with the
generated Makefile (arm-none-eabi-gcc) and run by QemuBoard: UART0 carries MQTT-SN frames to a
`shoal gateway --serial-listen` process (QEMU connects as a TCP client), UART1 is the console
the test reads. A paho probe plays the fleet. Checked: the boot line on the console UART and
the birth carry the firmware id of agent.json and the model's SHA-256 prefix; an infer command
is answered with exactly TFLM's output bytes; heartbeats arrive; a profile command returns one
entry per layer before its resp; a reboot command resets the core (AIRCR SYSRESETREQ) and the
next boot reports that command's corr and the next incarnation (kept in .noinit RAM); after
QEMU is killed (SIGKILL) the will appears on the broker. Every process is stopped in a
`finally`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
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
from host_sdk.agent import protocol
from host_sdk.hil.qemu import QemuBoard, qemu_available

REPO = Path(__file__).resolve().parents[3]
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"
QEMU_BOARDS = ("qemu-lm3s6965evb", "qemu-mps2-an386")
ICOUNT_SHIFT = 3

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def _wait_payloads(probe_client, topic: str, predicate, timeout_s: float) -> list[dict]:
    """Decoded payloads on `topic` once predicate(decoded list) holds (fails after timeout_s)."""
    msgs = probe_client.wait_for(
        lambda all_msgs: predicate([protocol.decode(p) for t, p, _q, _r in all_msgs if t == topic]),
        timeout_s,
    )
    return [protocol.decode(p) for t, p, _q, _r in msgs if t == topic]


def _kws_spec(tmp_path: Path, client_id: str) -> Path:
    text = EXAMPLE.read_text()
    for old, new in {
        "../../tests/data/shoal_kws_tiny.tflite": str(MODEL),
        "heartbeat_s: 10": "heartbeat_s: 1",
        "threshold: 0.6": "threshold: 0.0",
        'client_id: "kws-{name}"': f'client_id: "{client_id}"',
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "kws.yaml"
    path.write_text(text)
    return path


def _build(out: Path) -> Path:
    built = subprocess.run(["make"], cwd=out, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "warning" not in (built.stdout + built.stderr).lower()
    return out / json.loads((out / "agent.json").read_text())["artifact"]


@pytest.mark.parametrize("board_name", QEMU_BOARDS)
def test_qemu_agent_birth_infer_heartbeat_profile_reboot_will(
    broker, probe, tmp_path: Path, board_name: str
) -> None:
    for tool in ("arm-none-eabi-gcc", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is needed to build the QEMU agent")
    if not qemu_available():
        pytest.skip("qemu-system-arm is not installed")
    run_tflm = pytest.importorskip("host_sdk.verify.tflm_oracle").run_tflm
    board = get_board(board_name)
    client_id = harness.unique("kq")
    role = load_role_spec(_kws_spec(tmp_path, client_id))
    out = tmp_path / "agent"
    generate_c_agent(role, board, out)
    elf = _build(out)
    manifest = json.loads((out / "agent.json").read_text())
    assert manifest["artifact"] == "agent.elf" and elf.is_file()
    assert manifest["build"] == {"tool": "make", "toolchain": "arm-none-eabi-gcc"}
    firmware_id = bytes.fromhex(manifest["firmware_id"])
    model_hash = hashlib.sha256(MODEL.read_bytes()).digest()[:8]

    base = f"shoal/v1/{role.role}/{client_id}"
    probe.subscribe(f"{base}/#", qos=1)
    gateway = harness.ShoalGatewayProcess(
        broker.url, "--serial-listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "gw")
    )
    qemu = None
    try:
        ((host, port),) = gateway.serial_listen
        # -icount: without it QEMU's SysTick counter stands still while an expired period
        # waits for QEMU's main loop (measured: reads repeat for up to ~1 ms), so layer times
        # of a fast model often read 0 us; with it time advances per instruction (8 ns each).
        qemu = QemuBoard(
            board, elf, serial_link=f"tcp:{host}:{port},nodelay=on", icount_shift=ICOUNT_SHIFT
        )
        qemu.start()
        boot = qemu.expect(r"^SHOAL-AGENT BOOT .*$", 20).group(0).decode()
        assert f"firmware={manifest['firmware_id']}" in boot
        assert f"models=kws:{model_hash.hex()}" in boot
        assert f"role={role.role} board={board_name}" in boot
        assert f"client_id={client_id} incarnation=1 " in boot  # power-on: no .noinit record
        qemu.expect(r"^CONNECTED\r?$", 20)

        births = _wait_payloads(probe, f"{base}/birth", lambda b: len(b) >= 1, 20)
        birth = births[0]
        assert birth["role"] == role.role and birth["board"] == board_name
        assert birth["firmware_id"] == firmware_id
        assert [(m["hash"], m["name"]) for m in birth["models"]] == [(model_hash, "kws")]
        assert birth["generator"] == manifest["generator"]
        assert birth["incarnation"] == 1
        assert 0 < birth["free_ram"] < board.memory.app_ram_bytes
        boots = _wait_payloads(probe, f"{base}/boot", lambda b: len(b) >= 1, 10)
        assert (boots[0]["incarnation"], boots[0]["reset_cause"], boots[0]["corr"]) == (1, 0, 0)
        assert boots[0]["firmware_id"] == firmware_id

        # infer: random int8 input -> exactly TFLM's output bytes
        rng = np.random.default_rng(int(port))
        x = rng.integers(-128, 128, size=role.models[0].input_shape, dtype=np.int8)
        expected = run_tflm(MODEL.read_bytes(), [x])[0].tobytes()
        cmd = {"kind": "cmd", "corr": 4242, "code": 1, "args": b"\x00" + x.tobytes()}
        probe.publish(f"{base}/cmd", protocol.encode(cmd), qos=1)
        resps = _wait_payloads(
            probe, f"{base}/resp", lambda r: any(m["corr"] == 4242 for m in r), 30
        )
        resp = next(m for m in resps if m["corr"] == 4242)
        assert (resp["code"], resp["state"], resp["error"]) == (1, 0, 0)
        assert resp["result"] == expected
        qemu.expect(r"^CMD 4242 1 0 0\r?$", 10)

        # profile: one entry per layer (times from SysTick-derived cycles), before its resp
        probe.publish(
            f"{base}/cmd",
            protocol.encode({"kind": "cmd", "corr": 99, "code": 4, "args": b"\x00"}),
            qos=1,
        )
        _wait_payloads(probe, f"{base}/resp", lambda r: any(m["corr"] == 99 for m in r), 30)
        profiles = [p for p in _wait_payloads(probe, f"{base}/profile", bool, 5) if p["corr"] == 99]
        layers = [layer for p in profiles for layer in p["layers"]]
        total = profiles[0]["total_layers"]
        assert total == manifest["models"][0]["layers"] and total >= 2
        assert sorted(layer["index"] for layer in layers) == list(range(total))
        assert sum(layer["macs"] for layer in layers) > 0
        assert all(layer["time"] > 0 for layer in layers if layer["macs"] > 0), layers

        # heartbeat: at 1 s, at least two, counting the inferences
        hbs = _wait_payloads(probe, f"{base}/hb", lambda h: len(h) >= 2, 15)
        assert hbs[-1]["incarnation"] == 1 and hbs[-1]["seq"] > hbs[0]["seq"]
        _wait_payloads(probe, f"{base}/hb", lambda h: h[-1]["inferences"] >= 2, 10)

        # reboot: accepted, clean DISCONNECT, system reset; the next boot (same QEMU process)
        # names the command and takes incarnation 2 from .noinit RAM, then a new birth
        probe.publish(
            f"{base}/cmd",
            protocol.encode({"kind": "cmd", "corr": 58, "code": 5, "args": b""}),
            qos=1,
        )
        qemu.expect(r"^REBOOT 58\r?$", 20)
        boot2 = qemu.expect(r"^SHOAL-AGENT BOOT .*$", 20).group(0).decode()
        assert "incarnation=2 " in boot2
        boots = _wait_payloads(probe, f"{base}/boot", lambda b: any(m["corr"] == 58 for m in b), 20)
        reboot = next(m for m in boots if m["corr"] == 58)
        assert (reboot["reset_cause"], reboot["incarnation"]) == (1, 2)
        assert reboot["firmware_id"] == firmware_id
        births = _wait_payloads(probe, f"{base}/birth", lambda b: len(b) >= 2, 20)
        assert births[-1]["incarnation"] == 2
        assert not probe.payloads(f"{base}/will"), "a reboot disconnects cleanly: no will"

        # kill -9: the gateway publishes the will after 1.5 x keep-alive (3 s)
        assert qemu.pid is not None
        os.kill(qemu.pid, signal.SIGKILL)
        t0 = time.monotonic()
        wills = _wait_payloads(probe, f"{base}/will", lambda w: len(w) >= 1, 15)
        assert wills[0]["kind"] == "will" and wills[0]["incarnation"] == 2
        assert time.monotonic() - t0 < 15
    finally:
        if qemu is not None:
            qemu.close()
        gateway.stop()


VIBRATION = REPO / "examples" / "roles" / "vibration_anomaly.yaml"
REPLAY = REPO / "tests" / "data" / "roles" / "vibration_replay.csv"
DENSE = REPO / "tests" / "data" / "shoal_dense_tiny.tflite"


def test_qemu_agent_publishes_json_results_and_sleeps(broker, probe, tmp_path: Path) -> None:
    """On the soft-float Cortex-M3: replayed samples through a float32-input model, published as
    JSON (newlib-nano float printf) every 200 ms, each result TFLM's output for one of the
    replay's windows; a sleep command (MQTT-SN DISCONNECT with duration over the UART) is
    answered, the agent wakes and connects again with a new birth, and a command sent while
    it slept is still answered."""
    for tool in ("arm-none-eabi-gcc", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is needed to build the QEMU agent")
    if not qemu_available():
        pytest.skip("qemu-system-arm is not installed")
    run_tflm_invocations = pytest.importorskip("host_sdk.verify.tflm_oracle").run_tflm_invocations
    client_id = harness.unique("vq")
    text = VIBRATION.read_text()
    for old, new in {
        "../../tests/data/shoal_dense_tiny.tflite": str(DENSE),
        "adc: {channel: 3, scale: 0.001, offset: -1.65}": (
            f"simulated: {{generator: replay, file: {REPLAY}}}"
        ),
        "on_threshold: {source: vibration, above: 1.5, run: [health]}": (
            "periodic: {period_ms: 200, run: [health]}"
        ),
        "threshold: 0.5": "threshold: 0.0",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace("\nclient_id:", "\n# client_id:") + f'\nclient_id: "{client_id}"\n'
    commands = next(line for line in text.splitlines() if line.startswith("commands:"))
    assert "sleep" in commands and "status" in commands, commands
    spec_path = tmp_path / "vibration.yaml"
    spec_path.write_text(text)
    role = load_role_spec(spec_path)
    board = get_board("qemu-lm3s6965evb")
    out = tmp_path / "agent"
    generate_c_agent(role, board, out)
    elf = _build(out)

    lines = REPLAY.read_text().splitlines()
    samples = [float(x) for x in lines if x.strip() and not x.lstrip().startswith("#")]
    windows = [
        np.array([[samples[(start + i) % len(samples)] for i in range(16)]], np.float32)
        for start in range(len(samples))
    ]
    outputs = [o[0][0] for o in run_tflm_invocations(DENSE.read_bytes(), [[w] for w in windows])]
    labels = ["normal", "imbalance", "bearing_wear"]
    possible = {(labels[int(np.argmax(o))], round(float(np.max(o)), 4)) for o in outputs}

    topic = f"plant/{role.role}/{client_id}/health"
    base = f"shoal/v1/{role.role}/{client_id}"
    probe.subscribe(topic, qos=1)
    probe.subscribe(f"{base}/#", qos=1)
    gateway = harness.ShoalGatewayProcess(
        broker.url, "--serial-listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "gw")
    )
    qemu = None
    try:
        ((host, port),) = gateway.serial_listen
        qemu = QemuBoard(board, elf, serial_link=f"tcp:{host}:{port},nodelay=on")
        qemu.start()
        boot = qemu.expect(r"^SHOAL-AGENT BOOT .*$", 20).group(0).decode()
        assert (
            f"role=vibration board=qemu-lm3s6965evb firmware={json.loads((out / 'agent.json').read_text())['firmware_id']}"
            in boot
        )
        qemu.expect(r"^NOTE not implemented by the C agent yet: duty_cycle\r?$", 5)
        messages = probe.wait_for(lambda m: sum(t == topic for t, *_ in m) >= 3, 30)
        results = [json.loads(p) for t, p, _q, _r in messages if t == topic]
        seqs = [r["seq"] for r in results]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        for result in results:
            assert result["model"] == "health"
            assert result["top"] == [[result["label"], result["score"]]]
            assert (result["label"], round(result["score"], 4)) in possible, (result, possible)

        _wait_payloads(probe, f"{base}/birth", lambda b: len(b) >= 1, 10)
        sleep_cmd = {"kind": "cmd", "corr": 31, "code": 6, "args": struct.pack("<I", 2)}
        probe.publish(f"{base}/cmd", protocol.encode(sleep_cmd), qos=1)
        qemu.expect(r"^SLEEP 2\r?$", 15)
        resps = _wait_payloads(probe, f"{base}/resp", lambda r: any(m["corr"] == 31 for m in r), 10)
        answer = next(m for m in resps if m["corr"] == 31)
        assert (answer["state"], answer["error"]) == (0, 0)
        status_cmd = {"kind": "cmd", "corr": 32, "code": 3, "args": b""}
        probe.publish(f"{base}/cmd", protocol.encode(status_cmd), qos=1)
        qemu.expect(r"^WAKE\r?$", 15)
        _wait_payloads(probe, f"{base}/birth", lambda b: len(b) >= 2, 15)
        _wait_payloads(probe, f"{base}/resp", lambda r: any(m["corr"] == 32 for m in r), 15)
    finally:
        if qemu is not None:
            qemu.close()
        gateway.stop()
