"""The gateway's shared MQTT connection against a real mosquitto on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import paho.mqtt.subscribe as mqtt_subscribe
import pytest

from codegen.errors import ShoalInputError
from host_sdk.broker import MosquittoBroker, find_mosquitto, free_tcp_port
from host_sdk.mqttsn.mqtt_bridge import BrokerSettings, MqttBridge, parse_broker_url

needs_mosquitto = pytest.mark.skipif(
    find_mosquitto() is None, reason="mosquitto is not installed (apt-get install mosquitto)"
)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1883", BrokerSettings("127.0.0.1", 1883)),
        ("mqtt://broker.local", BrokerSettings("broker.local", 1883)),
        ("mqtts://b:8884", BrokerSettings("b", 8884, tls=True)),
        ("mqtts://b", BrokerSettings("b", 8883, tls=True)),
        ("mqtt://us%40er:p%3Ass@h:1", BrokerSettings("h", 1, username="us@er", password="p:ss")),
    ],
)
def test_broker_urls(url: str, expected: BrokerSettings) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://h:1883", r"scheme 'tcp' is not supported \(use mqtt://host:port"),
        ("h:1883", r"scheme 'h' is not supported"),
        ("mqtt://:1883", r"no host"),
        ("mqtt://h:99999", r"port is not a number in 1..65535"),
        ("mqtt://h:1883/x", r"unexpected path"),
    ],
)
def test_bad_broker_urls(url: str, message: str) -> None:
    with pytest.raises(ShoalInputError, match=message):
        parse_broker_url(url)


async def _until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.mark.sim
@needs_mosquitto
def test_refcounted_filters_resubscribe_after_broker_restart() -> None:
    async def scenario(broker: MosquittoBroker) -> None:
        got: list[tuple[str, bytes, int, bool]] = []
        bridge = MqttBridge(
            parse_broker_url(broker.url), lambda *m: got.append(m), asyncio.get_running_loop()
        )
        bridge.start()
        try:
            await bridge.wait_connected(5)
            bridge.subscribe("fleet/+/up", 1)
            bridge.subscribe("fleet/+/up", 0)
            assert bridge.filters == {"fleet/+/up": 2}
            await asyncio.sleep(0.2)
            mqtt_publish.single("fleet/a/up", b"one", qos=1, hostname="127.0.0.1", port=broker.port)
            await _until(lambda: len(got) == 1)
            assert got[0] == ("fleet/a/up", b"one", 1, False)

            broker.restart()
            bridge.connected.clear()
            await bridge.wait_connected(10)
            await asyncio.sleep(0.3)
            mqtt_publish.single("fleet/b/up", b"two", qos=1, hostname="127.0.0.1", port=broker.port)
            await _until(lambda: len(got) == 2)
            assert got[1][:2] == ("fleet/b/up", b"two")
            assert bridge.connections >= 2

            bridge.unsubscribe("fleet/+/up")
            assert bridge.filters == {"fleet/+/up": 1}
            bridge.unsubscribe("fleet/+/up")
            assert bridge.filters == {}
            await asyncio.sleep(0.3)
            mqtt_publish.single("fleet/c/up", b"three", hostname="127.0.0.1", port=broker.port)
            await asyncio.sleep(0.5)
            assert len(got) == 2
        finally:
            bridge.stop()

    with MosquittoBroker() as broker:
        asyncio.run(scenario(broker))


@pytest.mark.sim
@needs_mosquitto
def test_a_burst_larger_than_the_socket_buffer_arrives_complete_and_in_order() -> None:
    count, size = 3000, 4096  # 12 MiB in one loop iteration: more than the kernel buffers

    async def scenario(broker: MosquittoBroker) -> None:
        got: list[bytes] = []
        bridge = MqttBridge(
            parse_broker_url(broker.url), lambda *m: got.append(m[1]), asyncio.get_running_loop()
        )
        bridge.start()
        try:
            await bridge.wait_connected(5)
            sock = bridge._client.socket()  # the test looks at the real socket paho writes to
            assert sock is not None
            # Nagle off: a lone QoS 0 PUBLISH must not wait for the broker's delayed ACK.
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            bridge.subscribe("burst/t", 1)
            await asyncio.sleep(0.2)
            for number in range(count):
                bridge.publish("burst/t", number.to_bytes(4, "big") * (size // 4), 1, False)
            await _until(lambda: len(got) == count, timeout_s=60)
            assert [int.from_bytes(p[:4], "big") for p in got] == list(range(count))
        finally:
            bridge.stop()

    with MosquittoBroker() as broker:
        asyncio.run(scenario(broker))


@pytest.mark.sim
@needs_mosquitto
def test_publish_reaches_a_subscriber_with_retain() -> None:
    async def scenario(broker: MosquittoBroker) -> None:
        bridge = MqttBridge(
            parse_broker_url(broker.url), lambda *m: None, asyncio.get_running_loop()
        )
        bridge.start()
        try:
            await bridge.wait_connected(5)
            bridge.publish("fleet/x/state", b"\x01\x02", 1, True)
            await asyncio.sleep(0.3)
        finally:
            bridge.stop()

    with MosquittoBroker() as broker:
        asyncio.run(scenario(broker))
        message = mqtt_subscribe.simple("fleet/x/state", hostname="127.0.0.1", port=broker.port)
        assert (message.payload, message.retain) == (b"\x01\x02", True)


@pytest.mark.sim
@needs_mosquitto
@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd missing")
def test_username_and_password(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "gw", "s3cret"], check=True)
    passwords.chmod(0o600)

    async def connects(url: str) -> bool:
        bridge = MqttBridge(parse_broker_url(url), lambda *m: None, asyncio.get_running_loop())
        bridge.start()
        try:
            await bridge.wait_connected(2)
            return True
        except TimeoutError:
            return False
        finally:
            bridge.stop()

    extra = ["allow_anonymous false", f"password_file {passwords}"]
    with MosquittoBroker(extra_config=extra) as broker:
        assert asyncio.run(connects(f"mqtt://gw:s3cret@127.0.0.1:{broker.port}"))
        assert not asyncio.run(connects(f"mqtt://gw:wrong@127.0.0.1:{broker.port}"))
        assert not asyncio.run(connects(f"mqtt://127.0.0.1:{broker.port}"))


def _make_tls_files(folder: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    files = {
        name: folder / name
        for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "san.ext")
    }
    files["san.ext"].write_text("subjectAltName=IP:127.0.0.1\n")
    commands = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            files["ca.key"],
            "-out",
            files["ca.crt"],
            "-days",
            "1",
            "-subj",
            "/CN=shoal-test-ca",
        ],
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            files["server.key"],
            "-out",
            files["server.csr"],
            "-subj",
            "/CN=127.0.0.1",
        ],
        [
            "x509",
            "-req",
            "-in",
            files["server.csr"],
            "-CA",
            files["ca.crt"],
            "-CAkey",
            files["ca.key"],
            "-CAcreateserial",
            "-out",
            files["server.crt"],
            "-days",
            "1",
            "-extfile",
            files["san.ext"],
        ],
    ]
    for command in commands:
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=60)
    return files


@pytest.mark.sim
@needs_mosquitto
@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl CLI missing (needed to make test certificates)"
)
def test_tls_to_the_broker_with_a_private_ca(tmp_path: Path) -> None:
    files = _make_tls_files(tmp_path)
    tls_port = free_tcp_port()
    # A second listener with TLS; the plain one stays for MosquittoBroker's readiness probe.
    extra = [
        f"listener {tls_port} 127.0.0.1",
        f"cafile {files['ca.crt']}",
        f"certfile {files['server.crt']}",
        f"keyfile {files['server.key']}",
    ]

    async def connects(settings: BrokerSettings) -> bool:
        bridge = MqttBridge(settings, lambda *m: None, asyncio.get_running_loop())
        bridge.start()
        try:
            await bridge.wait_connected(3)
            return True
        except TimeoutError:
            return False
        finally:
            bridge.stop()

    with MosquittoBroker(extra_config=extra):
        url = f"mqtts://127.0.0.1:{tls_port}"
        trusted = dataclasses.replace(parse_broker_url(url), ca_file=str(files["ca.crt"]))
        assert trusted.tls
        assert asyncio.run(connects(trusted))
        # The system trust store does not know the private CA: the handshake must fail.
        assert not asyncio.run(connects(parse_broker_url(url)))
