"""The asyncio gateway with a real mosquitto and real UDP sockets: periodic ADVERTISE,
SEARCHGW/GWINFO, and retained messages replayed only to the device that subscribes."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from gateway_harness import GatewayThread, MqttProbe, gateway_config, unique

from codegen.errors import ShoalInputError
from host_sdk.broker import MosquittoBroker
from host_sdk.mqttsn import codec

pytestmark = [pytest.mark.sim]


class UdpPeer:
    """A UDP socket on 127.0.0.1 that speaks raw MQTT-SN to the gateway (or listens)."""

    def __init__(self, gateway_port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        self.gateway = ("127.0.0.1", gateway_port)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, message: codec.Message) -> None:
        self.sock.sendto(codec.encode(message), self.gateway)

    def receive(self, timeout_s: float = 5.0) -> codec.Message | None:
        """The next message, or None when none comes within `timeout_s` seconds."""
        self.sock.settimeout(timeout_s)
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        return codec.decode(data)

    def request(self, message: codec.Message) -> codec.Message | None:
        self.send(message)
        return self.receive()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def peers() -> Iterator[Callable[[int], UdpPeer]]:
    made: list[UdpPeer] = []

    def make(gateway_port: int = 0) -> UdpPeer:
        made.append(UdpPeer(gateway_port))
        return made[-1]

    try:
        yield make
    finally:
        for peer in made:
            peer.close()


def test_gateway_advertises_periodically_and_answers_searchgw(
    start_gateway: Callable[..., GatewayThread], peers: Callable[[int], UdpPeer]
) -> None:
    listener = peers(0)
    gateway = start_gateway(
        gateway_id=7, advertise_to=("127.0.0.1", listener.port), advertise_interval_s=0.3
    )
    first = listener.receive(5.0)
    started = time.monotonic()
    second = listener.receive(5.0)
    elapsed_s = time.monotonic() - started
    # Duration is whole seconds until the next ADVERTISE: 0.3 s rounds up to 1.
    assert first == codec.Advertise(7, 1) and second == codec.Advertise(7, 1)
    assert 0.15 < elapsed_s < 2.0
    assert gateway.stats()["gateway"]["advertisements_sent"] >= 2

    searcher = peers(gateway.port)
    assert searcher.request(codec.SearchGw(1)) == codec.GwInfo(7)


def test_no_advertise_unless_configured(
    start_gateway: Callable[..., GatewayThread], peers: Callable[[int], UdpPeer]
) -> None:
    gateway = start_gateway(advertise_interval_s=0.1)
    assert gateway.stats()["gateway"]["advertisements_sent"] == 0
    time.sleep(0.3)
    assert gateway.stats()["gateway"]["advertisements_sent"] == 0


def subscribe(device: UdpPeer, topic: str, msg_id: int) -> None:
    reply = device.request(codec.Subscribe(msg_id, topic, qos=0))
    assert isinstance(reply, codec.Suback) and reply.return_code == codec.RC_ACCEPTED


def test_retained_message_is_replayed_only_to_the_device_that_subscribes(
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    peers: Callable[[int], UdpPeer],
) -> None:
    topic = unique("retained/") + "/config"
    probe.publish(topic, b"v1", qos=1, retain=True)
    gateway = start_gateway()
    first = peers(gateway.port)
    assert first.request(codec.Connect("first", 60)) == codec.Connack(codec.RC_ACCEPTED)
    subscribe(first, topic, 1)
    replay = first.receive()
    assert isinstance(replay, codec.Publish) and (replay.data, replay.retain) == (b"v1", True)

    second = peers(gateway.port)
    assert second.request(codec.Connect("second", 60)) == codec.Connack(codec.RC_ACCEPTED)
    subscribe(second, topic, 1)
    replay = second.receive()
    assert isinstance(replay, codec.Publish) and (replay.data, replay.retain) == (b"v1", True)
    # The broker replayed v1 to the gateway a second time; the first device already has it.
    assert first.receive(1.0) is None

    probe.publish(topic, b"v2", qos=1, retain=False)
    for device in (first, second):
        live = device.receive()
        assert isinstance(live, codec.Publish) and (live.data, live.retain) == (b"v2", False)
    assert first.receive(0.5) is None and second.receive(0.1) is None


class MulticastListener:
    """A device-side socket joined to a multicast group on 127.0.0.1."""

    def __init__(self, group: tuple[str, int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(group)
        membership = socket.inet_aton(group[0]) + socket.inet_aton("127.0.0.1")
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)

    def receive(self, timeout_s: float) -> tuple[codec.Message, tuple[str, int]] | None:
        """The next message heard on the group and its source address, or None."""
        self.sock.settimeout(timeout_s)
        try:
            data, source = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        return codec.decode(data), source

    def close(self) -> None:
        self.sock.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_multicast_mode_answers_searchgw_on_the_group_from_the_unicast_address(
    start_gateway: Callable[..., GatewayThread], peers: Callable[[int], UdpPeer]
) -> None:
    group = ("225.1.1.7", free_udp_port())
    listener = MulticastListener(group)
    try:
        gateway = start_gateway(
            gateway_id=9,
            multicast=group,
            multicast_interface="127.0.0.1",
            advertise_interval_s=600,
        )
        heard = listener.receive(5.0)  # the ADVERTISE sent at start goes to the group
        assert heard is not None and heard[0] == codec.Advertise(9, 600)
        assert heard[1] == ("127.0.0.1", gateway.port)

        searcher = peers(0)
        searcher.sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1")
        )
        searcher.sock.sendto(codec.encode(codec.SearchGw(1)), group)
        answers = []
        while (heard := listener.receive(2.0)) is not None:
            answers.append(heard)
            if heard[0] == codec.GwInfo(9):
                break
        # Heard on the group (our own SEARCHGW too), sent from the gateway's unicast port:
        # the address a device then CONNECTs to.
        assert (codec.GwInfo(9), ("127.0.0.1", gateway.port)) in answers
        device = peers(gateway.port)
        assert device.request(codec.Connect("mc-device", 60)) == codec.Connack(codec.RC_ACCEPTED)
        stats = gateway.stats()["gateway"]
        assert stats["searches_answered_multicast"] == 1
        assert stats["malformed"] == 0  # other datagrams on the group are not errors
    finally:
        listener.close()


def test_multicast_needs_a_udp_listener_and_a_joinable_group(
    start_gateway: Callable[..., GatewayThread], broker: MosquittoBroker
) -> None:
    group = ("225.1.1.7", free_udp_port())
    no_udp = dataclasses.replace(gateway_config(broker.url, multicast=group), udp=None)
    with pytest.raises(ShoalInputError, match="multicast discovery needs a UDP listener"):
        GatewayThread(no_udp)
    with pytest.raises(ShoalInputError, match=r"cannot join .*local interface"):
        start_gateway(multicast=("225.1.1.7", free_udp_port()), multicast_interface="10.254.0.1")
