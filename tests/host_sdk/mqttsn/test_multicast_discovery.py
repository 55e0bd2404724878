"""Gateway discovery on an IPv4 multicast group, on loopback: the C native client and the
MicroPython client (unix port) send SEARCHGW to the group, hear `shoal gateway --multicast`
answer there (GWINFO from its unicast socket) or ADVERTISE there, connect to the sender's
unicast address and keep working across a gateway restart; a GWINFO that another client sends
for the gateway (with GwAdd) names the gateway too. Every group and port is unique per test.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway_harness import (
    ClientKind,
    ClientProcess,
    MqttProbe,
    ShoalGatewayProcess,
    free_udp_port,
    unique,
)

from host_sdk.broker import MosquittoBroker
from host_sdk.mqttsn import codec

pytestmark = [pytest.mark.sim]

FAST = ("--retry-ms", "300", "--max-retries", "3", "--reconnect-ms", "200",
        "--reconnect-max-ms", "2000")  # fmt: skip
_groups = itertools.count(1)


def unique_group() -> str:
    """An administratively scoped group (239/8) no other test of this run uses."""
    n = (os.getpid() * 64 + next(_groups)) % 65000 + 1
    return f"239.255.{n // 256}.{n % 256}"


@pytest.fixture
def group() -> str:
    return f"{unique_group()}:{free_udp_port()}"


@pytest.fixture
def shoal_gateway(
    broker: MosquittoBroker, tmp_path: Path
) -> Iterator[Callable[..., ShoalGatewayProcess]]:
    """Factory: `shoal gateway` with a state directory under tmp_path."""
    started: list[ShoalGatewayProcess] = []

    def start(*args: str) -> ShoalGatewayProcess:
        state = tmp_path / f"state-{len(started)}"
        gateway = ShoalGatewayProcess(broker.url, "--state-dir", str(state), *args)
        started.append(gateway)
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            gateway.stop()


def multicast_args(group: str) -> tuple[str, ...]:
    return ("--multicast", group, "--multicast-interface", "127.0.0.1")


def test_searchgw_on_the_group_finds_the_gateway_for_two_devices(
    client_kind: ClientKind,
    probe: MqttProbe,
    group: str,
    shoal_gateway: Callable[..., ShoalGatewayProcess],
    clients: list[ClientProcess],
) -> None:
    gateway = shoal_gateway(*multicast_args(group))
    devices = [unique("seeker-"), unique("seeker-")]
    for device in devices:
        probe.subscribe(f"up/{device}", 1)
    # No --gateway: the address comes from the group. Two devices on one host share the port.
    started = []
    for device in devices:
        client = client_kind.start(
            *multicast_args(group), "--client-id", device, "--keepalive", "1",
            "--pub", f"up/{device}:1:found-{{n}}", "--count", "2", "--interval-ms", "2500",
            "--timeout-ms", "30000", *FAST,
        )  # fmt: skip
        started.append(client)
    clients.extend(started)
    for client in started:
        found = client.wait_line("GWINFO 1", 15)
        assert found < client.wait_line("CONNACK 0", 10), client.output()
        client.wait_line("PUBDONE", 10)
    # Mid-session restart: the devices come back to the same unicast address.
    before = [len(client.lines) for client in started]
    gateway.restart()
    for client, after in zip(started, before, strict=True):
        client.wait_line("RECONNECTED", 15, after=after)
        assert client.wait_exit() == 0, client.output()
    for device in devices:
        probe.wait_for(lambda m, d=device: (f"up/{d}", b"found-2", 1, False) in m, 10)


def test_device_searching_before_the_gateway_starts_connects_on_its_advertise(
    client_kind: ClientKind,
    probe: MqttProbe,
    group: str,
    shoal_gateway: Callable[..., ShoalGatewayProcess],
    clients: list[ClientProcess],
) -> None:
    device = unique("early-")
    probe.subscribe(f"up/{device}", 1)
    # SEARCHGW every 4 s (C: T_RETRY; MicroPython: T_SEARCHGW 5 s): the gateway's ADVERTISE,
    # sent to the group when it starts, comes first.
    client = client_kind.start(
        *multicast_args(group), "--client-id", device, "--retry-ms", "4000",
        "--max-retries", "5", "--pub", f"up/{device}:1:early", "--timeout-ms", "30000",
    )  # fmt: skip
    clients.append(client)
    shoal_gateway(*multicast_args(group))
    advertise = client.wait_line("ADVERTISE 1 ", 10)
    assert advertise < client.wait_line("CONNACK 0", 10), client.output()
    assert not client.matching("GWINFO"), client.output()
    assert client.wait_exit() == 0, client.output()
    probe.wait_for(lambda m: (f"up/{device}", b"early", 1, False) in m, 10)


class GroupResponder:
    """A client that knows the gateway: answers SEARCHGW heard on the group with a GWINFO that
    carries GwAdd (IPv4 address and port of the gateway, 6 bytes), sent to the group."""

    def __init__(self, group: str, gateway: tuple[str, int]) -> None:
        host, port = group.rsplit(":", 1)
        self.group = (host, int(port))
        self.gw_add = socket.inet_aton(gateway[0]) + struct.pack(">H", gateway[1])
        self.answered = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(self.group)
        loopback = socket.inet_aton("127.0.0.1")
        self.sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(host) + loopback
        )
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, loopback)
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self.sock.recv(2048)
            except TimeoutError:
                continue
            if datagram[1:2] == bytes([codec.SEARCHGW]):
                answer = codec.encode(codec.GwInfo(9, self.gw_add))
                self.sock.sendto(answer, self.group)
                self.answered += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_gwinfo_with_gwadd_from_another_client_names_the_gateway(
    client_kind: ClientKind,
    probe: MqttProbe,
    group: str,
    shoal_gateway: Callable[..., ShoalGatewayProcess],
    clients: list[ClientProcess],
) -> None:
    gateway = shoal_gateway()  # unicast only: it never hears the group
    device = unique("told-")
    probe.subscribe(f"up/{device}", 1)
    responder = GroupResponder(group, ("127.0.0.1", gateway.port))
    try:
        client = client_kind.start(
            *multicast_args(group), "--client-id", device, "--pub", f"up/{device}:1:via-gwadd",
            "--timeout-ms", "20000", *FAST,
        )  # fmt: skip
        clients.append(client)
        assert client.wait_line("GWINFO 9", 10) < client.wait_line("CONNACK 0", 10)
        assert client.wait_exit() == 0, client.output()
    finally:
        responder.close()
    assert responder.answered >= 1
    probe.wait_for(lambda m: (f"up/{device}", b"via-gwadd", 1, False) in m, 10)
