"""The gateway's subscribing MQTT connection: one shared connection to the broker (aggregating
mode) for everything devices subscribe to.

Responsible for: parsing broker URLs, connecting with credentials and TLS, keeping the
upstream subscriptions as reference-counted topic filters (re-subscribed after every
reconnect), and handing received messages to the asyncio loop. The gateway publishes through
`upstream.Upstream` (spool + `mqtt_publisher`), not through this connection; `publish` stays
for scripts and tests that want one paho connection for both directions. It knows nothing of
MQTT-SN: the gateway decides who gets what.

Why aggregating: a fleet of thousands of devices would otherwise hold thousands of broker
connections (and broker memory, keep-alives, TLS handshakes) for devices that each send a few
messages a minute. One connection carries all of them; per-device semantics that MQTT would tie
to a connection (will messages, sessions) are kept by the gateway's session layer instead.

Event loop: paho-mqtt's network I/O runs on the asyncio loop itself (its external-loop hooks:
the broker socket is an asyncio reader, `loop_misc` runs every second), so publishing
costs no thread switch; only the blocking TCP/TLS connect runs in an executor thread.
Callbacks therefore reach the gateway on the loop. Writes are flushed once per loop iteration
(`call_soon`), so all PUBLISHes produced by the datagrams of one iteration go out in one pass;
the socket is watched for writability only while the kernel's send buffer is full.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from codegen.errors import ShoalInputError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# In-flight window for QoS 1/2 publishes made through `publish`. Not unlimited: mosquitto gives
# an MQTT 3.1.1 client a receive quota of max_inflight_messages (default 20) and answers a
# PUBLISH beyond it with a normal-looking PUBACK/PUBREC while discarding it (see `upstream`).
MAX_INFLIGHT_MESSAGES = 20

RECONNECT_DELAY_S = 1.0
MISC_INTERVAL_S = 1.0  # paho's keep-alive and retry bookkeeping

MessageHandler = Callable[[str, bytes, int, bool], None]
"""Called on the asyncio loop with (topic, payload, qos, retain) for every broker message."""


@dataclass(frozen=True)
class BrokerSettings:
    """Where and how to reach the broker. `keepalive_s` in seconds."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    client_id: str = "shoal-gateway"
    keepalive_s: int = 30


def parse_broker_url(url: str, *, client_id: str = "shoal-gateway") -> BrokerSettings:
    """`mqtt://[user[:password]@]host[:port]` or `mqtts://...` (TLS; default port 8883)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in DEFAULT_PORTS:
        raise ShoalInputError(
            f"broker URL {url!r}: scheme {parsed.scheme or '(none)'!r} is not supported "
            "(use mqtt://host:port or mqtts://host:port)"
        )
    if not parsed.hostname:
        raise ShoalInputError(f"broker URL {url!r}: no host (expected mqtt://host:port)")
    try:
        port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    except ValueError as exc:
        raise ShoalInputError(f"broker URL {url!r}: port is not a number in 1..65535") from exc
    if parsed.path not in ("", "/") or parsed.query:
        raise ShoalInputError(f"broker URL {url!r}: unexpected path or query after host:port")
    return BrokerSettings(
        host=parsed.hostname,
        port=port,
        username=urllib.parse.unquote(parsed.username) if parsed.username else None,
        password=urllib.parse.unquote(parsed.password) if parsed.password else None,
        tls=parsed.scheme == "mqtts",
        client_id=client_id,
    )


class MqttBridge:
    """One paho-mqtt connection shared by every device behind the gateway.

    Call order: `start()` (non-blocking; connects and reconnects in the background), then
    `subscribe`/`unsubscribe`/`publish` from the asyncio loop, then `stop()`. Messages arrive via
    `on_message` on the loop given to the constructor.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        on_message: MessageHandler,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.settings = settings
        self._on_message = on_message
        self._loop = loop
        self._filters: dict[str, list[int]] = {}  # filter -> [reference count, max qos]
        self._lock = threading.Lock()
        self.connected = asyncio.Event()
        self.connections = 0  # successful CONNACKs, including reconnects
        self.published = 0
        self.received = 0
        self._stopping = False
        self._connecting = False
        self._reader_fd: int | None = None
        self._writer_fd: int | None = None
        self._flush_pending = False
        self._misc_task: asyncio.Task[None] | None = None
        self._reconnect_handle: asyncio.TimerHandle | None = None
        self._loop_thread: int | None = None
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        settings = self.settings
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            context = ssl.create_default_context(cafile=settings.ca_file)
            client.tls_set_context(context)
        client.max_inflight_messages_set(MAX_INFLIGHT_MESSAGES)
        client.max_queued_messages_set(0)  # 0: unbounded while reconnecting; nothing dropped
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write
        return client

    # paho's socket hooks -> asyncio reader/writer ------------------------------------------

    def _on_loop(self, function: Callable[..., None], *args: object) -> None:
        # paho calls the hooks from the connect executor thread too; the loop owns the fds.
        if threading.get_ident() == self._loop_thread:
            function(*args)
        else:
            self._loop.call_soon_threadsafe(function, *args)

    def _socket_open(self, _client: mqtt.Client, _userdata: object, sock: object) -> None:
        # paho leaves Nagle on: a QoS 0 PUBLISH could then wait for the broker's delayed ACK
        # (tens of ms). Writes are coalesced per flush instead (see `_flush`).
        _set_tcp_option(sock, "TCP_NODELAY", 1)
        self._on_loop(self._add_reader, _fileno(sock))

    def _socket_close(self, _client: mqtt.Client, _userdata: object, sock: object) -> None:
        self._on_loop(self._remove_fd, _fileno(sock))

    def _register_write(self, _client: mqtt.Client, _userdata: object, sock: object) -> None:
        self._on_loop(self._schedule_flush, _fileno(sock))

    def _unregister_write(self, _client: mqtt.Client, _userdata: object, sock: object) -> None:
        self._on_loop(self._remove_writer, _fileno(sock))

    def _add_reader(self, fd: int) -> None:
        if fd < 0 or self._client.socket() is None:
            return
        self._reader_fd = fd
        self._loop.add_reader(fd, self._readable)

    def _schedule_flush(self, fd: int) -> None:
        if fd < 0 or self._flush_pending:
            return
        self._flush_pending = True
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        sock = self._client.socket()
        if sock is None:
            return
        # paho sends each packet with its own send(); corked, the kernel packs them into full
        # segments, and uncorking pushes the rest out at once (Linux; elsewhere a no-op).
        corked = _set_tcp_option(sock, "TCP_CORK", 1)
        try:
            self._client.loop_write()
        finally:
            if corked:
                _set_tcp_option(sock, "TCP_CORK", 0)
        if self._client.want_write():
            # The kernel buffer is full: paho keeps its write registration, so wait for the
            # socket to become writable before writing the rest.
            self._add_writer(_fileno(self._client.socket()))

    def _add_writer(self, fd: int) -> None:
        if fd < 0 or self._writer_fd == fd:
            return
        self._writer_fd = fd
        self._loop.add_writer(fd, self._writable)

    def _remove_writer(self, fd: int) -> None:
        if self._writer_fd == fd:
            self._loop.remove_writer(fd)
            self._writer_fd = None

    def _remove_fd(self, fd: int) -> None:
        self._remove_writer(fd)
        if self._reader_fd == fd:
            self._loop.remove_reader(fd)
            self._reader_fd = None

    def _readable(self) -> None:
        self._client.loop_read()

    def _writable(self) -> None:
        self._client.loop_write()

    async def _misc_forever(self) -> None:
        while True:
            await asyncio.sleep(MISC_INTERVAL_S)
            self._client.loop_misc()

    def _schedule_connect(self, delay_s: float) -> None:
        if self._stopping or self._reconnect_handle is not None:
            return
        self._reconnect_handle = self._loop.call_later(delay_s, self._begin_connect)

    def _begin_connect(self) -> None:
        self._reconnect_handle = None
        if self._stopping or self._connecting:
            return
        self._connecting = True
        attempt = self._loop.run_in_executor(None, self._client.reconnect)
        attempt.add_done_callback(self._connect_done)

    def _connect_done(self, attempt: asyncio.Future[mqtt.MQTTErrorCode]) -> None:
        self._connecting = False
        failed = attempt.cancelled() or attempt.exception() is not None  # retrieves it
        if self._stopping:
            if not failed:
                self._client.disconnect()
                self._client.loop_write()
            return
        if failed:
            self._schedule_connect(RECONNECT_DELAY_S)

    # paho callbacks (run on the loop) --------------------------------------------------------

    def _handle_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: object,
        reason_code: mqtt.ReasonCode,
        _properties: object,
    ) -> None:
        if reason_code.is_failure:
            return
        with self._lock:
            filters = [(topic, qos) for topic, (_count, qos) in self._filters.items()]
        for topic, qos in filters:
            client.subscribe(topic, qos)
        self._loop.call_soon_threadsafe(self._mark_connected, True)

    def _handle_disconnect(self, *_args: object) -> None:
        self._loop.call_soon_threadsafe(self._mark_connected, False)
        self._loop.call_soon_threadsafe(self._schedule_connect, RECONNECT_DELAY_S)

    def _mark_connected(self, up: bool) -> None:
        if up:
            self.connections += 1
            self.connected.set()
        else:
            self.connected.clear()

    def _handle_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        self._deliver(message.topic, bytes(message.payload), message.qos, bool(message.retain))

    def _deliver(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.received += 1
        self._on_message(topic, payload, qos, retain)

    # gateway -> broker ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; reconnects forever until `stop()`. Call on the loop."""
        self._loop_thread = threading.get_ident()
        self._stopping = False
        self._client.connect_async(
            self.settings.host, self.settings.port, self.settings.keepalive_s
        )
        self._misc_task = self._loop.create_task(self._misc_forever())
        self._schedule_connect(0.0)

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until the broker has accepted the connection (raises TimeoutError)."""
        await asyncio.wait_for(self.connected.wait(), timeout_s)

    def subscribe(self, topic_filter: str, qos: int, *, replay_retained: bool = True) -> None:
        """Add one reference to `topic_filter`. The broker is asked on the first reference, on
        a QoS upgrade, and (with `replay_retained`) again so that it replays retained messages
        for the device that just subscribed."""
        with self._lock:
            entry = self._filters.get(topic_filter)
            if entry is None:
                self._filters[topic_filter] = [1, qos]
                ask = True
            else:
                entry[0] += 1
                ask = replay_retained or qos > entry[1]
                entry[1] = max(entry[1], qos)
            granted = self._filters[topic_filter][1]
        if ask:
            self._client.subscribe(topic_filter, granted)

    def unsubscribe(self, topic_filter: str) -> None:
        """Drop one reference; the broker is told when the last one goes."""
        with self._lock:
            entry = self._filters.get(topic_filter)
            if entry is None:
                return
            entry[0] -= 1
            if entry[0] > 0:
                return
            del self._filters[topic_filter]
        self._client.unsubscribe(topic_filter)

    @property
    def filters(self) -> dict[str, int]:
        """Upstream filters and their reference counts."""
        with self._lock:
            return {topic: count for topic, (count, _qos) in self._filters.items()}

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Publish upstream. QoS 1/2 messages are queued by paho while the broker is away and
        sent after reconnecting; QoS 0 while disconnected is dropped (as MQTT allows)."""
        self.published += 1
        self._client.publish(topic, payload, qos=min(max(qos, 0), 2), retain=retain)

    def stop(self) -> None:
        """Send DISCONNECT and close the connection; no reconnects after this. Call on the
        loop."""
        self._stopping = True
        if self._reconnect_handle is not None:
            self._reconnect_handle.cancel()
            self._reconnect_handle = None
        if self._misc_task is not None:
            self._misc_task.cancel()
            self._misc_task = None
        if self._connecting:
            return  # _connect_done disconnects when the attempt finishes
        self._client.disconnect()
        self._client.loop_write()  # flushes DISCONNECT; paho then closes the socket
        for fd in {self._reader_fd, self._writer_fd} - {None}:
            assert fd is not None
            self._remove_fd(fd)
        self.connected.clear()


def _set_tcp_option(sock: object, name: str, value: int) -> bool:
    """Set a TCP socket option by name; False where the platform or socket has none."""
    option = getattr(socket, name, None)
    if option is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, value)  # type: ignore[attr-defined]
    except (OSError, AttributeError, ValueError):
        return False
    return True


def _fileno(sock: object) -> int:
    try:
        return int(sock.fileno())  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return -1
