"""The gateway's serial listener (`--serial-listen HOST:PORT`) with a real mosquitto: devices
connect over TCP and speak framed MQTT-SN (COBS + CRC-16), several at once; a closed connection
ends only its link (the will follows the keep-alive); garbage is counted as malformed and the
link resynchronises; bad values are refused in one line; and the C client on a QEMU board,
whose UART is `-serial tcp:...` (QEMU as the TCP client), reaches the broker through
`shoal gateway --serial-listen`."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import (
    REPO,
    GatewayThread,
    MqttProbe,
    ShoalGatewayProcess,
    ready_line_addresses,
    unique,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_sdk.broker import MosquittoBroker
from host_sdk.mqttsn import codec
from host_sdk.mqttsn.framing import FrameDecoder, encode_frame
from host_sdk.mqttsn.gateway import SERIAL_LISTEN_MAX_BUFFERED_BYTES

pytestmark = [pytest.mark.sim]

ANY_PORT = (("127.0.0.1", 0),)


class TcpSerialDevice:
    """A device whose serial line is a TCP connection to the gateway's listener (what QEMU's
    `-serial tcp:HOST:PORT` makes of a UART)."""

    def __init__(
        self, address: tuple[str, int], local_port: int = 0, receive_buffer: int = 0
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if receive_buffer:  # before connect: it bounds the TCP window the gateway sees
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.bind(("127.0.0.1", local_port))
        self.sock.settimeout(5)
        self.sock.connect(address)
        self.decoder = FrameDecoder()
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: codec.Message) -> None:
        self.write(encode_frame(codec.encode(message)))

    def receive(self, timeout_s: float = 5.0) -> codec.Message:
        self.sock.settimeout(timeout_s)
        while not self._pending:
            data = self.sock.recv(4096)
            assert data, "the gateway closed the serial connection"
            self._pending += self.decoder.feed(data)
        return codec.decode(self._pending.pop(0))

    def request(self, message: codec.Message) -> codec.Message:
        self.send(message)
        return self.receive()

    def receive_until(self, wanted: type[codec.Message], timeout_s: float = 5.0) -> codec.Message:
        """The first message of type `wanted`, skipping others (e.g. a buffered PUBLISH)."""
        deadline = time.monotonic() + timeout_s
        while True:
            message = self.receive(max(0.05, deadline - time.monotonic()))
            if isinstance(message, wanted):
                return message

    def receive_publish(self, timeout_s: float = 5.0) -> codec.Publish:
        """The next PUBLISH, answering the gateway's REGISTERs (a resumed session announces
        its topic ids again) and skipping anything else."""
        deadline = time.monotonic() + timeout_s
        while True:
            message = self.receive(max(0.05, deadline - time.monotonic()))
            if isinstance(message, codec.Register):
                self.send(codec.Regack(message.topic_id, message.msg_id, codec.RC_ACCEPTED))
            elif isinstance(message, codec.Publish):
                return message

    def register(self, topic: str, msg_id: int) -> int:
        reply = self.request(codec.Register(0, msg_id, topic))
        assert isinstance(reply, codec.Regack) and reply.return_code == codec.RC_ACCEPTED
        return int(reply.topic_id)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def devices() -> Iterator[Callable[..., TcpSerialDevice]]:
    made: list[TcpSerialDevice] = []

    def make(
        address: tuple[str, int], local_port: int = 0, receive_buffer: int = 0
    ) -> TcpSerialDevice:
        made.append(TcpSerialDevice(address, local_port, receive_buffer))
        return made[-1]

    try:
        yield make
    finally:
        for device in made:
            device.close()


def listen_address(gateway: GatewayThread) -> tuple[str, int]:
    addresses = gateway.serial_listen_addresses
    assert len(addresses) == 1 and addresses[0][1] != 0, addresses
    return addresses[0]


def listener_stats(gateway: GatewayThread) -> dict[str, Any]:
    (stats,) = gateway.stats()["serial_listen"].values()
    return dict(stats)


def test_two_devices_connect_register_publish_and_receive_their_own_commands(
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    devices: Callable[..., TcpSerialDevice],
) -> None:
    gateway = start_gateway(serial_listen=ANY_PORT)
    address = listen_address(gateway)
    prefix = unique("tcp-serial/")
    probe.subscribe(f"{prefix}/+/up", 1)
    first, second = devices(address), devices(address)
    # Both lines are open at once; each is its own session.
    assert first.request(codec.Connect("dev-a", 60)) == codec.Connack(codec.RC_ACCEPTED)
    assert second.request(codec.Connect("dev-b", 60)) == codec.Connack(codec.RC_ACCEPTED)
    for name, device in (("dev-a", first), ("dev-b", second)):
        reply = device.request(codec.Subscribe(1, f"{prefix}/{name}/cmd", qos=1))
        assert isinstance(reply, codec.Suback) and reply.return_code == codec.RC_ACCEPTED
    up = {
        name: d.register(f"{prefix}/{name}/up", 2)
        for name, d in (("dev-a", first), ("dev-b", second))
    }
    for index in range(3):
        for name, device in (("dev-a", first), ("dev-b", second)):
            payload = f"{name}-{index}".encode()
            reply = device.request(codec.Publish(up[name], payload, 1, 10 + index))
            assert reply == codec.Puback(up[name], 10 + index, codec.RC_ACCEPTED)
    probe.wait_for(lambda m: len(m) >= 6, 10)
    for name in ("dev-a", "dev-b"):
        assert probe.payloads(f"{prefix}/{name}/up") == [f"{name}-{i}".encode() for i in range(3)]

    # A command for each device arrives on its own connection only, as QoS 1 to be acknowledged.
    probe.publish(f"{prefix}/dev-b/cmd", b"for b", qos=1)
    probe.publish(f"{prefix}/dev-a/cmd", b"for a", qos=1)
    for name, device in (("dev-a", first), ("dev-b", second)):
        message = device.receive_until(codec.Publish)
        assert isinstance(message, codec.Publish)
        assert (message.data, message.qos) == (f"for {name[-1]}".encode(), 1)
        device.send(codec.Puback(message.topic_id, message.msg_id, codec.RC_ACCEPTED))
    for device in (first, second):
        assert device.request(codec.Pingreq()) == codec.Pingresp()  # nothing else was queued

    stats = gateway.stats()
    addresses = {stats["clients"][name]["address"] for name in ("dev-a", "dev-b")}
    assert len(addresses) == 2 and all(a.startswith("tcp://127.0.0.1:") for a in addresses)
    listener = listener_stats(gateway)
    assert (listener["accepted"], listener["open"]) == (2, 2)
    assert set(listener["connections"]) == addresses
    # Per device: CONNECT, SUBSCRIBE, REGISTER, 3 PUBLISH, PUBACK, PINGREQ.
    assert listener["frames"] == 16 and listener["malformed"] == 0
    assert stats["gateway"]["malformed"] == 0


def test_a_closed_connection_ends_only_its_link_and_the_will_follows_the_keepalive(
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    devices: Callable[..., TcpSerialDevice],
) -> None:
    gateway = start_gateway(serial_listen=ANY_PORT)
    address = listen_address(gateway)
    will_topic = unique("tcp-serial-will/")
    probe.subscribe(will_topic, 1)
    doomed, survivor = devices(address), devices(address)
    keep_alive_s = 2
    assert doomed.request(codec.Connect("doomed", keep_alive_s, will=True)) == codec.WillTopicReq()
    assert doomed.request(codec.WillTopic(will_topic, qos=1)) == codec.WillMsgReq()
    assert doomed.request(codec.WillMsg(b"lost the line")) == codec.Connack(codec.RC_ACCEPTED)
    assert survivor.request(codec.Connect("survivor", 60)) == codec.Connack(codec.RC_ACCEPTED)

    doomed.close()
    closed_at = time.monotonic()
    stats = gateway.wait_stats(lambda s: listener_stats_of(s)["open"] == 1)
    assert listener_stats_of(stats)["accepted"] == 2
    # The session outlives its connection, as on a serial device that went quiet.
    assert stats["clients"]["doomed"]["state"] == "active"
    assert survivor.request(codec.Pingreq()) == codec.Pingresp()

    probe.wait_for(lambda m: (will_topic, b"lost the line", 1, False) in m, 15)
    elapsed = time.monotonic() - closed_at
    # Lost when 1.5 x the keep-alive passed without a message, not when the socket closed.
    assert 0.8 * keep_alive_s <= elapsed <= 1.5 * keep_alive_s + 5, elapsed
    stats = gateway.wait_stats(lambda s: s["gateway"]["wills_published"] == 1)
    assert stats["gateway"]["wills_published"] == 1
    assert survivor.request(codec.Pingreq()) == codec.Pingresp()
    # A device that says DISCONNECT and closes its sending side still hears the answer.
    survivor.send(codec.Disconnect())
    survivor.sock.shutdown(socket.SHUT_WR)
    assert survivor.receive() == codec.Disconnect()
    assert survivor.sock.recv(1) == b""  # then the gateway closes the connection
    stats = gateway.wait_stats(lambda s: listener_stats_of(s)["open"] == 0)
    assert listener_stats_of(stats)["open"] == 0 and stats["clients"] == {}


def listener_stats_of(stats: dict[str, Any]) -> dict[str, Any]:
    (listener,) = stats["serial_listen"].values()
    return dict(listener)


def test_a_device_that_reconnects_on_a_new_connection_keeps_its_session(
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    devices: Callable[..., TcpSerialDevice],
) -> None:
    # A rebooted board opens a new connection (new address): it takes its session over, keeps
    # its CleanSession=0 subscription, and its will is not published.
    gateway = start_gateway(serial_listen=ANY_PORT)
    address = listen_address(gateway)
    topic = unique("tcp-serial-resume/")
    will_topic = f"{topic}/will"
    probe.subscribe(will_topic, 1)
    before = devices(address)
    connect = codec.Connect("phoenix", 2, will=True, clean_session=False)
    assert before.request(connect) == codec.WillTopicReq()
    assert before.request(codec.WillTopic(will_topic, qos=1)) == codec.WillMsgReq()
    assert before.request(codec.WillMsg(b"gone")) == codec.Connack(codec.RC_ACCEPTED)
    reply = before.request(codec.Subscribe(1, f"{topic}/cmd", qos=1))
    assert isinstance(reply, codec.Suback) and reply.return_code == codec.RC_ACCEPTED
    before.close()

    after = devices(address)
    assert after.request(codec.Connect("phoenix", 60, clean_session=False)) == codec.Connack(
        codec.RC_ACCEPTED
    )
    probe.publish(f"{topic}/cmd", b"still subscribed", qos=1)
    message = after.receive_publish()
    assert message.data == b"still subscribed"
    time.sleep(2 * 1.5 + 1)  # past the old connection's keep-alive expiry
    assert probe.payloads(will_topic) == []
    stats = gateway.stats()
    assert stats["gateway"]["wills_published"] == 0
    assert listener_stats_of(stats)["accepted"] == 2 and listener_stats_of(stats)["open"] == 1
    assert stats["clients"]["phoenix"]["address"] in listener_stats_of(stats)["connections"]


def test_connections_after_a_restart_never_take_a_restored_sessions_address(
    start_gateway: Callable[..., GatewayThread],
    devices: Callable[..., TcpSerialDevice],
    tmp_path: Path,
) -> None:
    # The same peer port after a restart (the kernel may hand it out again; here it is forced)
    # must not make a new device the owner of a restored CleanSession=0 session.
    state_dir = str(tmp_path / "state")
    first = start_gateway(serial_listen=ANY_PORT, state_dir=state_dir)
    keeper = devices(listen_address(first))
    local_port = keeper.sock.getsockname()[1]
    reply = keeper.request(codec.Connect("keeper", 60, clean_session=False))
    assert reply == codec.Connack(codec.RC_ACCEPTED)
    keeper_address = first.stats()["clients"]["keeper"]["address"]
    first.stop()  # aborts the connection (RST): the port is free again at once
    keeper.close()

    second = start_gateway(serial_listen=ANY_PORT, state_dir=state_dir)
    assert second.stats()["clients"]["keeper"]["address"] == keeper_address  # restored
    newcomer = devices(listen_address(second), local_port)
    assert newcomer.sock.getsockname()[1] == local_port
    assert newcomer.request(codec.Connect("newcomer", 60)) == codec.Connack(codec.RC_ACCEPTED)
    clients = second.stats()["clients"]
    assert clients["newcomer"]["address"] != keeper_address
    assert clients["keeper"]["address"] == keeper_address
    assert clients["keeper"]["state"] == "active"


def test_a_device_that_stops_reading_costs_bounded_memory_and_whole_frames(
    start_gateway: Callable[..., GatewayThread],
    devices: Callable[..., TcpSerialDevice],
) -> None:
    # A board whose UART is stalled: frames beyond SERIAL_LISTEN_MAX_BUFFERED_BYTES queued for
    # it are dropped whole (and counted), never cut, and the gateway keeps serving it.
    gateway = start_gateway(serial_listen=ANY_PORT)
    stalled = devices(listen_address(gateway), receive_buffer=4096)
    assert stalled.request(codec.Connect("stalled", 60)) == codec.Connack(codec.RC_ACCEPTED)
    topic = unique("tcp-serial-flood/")
    reply = stalled.request(codec.Subscribe(1, topic, qos=0))
    assert isinstance(reply, codec.Suback) and reply.return_code == codec.RC_ACCEPTED
    count, payload = 16000, bytes(range(256)) * 2  # 8 MB of QoS 0 PUBLISH frames
    inner = gateway.gateway

    def flood() -> int:
        # The bridge's entry point for broker messages, called on the gateway's loop.
        for index in range(count):
            inner._on_broker_message(topic, index.to_bytes(4, "big") + payload, 0, False)
        (connection,) = inner.serial_connections.values()
        return int(connection.writer.transport.get_write_buffer_size())

    buffered = gateway.run(flood)
    assert buffered <= SERIAL_LISTEN_MAX_BUFFERED_BYTES + 2 * len(payload), buffered
    dropped = listener_stats_of(gateway.stats())["write_errors"]
    assert 0 < dropped < count
    received: list[int] = []
    while len(received) < count - dropped:
        message = stalled.receive(10)
        assert isinstance(message, codec.Publish) and message.data[4:] == payload
        received.append(int.from_bytes(message.data[:4], "big"))
    assert stalled.decoder.malformed == 0  # every frame arrived whole
    assert received == sorted(received)  # in order, with gaps where frames were dropped
    assert stalled.request(codec.Pingreq()) == codec.Pingresp()


def test_garbage_is_counted_as_malformed_and_the_link_resynchronises(
    probe: MqttProbe,
    start_gateway: Callable[..., GatewayThread],
    devices: Callable[..., TcpSerialDevice],
) -> None:
    gateway = start_gateway(serial_listen=ANY_PORT)
    device = devices(listen_address(gateway))
    corrupt = bytearray(encode_frame(codec.encode(codec.Connect("noisy", 60))))
    corrupt[2] ^= 0x10  # fails its CRC
    frame = encode_frame(codec.encode(codec.Connect("noisy", 60)))
    # Line noise ended by a delimiter, a corrupt frame, an over-long run of non-zero bytes,
    # then the real CONNECT split across writes.
    device.write(b"\x13\x37\xfe noise \x00" + bytes(corrupt) + b"\xaa" * 3000 + b"\x00")
    for part in (frame[:2], frame[2:5], frame[5:]):
        device.write(part)
        time.sleep(0.02)
    assert device.receive() == codec.Connack(codec.RC_ACCEPTED)
    topic = unique("tcp-serial-noise/")
    probe.subscribe(topic, 1)
    topic_id = device.register(topic, 1)
    # A frame cut by a lost byte: the next delimiter ends it; the following frame is served.
    publish = encode_frame(codec.encode(codec.Publish(topic_id, b"after noise", 1, 2)))
    device.write(publish[:-4] + b"\x00" + publish)
    assert device.receive() == codec.Puback(topic_id, 2, codec.RC_ACCEPTED)
    probe.wait_for(lambda m: (topic, b"after noise", 1, False) in m, 10)
    stats = gateway.stats()
    listener = listener_stats_of(stats)
    (connection,) = listener["connections"].values()
    # noise, corrupt CRC, oversized run, cut PUBLISH
    assert connection["malformed"] == listener["malformed"] == 4
    assert connection["frames"] == 3  # CONNECT, REGISTER, PUBLISH
    assert stats["gateway"]["malformed"] == 4
    assert stats["clients"]["noisy"]["malformed"] == 0
    # Closed connections still count in the listener's and the gateway's totals.
    device.close()
    stats = gateway.wait_stats(lambda s: listener_stats_of(s)["open"] == 0)
    assert listener_stats_of(stats)["malformed"] == 4 and stats["gateway"]["malformed"] == 4


# One gateway and one connected device for all examples of the property below.
_NOISE: tuple[GatewayThread, TcpSerialDevice, FrameDecoder] | None = None


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(junk=st.binary(min_size=1, max_size=2500))  # beyond 1029 bytes: an oversized frame
def test_any_bytes_then_a_delimiter_leave_the_link_usable_and_counted_exactly(
    junk: bytes,
    start_gateway: Callable[..., GatewayThread],
    devices: Callable[..., TcpSerialDevice],
) -> None:
    global _NOISE
    if _NOISE is None or _NOISE[0].loop.is_closed():
        gateway = start_gateway(serial_listen=ANY_PORT)
        device = devices(listen_address(gateway))
        mirror = FrameDecoder()  # the same decoder fed the same bytes: the expected counters
        assert device.request(codec.Connect("fuzzed-line", 60)) == codec.Connack(0)
        mirror.feed(encode_frame(codec.encode(codec.Connect("fuzzed-line", 60))))
        _NOISE = (gateway, device, mirror)
    gateway, device, mirror = _NOISE
    ping = encode_frame(codec.encode(codec.Pingreq()))
    data = junk + b"\x00" + ping
    device.write(data)
    mirror.feed(data)
    assert device.receive_until(codec.Pingresp) == codec.Pingresp()
    (connection,) = listener_stats_of(gateway.stats())["connections"].values()
    assert (connection["frames"], connection["malformed"]) == (mirror.frames, mirror.malformed)
    assert gateway.stats()["gateway"]["internal_errors"] == 0


# ---- configuration and command line ---------------------------------------------------------


def run_shoal_gateway(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`shoal gateway ...` expected to fail at start (no broker needed for that)."""
    return subprocess.run(
        [sys.executable, "-m", "host_sdk.cli", "gateway", "--broker", "mqtt://127.0.0.1:1",
         "--stats-interval", "0", *args],
        capture_output=True, text=True, timeout=timeout_s, cwd=REPO, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "value", ["nope", "127.0.0.1", "127.0.0.1:70000", "127.0.0.1:-1", ":5600", "127.0.0.1:x"]
)
def test_bad_serial_listen_values_are_one_line_and_exit_2(value: str, tmp_path: Path) -> None:
    done = run_shoal_gateway("--state-dir", str(tmp_path), "--serial-listen", value)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--serial-listen" in lines[0] and repr(value) in lines[0]
    assert "HOST:PORT" in lines[0] and "0..65535" in lines[0]


def test_a_serial_listen_address_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_shoal_gateway(
            "--udp", "127.0.0.1:0", "--state-dir", str(tmp_path),
            "--serial-listen", "127.0.0.1:0", "--serial-listen", f"127.0.0.1:{port}",
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"--serial-listen / gateway.serial_listen) 127.0.0.1:{port}" in lines[0]
    assert "in use" in lines[0] and "port 0 picks one" in lines[0]


def test_the_toml_list_configures_listeners_reported_in_the_ready_line(
    broker: MosquittoBroker,
    tmp_path: Path,
    devices: Callable[..., TcpSerialDevice],
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nserial_listen = ["127.0.0.1:0", "127.0.0.1:0"]\n')
    # Serial listeners only: no UDP socket at all.
    gateway = ShoalGatewayProcess(
        broker.url, "--config", str(config), "--state-dir", str(tmp_path / "state"),
        "--udp", "none",
    )  # fmt: skip
    try:
        assert gateway.port == 0  # the ready line says udp=-
        assert len(gateway.serial_listen) == 2 and len(set(gateway.serial_listen)) == 2
        for index, address in enumerate(gateway.serial_listen):
            device = devices(address)
            reply = device.request(codec.Connect(f"toml-{index}", 60))
            assert reply == codec.Connack(codec.RC_ACCEPTED)
    finally:
        gateway.stop()

    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\nserial_listen = ["127.0.0.1:99999"]\n')
    done = run_shoal_gateway("--config", str(bad), "--state-dir", str(tmp_path / "s2"))
    assert done.returncode == 2
    assert f"{bad}: field 'gateway.serial_listen': '127.0.0.1:99999' is not HOST:PORT" in (
        done.stderr
    )


def test_a_restarted_gateway_process_listens_on_the_same_port(
    broker: MosquittoBroker, tmp_path: Path, devices: Callable[..., TcpSerialDevice]
) -> None:
    gateway = ShoalGatewayProcess(
        broker.url, "--serial-listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "state")
    )
    try:
        (before,) = gateway.serial_listen
        first = devices(before)
        assert first.request(codec.Connect("restarted", 60)) == codec.Connack(0)
        gateway.restart()  # SIGKILL, then the same arguments with the bound port pinned
        assert gateway.serial_listen == [before]
        with contextlib.suppress(ConnectionResetError):  # FIN or RST: it died with the process
            assert first.sock.recv(1) == b""
        again = devices(before)
        assert again.request(codec.Connect("restarted", 60)) == codec.Connack(0)
    finally:
        gateway.stop()


def test_ready_line_addresses() -> None:
    line = "gateway ready udp=127.0.0.1:1 serial=- multicast=- serial_listen=127.0.0.1:5,::1:6"
    assert ready_line_addresses(line, "serial_listen") == [("127.0.0.1", 5), ("::1", 6)]
    assert ready_line_addresses(line.replace("127.0.0.1:5,::1:6", "-"), "serial_listen") == []


# ---- the C client on QEMU through `shoal gateway --serial-listen` ---------------------------


@pytest.mark.slow
def test_qemu_board_reaches_the_broker_through_the_serial_listener(
    broker: MosquittoBroker,
    probe: MqttProbe,
    tmp_path: Path,
    devices: Callable[..., TcpSerialDevice],
) -> None:
    from tests.firmware.test_mqttsn_qemu import QEMU, build_demo

    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed")
    elf = build_demo("lm3s6965evb", tmp_path / "demo.elf")
    probe.subscribe("shoal/demo/#", 1)
    gateway = ShoalGatewayProcess(
        broker.url, "--serial-listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "state"),
        "--stats-interval", "0.3", "--json-stats",
    )  # fmt: skip
    qemu: subprocess.Popen[bytes] | None = None
    try:
        (listen,) = gateway.serial_listen
        # A Python device on the same listener at the same time: one more line, its own session.
        neighbour = devices(listen)
        assert neighbour.request(codec.Connect("neighbour", 60)) == codec.Connack(0)
        qemu = subprocess.Popen(
            [
                QEMU, "-M", "lm3s6965evb", "-display", "none", "-monitor", "none",
                "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
                "-serial", f"tcp:{listen[0]}:{listen[1]},nodelay=on",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        hello = ("shoal/demo/hello", b"hello from shoal-uart-demo", 1, False)
        probe.wait_for(lambda m: hello in m, 30)
        probe.publish("shoal/demo/cmd", b"from-the-broker", qos=1)
        probe.wait_for(lambda m: any(t == "shoal/demo/echo" for t, *_ in m), 30)
        assert probe.payloads("shoal/demo/echo") == [b"from-the-broker"]
        status = qemu.wait(timeout=30)
        assert status == 0, "semihosting exit status of the firmware (0: it finished its script)"
        assert neighbour.request(codec.Pingreq()) == codec.Pingresp()
        process = gateway.process
        assert process is not None

        def listener_now(line: str) -> dict[str, Any] | None:
            if not line.startswith("{"):
                return None
            (listener,) = json.loads(line)["serial_listen"].values()
            return dict(listener)

        # The board's connection closed when QEMU exited; the neighbour's is still open.
        deadline = time.monotonic() + 10
        while True:
            snapshots = [s for s in map(listener_now, list(process.lines)) if s is not None]
            if (snapshots and snapshots[-1]["open"] == 1) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert snapshots, process.output()
        last = snapshots[-1]
        assert (last["accepted"], last["open"], last["malformed"]) == (2, 1, 0), last
        assert last["frames"] >= 6  # the board: CONNECT, SUBSCRIBE, REGISTERs, PUBLISHes, ...
    finally:
        if qemu is not None and qemu.poll() is None:
            qemu.kill()
            qemu.wait(timeout=10)
        if qemu is not None and qemu.stderr is not None:
            qemu.stderr.close()
        gateway.stop()
