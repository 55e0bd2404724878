"""End to end: the C client (native process) and the MicroPython client (unix port) talk
through the asyncio gateway to a real mosquitto and a paho-mqtt probe in the test."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from gateway_harness import (
    ClientKind,
    ClientProcess,
    GatewayThread,
    MqttProbe,
    unique,
)

from host_sdk.broker import MosquittoBroker

pytestmark = [pytest.mark.sim]

BINARY = b"\x00\x01binary\xff"
FAST_RETRY = ("--retry-ms", "300", "--max-retries", "10", "--reconnect-ms", "300")


def test_publish_subscribe_and_retained(
    client_kind: ClientKind,
    broker: MosquittoBroker,
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    clients: list[ClientProcess],
) -> None:
    gateway = start_gateway()
    device = unique("dev-")
    up, down = f"up/{device}", f"down/{device}"
    probe.subscribe(f"{up}/#")
    # Retained before the device exists: delivered when it subscribes (late subscriber).
    probe.publish(f"{down}/config", b"retained-config", qos=1, retain=True)
    client = client_kind.start(
        "--gateway", f"127.0.0.1:{gateway.port}", "--client-id", device,
        "--sub", f"{down}/#:2",
        "--pub", f"{up}/q0:0:zero-{{n}}", "--pub", f"{up}/q1:1:one-{{n}}",
        "--pub", f"{up}/q2:2:two-{{n}}", "--pub", f"{up}/kept:1:last-will-not:1",
        "--count", "3", "--expect", "3", "--timeout-ms", "20000", *FAST_RETRY,
    )  # fmt: skip
    clients.append(client)
    client.wait_line("READY")
    retained = client.wait_line(f"RECV {down}/config 1 1 {b'retained-config'.hex()}")
    # Live messages on the wildcard filter: the gateway REGISTERs each new topic first.
    probe.publish(f"{down}/cmd/a", BINARY, qos=1)
    probe.publish(f"{down}/cmd/b", b"two", qos=2)
    recv_a = client.wait_line(f"RECV {down}/cmd/a 1 0 {BINARY.hex()}")
    recv_b = client.wait_line(f"RECV {down}/cmd/b 2 0 {b'two'.hex()}")
    assert retained < recv_a < recv_b
    if client_kind.name == "c":
        # The C program prints the gateway's REGISTER; the MicroPython app reports only its
        # own, but it can name the topic in RECV only because the REGISTER came first.
        registers = [
            index
            for index, line in enumerate(client.lines)
            if line.startswith("REGISTER ") and line.endswith(f" {down}/cmd/a")
        ]
        assert registers and retained < registers[0] < recv_a, client.output()
    assert client.wait_exit() == 0, client.output()
    client.wait_line("DONE")
    probe.wait_for(lambda m: len([x for x in m if x[0] != f"{up}/q0"]) >= 9, 10)
    for qos, name in ((1, "one"), (2, "two")):
        # QoS 1 may duplicate in general, but not on this loss-free link; QoS 2 never.
        assert probe.payloads(f"{up}/q{qos}") == [f"{name}-{n}".encode() for n in (1, 2, 3)]
    assert set(probe.payloads(f"{up}/q0")) <= {b"zero-1", b"zero-2", b"zero-3"}
    assert probe.payloads(f"{up}/kept")[-1] == b"last-will-not"
    assert client.matching(f"RECV {down}/") and len(client.matching("RECV")) == 3
    # The device's retained publish reaches a subscriber that comes later.
    late = MqttProbe(broker.port)
    try:
        late.subscribe(f"{up}/kept", 1)
        late.wait_for(lambda m: (f"{up}/kept", b"last-will-not", 1, True) in m, 10)
    finally:
        late.close()


def wait_upstream_filters(gateway: GatewayThread, count: int) -> None:
    """Until the gateway holds `count` broker subscriptions (so broker messages reach it)."""
    stats = gateway.wait_stats(lambda s: s["broker"]["filters"] >= count)
    assert stats["broker"]["filters"] >= count, stats


@pytest.mark.slow
def test_will_published_when_client_dies(
    client_kind: ClientKind,
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    clients: list[ClientProcess],
) -> None:
    gateway = start_gateway()
    device = unique("will-")
    probe.subscribe(f"will/{device}")
    client = client_kind.start(
        "--gateway", f"127.0.0.1:{gateway.port}", "--client-id", device, "--keepalive", "2",
        "--will-topic", f"will/{device}", "--will-msg", "gone for good", "--will-qos", "1",
        "--run-ms", "60000", "--timeout-ms", "60000",
    )  # fmt: skip
    clients.append(client)
    client.wait_line("READY")
    time.sleep(2.5)  # alive past one keep-alive period: no will while it pings
    assert probe.payloads(f"will/{device}") == []
    client.kill()  # no DISCONNECT: the gateway notices when 1.5 x keep-alive passes
    probe.wait_for(lambda m: (f"will/{device}", b"gone for good", 1, False) in m, 10)
    stats = gateway.stats()["gateway"]
    assert stats["wills_published"] == 1 and stats["clients"] == 0


@pytest.mark.slow
def test_sleeping_client_gets_messages_after_waking(
    client_kind: ClientKind,
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    clients: list[ClientProcess],
) -> None:
    gateway = start_gateway()
    device = unique("sleepy-")
    client = client_kind.start(
        "--gateway", f"127.0.0.1:{gateway.port}", "--client-id", device,
        "--sub", f"cmd/{device}:1", "--sleep", "2", "--expect", "3",
        "--timeout-ms", "20000", *FAST_RETRY,
    )  # fmt: skip
    clients.append(client)
    client.wait_line("READY")
    asleep = client.wait_line("ASLEEP")
    wait_upstream_filters(gateway, 1)
    for n in range(3):
        probe.publish(f"cmd/{device}", f"while-asleep-{n}".encode(), qos=1)
    # The first wake-up is 0.75 x 2 s after ASLEEP: until then the gateway holds the messages.
    state = gateway.stats()["clients"][device]["state"]
    assert state == "asleep" and not client.matching("RECV"), (state, client.output())
    received = [
        client.wait_line(f"RECV cmd/{device} 1 0 {f'while-asleep-{n}'.encode().hex()}")
        for n in range(3)
    ]
    assert asleep < min(received)
    assert client.wait_exit() == 0, client.output()


@pytest.mark.slow
def test_clients_reconnect_after_gateway_restart(
    client_kind: ClientKind,
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    clients: list[ClientProcess],
) -> None:
    gateway = start_gateway()
    port = gateway.port
    device = unique("phoenix-")
    client = client_kind.start(
        "--gateway", f"127.0.0.1:{port}", "--client-id", device, "--keepalive", "1",
        "--sub", f"cmd/{device}:1", "--expect", "1", "--timeout-ms", "30000",
        "--retry-ms", "300", "--max-retries", "2", "--reconnect-ms", "300",
    )  # fmt: skip
    clients.append(client)
    client.wait_line("READY")
    gateway.stop()
    lost = client.wait_line("LOST", 15)
    restarted = start_gateway(port)
    client.wait_line("RECONNECTED", 15, after=lost)
    wait_upstream_filters(restarted, 1)  # the client subscribed again on its own
    probe.publish(f"cmd/{device}", b"after-restart", qos=1)
    client.wait_line(f"RECV cmd/{device} 1 0 {b'after-restart'.hex()}", after=lost)
    assert client.wait_exit() == 0, client.output()


@pytest.mark.slow
def test_clients_keep_working_across_broker_restart(
    client_kind: ClientKind,
    broker: MosquittoBroker,
    start_gateway: Callable[..., GatewayThread],
    clients: list[ClientProcess],
) -> None:
    gateway = start_gateway()
    device = unique("steady-")
    client = client_kind.start(
        "--gateway", f"127.0.0.1:{gateway.port}", "--client-id", device,
        "--sub", f"cmd/{device}:1", "--pub", f"up/{device}:1:tick-{{n}}",
        "--count", "60", "--interval-ms", "100", "--expect", "1", "--timeout-ms", "30000",
        *FAST_RETRY,
    )  # fmt: skip
    clients.append(client)
    client.wait_line("READY")
    broker.restart()
    gateway.wait_stats(lambda s: s["broker"]["connections"] >= 2)
    wait_upstream_filters(gateway, 1)
    after = MqttProbe(broker.port)
    try:
        after.subscribe(f"up/{device}", 1)
        after.wait_for(lambda m: any(t == f"up/{device}" for t, *_ in m), 10)
        after.publish(f"cmd/{device}", b"after-broker-restart", qos=1)
        client.wait_line(f"RECV cmd/{device} 1 0 {b'after-broker-restart'.hex()}")
    finally:
        after.close()
    assert gateway.stats()["broker"]["connections"] >= 2
    assert client.wait_exit() == 0, client.output()
