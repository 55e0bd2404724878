"""Device runtimes against `shoal gateway` (a real process, SIGKILLed and restarted mid-session)
and a real mosquitto: the C native client and the MicroPython client (unix port) reconnect with
backoff after the restarted gateway answers with DISCONNECT or after it stayed away past N_RETRY
(LOST), subscribe again (clean session) or keep their session (persistent), exit cleanly (QoS 2 exchanges finished, PUBCOMP before
DISCONNECT, so no will) while a killed device's will is published, and count a QoS 2 message
exactly once even when the gateway's PUBLISH arrives twice.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway_harness import (
    ClientKind,
    ClientProcess,
    MqttProbe,
    RecordingUdpProxy,
    ShoalGatewayProcess,
    unique,
)

from host_sdk.broker import MosquittoBroker
from host_sdk.mqttsn import codec

pytestmark = [pytest.mark.sim, pytest.mark.slow]

# Fast timers for loopback: T_RETRY 300 ms, N_RETRY 3, first reconnect pause 200 ms.
FAST = ("--retry-ms", "300", "--max-retries", "3", "--reconnect-ms", "200",
        "--reconnect-max-ms", "2000")  # fmt: skip
GATEWAY_TOML = '[broker]\nurl = "mqtt://127.0.0.1:1"\n\n[gateway]\nretry_s = 0.5\n'

GatewayFactory = Callable[..., ShoalGatewayProcess]


@pytest.fixture
def shoal_gateway(broker: MosquittoBroker, tmp_path: Path) -> Iterator[GatewayFactory]:
    """Factory: `shoal_gateway(*extra_args)` starts `shoal gateway` with T_RETRY 0.5 s and a
    state directory under tmp_path (unless the arguments name one)."""
    config = tmp_path / "gateway.toml"
    config.write_text(GATEWAY_TOML)
    started: list[ShoalGatewayProcess] = []

    def start(*args: str) -> ShoalGatewayProcess:
        if "--state-dir" not in args:  # never the user's default state directory
            args = (*args, "--state-dir", str(tmp_path / f"state-{len(started)}"))
        gateway = ShoalGatewayProcess(broker.url, "--config", str(config), *args)
        started.append(gateway)
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            gateway.stop()


def wait_recv(client: ClientProcess, topic: str, qos: int, payload: bytes, after: int) -> int:
    """Index of the RECV line of `payload` (retained replay or live: either retain flag)."""
    deadline = time.monotonic() + 15
    while True:
        for index in range(after, len(client.lines)):
            line = client.lines[index].split()
            if line[:3] == ["RECV", topic, str(qos)] and line[-1] == payload.hex():
                return index
        if time.monotonic() > deadline:
            pytest.fail(f"no RECV {topic} {payload!r}:\n" + client.output())
        time.sleep(0.05)


def reconnected_after_restart(client: ClientProcess, gateway: ShoalGatewayProcess) -> int:
    """SIGKILL the gateway, start it again on the same port; the client (keep-alive 1 s) pings,
    gets DISCONNECT from the gateway that no longer knows it, and reconnects. Returns the index
    of the RECONNECTED line."""
    before = len(client.lines)
    # Paused meanwhile: on a loaded machine the restart can outlast the device's keep-alive
    # retries, and the device would then find the gateway LOST on its own instead.
    client.process.send_signal(signal.SIGSTOP)
    try:
        gateway.restart()
    finally:
        client.process.send_signal(signal.SIGCONT)
    dropped = client.wait_line("DISCONNECTED", 15, after=before)
    return client.wait_line("RECONNECTED", 15, after=dropped)


def test_restarted_gateway_disconnect_makes_the_device_reconnect_and_resubscribe(
    client_kind: ClientKind,
    probe: MqttProbe,
    shoal_gateway: GatewayFactory,
    clients: list[ClientProcess],
) -> None:
    gateway = shoal_gateway()
    device = unique("phoenix-")
    probe.subscribe(f"up/{device}", 1)
    client = client_kind.start(
        "--gateway", f"127.0.0.1:{gateway.port}", "--client-id", device, "--keepalive", "1",
        "--sub", f"cmd/{device}:1", "--pub", f"up/{device}:1:n-{{n}}", "--count", "30",
        "--interval-ms", "100", "--expect", "1", "--timeout-ms", "40000", *FAST,
    )  # fmt: skip
    clients.append(client)
    client.wait_line("READY")
    client.wait_line("PUBDONE")
    back = reconnected_after_restart(client, gateway)
    # The new gateway has no subscription of ours: only a re-SUBSCRIBE brings this (retained)
    # command, and only once the device subscribed again after RECONNECTED.
    probe.publish(f"cmd/{device}", b"after-restart", qos=1, retain=True)
    suback = client.wait_line("SUBACK", 15, after=back)
    recv = wait_recv(client, f"cmd/{device}", 1, b"after-restart", back)
    assert suback < recv
    assert client.wait_exit() == 0, client.output()
    # Publishing resumed on the new gateway: the last round reaches the broker.
    probe.wait_for(lambda m: (f"up/{device}", b"n-30", 1, False) in m, 10)
    probe.publish(f"cmd/{device}", b"", qos=1, retain=True)  # clear the retained command


def test_device_keeps_reconnecting_while_the_gateway_is_down_then_resubscribes(
    client_kind: ClientKind,
    probe: MqttProbe,
    shoal_gateway: GatewayFactory,
    clients: list[ClientProcess],
) -> None:
    gateway = shoal_gateway()
    device = unique("patient-")
    client = client_kind.start(
        "--gateway", f"127.0.0.1:{gateway.port}", "--client-id", device, "--keepalive", "1",
        "--sub", f"cmd/{device}:1", "--expect", "1", "--timeout-ms", "40000", *FAST,
    )  # fmt: skip
    clients.append(client)
    client.wait_line("READY")
    gateway.kill()
    lost = client.wait_line("LOST", 10)  # PINGREQ unanswered N_RETRY times
    time.sleep(2.0)  # CONNECT attempts fail meanwhile; the pauses grow (unit-tested)
    assert not client.matching("RECONNECTED")
    gateway.start()
    back = client.wait_line("RECONNECTED", 15, after=lost)
    probe.publish(f"cmd/{device}", b"back", qos=1, retain=True)
    wait_recv(client, f"cmd/{device}", 1, b"back", back)
    assert client.wait_exit() == 0, client.output()
    probe.publish(f"cmd/{device}", b"", qos=1, retain=True)


def test_clean_exit_publishes_no_will_but_a_killed_device_does(
    client_kind: ClientKind,
    probe: MqttProbe,
    shoal_gateway: GatewayFactory,
    clients: list[ClientProcess],
) -> None:
    gateway = shoal_gateway()
    polite, killed = unique("polite-"), unique("killed-")
    probe.subscribe("will/#", 1)

    def start(device: str, run_ms: str) -> ClientProcess:
        client = client_kind.start(
            "--gateway", f"127.0.0.1:{gateway.port}", "--client-id", device, "--keepalive", "1",
            "--will-topic", f"will/{device}", "--will-msg", "gone", "--will-qos", "1",
            "--run-ms", run_ms, "--timeout-ms", "40000", *FAST,
        )  # fmt: skip
        clients.append(client)
        client.wait_line("READY")
        return client

    survivor, victim = start(polite, "4000"), start(killed, "60000")
    # Both sessions (and wills) exist on the restarted gateway only through the reconnect.
    before = len(survivor.lines)
    gateway.restart()
    for client in (survivor, victim):
        client.wait_line("RECONNECTED", 15, after=before if client is survivor else 0)
    assert survivor.wait_exit() == 0, survivor.output()
    victim.kill()  # no DISCONNECT: the gateway notices after 1.5 x keep-alive
    probe.wait_for(lambda m: (f"will/{killed}", b"gone", 1, False) in m, 10)
    assert probe.payloads(f"will/{polite}") == [], "a clean exit must not publish the will"
    assert survivor.lines.index("DONE") < len(survivor.lines) - 1
    assert "DISCONNECTED" in survivor.lines[survivor.lines.index("DONE") :], survivor.output()


def test_qos2_in_flight_at_exit_finishes_before_disconnect_and_counts_once(
    client_kind: ClientKind,
    probe: MqttProbe,
    shoal_gateway: GatewayFactory,
    clients: list[ClientProcess],
) -> None:
    gateway = shoal_gateway()
    device = unique("exactly-")
    dropped_pubrec: list[bytes] = []

    def drop_first_pubrec(way: str, datagram: bytes) -> bool:
        # The gateway then retransmits its PUBLISH (DUP) after T_RETRY: a copy to suppress.
        if way == "up" and datagram[1:2] == bytes([codec.PUBREC]) and not dropped_pubrec:
            dropped_pubrec.append(datagram)
            return True
        return False

    def hold_pubrel(way: str, datagram: bytes) -> float:
        # The PUBREL comes late: the device has what it expected and must still wait for it.
        return 0.6 if way == "down" and datagram[1:2] == bytes([codec.PUBREL]) else 0.0

    proxy = RecordingUdpProxy(
        ("127.0.0.1", gateway.port), delay_s=hold_pubrel, drop=drop_first_pubrec
    )
    try:
        client = client_kind.start(
            "--gateway", f"127.0.0.1:{proxy.port}", "--client-id", device, "--keepalive", "1",
            "--sub", f"cmd/{device}:2", "--pub", f"up/{device}:2:last-words", "--expect", "1",
            "--timeout-ms", "40000", *FAST,
        )  # fmt: skip
        clients.append(client)
        probe.subscribe(f"up/{device}", 2)
        client.wait_line("READY")
        back = reconnected_after_restart(client, gateway)
        probe.publish(f"cmd/{device}", b"once", qos=2, retain=True)
        wait_recv(client, f"cmd/{device}", 2, b"once", back)
        assert client.wait_exit() == 0, client.output()
        up, down = proxy.messages("up"), proxy.messages("down")
    finally:
        proxy.stop()
    probe.publish(f"cmd/{device}", b"", qos=1, retain=True)
    assert len(client.matching(f"RECV cmd/{device}")) == 1, client.output()
    copies = [m for m in down if isinstance(m, codec.Publish) and m.data == b"once"]
    assert len(copies) >= 2 and copies[-1].dup, "the gateway should have sent the PUBLISH again"
    msg_id = copies[0].msg_id
    pubcomp = [i for i, m in enumerate(up) if isinstance(m, codec.Pubcomp) and m.msg_id == msg_id]
    disconnects = [i for i, m in enumerate(up) if isinstance(m, codec.Disconnect)]
    assert pubcomp and disconnects, up
    assert pubcomp[0] < disconnects[-1], "DISCONNECT went before our PUBCOMP"
    # The device's own QoS 2 publish completed (PUBCOMP from the gateway) and arrived once.
    probe.wait_for(lambda m: any(t == f"up/{device}" for t, *_ in m), 10)
    assert probe.payloads(f"up/{device}") == [b"last-words"]


def test_persistent_session_survives_a_gateway_restart_without_resubscribing(
    client_kind: ClientKind,
    probe: MqttProbe,
    shoal_gateway: GatewayFactory,
    clients: list[ClientProcess],
    tmp_path: Path,
) -> None:
    gateway = shoal_gateway("--state-dir", str(tmp_path / "state"))
    device = unique("durable-")
    client = client_kind.start(
        "--gateway", f"127.0.0.1:{gateway.port}", "--client-id", device, "--clean", "0",
        "--keepalive", "2", "--sub", f"cmd/{device}:1", "--expect", "1", "--timeout-ms", "40000",
        "--retry-ms", "1000", "--max-retries", "8", "--reconnect-ms", "200",
    )  # fmt: skip
    clients.append(client)
    client.wait_line("READY")
    before = len(client.lines)
    gateway.restart()  # SIGKILL, same state directory
    for n in range(40):  # until the restored upstream subscription is in place
        probe.publish(f"cmd/{device}", f"kept-{n}".encode(), qos=1)
        if client.matching(f"RECV cmd/{device}"):
            break
        time.sleep(0.25)
    client.wait_line(f"RECV cmd/{device} 1 0", 5, after=before)
    assert client.wait_exit() == 0, client.output()
    session = client.lines[before : client.lines.index("DONE")]  # up to its own DISCONNECT
    # The restored session answered the pings: no DISCONNECT, no reconnect, no re-SUBSCRIBE.
    unexpected = ("SUBACK", "RECONNECTED", "LOST", "DISCONNECTED")
    assert not [line for line in session if line.startswith(unexpected)], client.output()
