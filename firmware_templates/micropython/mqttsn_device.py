"""Shoal's MQTT-SN device runtime for MicroPython: the sans-IO ClientSession driven over UDP
(`socket`) or a UART (`machine.UART`, COBS + CRC-16 frames).

Responsible for I/O and time only: it owns the transport and a monotonic clock, feeds
datagrams to the session, sends what the session returns and hands events to the application.
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
    from client_session import GatewayLost
    from framing import FrameDecoder, encode_frame
except ImportError:  # CPython, inside the host package
    from host_sdk.mqttsn.client_session import GatewayLost
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


class UdpTransport:
    """MQTT-SN datagrams to and from one gateway at (host, port)."""

    def __init__(self, host, port, local_port=0):
        import socket

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if local_port:
            self._sock.bind(socket.getaddrinfo("0.0.0.0", local_port)[0][-1])
        self._gateway = socket.getaddrinfo(host, port)[0][-1]
        self._sock.setblocking(False)
        self._poller = None
        if select is not None:
            self._poller = select.poll()
            self._poller.register(self._sock, select.POLLIN)

    def send(self, datagram):
        self._sock.sendto(datagram, self._gateway)

    def receive(self):
        """One datagram, or None when nothing is waiting."""
        try:
            return self._sock.recv(MAX_DATAGRAM_BYTES)
        except OSError:
            return None

    def wait(self, timeout_ms):
        """Block up to `timeout_ms` ms for something to read."""
        if self._poller is not None:
            self._poller.poll(max(0, int(timeout_ms)))
        else:
            _sleep_ms(min(int(timeout_ms), 5))

    def close(self):
        self._sock.close()


class UartTransport:
    """MQTT-SN messages in serial frames (COBS + CRC-16/CCITT-FALSE, 0x00-delimited) over a
    `machine.UART`-like object with `write(bytes)` and `read()` (None when nothing waits)."""

    def __init__(self, uart, max_message_bytes=1024):
        self._uart = uart
        self._decoder = FrameDecoder(max_message_bytes)
        self._pending = []
        self._first = True

    def send(self, datagram):
        # The first frame starts with an extra 0x00 to end any noise the receiver collected.
        self._uart.write(encode_frame(datagram, self._first))
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

    def wait(self, timeout_ms):
        _sleep_ms(min(int(timeout_ms), 2))

    def close(self):
        pass


class Device:
    """A ClientSession plus its transport and clock.

    Call order: construct, `start(session.connect)` style calls via `call`, then `poll()` in a
    loop (it returns the events that arrived). The session is owned here; the application
    reads its counters but calls its methods only through `call`.
    """

    def __init__(self, session, transport, clock=None):
        self.session = session
        self.transport = transport
        self.clock = clock or Clock()

    def now(self):
        return self.clock.now()

    def _send_all(self, datagrams):
        for datagram in datagrams:
            self.transport.send(datagram)

    def call(self, method, *args, **kwargs):
        """Run a session method (connect, publish, subscribe, ...) now; return its events."""
        datagrams, events = method(*args, now=self.now(), **kwargs)
        self._send_all(datagrams)
        return events

    def poll(self, timeout_ms=50):
        """Wait up to `timeout_ms` ms (less when a session timer is due) for datagrams; feed
        them to the session, run its timers, and return the events in order."""
        events = []
        now = self.now()
        deadline = self.session.next_deadline()
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
            events.extend(new_events)
            datagram = self.transport.receive()
        deadline = self.session.next_deadline()
        now = self.now()
        if deadline is not None and now >= deadline:
            datagrams, new_events = self.session.tick(now)
            self._send_all(datagrams)
            events.extend(new_events)
        return events

    def gateway_lost(self, events):
        """True when `events` report the gateway lost (time to reconnect)."""
        for event in events:
            if isinstance(event, GatewayLost):
                return True
        return False
