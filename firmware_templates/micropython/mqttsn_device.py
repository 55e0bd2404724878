"""Shoal's MQTT-SN device runtime for MicroPython: the sans-IO ClientSession driven over UDP
(`socket`) or a UART (`machine.UART`, COBS + CRC-16 frames).

Responsible for I/O and time only: it owns the transport and a monotonic clock, feeds
datagrams to the session, sends what the session returns and hands events to the application;
and for keeping the session up: gateway discovery (broadcast or an IPv4 multicast group),
reconnecting with exponential backoff after the gateway drops the session or goes silent, and a
clean exit (finish QoS 2 exchanges, DISCONNECT, so no will is published). It must not decide
protocol behaviour (retransmission, QoS, topic ids): that is the session's.
All protocol behaviour lives in client_session.py, codec.py and framing.py, the very files the
host gateway runs (copied beside this one on the device).

Runs on MicroPython (unix port in tests; esp32 / rp2 / stm32 boards) and on CPython.
"""

import time

try:
    import select
except ImportError:  # a port without select: fall back to short sleeps
    select = None

try:
    from client_session import (
        Connected,
        ConnectRejected,
        Disconnected,
        GatewayFound,
        GatewayLost,
    )
    from framing import FrameDecoder, encode_frame
except ImportError:  # CPython, inside the host package
    from host_sdk.mqttsn.client_session import (
        Connected,
        ConnectRejected,
        Disconnected,
        GatewayFound,
        GatewayLost,
    )
    from host_sdk.mqttsn.framing import FrameDecoder, encode_frame

MAX_DATAGRAM_BYTES = 1500


def _sleep_ms(ms):
    if hasattr(time, "sleep_ms"):
        time.sleep_ms(ms)
    else:
        time.sleep(ms / 1000)


class Clock:
    """Monotonic seconds (float) from the millisecond tick counter, immune to its wrap."""

    def __init__(self):
        self._has_ticks = hasattr(time, "ticks_ms")
        self._last = self._raw()
        self._elapsed_ms = 0

    def _raw(self):
        if self._has_ticks:
            return time.ticks_ms()
        return int(time.monotonic() * 1000)

    def now(self):
        raw = self._raw()
        if self._has_ticks:
            self._elapsed_ms += time.ticks_diff(raw, self._last)
        else:
            self._elapsed_ms += raw - self._last
        self._last = raw
        return self._elapsed_ms / 1000


def _ipv4(text):
    # Dotted quad -> 4 bytes (ports without inet_pton/inet_aton have this too).
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("expected an IPv4 address a.b.c.d, got %r" % (text,))
    return bytes([int(p) for p in parts])


def _address(socket, host, port):
    return socket.getaddrinfo(host, port)[0][-1]


class UdpTransport:
    """MQTT-SN datagrams to and from one gateway at (host, port), and discovery.

    `multicast` = (group, port) joins that IPv4 group on `multicast_interface` (the local
    address to join on and send from; "0.0.0.0" lets the OS choose) with a second socket bound
    to the group port (SO_REUSEADDR, so several clients on one host can listen); SEARCHGW then
    goes to the group, and GWINFO / ADVERTISE from the group are received. Without it SEARCHGW
    goes to `search` (host, port), e.g. a broadcast address, or to the gateway. `host` may be
    None until `use_gateway` names the gateway (after discovery).
    """

    def __init__(
        self,
        host=None,
        port=None,
        local_port=0,
        multicast=None,
        multicast_interface="0.0.0.0",
        search=None,
    ):
        import socket

        self._socket = socket
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if hasattr(socket, "SO_BROADCAST"):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self._sock.bind(_address(socket, "0.0.0.0", local_port))
        self._gateway = _address(socket, host, port) if host is not None else None
        self._search = _address(socket, search[0], search[1]) if search else self._gateway
        self._group_sock = None
        self.last_sender = None
        if multicast is not None:
            self._join(multicast, multicast_interface)
        self._sockets = [self._sock] + ([self._group_sock] if self._group_sock else [])
        self._poller = None
        for sock in self._sockets:
            sock.setblocking(False)
            if select is not None:
                if self._poller is None:
                    self._poller = select.poll()
                self._poller.register(sock, select.POLLIN)

    def _join(self, multicast, interface):
        socket = self._socket
        group, group_port = multicast
        ipproto_ip = getattr(socket, "IPPROTO_IP", 0)
        # Linux values where a port does not name them (MicroPython's unix port names only
        # IP_ADD_MEMBERSHIP).
        add_membership = getattr(socket, "IP_ADD_MEMBERSHIP", 35)
        multicast_if = getattr(socket, "IP_MULTICAST_IF", 32)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(_address(socket, group, group_port))  # only the group's datagrams
        except OSError:
            sock.bind(_address(socket, "0.0.0.0", group_port))
        sock.setsockopt(ipproto_ip, add_membership, _ipv4(group) + _ipv4(interface))
        if interface != "0.0.0.0":
            try:  # SEARCHGW leaves through that interface
                self._sock.setsockopt(ipproto_ip, multicast_if, _ipv4(interface))
            except OSError:
                pass  # a stack without IP_MULTICAST_IF (lwIP ports): its default interface
        self._group_sock = sock
        self._search = _address(socket, group, group_port)

    def send(self, datagram):
        if self._gateway is not None:
            self._sock.sendto(datagram, self._gateway)

    def send_search(self, datagram):
        """SEARCHGW: to the multicast group, the search address, or the gateway."""
        target = self._search if self._search is not None else self._gateway
        if target is not None:
            self._sock.sendto(datagram, target)

    def use_gateway(self, gw_address=b""):
        """Talk to the gateway a GWINFO/ADVERTISE named: its GwAdd when it carries an IPv4
        address and port (6 bytes: a.b.c.d then port, big-endian: a client answered for the
        gateway), else the datagram's sender (the gateway itself)."""
        if len(gw_address) == 6:
            host = "%d.%d.%d.%d" % tuple(gw_address[:4])
            self._gateway = _address(self._socket, host, (gw_address[4] << 8) | gw_address[5])
        elif self.last_sender is not None:
            self._gateway = self.last_sender

    @property
    def has_gateway(self):
        return self._gateway is not None

    def receive(self):
        """One datagram, or None when nothing is waiting; `last_sender` is its source."""
        for sock in self._sockets:
            try:
                data, sender = sock.recvfrom(MAX_DATAGRAM_BYTES)
            except OSError:
                continue
            self.last_sender = sender
            return data
        return None

    def wait(self, timeout_ms):
        """Block up to `timeout_ms` ms for something to read."""
        if self._poller is not None:
            self._poller.poll(max(0, int(timeout_ms)))
        else:
            _sleep_ms(min(int(timeout_ms), 5))

    def close(self):
        for sock in self._sockets:
            sock.close()


class UartTransport:
    """MQTT-SN messages in serial frames (COBS + CRC-16/CCITT-FALSE, 0x00-delimited) over a
    `machine.UART`-like object with `write(bytes)` and `read()` (None when nothing waits).

    `flush_every_frame`: start every frame (not only the first) with an extra 0x00, for a UART
    that also carries the console (a board's USB virtual COM port): text printed between two
    frames then arrives as a frame of its own, which the receiver drops as malformed, and never
    corrupts the next frame."""

    def __init__(self, uart, max_message_bytes=1024, flush_every_frame=False):
        self._uart = uart
        self._decoder = FrameDecoder(max_message_bytes)
        self._pending = []
        self._first = True
        self._flush_every_frame = flush_every_frame

    def send(self, datagram):
        # The first frame starts with an extra 0x00 to end any noise the receiver collected.
        self._uart.write(encode_frame(datagram, self._first or self._flush_every_frame))
        self._first = False

    def receive(self):
        if not self._pending:
            data = self._uart.read()
            if data:
                self._pending.extend(self._decoder.feed(data))
        if self._pending:
            return self._pending.pop(0)
        return None

    @property
    def malformed_frames(self):
        return self._decoder.malformed

    def send_search(self, datagram):
        self.send(datagram)  # a serial link has one peer: the gateway

    def use_gateway(self, gw_address=b""):
        pass

    has_gateway = True

    def wait(self, timeout_ms):
        _sleep_ms(min(int(timeout_ms), 2))

    def close(self):
        pass


class Backoff:
    """Delays between reconnect attempts, in seconds: the n-th (from 0) is drawn uniformly
    from [d/2, d] with d = min(max_s, initial_s * 2**n) ("equal jitter": devices that lost the
    same gateway do not all come back in the same instant, and none retries sooner than d/2).
    `reset()` after a successful CONNACK."""

    def __init__(self, initial_s=1.0, max_s=60.0, rng=None):
        if not 0 < initial_s <= max_s:
            raise ValueError("backoff: expected 0 < initial_s <= max_s seconds")
        self.initial_s = initial_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng or _random

    def next_delay(self):
        ceiling = min(self.max_s, self.initial_s * (1 << min(self.attempt, 30)))
        self.attempt += 1
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self):
        self.attempt = 0


def _random():
    try:
        import random
    except ImportError:  # a port without random: no jitter, still bounded
        return 0.5
    return random.random()


def _message_type(datagram):
    # The MsgType octet after a 1- or 3-octet length.
    if len(datagram) >= 4 and datagram[0] == 0x01:
        return datagram[3]
    return datagram[1] if len(datagram) >= 2 else -1


class Device:
    """A ClientSession plus its transport and clock, keeping the session up.

    Call order: construct, then `start()` (CONNECT) or `discover()` (SEARCHGW, then CONNECT
    to whoever answers), then `poll()` in a loop (it returns the events that arrived), then
    `close()` for a clean exit. The session is owned here; the application reads its counters
    and calls its methods only through `call`.

    With `reconnect` on, the device connects again on its own when the session ends without
    being asked to: the gateway sent DISCONNECT (it restarted and forgot a clean session, or
    dropped it), or it stopped answering (keep-alive PINGREQ or any request unanswered after
    N_RETRY, GatewayLost). Attempts are spaced by `backoff` (Backoff, seconds) and reset by a
    CONNACK. The session then re-SUBSCRIBEs (clean session) and sends again what was not
    acknowledged; see client_session.py.
    """

    def __init__(self, session, transport, clock=None, reconnect=True, backoff=None):
        self.session = session
        self.transport = transport
        self.clock = clock or Clock()
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.reconnect_at = None  # seconds on self.clock, when a CONNECT is scheduled
        self.searching = False
        self.closing = False
        self.reconnects = 0

    def now(self):
        return self.clock.now()

    def _send_all(self, datagrams):
        for datagram in datagrams:
            if _message_type(datagram) == 0x01:  # SEARCHGW goes to the search address
                self.transport.send_search(datagram)
            else:
                self.transport.send(datagram)

    def call(self, method, *args, **kwargs):
        """Run a session method (connect, publish, subscribe, ...) now; return its events."""
        datagrams, events = method(*args, now=self.now(), **kwargs)
        self._send_all(datagrams)
        return self._watch(events)

    def start(self):
        """CONNECT to the transport's gateway; returns the events."""
        self.reconnect_at = None
        return self.call(self.session.connect)

    def discover(self, radius=1, delay_s=None):
        """Search for a gateway: SEARCHGW after a random 0..`delay_s` s (default: up to
        t_searchgw_s, the spec's collision avoidance), repeated every t_searchgw_s; the first
        GWINFO/ADVERTISE makes its sender (or its GwAdd) the gateway, then CONNECT follows."""
        if delay_s is None:
            delay_s = self.session.t_searchgw_s
        pause_ms = int(_random() * delay_s * 1000)
        self.searching = True
        end = self.now() + pause_ms / 1000
        events = []
        while self.now() < end:  # collect ADVERTISEs meanwhile: they end the search early
            events.extend(self.poll(max(1, int((end - self.now()) * 1000))))
            if not self.searching:
                return events
        events.extend(self.call(self.session.search_gateway, radius=radius))
        return events

    def _watch(self, events):
        # Act on the events that concern the link; the application sees them all.
        for event in events:
            if isinstance(event, GatewayFound):
                if self.searching or (self.reconnect_at is not None and not self.closing):
                    # Found, or (an ADVERTISE) back while we wait to reconnect: connect now.
                    self.transport.use_gateway(event.gw_address)
                    self.searching = False
                    self.reconnect_at = self.now()
            elif isinstance(event, Connected):
                self.backoff.reset()
                self.reconnect_at = None
            elif isinstance(event, GatewayLost) or (
                isinstance(event, Disconnected) and event.by_gateway
            ):
                if self.reconnect and not self.closing:
                    self.reconnect_at = self.now() + self.backoff.next_delay()
            elif isinstance(event, ConnectRejected):
                self.reconnect_at = None  # the gateway said no: not ours to insist
        return events

    def poll(self, timeout_ms=50):
        """Wait up to `timeout_ms` ms (less when a session timer or a reconnect is due) for
        datagrams; feed them to the session, run its timers, reconnect when due, and return
        the events in order."""
        events = []
        now = self.now()
        deadline = self.session.next_deadline()
        if self.reconnect_at is not None and (deadline is None or self.reconnect_at < deadline):
            deadline = self.reconnect_at
        wait_ms = timeout_ms
        if deadline is not None:
            wait_ms = min(wait_ms, max(0, int((deadline - now) * 1000) + 1))
        datagram = self.transport.receive()
        if datagram is None and wait_ms > 0:
            self.transport.wait(wait_ms)
            datagram = self.transport.receive()
        while datagram is not None:
            datagrams, new_events = self.session.receive(datagram, self.now())
            self._send_all(datagrams)
            events.extend(self._watch(new_events))
            datagram = self.transport.receive()
        deadline = self.session.next_deadline()
        now = self.now()
        if deadline is not None and now >= deadline:
            datagrams, new_events = self.session.tick(now)
            self._send_all(datagrams)
            events.extend(self._watch(new_events))
        if self.reconnect_at is not None and now >= self.reconnect_at and not self.closing:
            self.reconnect_at = None
            if self.transport.has_gateway:
                self.reconnects += 1
                events.extend(self.call(self.session.connect))
        return events

    def close(self, timeout_s=None, on_events=None):
        """Clean exit: let queued and in-flight work finish (QoS 2 exchanges in both
        directions), send DISCONNECT (so the gateway does not publish the will) and wait for
        its answer, then close the transport. Bounded by `timeout_s` seconds (default
        t_retry_s x (n_retry + 2)). Events seen meanwhile go to `on_events` (a callable).
        Returns True when the gateway confirmed the DISCONNECT."""
        session = self.session
        if timeout_s is None:
            timeout_s = session.t_retry_s * (session.n_retry + 2)
        self.closing = True
        self.reconnect_at = None
        end = self.now() + timeout_s
        confirmed = False
        if session.state in ("active", "awake", "asleep"):
            events = self.call(session.disconnect)
            while True:
                if on_events is not None and events:
                    on_events(events)
                for event in events:
                    if isinstance(event, Disconnected) and not event.by_gateway:
                        confirmed = True
                if confirmed or session.state in ("disconnected", "lost") or self.now() >= end:
                    break
                events = self.poll(max(1, min(50, int((end - self.now()) * 1000))))
        self.transport.close()
        return confirmed

    def gateway_lost(self, events):
        """True when `events` report the gateway lost (time to reconnect)."""
        for event in events:
            if isinstance(event, GatewayLost):
                return True
        return False
