"""The private mosquitto broker: starts, carries MQTT, restarts on its port, stops cleanly."""

from __future__ import annotations

import os
import queue
import socket

import paho.mqtt.client as mqtt
import pytest

from host_sdk.broker import BrokerError, MosquittoBroker, find_mosquitto

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(
        find_mosquitto() is None, reason="mosquitto is not installed (apt-get install mosquitto)"
    ),
]


def _roundtrip(port: int, topic: str, payload: bytes, *, clean: bool = True) -> bytes:
    received: queue.Queue[bytes] = queue.Queue()
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sub-" + topic)
    subscriber.on_message = lambda _c, _u, message: received.put(message.payload)
    subscriber.connect("127.0.0.1", port)
    subscriber.subscribe(topic, qos=1)
    subscriber.loop_start()
    try:
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-" + topic)
        publisher.connect("127.0.0.1", port)
        publisher.loop_start()
        # Retained: the subscription may land after the publish.
        publisher.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
        publisher.loop_stop()
        publisher.disconnect()
        return received.get(timeout=5)
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()


def test_broker_carries_a_message_and_stops() -> None:
    with MosquittoBroker() as broker:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        pid = broker.pid
        assert pid is not None
        assert _roundtrip(broker.port, "shoal/test", b"\x00\x01hello") == b"\x00\x01hello"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", broker.port), timeout=0.5)


def test_restart_keeps_the_port_and_retained_messages_with_persistence() -> None:
    with MosquittoBroker(persistence=True) as broker:
        _roundtrip(broker.port, "shoal/retained", b"kept")
        first_pid = broker.pid
        broker.restart()
        assert broker.pid != first_pid
        received: queue.Queue[bytes] = queue.Queue()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="late")
        client.on_message = lambda _c, _u, message: received.put(message.payload)
        client.connect("127.0.0.1", broker.port)
        client.subscribe("shoal/retained", qos=1)
        client.loop_start()
        try:
            assert received.get(timeout=5) == b"kept"
        finally:
            client.loop_stop()
            client.disconnect()


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        broker = MosquittoBroker(port=squatter.getsockname()[1])
        with pytest.raises(BrokerError, match="mosquitto exited at start on port"):
            broker.start()
        broker.close()


def test_missing_executable_is_a_clear_error() -> None:
    broker = MosquittoBroker()
    broker.executable = None  # as when find_mosquitto() finds nothing
    with pytest.raises(BrokerError, match="apt-get install mosquitto"):
        broker.start()
    broker.close()
