"""The native C client program (apps/mqttsn_native_client.c) over real UDP sockets on 127.0.0.1,
against a scripted gateway in this test: connect with will, subscribe, gateway REGISTER, QoS 1
publish with a lost first attempt (DUP retransmission), gateway loss and reconnect, sleep/wake.

The scripted gateway builds its replies with the independent reference encoder and reads the
client's datagrams with the C codec's CLI front end (itself cross-checked in test_mqttsn_c_codec).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.firmware import mqttsn_reference as ref
from tests.firmware.mqttsn_reference import CodecCli, Fields

pytestmark = pytest.mark.sim

Handler = Callable[["ScriptedGateway", Fields], None]


class ScriptedGateway:
    """A UDP responder that calls `handler` for every datagram the client sends."""

    def __init__(self, cli: CodecCli, handler: Handler) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.cli = cli
        self.handler = handler
        self.received: list[Fields] = []
        self.peer: tuple[str, int] | None = None
        self.silent_until = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, msg: Fields) -> None:
        assert self.peer is not None
        self.sock.sendto(ref.encode(msg), self.peer)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            self.peer = peer
            decoded = self.cli.decode(data)
            assert isinstance(decoded, Fields), f"client sent an undecodable datagram {data.hex()}"
            self.received.append(decoded)
            if time.monotonic() >= self.silent_until:
                self.handler(self, decoded)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def of_type(self, msg_type: int) -> list[Fields]:
        return [m for m in self.received if m.type == msg_type]


@pytest.fixture
def cli(codec_cli: Path) -> Iterator[CodecCli]:
    process = CodecCli(codec_cli)
    yield process
    process.close()


def run_client(exe: Path, gateway: ScriptedGateway, *args: str, timeout_s: float = 20) -> list[str]:
    proc = subprocess.run(
        [str(exe), "--gateway", f"127.0.0.1:{gateway.port}", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "DONE" in lines, proc.stdout
    return lines


def basic_gateway(drop_first_publish: bool) -> Handler:
    state = {"publishes": 0, "next_topic": 0x20}

    def handle(gw: ScriptedGateway, m: Fields) -> None:
        if m.type == ref.CONNECT:
            gw.send(Fields(ref.WILLTOPICREQ) if m.flags & 0x08 else Fields(ref.CONNACK))
        elif m.type == ref.WILLTOPIC:
            gw.send(Fields(ref.WILLMSGREQ))
        elif m.type == ref.WILLMSG:
            gw.send(Fields(ref.CONNACK))
        elif m.type == ref.SUBSCRIBE:
            gw.send(Fields(ref.SUBACK, flags=m.flags & 0x60, msg_id=m.msg_id))
            if m.text == b"s/#":
                gw.send(Fields(ref.REGISTER, topic_id=0x33, msg_id=100, text=b"s/x"))
        elif m.type == ref.REGACK and m.msg_id == 100:
            gw.send(Fields(ref.PUBLISH, flags=0x20, topic_id=0x33, msg_id=101, data=b"ping"))
            # 700 bytes: the 3-octet length form, as gateways send for large messages.
            gw.send(Fields(ref.PUBLISH, flags=0x00, topic_id=0x33, data=bytes(range(100)) * 7))
        elif m.type == ref.REGISTER:
            gw.send(Fields(ref.REGACK, topic_id=state["next_topic"], msg_id=m.msg_id))
            state["next_topic"] += 1
        elif m.type == ref.PUBLISH:
            state["publishes"] += 1
            if not (drop_first_publish and state["publishes"] == 1):
                gw.send(Fields(ref.PUBACK, topic_id=m.topic_id, msg_id=m.msg_id))
        elif m.type == ref.PINGREQ:
            gw.send(Fields(ref.PINGRESP))
        elif m.type == ref.DISCONNECT:
            gw.send(Fields(ref.DISCONNECT, has_duration=m.has_duration, duration=m.duration))

    return handle


def test_connect_will_subscribe_register_publish(native_client: Path, cli: CodecCli) -> None:
    gw = ScriptedGateway(cli, basic_gateway(drop_first_publish=True))
    try:
        lines = run_client(
            native_client,
            gw,
            "--client-id",
            "native-1",
            "--will-topic",
            "dev/native-1/will",
            "--will-msg",
            "gone",
            "--will-qos",
            "1",
            "--will-retain",
            "1",
            "--sub",
            "s/#:1",
            "--pub",
            "a/b:1:hello-{n}",
            "--count",
            "2",
            "--expect",
            "2",
            "--retry-ms",
            "200",
        )
    finally:
        gw.close()
    assert lines[0] == "CONNACK 0"
    assert "SUBACK 1 1 0 0 s/#" in lines
    assert "REGISTER 51 s/x" in lines
    assert "RECV s/x 1 0 70696e67" in lines  # "ping"
    assert f"RECV s/x 0 0 {(bytes(range(100)) * 7).hex()}" in lines
    done = [line for line in lines if line.startswith("PUBDONE")]
    pubs = gw.of_type(ref.PUBLISH)
    assert done == [f"PUBDONE {p.msg_id} 0" for p in pubs if not p.flags & 0x80], lines
    assert lines.index("READY") < lines.index(done[0])
    will_topic = gw.of_type(ref.WILLTOPIC)[0]
    assert (will_topic.flags, will_topic.text) == (0x30, b"dev/native-1/will")
    assert gw.of_type(ref.WILLMSG)[0].data == b"gone"
    assert [p.data for p in pubs] == [b"hello-1", b"hello-1", b"hello-2"]
    assert [p.flags & 0x80 for p in pubs] == [0, 0x80, 0]  # DUP only on the retransmission
    assert gw.of_type(ref.PUBACK)[0].msg_id == 101  # acknowledged the gateway's QoS 1
    assert gw.of_type(ref.DISCONNECT), "client should disconnect cleanly at the end"


def test_gateway_silence_then_reconnect_and_resubscribe(native_client: Path, cli: CodecCli) -> None:
    handler = basic_gateway(drop_first_publish=False)

    def go_silent_after_suback(gw: ScriptedGateway, m: Fields) -> None:
        handler(gw, m)
        if m.type == ref.SUBSCRIBE and len(gw.of_type(ref.SUBSCRIBE)) == 1:
            gw.silent_until = time.monotonic() + 2.5

    gw = ScriptedGateway(cli, go_silent_after_suback)
    try:
        lines = run_client(
            native_client,
            gw,
            "--client-id",
            "native-2",
            "--keepalive",
            "1",
            "--sub",
            "t/1:0",
            "--retry-ms",
            "150",
            "--max-retries",
            "2",
            "--reconnect-ms",
            "100",
            "--run-ms",
            "4000",
        )
    finally:
        gw.close()
    assert "LOST" in lines and "RECONNECTED" in lines, " | ".join(lines)
    assert lines.index("LOST") < lines.index("RECONNECTED")
    assert len(gw.of_type(ref.CONNECT)) >= 2
    subs = [s.text for s in gw.of_type(ref.SUBSCRIBE)]
    assert subs.count(b"t/1") >= 2, "subscription must be resent after the reconnect"


def test_sleep_wake_receives_buffered_message(native_client: Path, cli: CodecCli) -> None:
    handler = basic_gateway(drop_first_publish=False)

    def sleepy(gw: ScriptedGateway, m: Fields) -> None:
        if m.type == ref.PINGREQ and m.text:
            # Waking client: deliver what was buffered, then PINGRESP.
            gw.send(Fields(ref.PUBLISH, flags=0x21, topic_id=5, msg_id=7, data=b"wake"))
            gw.send(Fields(ref.PINGRESP))
            return
        handler(gw, m)

    gw = ScriptedGateway(cli, sleepy)
    try:
        lines = run_client(
            native_client,
            gw,
            "--client-id",
            "sleepy",
            "--predef",
            "5:cmd/x",
            "--sleep",
            "1",
            "--expect",
            "1",
        )
    finally:
        gw.close()
    assert lines.index("ASLEEP") < lines.index("AWAKE") < lines.index("RECV cmd/x 1 0 77616b65")
    sleep_req = [d for d in gw.of_type(ref.DISCONNECT) if d.has_duration]
    assert sleep_req and sleep_req[0].duration == 1
    wake = [p for p in gw.of_type(ref.PINGREQ) if p.text]
    assert wake and wake[0].text == b"sleepy"
    assert any(a.type == ref.PUBACK and a.msg_id == 7 for a in gw.received)


def test_search_gateway_then_connect_to_the_responder(native_client: Path, cli: CodecCli) -> None:
    gateway = ScriptedGateway(cli, basic_gateway(drop_first_publish=False))
    searches: list[Fields] = []

    def search_point(gw: ScriptedGateway, m: Fields) -> None:
        # Answer SEARCHGW from the real gateway's socket: the client must adopt that address.
        if m.type == ref.SEARCHGW:
            searches.append(m)
            assert gw.peer is not None
            gateway.sock.sendto(ref.encode(Fields(ref.GWINFO, gw_id=7)), gw.peer)

    searcher = ScriptedGateway(cli, search_point)
    try:
        lines = run_client(native_client, searcher, "--client-id", "seeker", "--search")
    finally:
        searcher.close()
        gateway.close()
    assert lines[:2] == ["GWINFO 7", "CONNACK 0"], lines
    assert [m.radius for m in searches] == [1]
    assert [m.type for m in searcher.received] == [ref.SEARCHGW], (
        "only SEARCHGW at the search address"
    )
    assert gateway.of_type(ref.CONNECT)[0].text == b"seeker"


def test_qos2_counted_once_and_pubcomp_before_disconnect(
    native_client: Path, cli: CodecCli
) -> None:
    handler = basic_gateway(drop_first_publish=False)

    def slow_release(gw: ScriptedGateway, m: Fields) -> None:
        if m.type == ref.SUBSCRIBE:
            handler(gw, m)
            # A QoS 2 message, then its retransmission (DUP) as if our PUBREC were lost.
            gw.send(Fields(ref.PUBLISH, flags=0x41, topic_id=5, msg_id=21, data=b"one"))
            gw.send(Fields(ref.PUBLISH, flags=0xC1, topic_id=5, msg_id=21, data=b"one"))
            # The PUBREL comes late: --expect 1 is met long before it.
            threading.Timer(0.8, lambda: gw.send(Fields(ref.PUBREL, msg_id=21))).start()
            return
        handler(gw, m)

    gw = ScriptedGateway(cli, slow_release)
    try:
        lines = run_client(
            native_client, gw, "--client-id", "once", "--predef", "5:cmd/q2",
            "--sub-predef", "5:2", "--expect", "1", "--retry-ms", "500",
        )  # fmt: skip
    finally:
        gw.close()
    assert [line for line in lines if line.startswith("RECV")] == ["RECV cmd/q2 2 0 6f6e65"]
    sent = [m.type for m in gw.received]
    assert sent.count(ref.PUBREC) == 2, "each copy is acknowledged"
    assert ref.PUBCOMP in sent and ref.DISCONNECT in sent, sent
    assert sent.index(ref.PUBCOMP) < sent.index(ref.DISCONNECT), "DISCONNECT before PUBCOMP"
    assert lines.index("DONE") < lines.index("DISCONNECTED")
