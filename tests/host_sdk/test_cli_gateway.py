"""`shoal gateway` through its real console-script entry point: start, serve one client, exit 0
on SIGTERM; bad flags or config give one line on stderr and exit status 2."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from host_sdk.broker import MosquittoBroker, find_mosquitto
from host_sdk.mqttsn import codec

SHOAL = shutil.which("shoal", path=str(Path(sys.executable).parent))


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with MosquittoBroker() as running:
        yield running


def start_shoal_gateway(*args: str) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    assert SHOAL is not None, "the shoal console script is not installed in this environment"
    process = subprocess.Popen(
        [SHOAL, "gateway", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready = process.stdout.readline()
    if not ready.startswith("gateway ready udp="):
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(f"no ready line: {ready!r} {err}")
    host, _, port = ready.split()[2].removeprefix("udp=").rpartition(":")
    return process, (host, int(port))


def exchange(sock: socket.socket, gateway: tuple[str, int], message: codec.Message) -> object:
    sock.sendto(codec.encode(message), gateway)
    return codec.decode(sock.recvfrom(65535)[0])


@pytest.mark.sim
def test_gateway_command_serves_a_client_and_exits_0_on_sigterm(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[broker]\nurl = "mqtt://127.0.0.1:1"\n\n[gateway]\nudp = "127.0.0.1:1"\n\n'
        '[predefined_topics]\n7 = "fleet/announce"\n'
    )
    received: list[tuple[str, bytes]] = []
    probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    probe.on_message = lambda _c, _u, m: received.append((m.topic, bytes(m.payload)))
    probe.connect("127.0.0.1", broker.port)
    probe.subscribe("fleet/#", 1)
    probe.loop_start()
    # Flags override the file: its broker port 1 and UDP port 1 would not work.
    process, gateway = start_shoal_gateway(
        "--config", str(config), "--broker", broker.url, "--udp", "127.0.0.1:0",
        "--stats-interval", "0.2", "--json-stats",
    )  # fmt: skip
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    try:
        assert exchange(sock, gateway, codec.Connect("cli-client", 30)) == codec.Connack(0)
        publish = codec.Publish(7, b"hello", 1, 1, codec.TOPIC_PREDEFINED)
        assert exchange(sock, gateway, publish) == codec.Puback(7, 1, 0)
        deadline = time.monotonic() + 10
        while ("fleet/announce", b"hello") not in received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("fleet/announce", b"hello") in received
    finally:
        sock.close()
        probe.loop_stop()
        probe.disconnect()
        process.send_signal(signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 0, err
    stats = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert stats and stats[-1]["gateway"]["received"] >= 2, out


@pytest.mark.sim
@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--broker", "http://127.0.0.1:1883"], "broker URL"),
        (["--udp", "nowhere"], "--udp"),
        (["--udp", "127.0.0.1:0", "--config", "/nonexistent/gateway.toml"], "gateway.toml"),
        (["--udp", "127.0.0.1:0", "--stats-interval", "-1"], "--stats-interval"),
        (["--udp", "none"], "no listener"),
        (["--udp", "127.0.0.1:0", "--serial", "socket://127.0.0.1:1"], "serial link"),
        (
            ["--udp", "127.0.0.1:0", "--advertise-to", "nope"],
            "--advertise-to: 'nope' is not host:port",
        ),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], names: str) -> None:
    assert SHOAL is not None
    result = subprocess.run(
        [SHOAL, "gateway", "--broker", "mqtt://127.0.0.1:1", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "error" in lines[0], result.stderr
