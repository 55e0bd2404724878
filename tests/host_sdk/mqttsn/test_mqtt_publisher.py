"""The asyncio MQTT 3.1.1 publisher: its packets checked by an independent decoder written from
the spec, its stream parser fuzzed, and its session behaviour (acknowledgements by caller-owned
packet id, exactly-once QoS 2 across a kill -9, reconnects, refusals, keep-alive) against a real
mosquitto on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from gateway_harness import MqttProbe, unique
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sdk.broker import MosquittoBroker, find_mosquitto, free_tcp_port
from host_sdk.mqttsn.mqtt_bridge import BrokerSettings
from host_sdk.mqttsn.mqtt_publisher import (
    CONNACK,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    IncomingParser,
    MqttProtocolError,
    MqttPublisher,
    encode_connect,
    encode_publish,
    encode_pubrel,
    encode_remaining_length,
)

REPO = Path(__file__).resolve().parents[3]
needs_mosquitto = pytest.mark.skipif(
    find_mosquitto() is None, reason="mosquitto is not installed (apt-get install mosquitto)"
)

# ---- an independent reference codec, written from the MQTT 3.1.1 spec -----------------------


def ref_read_varint(data: bytes, at: int) -> tuple[int, int]:
    """§2.2.3: returns (value, bytes used); at most four bytes."""
    value, multiplier = 0, 1
    for used in range(1, 5):
        digit = data[at + used - 1]
        value += (digit % 128) * multiplier
        if digit < 128:
            return value, used
        multiplier *= 128
    raise AssertionError("varint longer than four bytes")


def ref_write_varint(value: int) -> bytes:
    digits = []
    while True:
        digit, value = value % 128, value // 128
        digits.append(digit + (128 if value else 0))
        if not value:
            return bytes(digits)


def ref_split(stream: bytes) -> list[tuple[int, bytes]]:
    """A byte stream -> [(first byte, variable header + payload)]; asserts it is exact."""
    packets, at = [], 0
    while at < len(stream):
        length, used = ref_read_varint(stream, at + 1)
        start = at + 1 + used
        packets.append((stream[start - used - 1], stream[start : start + length]))
        assert start + length <= len(stream), "truncated packet"
        at = start + length
    return packets


def ref_decode_publish(first: int, body: bytes) -> dict[str, Any]:
    assert first >> 4 == 3
    qos = (first >> 1) & 3
    topic_length = int.from_bytes(body[:2], "big")
    topic = body[2 : 2 + topic_length].decode("utf-8")
    rest = body[2 + topic_length :]
    packet_id = int.from_bytes(rest[:2], "big") if qos else 0
    return {
        "topic": topic,
        "payload": rest[2:] if qos else rest,
        "qos": qos,
        "retain": bool(first & 1),
        "dup": bool(first & 8),
        "packet_id": packet_id,
    }


def ref_packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + ref_write_varint(len(body)) + body


def ref_broker_publish(topic: str, payload: bytes, qos: int, packet_id: int) -> bytes:
    encoded = topic.encode()
    body = len(encoded).to_bytes(2, "big") + encoded
    if qos:
        body += packet_id.to_bytes(2, "big")
    return ref_packet(0x30 | (qos << 1), body + payload)


publish_topics = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="+#\x00"),
    min_size=1,
    max_size=40,
)
payloads = st.one_of(
    st.binary(max_size=300),
    # Lengths around the 1/2/3-byte varint boundaries (127, 16383) without hypothesis building
    # megabytes byte by byte.
    st.sampled_from([126, 127, 128, 16_380, 16_383, 16_384, 70_000]).map(lambda n: b"\xa5" * n),
)


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(
    topic=publish_topics,
    payload=payloads,
    qos=st.integers(0, 2),
    retain=st.booleans(),
    dup=st.booleans(),
    packet_id=st.integers(1, 65535),
)
def test_publish_decodes_with_the_reference_decoder(
    topic: str, payload: bytes, qos: int, retain: bool, dup: bool, packet_id: int
) -> None:
    packet_id = packet_id if qos else 0
    dup = dup and qos > 0
    packet = encode_publish(topic, payload, qos, retain, packet_id, dup)
    [(first, body)] = ref_split(packet)
    assert ref_decode_publish(first, body) == {
        "topic": topic,
        "payload": payload,
        "qos": qos,
        "retain": retain,
        "dup": dup,
        "packet_id": packet_id,
    }


@pytest.mark.unit
@given(packet_id=st.integers(1, 65535))
def test_pubrel_decodes_with_the_reference_decoder(packet_id: int) -> None:
    [(first, body)] = ref_split(encode_pubrel(packet_id))
    assert (first, body) == (0x62, packet_id.to_bytes(2, "big"))  # §3.6.1: flags 0010


@pytest.mark.unit
@pytest.mark.parametrize("length", [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455])
def test_remaining_length_boundaries(length: int) -> None:
    encoded = encode_remaining_length(length)
    assert ref_read_varint(encoded, 0) == (length, len(encoded))
    assert encoded == ref_write_varint(length)


@pytest.mark.unit
def test_connect_is_persistent_session_with_credentials() -> None:
    [(first, body)] = ref_split(encode_connect("gw-1", 30, "user", "pw"))
    assert first == 0x10
    assert body[:7] == b"\x00\x04MQTT\x04"
    flags = body[7]
    assert flags & 0x02 == 0, "CleanSession must be 0"
    assert flags == 0xC0  # user name and password
    assert int.from_bytes(body[8:10], "big") == 30
    assert body[10:] == b"\x00\x04gw-1\x00\x04user\x00\x02pw"
    # A password without a user name is not allowed in 3.1.1: it is left out.
    [(_first, body)] = ref_split(encode_connect("gw-1", 0, None, "pw"))
    assert body[7] == 0 and body[10:] == b"\x00\x04gw-1"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("qos", "packet_id", "dup", "message"),
    [
        (1, 0, False, r"QoS 1 needs a packet id in 1..65535, got 0"),
        (2, 0, False, r"QoS 2 needs a packet id"),
        (1, 65536, False, r"QoS 1 needs a packet id"),
        (0, 5, False, r"packet id 5 given for QoS 0"),
        (0, 0, True, r"DUP must be 0 for QoS 0"),
        (3, 1, False, r"QoS 3 is not one of 0, 1, 2"),
    ],
)
def test_bad_publish_arguments_raise_even_when_not_connected(
    qos: int, packet_id: int, dup: bool, message: str
) -> None:
    async def scenario() -> None:
        publisher = MqttPublisher(
            BrokerSettings("127.0.0.1", 1), asyncio.get_running_loop(), **Recorder().callbacks()
        )
        with pytest.raises(ValueError, match=message):
            publisher.publish("t", b"x", qos, False, packet_id, dup)
        assert publisher.publish("t", b"x", 1, False, 1) is False  # valid but not connected
        with pytest.raises(ValueError, match="wildcards"):
            publisher.publish("a/+/b", b"x", 0, False)

    asyncio.run(scenario())


# ---- the incoming stream parser ---------------------------------------------------------------

incoming_packets = st.one_of(
    st.tuples(st.sampled_from([PUBACK, PUBREC, PUBREL, PUBCOMP]), st.integers(1, 65535)).map(
        lambda t: (
            ref_packet(0x62 if t[0] == PUBREL else t[0] << 4, t[1].to_bytes(2, "big")),
            (t[0], 0, t[1]),
        )
    ),
    st.just((b"\xd0\x00", (PINGRESP, 0, 0))),
    st.tuples(publish_topics, payloads, st.integers(0, 2), st.integers(1, 65535)).map(
        lambda t: (
            ref_broker_publish(t[0], t[1], t[2], t[3] if t[2] else 0),
            (PUBLISH, t[2], t[3] if t[2] else 0),
        )
    ),
)


def _connack(code: int = 0, present: int = 1) -> tuple[bytes, tuple[int, int, int]]:
    return ref_packet(0x20, bytes([present, code])), (CONNACK, code, present)


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(packets=st.lists(incoming_packets, max_size=30), data=st.data())
def test_parser_gives_the_same_packets_for_any_chunking(
    packets: list[tuple[bytes, tuple[int, int, int]]], data: st.DataObject
) -> None:
    stream_packets = [_connack(), *packets]
    stream = b"".join(p for p, _ in stream_packets)
    expected = [event for _, event in stream_packets]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    parser = IncomingParser()
    events = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        events += parser.feed(stream[previous:cut])
        previous = cut
    assert events == expected
    assert IncomingParser().feed(stream) == expected


@pytest.mark.unit
@settings(max_examples=500, deadline=None)
@given(
    garbage=st.binary(min_size=1, max_size=200),
    after_connack=st.booleans(),
    chunk=st.integers(1, 50),
)
def test_parser_rejects_garbage_with_its_own_error_only(
    garbage: bytes, after_connack: bool, chunk: int
) -> None:
    parser = IncomingParser()
    stream = (_connack()[0] if after_connack else b"") + garbage
    try:
        for start in range(0, len(stream), chunk):
            parser.feed(stream[start : start + chunk])
    except MqttProtocolError:
        pass  # the publisher closes the connection on this and nothing else


@pytest.mark.unit
@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"\x40\x02\x00\x01", "expected CONNACK first"),
        (b"\x20\x02\x00\x00\x20\x02\x00\x00", "unexpected packet type 2"),
        (b"\x20\x03\x00\x00\x00", "packet type 2: length 3, not 2"),
        (b"\x20\x02\x00\x00\x60\x02\x00\x01", r"first byte 0x60"),  # PUBREL needs 0x62
        (b"\x20\x02\x00\x00\x40\x03\x00\x01\x00", "packet type 4: length 3, not 2"),
        (b"\x20\x02\x00\x00\x50\x03\x00", "packet type 5: length 3, not 2"),  # before the body
        (b"\x20\x02\x00\x00\x40\x02\x00\x00", "packet id 0"),
        (b"\x20\x02\x00\x00\x36\x05\x00\x01t\x00\x01", r"first byte 0x36"),  # QoS 3
        (b"\x20\x02\x00\x00\x32\x03\x00\x01t", "shorter than its topic and packet id"),
        (b"\x20\x02\x00\x00\x90\x03\x00\x01\x00", "unexpected packet type 9"),  # SUBACK
        # Rejected from the first byte alone, without waiting for the announced 2 MB body.
        (b"\x20\x02\x00\x00\xf3\xff\xff\x7f", "first byte 0xf3"),
        (b"\x20\x02\x00\x00\x30\xff\xff\xff\xff\x01", "longer than 4 bytes"),
    ],
)
def test_parser_rejects_what_a_broker_must_not_send(stream: bytes, message: str) -> None:
    with pytest.raises(MqttProtocolError, match=message):
        IncomingParser().feed(stream)


@pytest.mark.unit
def test_packets_before_a_bad_one_are_still_reported() -> None:
    with pytest.raises(MqttProtocolError) as caught:
        IncomingParser().feed(b"\x20\x02\x00\x00\x40\x02\x00\x09\xf0\x00")
    assert caught.value.events == [(CONNACK, 0, 0), (PUBACK, 0, 9)]


# ---- against a real mosquitto ----------------------------------------------------------------


class Recorder:
    """Collects the publisher's callbacks in order as (name, packet id)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def callbacks(self, client_id: str = "test-publisher") -> dict[str, Any]:
        return {
            "client_id": client_id,
            "on_connected": lambda: self.events.append(("connected", 0)),
            "on_disconnected": lambda: self.events.append(("disconnected", 0)),
            "on_puback": lambda pid: self.events.append(("puback", pid)),
            "on_pubrec": lambda pid: self.events.append(("pubrec", pid)),
            "on_pubcomp": lambda pid: self.events.append(("pubcomp", pid)),
        }

    def named(self, *names: str) -> list[tuple[str, int]]:
        return [event for event in self.events if event[0] in names]


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached within {timeout_s} s")
        await asyncio.sleep(0.01)


def run(scenario: Callable[[], Awaitable[None]], timeout_s: float = 60.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), timeout_s)

    asyncio.run(bounded())


def make_publisher(
    port: int, recorder: Recorder, client_id: str, *, keepalive_s: int = 30, **options: Any
) -> MqttPublisher:
    """`options` may replace any of the recorder's callbacks."""
    arguments = {
        **recorder.callbacks(client_id),
        "reconnect_delay_s": 0.1,
        "max_reconnect_delay_s": 0.5,
        **options,
    }
    return MqttPublisher(
        BrokerSettings("127.0.0.1", port, keepalive_s=keepalive_s),
        asyncio.get_running_loop(),
        **arguments,
    )


@pytest.fixture
def persistent_broker() -> Iterator[MosquittoBroker]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with MosquittoBroker(persistence=True) as running:
        yield running


@pytest.mark.sim
def test_qos_0_1_2_reach_a_subscriber_and_acknowledgements_come_by_packet_id(
    broker: MosquittoBroker, probe: MqttProbe
) -> None:
    topic = unique("shoal/pub/")
    probe.subscribe(topic + "/#", 2)

    async def scenario() -> None:
        recorder = Recorder()
        publisher = make_publisher(broker.port, recorder, unique("pub-"))
        publisher.start()
        try:
            await publisher.wait_connected(5)
            assert publisher.connected and publisher.connections == 1
            assert publisher.publish(topic + "/q0", b"zero\x00", 0, False)
            assert publisher.publish(topic + "/q1", b"\x01one", 1, True, packet_id=300)
            assert publisher.publish(topic + "/q2", b"two" * 100, 2, False, packet_id=65535)
            assert publisher.publish(topic + "/q1", b"again", 1, False, packet_id=301)
            await until(lambda: len(recorder.named("pubrec")) == 1)
            # The publisher never sends PUBREL by itself: the caller records PUBREC first.
            await asyncio.sleep(0.2)
            assert recorder.named("pubcomp") == []
            assert publisher.pubrel(65535)
            await until(lambda: len(recorder.named("pubcomp")) == 1)
            assert recorder.named("puback", "pubrec", "pubcomp") == [
                ("puback", 300),
                ("pubrec", 65535),
                ("puback", 301),
                ("pubcomp", 65535),
            ]
            assert (publisher.published, publisher.acknowledged) == (4, 3)
            assert publisher.write_buffer_bytes() == 0
        finally:
            await publisher.stop()
        assert not publisher.connected
        assert recorder.events[0] == ("connected", 0) and recorder.events[-1] == ("disconnected", 0)
        assert publisher.publish(topic + "/q1", b"late", 1, False, packet_id=1) is False

    run(scenario)
    messages = probe.wait_for(lambda m: len(m) >= 4, 10)
    assert sorted(messages) == sorted(
        [
            (topic + "/q0", b"zero\x00", 0, False),
            (topic + "/q1", b"\x01one", 1, False),  # retain is cleared on live delivery
            (topic + "/q2", b"two" * 100, 2, False),
            (topic + "/q1", b"again", 1, False),
        ]
    )
    # The retained flag reached the broker: a new subscriber gets the message as retained.
    late = MqttProbe(broker.port)
    try:
        late.subscribe(topic + "/q1", 1)
        assert late.wait_for(lambda m: len(m) >= 1, 10) == [(topic + "/q1", b"\x01one", 1, True)]
    finally:
        late.close()


CRASHING_CHILD = """
import asyncio, sys
from host_sdk.mqttsn.mqtt_bridge import BrokerSettings
from host_sdk.mqttsn.mqtt_publisher import MqttPublisher

port, client_id, topic = int(sys.argv[1]), sys.argv[2], sys.argv[3]

async def main():
    pubrec = asyncio.Event()
    publisher = MqttPublisher(
        BrokerSettings("127.0.0.1", port), asyncio.get_running_loop(), client_id=client_id,
        on_connected=lambda: None, on_disconnected=lambda: None, on_puback=lambda pid: None,
        on_pubrec=lambda pid: pubrec.set(), on_pubcomp=lambda pid: None)
    publisher.start()
    await publisher.wait_connected(10)
    publisher.publish(topic, b"exactly-once", 2, False, packet_id=7)
    await asyncio.wait_for(pubrec.wait(), 10)
    print("PUBREC 7", flush=True)
    await asyncio.sleep(60)  # killed here, with the PUBREL never sent

asyncio.run(main())
"""


def _publish_qos2_then_kill_9(port: int, client_id: str, topic: str) -> None:
    """A separate process publishes QoS 2 pid 7, gets PUBREC, and is SIGKILLed."""
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CHILD, str(port), client_id, topic],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # bounded: the child gives up after 10 s
        assert line.strip() == "PUBREC 7", child.stderr.read() if child.stderr else ""
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.sim
@pytest.mark.parametrize("resend", ["publish-dup-then-pubrel", "pubrel-only"])
def test_qos2_is_delivered_exactly_once_across_a_kill_9_of_the_publisher(
    broker: MosquittoBroker, probe: MqttProbe, resend: str
) -> None:
    topic = unique("shoal/once/")
    client_id = unique("gw-")
    probe.subscribe(topic, 2)
    _publish_qos2_then_kill_9(broker.port, client_id, topic)

    async def scenario() -> None:
        recorder = Recorder()

        def resend_unfinished() -> None:
            recorder.events.append(("connected", 0))
            if resend == "publish-dup-then-pubrel":
                # Not known to be PUBREC'd (the journal had not recorded it): resend PUBLISH.
                assert publisher.publish(topic, b"exactly-once", 2, False, packet_id=7, dup=True)
            else:  # PUBREC recorded: only the PUBREL is resent (§4.4)
                assert publisher.pubrel(7)

        def record_then_release(packet_id: int) -> None:
            recorder.events.append(("pubrec", packet_id))
            publisher.pubrel(packet_id)

        publisher = make_publisher(
            broker.port,
            recorder,
            client_id,
            on_connected=resend_unfinished,
            on_pubrec=record_then_release,
        )
        publisher.start()
        try:
            await publisher.wait_connected(10)
            # The broker kept the session of the killed process (CleanSession=0).
            assert publisher.session_present
            await until(lambda: recorder.named("pubcomp") == [("pubcomp", 7)])
            expected_pubrecs = [("pubrec", 7)] if resend == "publish-dup-then-pubrel" else []
            assert recorder.named("pubrec") == expected_pubrecs
        finally:
            await publisher.stop()

    run(scenario)
    probe.wait_for(lambda m: len(m) >= 1, 10)
    time.sleep(0.5)  # a duplicate would arrive within this
    assert probe.payloads(topic) == [b"exactly-once"]


@pytest.mark.sim
def test_broker_restart_reconnects_and_publishes_again(persistent_broker: MosquittoBroker) -> None:
    broker = persistent_broker
    topic = unique("shoal/restart/")

    async def scenario() -> None:
        recorder = Recorder()
        publisher = make_publisher(broker.port, recorder, unique("gw-"))
        publisher.start()
        try:
            await publisher.wait_connected(5)
            assert not publisher.session_present  # first connection of this client id
            await asyncio.get_running_loop().run_in_executor(None, broker.restart)
            await until(lambda: publisher.connections == 2, 15)
            assert recorder.named("connected", "disconnected") == [
                ("connected", 0),
                ("disconnected", 0),
                ("connected", 0),
            ]
            assert publisher.session_present  # mosquitto persisted the session
            assert publisher.reconnects >= 1
            probe = MqttProbe(broker.port)
            try:
                probe.subscribe(topic, 1)
                assert publisher.publish(topic, b"after restart", 1, False, packet_id=2)
                await until(lambda: recorder.named("puback") == [("puback", 2)])
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: probe.wait_for(lambda m: len(m) >= 1, 10)
                )
                assert probe.payloads(topic) == [b"after restart"]
            finally:
                probe.close()
        finally:
            await publisher.stop()

    run(scenario)


@pytest.mark.sim
@needs_mosquitto
def test_broker_down_at_start_then_up() -> None:
    port = free_tcp_port()

    async def scenario() -> None:
        recorder = Recorder()
        publisher = make_publisher(port, recorder, unique("gw-"))
        publisher.start()
        try:
            await asyncio.sleep(0.5)
            assert not publisher.connected
            assert publisher.publish("shoal/down", b"x", 1, False, packet_id=1) is False
            assert publisher.published == 0
            with pytest.raises(TimeoutError):
                await publisher.wait_connected(0.1)
            with MosquittoBroker(port=port) as broker:
                assert broker.port == port
                await publisher.wait_connected(10)
                assert publisher.connections == 1 and publisher.reconnects >= 2
                assert recorder.events == [("connected", 0)]
                assert publisher.publish("shoal/down", b"x", 1, False, packet_id=1)
                await until(lambda: recorder.named("puback") == [("puback", 1)])
                await publisher.stop()
        finally:
            await publisher.stop()

    run(scenario)


@pytest.mark.sim
@needs_mosquitto
@pytest.mark.skipif(
    subprocess.run(["which", "mosquitto_passwd"], capture_output=True).returncode != 0,
    reason="mosquitto_passwd missing (Debian package 'mosquitto')",
)
def test_refused_connack_is_logged_once_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "gw", "s3cret"], check=True)
    passwords.chmod(0o600)
    extra = ["allow_anonymous false", f"password_file {passwords}"]

    async def scenario(port: int, password: str) -> tuple[bool, Recorder, MqttPublisher]:
        recorder = Recorder()
        publisher = MqttPublisher(
            BrokerSettings("127.0.0.1", port, username="gw", password=password),
            asyncio.get_running_loop(),
            **recorder.callbacks(unique("gw-")),
            reconnect_delay_s=0.1,
            max_reconnect_delay_s=0.1,
        )
        publisher.start()
        try:
            await publisher.wait_connected(1.5)
            return True, recorder, publisher
        except TimeoutError:
            return False, recorder, publisher
        finally:
            await publisher.stop()

    with MosquittoBroker(extra_config=extra) as broker:
        caplog.set_level(logging.WARNING, logger="host_sdk.mqttsn.mqtt_publisher")
        connected, recorder, publisher = asyncio.run(scenario(broker.port, "wrong"))
        assert not connected and publisher.connections == 0
        assert publisher.reconnects >= 3  # it kept trying
        # One per refusal (stop() may come in the middle of the last attempt).
        refused = len(recorder.named("disconnected"))
        assert publisher.reconnects <= refused <= publisher.reconnects + 1
        assert recorder.named("connected") == []
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1, refusals
        assert "not authorized (CONNACK code 5)" in refusals[0] or "(CONNACK code 4)" in refusals[0]
        connected, _recorder, _publisher = asyncio.run(scenario(broker.port, "s3cret"))
        assert connected


@pytest.mark.sim
def test_messages_queued_for_this_client_id_are_acknowledged_and_dropped(
    broker: MosquittoBroker, probe: MqttProbe
) -> None:
    client_id = unique("gw-")
    topic = unique("shoal/in/")
    # Someone subscribed with our client id and a persistent session, then went away.
    subscriber = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
    )
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.loop_start()
    result, _mid = subscriber.subscribe(topic, 2)
    assert result == mqtt.MQTT_ERR_SUCCESS
    time.sleep(0.3)
    subscriber.disconnect()
    subscriber.loop_stop()
    probe.publish(topic, b"q1", qos=1)
    probe.publish(topic, b"q2", qos=2)

    async def scenario() -> tuple[int, int]:
        counts = []
        for _ in range(2):
            publisher = make_publisher(broker.port, Recorder(), client_id)
            publisher.start()
            try:
                await publisher.wait_connected(5)
                await asyncio.sleep(0.5)
                counts.append(publisher.received)
                assert publisher.malformed == 0 and publisher.connected
            finally:
                await publisher.stop()
        return counts[0], counts[1]

    first, second = asyncio.run(scenario())
    # Both queued messages came once; acknowledged, so the broker does not send them again.
    assert (first, second) == (2, 0)


class CorruptingProxy:
    """A TCP proxy in front of mosquitto that injects garbage after the first CONNACK it
    forwards; later connections pass through untouched."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.connections = 0
        self.handlers: set[asyncio.Task[Any]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        corrupt = self.connections == 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)

        async def pump(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, down: bool
        ) -> None:
            nonlocal corrupt
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    if down and corrupt and data[:1] == b"\x20":
                        corrupt = False
                        sink.write(b"\x40\x02\x00\x05\xf3\xff\x00")  # PUBACK 5, then garbage
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


@pytest.mark.sim
def test_malformed_data_from_the_broker_closes_and_reconnects(
    broker: MosquittoBroker, probe: MqttProbe
) -> None:
    topic = unique("shoal/bad/")
    probe.subscribe(topic, 1)

    async def scenario() -> None:
        proxy = CorruptingProxy(broker.port)
        await proxy.start()
        recorder = Recorder()
        publisher = make_publisher(proxy.port, recorder, unique("gw-"))
        publisher.start()
        try:
            await until(lambda: publisher.connections == 2)
            assert publisher.malformed == 1
            # The valid PUBACK before the garbage was still reported.
            assert recorder.events == [
                ("connected", 0),
                ("puback", 5),
                ("disconnected", 0),
                ("connected", 0),
            ]
            assert publisher.publish(topic, b"fine", 1, False, packet_id=9)
            await until(lambda: recorder.named("puback") == [("puback", 5), ("puback", 9)])
        finally:
            await publisher.stop()
            await proxy.close()

    run(scenario)
    assert probe.wait_for(lambda m: len(m) >= 1, 10)[0][:2] == (topic, b"fine")


@pytest.mark.sim
@pytest.mark.slow
def test_keepalive_pings_when_idle_and_reconnects_when_the_broker_stops_answering(
    broker: MosquittoBroker,
) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        publisher = make_publisher(broker.port, recorder, unique("gw-"), keepalive_s=1)
        publisher.start()
        try:
            await publisher.wait_connected(5)
            # Idle for 3.5 keep-alive periods: mosquitto drops a client silent for 1.5 of them,
            # so staying connected means PINGREQs went out and PINGRESPs came back.
            await asyncio.sleep(3.5)
            assert publisher.connections == 1 and publisher.connected
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGSTOP)  # TCP stays up; nothing answers
            try:
                await until(lambda: not publisher.connected, 5)
                assert recorder.events[-1] == ("disconnected", 0)
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            await until(lambda: publisher.connections == 2, 15)
        finally:
            await publisher.stop()

    run(scenario)


@pytest.mark.sim
@needs_mosquitto
@pytest.mark.skipif(
    subprocess.run(["which", "openssl"], capture_output=True).returncode != 0,
    reason="openssl CLI missing (needed to make test certificates)",
)
def test_tls_with_a_private_ca(tmp_path: Path) -> None:
    from test_mqtt_bridge import _make_tls_files  # the bridge's throwaway CA, reused

    files = _make_tls_files(tmp_path)
    tls_port = free_tcp_port()
    extra = [
        f"listener {tls_port} 127.0.0.1",
        f"cafile {files['ca.crt']}",
        f"certfile {files['server.crt']}",
        f"keyfile {files['server.key']}",
    ]

    async def acknowledged(ca_file: str | None) -> bool:
        recorder = Recorder()
        publisher = MqttPublisher(
            BrokerSettings("127.0.0.1", tls_port, tls=True, ca_file=ca_file),
            asyncio.get_running_loop(),
            **recorder.callbacks(unique("gw-tls-")),
        )
        publisher.start()
        try:
            await publisher.wait_connected(3)
        except TimeoutError:
            return False
        else:
            assert publisher.publish("shoal/tls", b"secret", 1, False, packet_id=42)
            await until(lambda: recorder.named("puback") == [("puback", 42)])
            return True
        finally:
            await publisher.stop()

    with MosquittoBroker(extra_config=extra):
        assert asyncio.run(acknowledged(str(files["ca.crt"])))
        # The system trust store does not know the private CA: the handshake must fail.
        assert not asyncio.run(acknowledged(None))
