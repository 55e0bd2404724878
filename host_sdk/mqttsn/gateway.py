"""The asyncio MQTT-SN gateway: UDP and serial listeners, access control, counters, and the
bridge between `GatewayRegistry` (the sans-IO session layer) and one shared broker connection.

Responsible for all gateway I/O: receiving datagrams (UDP; the socket is read directly,
draining up to `UDP_READ_BATCH` datagrams per wake-up) and frames (serial), passing them
with the loop's monotonic clock to the registry, sending what the registry returns, running the
registry's timers with one `loop.call_at` handle, mapping session events to the broker
(publish, reference-counted subscribe/unsubscribe, wills of lost clients), routing broker
messages back down, sending ADVERTISE periodically, and publishing statistics. It must not
contain protocol logic (that lives in `gateway_session`, including the access-control
decisions) or MQTT client code (`mqtt_bridge`).

Mode: aggregating. Every device behind the gateway shares one MQTT connection to the broker.
A fleet of thousands of devices that each send a few messages a minute would otherwise cost
the broker thousands of TCP (and TLS) connections, keep-alives and session records; one
connection carries them all and the broker sees one client. The per-device MQTT semantics
that a broker would tie to a connection are kept here instead: the will of each device (the
gateway publishes it when the device's keep-alive or sleep timer expires), its session
(CleanSession=0 subscriptions and topic ids survive a reconnect), its subscriptions (the
broker holds the union, reference-counted; the registry decides which device gets what) and
its sleep buffer. What is given up: the broker cannot tell devices apart (its ACLs see only
the gateway), so the gateway applies its own allowlist.

Durability (see `upstream` and `gateway_config`): device messages go upstream through
`Upstream` (the spool, then a persistent MQTT publisher); the registry defers each QoS 1/2
acknowledgement until `Upstream` calls back that the message is safe, and the events of a
datagram (spool records, stored sessions) are handled before its replies are sent. The paho
`MqttBridge` carries only subscriptions. CleanSession=0 sessions are written to a
`SessionStore` whenever they change and restored at start; the state directory is locked so
two gateways never share it.

Serial framing: each serial link (a pyserial URL: `socket://host:port` for a QEMU UART,
`/dev/tty...`, `loop://`) carries one device. Messages travel as
`COBS(message || CRC-16/CCITT-FALSE) || 0x00` (see `framing.py`): 0x00 only delimits frames,
so after noise or a lost byte the receiver resynchronises at the next 0x00; frames that fail
COBS or the CRC are dropped and counted as malformed. A `socket://` link that drops is
reopened every `SERIAL_REOPEN_S` seconds until the gateway stops.

Serial listeners (`serial_listen`, a TCP host:port; port 0 picks a free one, see
`bound_serial_listen_addresses` and the ready line): the gateway is the TCP server and every
accepted connection is one device's serial line with the same framing, e.g. a QEMU board
started with `-serial tcp:HOST:PORT,nodelay=on`. Each connection has its own registry address
(`SerialAddress("tcp://<peer host>:<peer port>#<n>")`, n counting the gateway's accepted
connections, so a later connection never inherits an earlier device's session). A connection
that closes ends only that link: the device's session stays until its keep-alive expires
(will published) or the device connects again (on a new connection it takes its session
over). Frames for a closed connection are dropped; so are frames beyond
`SERIAL_LISTEN_MAX_BUFFERED_BYTES` not yet taken by a slow peer (counted as write errors; the
sessions' retransmission covers QoS 1/2).

Access control (config `[[allow]]`; no rules means everyone may do everything): the rules
are the registry's `authorize` hook (`GatewayConfig.authorize`), applied by the session layer,
which answers refusals with return code 0x03 (not supported): CONNECT -> CONNACK (no session
is created), a will topic -> CONNACK (or WILLTOPICRESP for an update), SUBSCRIBE -> SUBACK,
REGISTER of a topic the client may neither publish nor subscribe to -> REGACK, PUBLISH QoS 1/2
-> PUBACK; QoS 0/-1 is dropped. Each is counted (`acl_denied_*` in the statistics).

Discovery: the gateway answers SEARCHGW with GWINFO and, when `advertise_to` is configured,
sends ADVERTISE(GwId, Duration = `advertise_interval_s`) there from its UDP socket at start and
every `advertise_interval_s` seconds (spec §6.1; broadcast addresses are allowed). With
`multicast` (a group:port) the gateway also joins that group: a SEARCHGW heard there is
answered with GWINFO sent to the group (TTL = the search radius) from the unicast socket, so
every listening device hears it and connects to the datagram's source address; ADVERTISE goes
to the group unless `advertise_to` says otherwise.

Statistics: `Gateway.stats()` returns gateway totals (received, sent, dropped, malformed,
retransmitted, ...) and per-client counters; every `stats_interval_s` seconds the totals (not
the per-client table, which grows with the fleet) are published as JSON, QoS 0, not retained,
on `shoal/gateway/<gateway id>/stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import serial

from codegen.errors import ShoalInputError
from host_sdk.mqttsn import codec
from host_sdk.mqttsn.framing import DEFAULT_MAX_MESSAGE_BYTES, FrameDecoder, encode_frame
from host_sdk.mqttsn.gateway_config import GatewayConfig
from host_sdk.mqttsn.gateway_session import (
    ACTION_CONNECT,
    ACTION_PUBLISH,
    ACTION_SUBSCRIBE,
    ACTION_WILL,
    DENIED_REGISTER,
    ClientLost,
    DeviceReleased,
    GatewayEvent,
    GatewayRegistry,
    PublishUpstream,
    SessionChanged,
    SubscribeUpstream,
    UnsubscribeUpstream,
)
from host_sdk.mqttsn.gateway_session import GatewayConfig as SessionConfig
from host_sdk.mqttsn.mqtt_bridge import MqttBridge
from host_sdk.mqttsn.session_store import SessionStore
from host_sdk.mqttsn.upstream import StateDirLock, Upstream

UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
UDP_MAX_DATAGRAM_BYTES = 65535
# Datagrams read per wake-up of the UDP socket: draining a burst in one go saves a loop
# iteration (and an epoll_wait) per datagram, and the bound keeps the broker socket and the
# timers served during a flood.
UDP_READ_BATCH = 64
SERIAL_REOPEN_S = 0.5
SERIAL_READ_TIMEOUT_S = 0.05
SERIAL_LISTEN_READ_BYTES = 4096
SERIAL_LISTEN_MAX_BUFFERED_BYTES = 256 * 1024
DEFAULT_STATS_INTERVAL_S = 10.0
BROKER_WAIT_S = 5.0
STATS_TOPIC = "shoal/gateway/{gateway_id}/stats"
_log = logging.getLogger(__name__)


def session_config(config: GatewayConfig) -> SessionConfig:
    """The session-layer tunables derived from the gateway configuration."""
    return SessionConfig(
        gw_id=config.gateway_id,
        predefined_topics={name: topic_id for topic_id, name in config.predefined_topics},
        max_clients=config.max_clients,
        keep_alive_factor=config.keepalive_grace,
        t_retry_s=config.retry_s,
        n_retry=config.max_retries,
        max_buffered_messages=config.sleep_buffer_messages,
        authorize=config.authorize if config.allow else None,
        defer_acks=True,
        track_sessions=True,
    )


@dataclass(frozen=True)
class SerialAddress:
    """The registry address of the one device on a serial link."""

    url: str


# Linux: like SO_RCVBUF/SO_SNDBUF but not capped by net.core.[rw]mem_max (needs CAP_NET_ADMIN).
_SO_RCVBUFFORCE = 33
_SO_SNDBUFFORCE = 32


def _grow_buffer(sock: socket.socket, option: int, force_option: int) -> None:
    """Ask for UDP_RECEIVE_BUFFER_BYTES; bursts from a fleet must not overflow the socket."""
    sock.setsockopt(socket.SOL_SOCKET, option, UDP_RECEIVE_BUFFER_BYTES)
    granted = sock.getsockopt(socket.SOL_SOCKET, option)
    if granted < UDP_RECEIVE_BUFFER_BYTES and sys.platform == "linux":
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, force_option, UDP_RECEIVE_BUFFER_BYTES)


class SerialLink:
    """One serial device: a reader thread (pyserial has no asyncio API) feeding frames to the
    loop, writes from the loop. Reopens `socket://` links that drop."""

    def __init__(self, url: str, gateway: Gateway, loop: asyncio.AbstractEventLoop) -> None:
        self.url = url
        self.address = SerialAddress(url)
        self.decoder = FrameDecoder(DEFAULT_MAX_MESSAGE_BYTES)
        self.opens = 0
        self.write_errors = 0
        self._gateway = gateway
        self._loop = loop
        self._port: serial.SerialBase | None = None
        self._port_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"serial {url}", daemon=True)

    def start(self) -> None:
        """Open the port now (raises serial.SerialException for a bad URL), then read."""
        self._open()
        self._thread.start()

    def _open(self) -> None:
        port = serial.serial_for_url(self.url, timeout=SERIAL_READ_TIMEOUT_S)
        with self._port_lock:
            self._port = port
        self.opens += 1

    def _run(self) -> None:
        while not self._stopping.is_set():
            port = self._port
            if port is None:
                if not self._reopen():
                    return
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError):
                self._close_port()
                continue
            if data:
                self._loop.call_soon_threadsafe(self._gateway._receive_serial, self, data)

    def _reopen(self) -> bool:
        if not self.url.startswith("socket://"):
            return False  # a device node that vanished does not come back by retrying
        while not self._stopping.wait(SERIAL_REOPEN_S):
            try:
                self._open()
                return True
            except (serial.SerialException, OSError):
                continue
        return False

    def _close_port(self) -> None:
        with self._port_lock:
            port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def write(self, message: bytes) -> None:
        """Send one MQTT-SN message as a frame; dropped (and counted) while the link is down."""
        port = self._port
        if port is None:
            self.write_errors += 1
            return
        try:
            port.write(encode_frame(message))
        except (serial.SerialException, OSError):
            self.write_errors += 1

    def stop(self) -> None:
        """Stop reading and close the port."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._close_port()


class SerialConnection:
    """One accepted connection of a serial listener: one device's serial line."""

    def __init__(self, address: SerialAddress, peer: str, writer: asyncio.StreamWriter) -> None:
        self.address = address
        self.peer = peer
        self.decoder = FrameDecoder(DEFAULT_MAX_MESSAGE_BYTES)
        self.write_errors = 0
        self.writer = writer
        self.task: asyncio.Task[Any] | None = None

    def write(self, message: bytes) -> None:
        """Send one MQTT-SN message as a frame; dropped (and counted) when the connection is
        closing or its peer has not taken `SERIAL_LISTEN_MAX_BUFFERED_BYTES` already."""
        transport = self.writer.transport
        if (
            transport.is_closing()
            or transport.get_write_buffer_size() > SERIAL_LISTEN_MAX_BUFFERED_BYTES
        ):
            self.write_errors += 1
            return
        self.writer.write(encode_frame(message))

    def close(self) -> None:
        """Drop the connection now (pending output is discarded)."""
        self.writer.transport.abort()


class SerialListener:
    """A listening TCP socket whose accepted connections are serial lines; counts what they
    carried, including connections that have closed. `bind()` it first (errors surface before
    anything else starts); the gateway serves it once it can handle what devices send."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sock: socket.socket | None = None
        self.server: asyncio.Server | None = None
        self.accepted = 0
        self.connections: dict[SerialAddress, SerialConnection] = {}
        # Totals of closed connections (open ones are added in `totals`).
        self._closed_frames = 0
        self._closed_malformed = 0
        self._closed_write_errors = 0

    def bind(self) -> None:
        """Bind and listen; raises ShoalInputError naming the option and what is accepted."""
        where = f"serial listener (--serial-listen / gateway.serial_listen) {self.host}:{self.port}"
        try:
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][0]
            self.sock = socket.create_server((self.host, self.port), family=family)
        except socket.gaierror as exc:
            raise ShoalInputError(
                f"{where}: cannot resolve {self.host!r} ({exc.strerror}); give a local "
                "address as HOST:PORT (e.g. 127.0.0.1:5600; port 0 picks one)"
            ) from exc
        except OSError as exc:
            raise ShoalInputError(
                f"{where}: cannot listen ({exc.strerror or exc}); give a free local address "
                "and port as HOST:PORT (port 0 picks one)"
            ) from exc
        self.sock.setblocking(False)

    def close(self) -> None:
        """Stop listening (accepted connections are closed by their owner)."""
        if self.server is not None:
            self.server.close()
        elif self.sock is not None:
            self.sock.close()
        self.sock = None

    @property
    def bound_address(self) -> tuple[str, int] | None:
        """(host, port) of the listening socket (the real port when configured with 0)."""
        if self.sock is None:
            return None
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def name(self) -> str:
        """The bound address as `host:port` (the configured one before `bind`)."""
        host, port = self.bound_address or (self.host, self.port)
        return f"{host}:{port}"

    def closed(self, connection: SerialConnection) -> None:
        if self.connections.pop(connection.address, None) is connection:
            self._closed_frames += connection.decoder.frames
            self._closed_malformed += connection.decoder.malformed
            self._closed_write_errors += connection.write_errors

    def totals(self) -> tuple[int, int, int]:
        """(frames, malformed, write_errors) of every connection so far."""
        open_ = list(self.connections.values())
        return (
            self._closed_frames + sum(c.decoder.frames for c in open_),
            self._closed_malformed + sum(c.decoder.malformed for c in open_),
            self._closed_write_errors + sum(c.write_errors for c in open_),
        )


class Gateway:
    """The MQTT-SN gateway. Call order: `await start()`, serve, `await stop()`."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        stats_interval_s: float | None = DEFAULT_STATS_INTERVAL_S,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.registry = GatewayRegistry(session_config(config))
        self.stats_interval_s = stats_interval_s
        self.stats_topic = STATS_TOPIC.format(gateway_id=config.gateway_id)
        self.on_stats = on_stats
        self.udp_errors = 0
        self.internal_errors = 0
        self.udp_receive_buffer_bytes = 0  # what the kernel granted (Linux reports 2x)
        self.wills_published = 0
        self.advertisements_sent = 0
        self.serial_links: dict[SerialAddress, SerialLink] = {}
        self.serial_listeners: list[SerialListener] = []
        self.serial_connections: dict[SerialAddress, SerialConnection] = {}
        self._serial_sequence = 0
        self.bridge: MqttBridge | None = None
        self.upstream: Upstream | None = None
        self.session_store: SessionStore | None = None
        self.sessions_restored = 0
        self._state_lock: StateDirLock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp_sock: socket.socket | None = None
        self._multicast_sock: socket.socket | None = None
        self.searches_answered = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._advertise_task: asyncio.Task[None] | None = None
        self._started_at = 0.0

    # ---- life cycle -----------------------------------------------------------------------

    async def start(self, *, broker_wait_s: float = BROKER_WAIT_S) -> None:
        """Bind the serial listeners (first: a bad address fails before anything starts) and
        the UDP socket, open serial links and connect to the broker (waiting up to
        `broker_wait_s` seconds; the gateway serves anyway and keeps reconnecting)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._started_at = time.monotonic()
        if self.config.multicast is not None and self.config.udp is None:
            raise ShoalInputError(
                "gateway: multicast discovery needs a UDP listener (give --udp HOST:PORT); "
                "devices connect to the unicast address that answers on the group"
            )
        try:
            for host, port in self.config.serial_listen:
                listener = SerialListener(host, port)
                listener.bind()
                self.serial_listeners.append(listener)
        except BaseException:
            await self.stop()
            raise
        state_dir = self.config.resolved_state_dir()
        self._state_lock = StateDirLock(state_dir)
        try:
            self.session_store = SessionStore(state_dir / "sessions.sqlite3")
            self.upstream = Upstream(
                self.config.broker,
                loop,
                state_dir / "spool",
                ack_mode=self.config.ack,
                on_safe=self._on_safe,
                spool_max_bytes=self.config.spool_max_bytes,
                max_inflight=self.config.broker_max_inflight,
            )
        except BaseException:
            await self.stop()
            raise
        self.bridge = MqttBridge(self.config.broker, self._on_broker_message, loop)
        self.bridge.start()
        self.upstream.start()
        self._restore_sessions()
        try:
            if self.config.udp is not None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    _grow_buffer(sock, socket.SO_RCVBUF, _SO_RCVBUFFORCE)
                    _grow_buffer(sock, socket.SO_SNDBUF, _SO_SNDBUFFORCE)
                    self.udp_receive_buffer_bytes = sock.getsockopt(
                        socket.SOL_SOCKET, socket.SO_RCVBUF
                    )
                    if self.config.advertise_to is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                    sock.bind(self.config.udp)
                except OSError as exc:
                    sock.close()
                    host, port = self.config.udp
                    raise ShoalInputError(
                        f"UDP listener {host}:{port}: cannot bind ({exc.strerror}); "
                        "give a free local address and port (port 0 picks one)"
                    ) from exc
                sock.setblocking(False)
                self._udp_sock = sock
                loop.add_reader(sock.fileno(), self._udp_readable)
                if self.config.multicast is not None:
                    self._multicast_sock = open_multicast_listener(
                        self.config.multicast, self.config.multicast_interface
                    )
                    sock.setsockopt(
                        socket.IPPROTO_IP,
                        socket.IP_MULTICAST_IF,
                        socket.inet_aton(self.config.multicast_interface),
                    )
                    loop.add_reader(self._multicast_sock.fileno(), self._multicast_readable)
            for url in self.config.serial:
                link = SerialLink(url, self, loop)
                try:
                    link.start()
                except (serial.SerialException, OSError, ValueError) as exc:
                    raise ShoalInputError(
                        f"serial link {url!r}: cannot open ({exc}); accepted: pyserial URLs "
                        "such as socket://127.0.0.1:4000, /dev/ttyUSB0 or loop://"
                    ) from exc
                self.serial_links[link.address] = link
            for listener in self.serial_listeners:
                await self._serve_serial_listener(listener)
        except BaseException:
            await self.stop()
            raise
        with contextlib.suppress(TimeoutError):
            await self.bridge.wait_connected(broker_wait_s)
            await self.upstream.wait_connected(broker_wait_s)
        if self.stats_interval_s:
            self._stats_task = loop.create_task(self._publish_stats_forever(self.stats_interval_s))
        if self.advertise_target is not None and self._udp_sock is not None:
            self._advertise_task = loop.create_task(self._advertise_forever())

    async def stop(self) -> None:
        """Close every listener and the broker connections, then the spool and the session
        store (CleanSession=0 sessions and unfinished messages stay there for the next start).
        """
        for task in (self._stats_task, self._advertise_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._stats_task = None
        self._advertise_task = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
        for attribute in ("_udp_sock", "_multicast_sock"):
            sock = getattr(self, attribute)
            if sock is not None:
                setattr(self, attribute, None)
                asyncio.get_running_loop().remove_reader(sock.fileno())
                sock.close()
        await self._stop_serial_listeners()
        links = list(self.serial_links.values())
        self.serial_links.clear()
        if links:
            await asyncio.get_running_loop().run_in_executor(None, _stop_links, links)
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            bridge.stop()
        if self.upstream is not None:
            upstream, self.upstream = self.upstream, None
            await upstream.stop()
        if self.session_store is not None:
            store, self.session_store = self.session_store, None
            store.close()
        if self._state_lock is not None:
            lock, self._state_lock = self._state_lock, None
            lock.release()

    @property
    def bound_udp_address(self) -> tuple[str, int] | None:
        """(host, port) the UDP socket is bound to (the real port when configured with 0)."""
        if self._udp_sock is None:
            return None
        host, port = self._udp_sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def bound_serial_listen_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every serial listener socket (real ports when configured with 0),
        in the order of `config.serial_listen`."""
        return [
            address
            for address in (listener.bound_address for listener in self.serial_listeners)
            if address is not None
        ]

    # ---- serial listeners -------------------------------------------------------------------

    async def _serve_serial_listener(self, listener: SerialListener) -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve_serial_connection(listener, reader, writer)

        listener.server = await asyncio.start_server(serve, sock=listener.sock)

    async def _serve_serial_connection(
        self,
        listener: SerialListener,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = f"{peer_info[0]}:{peer_info[1]}" if peer_info else "?"
        self._serial_sequence += 1
        listener.accepted += 1
        address = SerialAddress(f"tcp://{peer}#{self._serial_sequence}")
        connection = SerialConnection(address, peer, writer)
        connection.task = asyncio.current_task()
        listener.connections[address] = connection
        self.serial_connections[address] = connection
        _log.info("serial listener %s: device connected from %s", listener.name, peer)
        try:
            while True:
                try:
                    data = await reader.read(SERIAL_LISTEN_READ_BYTES)
                except OSError:
                    break  # reset by the peer: the same as a close
                if not data:
                    break
                for message in connection.decoder.feed(data):
                    self._receive(address, message)
        finally:
            # Only this link ends; the device's session runs on until its keep-alive expires.
            if self.serial_connections.get(address) is connection:
                del self.serial_connections[address]
            listener.closed(connection)
            writer.close()  # what is already queued (e.g. the answer to a DISCONNECT) still goes
            _log.info("serial listener %s: connection from %s closed", listener.name, peer)

    async def _stop_serial_listeners(self) -> None:
        listeners, self.serial_listeners = self.serial_listeners, []
        for listener in listeners:
            listener.close()
        tasks = []
        for connection in list(self.serial_connections.values()):
            connection.close()
            if connection.task is not None and connection.task is not asyncio.current_task():
                tasks.append(connection.task)
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        self.serial_connections.clear()
        for listener in listeners:
            if listener.server is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(listener.server.wait_closed(), 5.0)

    # ---- device -> gateway ----------------------------------------------------------------

    def _udp_readable(self) -> None:
        sock = self._udp_sock
        if sock is None:
            return
        receive = self._receive
        for _ in range(UDP_READ_BATCH):
            try:
                datagram, address = sock.recvfrom(UDP_MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # e.g. an ICMP error queued for a departed client: count it, keep serving.
                self.udp_errors += 1
                continue
            receive(address, datagram)

    def _multicast_readable(self) -> None:
        sock, udp = self._multicast_sock, self._udp_sock
        if sock is None or udp is None or self.config.multicast is None:
            return
        for _ in range(UDP_READ_BATCH):
            try:
                datagram = sock.recv(UDP_MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.udp_errors += 1
                continue
            answer = self.registry.answer_search(datagram)
            if answer is None:
                continue
            gwinfo, radius = answer
            # Sent from the unicast socket: its source address is where devices connect.
            try:
                udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, min(radius, 255))
                udp.sendto(gwinfo, self.config.multicast)
            except OSError:
                self.udp_errors += 1
                continue
            self.searches_answered += 1

    def _receive(self, address: Hashable, datagram: bytes) -> None:
        try:
            assert self._loop is not None
            out, events = self.registry.receive(address, datagram, self._loop.time())
            if events:  # first: what they record must be safe before the device hears back
                self._handle_events(events)
            if out:
                self._send(out)
            self._rearm()
        except Exception:
            # A bug must cost one datagram, never the gateway: count it, log it, keep serving.
            self.internal_errors += 1
            _log.exception("datagram from %s (%s) raised", _address_text(address), datagram.hex())

    def _receive_serial(self, link: SerialLink, data: bytes) -> None:
        if self.serial_links.get(link.address) is not link:
            return  # arrived after stop()
        for message in link.decoder.feed(data):
            self._receive(link.address, message)

    # ---- gateway -> device ----------------------------------------------------------------

    def _send(self, out: list[tuple[Hashable, bytes]]) -> None:
        sock = self._udp_sock
        for address, datagram in out:
            if type(address) is SerialAddress:
                link = self.serial_links.get(address) or self.serial_connections.get(address)
                if link is not None:
                    link.write(datagram)
            elif sock is not None:
                try:
                    sock.sendto(datagram, address)  # type: ignore[call-overload]
                except OSError:
                    # A full send buffer (4 MiB) or an unreachable address: the datagram is
                    # lost as on any UDP link; the sessions' retransmission covers QoS 1/2.
                    self.udp_errors += 1

    # ---- session events -> broker -----------------------------------------------------------

    def _handle_events(self, events: list[GatewayEvent]) -> None:
        bridge, upstream = self.bridge, self.upstream
        if bridge is None or upstream is None:
            return
        session_changes: dict[str, dict[str, Any] | None] = {}
        for event in events:
            kind = type(event)
            if kind is PublishUpstream:
                assert isinstance(event, PublishUpstream)
                taken = upstream.publish(
                    event.client_id,
                    event.msg_id,
                    event.topic,
                    event.payload,
                    event.qos,
                    event.retain,
                )
                if not taken:
                    # No spool room: no acknowledgement; the device retransmits or sleeps.
                    self._apply_output(self.registry.refuse(event.client_id, event.msg_id))
            elif kind is DeviceReleased:
                assert isinstance(event, DeviceReleased)
                upstream.device_released(event.client_id, event.msg_id)
            elif kind is SessionChanged:
                assert isinstance(event, SessionChanged)
                session_changes[event.client_id] = _encode_snapshot(event.snapshot)
            elif kind is SubscribeUpstream:
                assert isinstance(event, SubscribeUpstream)
                bridge.subscribe(event.topic_filter, event.qos)
            elif kind is UnsubscribeUpstream:
                assert isinstance(event, UnsubscribeUpstream)
                bridge.unsubscribe(event.topic_filter)
            elif kind is ClientLost:
                assert isinstance(event, ClientLost)
                self._publish_will(upstream, event)
        if session_changes and self.session_store is not None:
            # Before the datagrams of this step go out (e.g. SUBACK) and before paho
            # acknowledges a broker message buffered for a sleeping device.
            self.session_store.apply(session_changes)

    def _publish_will(self, upstream: Upstream, lost: ClientLost) -> None:
        if not lost.will_topic:
            return  # (a will topic the rules refuse was refused at CONNECT)
        self.wills_published += 1
        # Spooled like a device's message (QoS 1/2): a will survives a gateway crash too.
        upstream.publish("", 0, lost.will_topic, lost.will_message, lost.will_qos, lost.will_retain)

    def _apply_output(
        self, output: tuple[list[tuple[Hashable, bytes]], list[GatewayEvent]]
    ) -> None:
        out, events = output
        if events:
            self._handle_events(events)
        if out:
            self._send(out)

    def _on_safe(self, client_id: str, msg_id: int) -> None:
        """A device's QoS 1/2 message is durable (or with the broker): acknowledge it."""
        try:
            self._apply_output(self.registry.acknowledge(client_id, msg_id))
        except Exception:
            self.internal_errors += 1
            _log.exception("acknowledging %s/%d raised", client_id, msg_id)

    def _restore_sessions(self) -> None:
        assert self._loop is not None and self.session_store is not None
        assert self.upstream is not None
        snapshots = [_decode_snapshot(s) for s in self.session_store.load()]
        output = self.registry.restore_sessions(
            snapshots, self.upstream.unreleased_qos2(), self._loop.time()
        )
        self.sessions_restored = len(self.registry.sessions)
        # Connections accepted now must not get the address of a restored session.
        for address in self.registry.sessions:
            if isinstance(address, SerialAddress) and address.url.startswith("tcp://"):
                _, _, number = address.url.rpartition("#")
                if number.isdigit():
                    self._serial_sequence = max(self._serial_sequence, int(number))
        self._apply_output(output)
        self._rearm()

    def _on_broker_message(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        assert self._loop is not None
        try:
            out, events = self.registry.deliver_downstream(
                topic, payload, qos, retain, self._loop.time()
            )
            if events:
                self._handle_events(events)
            if out:
                self._send(out)
            self._rearm()
        except Exception:
            self.internal_errors += 1
            _log.exception("broker message on %r raised", topic)

    # ---- registry timers --------------------------------------------------------------------

    def _rearm(self) -> None:
        deadline = self.registry.next_deadline()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        assert self._loop is not None
        try:
            out, events = self.registry.tick(self._loop.time())
            if events:
                self._handle_events(events)
            if out:
                self._send(out)
        except Exception:
            self.internal_errors += 1
            _log.exception("gateway timers raised")
        finally:
            self._rearm()  # the timers must keep running whatever happened

    # ---- statistics -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters as a JSON-ready dict: `gateway` totals (datagrams; serial frames that failed
        framing are included in `malformed`), access-control and link figures, and `clients`
        keyed by client id (or address for a session without one)."""
        totals = self.registry.total_counters()
        denied = self.registry.denied
        serial_malformed = sum(link.decoder.malformed for link in self.serial_links.values())
        serial_malformed += sum(listener.totals()[1] for listener in self.serial_listeners)
        clients: dict[str, dict[str, Any]] = {}
        for address, session in self.registry.sessions.items():
            counters = session.counters
            clients[session.client_id or _address_text(address)] = {
                "address": _address_text(address),
                "state": session.state,
                "received": counters.received,
                "sent": counters.sent,
                "dropped": counters.dropped,
                "malformed": counters.malformed,
                "retransmitted": counters.retransmitted,
            }
        bridge = self.bridge
        return {
            "gateway_id": self.config.gateway_id,
            "uptime_s": round(time.monotonic() - self._started_at, 3),
            "gateway": {
                "received": totals.received,
                "sent": totals.sent,
                "dropped": totals.dropped,
                "malformed": totals.malformed + serial_malformed,
                "retransmitted": totals.retransmitted,
                "clients": len(self.registry.sessions),
                "rejected_clients": self.registry.rejected_clients,
                "acl_denied_connects": denied.get(ACTION_CONNECT, 0),
                "acl_denied_subscribes": denied.get(ACTION_SUBSCRIBE, 0),
                "acl_denied_publishes": denied.get(ACTION_PUBLISH, 0),
                "acl_denied_registers": denied.get(DENIED_REGISTER, 0),
                "acl_denied_wills": denied.get(ACTION_WILL, 0),
                "wills_published": self.wills_published,
                "advertisements_sent": self.advertisements_sent,
                "searches_answered_multicast": self.searches_answered,
                "udp_errors": self.udp_errors,
                "internal_errors": self.internal_errors,
                "udp_receive_buffer_bytes": self.udp_receive_buffer_bytes,
            },
            "upstream": self.upstream.stats() if self.upstream else {},
            "sessions_restored": self.sessions_restored,
            "broker": {
                "connected": bool(bridge and bridge.connected.is_set()),
                "connections": bridge.connections if bridge else 0,
                "received": bridge.received if bridge else 0,
                "filters": len(bridge.filters) if bridge else 0,
            },
            "serial": {
                link.url: {
                    "frames": link.decoder.frames,
                    "malformed": link.decoder.malformed,
                    "opens": link.opens,
                    "write_errors": link.write_errors,
                }
                for link in self.serial_links.values()
            },
            "serial_listen": {
                listener.name: self._listener_stats(listener) for listener in self.serial_listeners
            },
            "clients": clients,
        }

    @staticmethod
    def _listener_stats(listener: SerialListener) -> dict[str, Any]:
        frames, malformed, write_errors = listener.totals()
        return {
            "accepted": listener.accepted,
            "open": len(listener.connections),
            "frames": frames,
            "malformed": malformed,
            "write_errors": write_errors,
            "connections": {
                connection.address.url: {
                    "peer": connection.peer,
                    "frames": connection.decoder.frames,
                    "malformed": connection.decoder.malformed,
                    "write_errors": connection.write_errors,
                }
                for connection in listener.connections.values()
            },
        }

    def publish_stats(self) -> dict[str, Any]:
        """Publish the totals now (QoS 0) on `stats_topic`; returns the full stats dict."""
        stats = self.stats()
        summary = {key: value for key, value in stats.items() if key != "clients"}
        if self.upstream is not None:
            self.upstream.publish("", 0, self.stats_topic, json.dumps(summary).encode(), 0, False)
        if self.on_stats is not None:
            self.on_stats(stats)
        return stats

    @property
    def advertise_target(self) -> tuple[str, int] | None:
        """Where ADVERTISE goes: `advertise_to`, else the multicast group, else nowhere."""
        return self.config.advertise_to or self.config.multicast

    def advertise(self) -> None:
        """Send one ADVERTISE(GwId, Duration) to `advertise_target` (Duration: the interval
        in whole seconds, rounded up, 1..65535)."""
        target = self.advertise_target
        if target is None or self._udp_sock is None:
            return
        duration_s = min(0xFFFF, max(1, math.ceil(self.config.advertise_interval_s)))
        advertise = codec.encode(codec.Advertise(self.config.gateway_id, duration_s))
        try:
            self._udp_sock.sendto(advertise, target)
        except OSError:
            self.udp_errors += 1  # e.g. no route to the broadcast address: try next time
            return
        self.advertisements_sent += 1

    async def _advertise_forever(self) -> None:
        while True:
            self.advertise()
            await asyncio.sleep(self.config.advertise_interval_s)

    async def _publish_stats_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.publish_stats()


def open_multicast_listener(group: tuple[str, int], interface: str) -> socket.socket:
    """A non-blocking UDP socket bound to the group's port and joined to `group` on the
    interface with address `interface` (0.0.0.0: the kernel's choice). SO_REUSEADDR lets
    devices on the same host listen on the port too. Raises ShoalInputError when the group
    cannot be joined."""
    host, port = group
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        membership = socket.inet_aton(host) + socket.inet_aton(interface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except OSError as exc:
        sock.close()
        raise ShoalInputError(
            f"multicast group {host}:{port} on interface {interface}: cannot join "
            f"({exc.strerror}); give a 224.0.0.0/4 group, a free port and the address of a "
            "local interface (e.g. 127.0.0.1)"
        ) from exc
    sock.setblocking(False)
    return sock


def _encode_address(address: Hashable) -> list[Any]:
    if isinstance(address, SerialAddress):
        return ["serial", address.url]
    if isinstance(address, tuple) and len(address) >= 2:
        return ["udp", str(address[0]), int(address[1])]
    raise ValueError(f"cannot store address {address!r}")


def _decode_address(encoded: list[Any]) -> Hashable:
    if encoded[0] == "serial":
        return SerialAddress(str(encoded[1]))
    return str(encoded[1]), int(encoded[2])


def _encode_snapshot(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {**snapshot, "address": _encode_address(snapshot["address"])}


def _decode_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {**snapshot, "address": _decode_address(snapshot["address"])}


def _stop_links(links: list[SerialLink]) -> None:
    for link in links:
        link.stop()


def _address_text(address: Hashable) -> str:
    if isinstance(address, SerialAddress):
        return address.url
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


async def serve_until_signal(
    gateway: Gateway, on_ready: Callable[[Gateway], None] | None = None
) -> None:
    """Start `gateway`, call `on_ready`, serve until SIGINT or SIGTERM, then stop it."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await gateway.start()
        if on_ready is not None:
            on_ready(gateway)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await gateway.stop()


def run_gateway(
    config: GatewayConfig,
    *,
    stats_interval_s: float | None = DEFAULT_STATS_INTERVAL_S,
    on_ready: Callable[[Gateway], None] | None = None,
    on_stats: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Run a gateway in a new event loop until SIGINT/SIGTERM (main thread only)."""
    gateway = Gateway(config, stats_interval_s=stats_interval_s, on_stats=on_stats)
    asyncio.run(serve_until_signal(gateway, on_ready))


def print_ready(gateway: Gateway) -> None:
    """The one line `shoal gateway` prints when it serves (tests read the address from it)."""
    udp = gateway.bound_udp_address
    udp_text = f"{udp[0]}:{udp[1]}" if udp else "-"
    serial_text = ",".join(link.url for link in gateway.serial_links.values()) or "-"
    listen = gateway.bound_serial_listen_addresses
    listen_text = ",".join(f"{host}:{port}" for host, port in listen) or "-"
    group = gateway.config.multicast
    multicast_text = f"{group[0]}:{group[1]}" if group and gateway._multicast_sock else "-"
    print(
        f"gateway ready udp={udp_text} serial={serial_text} multicast={multicast_text} "
        f"serial_listen={listen_text}",
        flush=True,
    )
    if gateway.bridge is not None and not gateway.bridge.connected.is_set():
        settings = gateway.config.broker
        print(
            f"warning: broker {settings.host}:{settings.port} not reachable yet; retrying",
            file=sys.stderr,
            flush=True,
        )
