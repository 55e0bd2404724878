"""The asyncio gateway with a real mosquitto, driven by raw MQTT-SN datagrams and serial frames
written in the test: malformed input, access control, statistics and the serial transport."""

from __future__ import annotations

import json
import random
import resource
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway_harness import (
    GatewayThread,
    MqttProbe,
    unique,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_sdk.mqttsn import codec
from host_sdk.mqttsn.framing import FrameDecoder, encode_frame
from host_sdk.mqttsn.gateway_config import AccessRule

pytestmark = [pytest.mark.sim]


class RawClient:
    """One MQTT-SN client address speaking hand-built datagrams."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        self.gateway = ("127.0.0.1", port)

    def send(self, message: codec.Message | bytes) -> None:
        raw = message if isinstance(message, bytes) else codec.encode(message)
        self.sock.sendto(raw, self.gateway)

    def receive(self) -> codec.Message:
        data, _ = self.sock.recvfrom(65535)
        return codec.decode(data)

    def request(self, message: codec.Message | bytes) -> codec.Message:
        self.send(message)
        return self.receive()

    def connect(self, client_id: str) -> codec.Message:
        return self.request(codec.Connect(client_id, 60))

    def register(self, topic: str, msg_id: int = 1) -> int:
        reply = self.request(codec.Register(0, msg_id, topic))
        assert isinstance(reply, codec.Regack) and reply.return_code == codec.RC_ACCEPTED
        return int(reply.topic_id)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_clients() -> Iterator[Callable[[int], RawClient]]:
    made: list[RawClient] = []

    def make(port: int) -> RawClient:
        made.append(RawClient(port))
        return made[-1]

    try:
        yield make
    finally:
        for client in made:
            client.close()


def connect_frame(client_id: str) -> bytes:
    return bytes([6 + len(client_id), codec.CONNECT, codec.FLAG_CLEAN_SESSION, 1, 0, 60]) + (
        client_id.encode()
    )


MALFORMED = [
    b"",
    b"\x00",
    b"\x05\x0c\x00",  # length 5, datagram of 3
    b"\x03\x16\x00\x00\x00",  # length 3, datagram of 5
    b"\x07\x0c\x20\x00\x01",  # truncated PUBLISH
    b"\x04\x0c\x20\x00",  # PUBLISH without topic id and message id
    b"\x01\x00\x10\x0c\x00",  # 3-octet length 16, datagram of 5
    b"\x01\x00\x02\x0c",  # 3-octet length below its own header
    b"\x02\x03",  # reserved type
    b"\x02\xff",  # reserved type
    connect_frame("x" * 65),  # client id over 64 bytes (over the 23 allowed)
    connect_frame("y" * 200),
    b"\x05\x12\x20\x00",  # SUBSCRIBE cut short
]


def test_malformed_datagrams_are_counted_and_others_keep_being_served(
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    raw_clients: Callable[[int], RawClient],
) -> None:
    gateway = start_gateway()
    good = raw_clients(gateway.port)
    assert good.connect("good-one") == codec.Connack(codec.RC_ACCEPTED)
    topic = f"up/{unique('m')}"
    probe.subscribe(topic, 1)
    topic_id = good.register(topic)

    attacker = raw_clients(gateway.port)
    for datagram in MALFORMED:
        attacker.send(datagram)
    rng = random.Random(4)
    junk = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))) for _ in range(300)]
    for datagram in junk:
        attacker.send(datagram)
    # Over-long client ids are refused with CONNACK "not supported", not ignored.
    attacker.sock.settimeout(0.5)
    replies = []
    with pytest.raises(TimeoutError):
        while True:
            replies.append(attacker.receive())
    assert replies.count(codec.Connack(codec.RC_NOT_SUPPORTED)) >= 2

    for n in range(5):
        reply = good.request(codec.Publish(topic_id, f"still-{n}".encode(), 1, 10 + n))
        assert reply == codec.Puback(topic_id, 10 + n, codec.RC_ACCEPTED)
    probe.wait_for(lambda m: len([x for x in m if x[0] == topic]) >= 5, 10)
    assert probe.payloads(topic) == [f"still-{n}".encode() for n in range(5)]
    stats = gateway.stats()
    handmade_malformed = len(MALFORMED)
    assert stats["gateway"]["malformed"] >= handmade_malformed, stats["gateway"]
    assert stats["clients"]["good-one"]["malformed"] == 0
    # The attacker's address can still connect properly afterwards.
    assert attacker.connect("late-but-fine") == codec.Connack(codec.RC_ACCEPTED)


VALID = [
    codec.encode(codec.Connect("fuzzed", 30, will=True)),
    codec.encode(codec.Register(0, 1, "a/b")),
    codec.encode(codec.Publish(1, b"payload", 1, 2)),
    codec.encode(codec.Publish(0x6162, b"x" * 300, 2, 3, codec.TOPIC_SHORT)),
    codec.encode(codec.Subscribe(4, "a/+/c", qos=2)),
    codec.encode(codec.Pingreq("fuzzed")),
    codec.encode(codec.Disconnect(60)),
]


@st.composite
def hostile_datagrams(draw: st.DrawFn) -> bytes:
    """Valid messages cut, extended or with bytes flipped, or plain random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "extend"]))
        if action == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[draw(st.integers(0, len(data))) :]
        else:
            data += draw(st.binary(min_size=1, max_size=20))
    return bytes(data)


# One gateway for all examples of the test below (hypothesis runs them in one fixture scope).
_FUZZ: tuple[GatewayThread, RawClient, RawClient] | None = None


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(hostile_datagrams(), min_size=1, max_size=15))
def test_hostile_datagrams_never_stop_the_gateway(
    batch: list[bytes],
    start_gateway: Callable[..., GatewayThread],
    raw_clients: Callable[[int], RawClient],
) -> None:
    # One gateway and two addresses for all examples: state piles up, as it would in the field.
    global _FUZZ
    if _FUZZ is None or _FUZZ[0].loop.is_closed():
        gateway = start_gateway()
        witness = raw_clients(gateway.port)
        assert witness.connect("witness") == codec.Connack(codec.RC_ACCEPTED)
        _FUZZ = (gateway, witness, raw_clients(gateway.port))
    gateway, witness, attacker = _FUZZ
    for datagram in batch:
        attacker.send(datagram)
    assert witness.request(codec.Pingreq()) == codec.Pingresp()
    assert gateway.stats()["gateway"]["internal_errors"] == 0


def test_allowlist_refuses_connects_subscriptions_and_publishes(
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    raw_clients: Callable[[int], RawClient],
) -> None:
    rule = AccessRule(None, "ok-", ("up/%c/#",), ("down/%c/#",))
    gateway = start_gateway(allow=(rule,))
    stranger = raw_clients(gateway.port)
    assert stranger.connect("intruder") == codec.Connack(codec.RC_NOT_SUPPORTED)

    member = raw_clients(gateway.port)
    assert member.connect("ok-7") == codec.Connack(codec.RC_ACCEPTED)
    refused = member.request(codec.Subscribe(3, "down/ok-8/#", qos=1))
    assert refused == codec.Suback(0, 3, 0, codec.RC_NOT_SUPPORTED)
    accepted = member.request(codec.Subscribe(4, "down/ok-7/#", qos=1))
    assert isinstance(accepted, codec.Suback) and accepted.return_code == codec.RC_ACCEPTED

    probe.subscribe("up/#", 1)
    probe.subscribe("down/#", 1)
    probe.subscribe("elsewhere/#", 1)
    # A topic the client may neither publish nor subscribe to cannot even be registered.
    assert member.request(codec.Register(0, 5, "elsewhere/temp")) == codec.Regack(
        0, 5, codec.RC_NOT_SUPPORTED
    )
    allowed_id = member.register("up/ok-7/temp", 6)
    read_only_id = member.register("down/ok-7/cmd", 7)  # may subscribe, not publish
    # A refused PUBLISH is answered PUBACK rc=0x03 (QoS 1/2) or dropped (QoS 0), never sent on.
    assert member.request(codec.Publish(read_only_id, b"no", 1, 8)) == codec.Puback(
        read_only_id, 8, codec.RC_NOT_SUPPORTED
    )
    member.send(codec.Publish(read_only_id, b"no-qos0", 0, 0))
    assert member.request(codec.Publish(allowed_id, b"yes", 1, 9)) == codec.Puback(
        allowed_id, 9, codec.RC_ACCEPTED
    )
    probe.wait_for(lambda m: ("up/ok-7/temp", b"yes", 1, False) in m, 10)
    time.sleep(0.2)
    assert probe.payloads("elsewhere/temp") == []
    assert probe.payloads("down/ok-7/cmd") == []
    stats = gateway.stats()["gateway"]
    assert (
        stats["acl_denied_connects"],
        stats["acl_denied_subscribes"],
        stats["acl_denied_publishes"],
        stats["acl_denied_registers"],
    ) == (1, 1, 2, 1)
    assert "intruder" not in gateway.stats()["clients"]


def test_statistics_are_published_as_json(
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    raw_clients: Callable[[int], RawClient],
) -> None:
    probe.subscribe("shoal/gateway/9/stats", 0)
    gateway = start_gateway(stats_interval_s=0.2, gateway_id=9)
    client = raw_clients(gateway.port)
    assert client.connect("counted") == codec.Connack(codec.RC_ACCEPTED)
    client.send(b"\x05\x0c\x00")
    messages = probe.wait_for(
        lambda m: any(json.loads(p)["gateway"]["malformed"] >= 1 for _t, p, *_ in m), 10
    )
    summary = json.loads(messages[-1][1])
    assert summary["gateway_id"] == 9 and summary["gateway"]["clients"] == 1
    assert summary["gateway"]["received"] >= 1 and summary["gateway"]["sent"] >= 1
    assert "clients" not in summary  # the per-client table stays local (it grows with the fleet)
    stats = gateway.stats()
    assert stats["clients"]["counted"]["received"] == 1
    # Bursts from a fleet need a large socket buffer: 4 MiB, or what the kernel caps it at.
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    assert stats["gateway"]["udp_receive_buffer_bytes"] >= min(4 << 20, rmem_max)


def test_a_thousand_clients_connect_publish_and_are_freed(
    probe: MqttProbe, start_gateway: Callable[..., GatewayThread]
) -> None:
    clients = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < clients + 200:
        wanted = min(hard, clients + 500)
        if wanted < clients + 200:
            pytest.skip(f"needs {clients + 200} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    gateway = start_gateway(predefined_topics=((1, "fleet/readings"),))
    probe.subscribe("fleet/readings", 0)
    sockets = []
    try:
        for index in range(clients):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            sock.sendto(
                codec.encode(codec.Connect(f"fleet-{index}", 60)), ("127.0.0.1", gateway.port)
            )
        for sock in sockets:
            assert codec.decode(sock.recvfrom(64)[0]) == codec.Connack(codec.RC_ACCEPTED)
        assert gateway.stats()["gateway"]["clients"] == clients
        for index, sock in enumerate(sockets):
            publish = codec.Publish(1, str(index).encode(), 0, 0, codec.TOPIC_PREDEFINED)
            sock.sendto(codec.encode(publish), ("127.0.0.1", gateway.port))
        probe.wait_for(lambda m: len(m) >= clients, 20)
        assert sorted(int(p) for p in probe.payloads("fleet/readings")) == list(range(clients))
        for sock in sockets:
            sock.sendto(codec.encode(codec.Disconnect()), ("127.0.0.1", gateway.port))
        for sock in sockets:
            assert codec.decode(sock.recvfrom(64)[0]) == codec.Disconnect()
        stats = gateway.wait_stats(lambda s: s["gateway"]["clients"] == 0)
        assert stats["gateway"]["clients"] == 0 and stats["clients"] == {}
        assert stats["gateway"]["received"] == 3 * clients
    finally:
        for sock in sockets:
            sock.close()


class SerialPeer:
    """The device end of a `socket://` serial link: a TCP server the gateway connects to."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.server.settimeout(10)
        self.port = int(self.server.getsockname()[1])
        self.conn: socket.socket | None = None
        self.decoder = FrameDecoder()
        self._pending: list[bytes] = []

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)
        self.decoder = FrameDecoder()

    def write(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def receive(self) -> codec.Message:
        assert self.conn is not None
        while not self._pending:
            data = self.conn.recv(4096)
            assert data, "the gateway closed the serial link"
            self._pending += self.decoder.feed(data)
        return codec.decode(self._pending.pop(0))

    def request(self, message: codec.Message) -> codec.Message:
        self.write(encode_frame(codec.encode(message)))
        return self.receive()

    def connect_with_retries(self, client_id: str, attempts: int = 20) -> codec.Message:
        assert self.conn is not None
        self.conn.settimeout(0.25)
        try:
            for _ in range(attempts):
                self.write(encode_frame(codec.encode(codec.Connect(client_id, 60))))
                try:
                    return self.receive()
                except TimeoutError:
                    continue
        finally:
            self.conn.settimeout(5)
        pytest.fail(f"no CONNACK over the serial link after {attempts} CONNECTs")

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop()
        self.server.close()


@pytest.fixture
def serial_peer() -> Iterator[SerialPeer]:
    peer = SerialPeer()
    try:
        yield peer
    finally:
        peer.close()


def test_serial_link_survives_noise_partial_frames_and_reconnects(
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    serial_peer: SerialPeer,
) -> None:
    url = f"socket://127.0.0.1:{serial_peer.port}"
    gateway = start_gateway(serial=(url,))
    serial_peer.accept()
    frame = encode_frame(codec.encode(codec.Connect("uart-dev", 60)))
    corrupt = bytearray(encode_frame(codec.encode(codec.Pingreq())))
    corrupt[1] ^= 0x40  # fails its CRC
    # Line noise, a corrupted frame, then the CONNECT frame split across three writes.
    serial_peer.write(b"\x13\x37\xfe noise \x00" + bytes(corrupt))
    for part in (frame[:3], frame[3:7], frame[7:]):
        serial_peer.write(part)
        time.sleep(0.02)
    assert serial_peer.receive() == codec.Connack(codec.RC_ACCEPTED)

    topic = f"up/{unique('uart')}"
    probe.subscribe(topic, 1)
    reply = serial_peer.request(codec.Register(0, 1, topic))
    assert isinstance(reply, codec.Regack) and reply.return_code == codec.RC_ACCEPTED
    publish = codec.Publish(reply.topic_id, b"over the wire", 1, 2)
    assert serial_peer.request(publish) == codec.Puback(reply.topic_id, 2, codec.RC_ACCEPTED)
    probe.wait_for(lambda m: (topic, b"over the wire", 1, False) in m, 10)
    stats = gateway.stats()
    assert stats["serial"][url]["malformed"] >= 2 and stats["gateway"]["malformed"] >= 2
    assert stats["clients"]["uart-dev"]["address"] == url

    # The QEMU side goes away and comes back: the gateway reopens the link by itself.
    serial_peer.drop()
    serial_peer.accept()
    # pyserial discards input that arrives while it opens a socket:// port, so the device
    # retries its CONNECT (as any MQTT-SN client does after T_RETRY).
    assert serial_peer.connect_with_retries("uart-dev") == codec.Connack(codec.RC_ACCEPTED)
    assert gateway.stats()["serial"][url]["opens"] == 2
