"""A lossy UDP proxy between MQTT-SN clients and the gateway, for end-to-end tests.

Each datagram in either direction is dropped, duplicated or held back (and so reordered behind
the next one) with probabilities drawn from `random.Random(seed)`: the decisions are the same
on every run for the same sequence of datagrams. Every client address gets its own upstream
socket, so the gateway sees one address per client. One thread serves all sockets.
"""

from __future__ import annotations

import random
import select
import socket
import threading
from dataclasses import dataclass


@dataclass
class LossProfile:
    """Per-datagram probabilities (0..1)."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0


@dataclass
class ProxyCounters:
    forwarded: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0


class LossyUdpProxy:
    """Listens on 127.0.0.1:`port` (0 picks one) and forwards to `target` through the loss
    profile. Call `start()`, point clients at `port`, then `stop()`."""

    def __init__(self, target: tuple[str, int], profile: LossProfile, seed: int = 1) -> None:
        self.target = target
        self.profile = profile
        self.counters = ProxyCounters()
        self._rng = random.Random(seed)
        self._front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._front.bind(("127.0.0.1", 0))
        self.port = int(self._front.getsockname()[1])
        self._upstream: dict[tuple[str, int], socket.socket] = {}
        self._client_of: dict[socket.socket, tuple[str, int]] = {}
        # One held-back datagram per direction and client; released after the next one.
        self._held: dict[tuple[socket.socket, tuple[str, int]], bytes] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> LossyUdpProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for sock in [self._front, *self._upstream.values()]:
            sock.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            sockets = [self._front, *self._upstream.values()]
            readable, _, _ = select.select(sockets, [], [], 0.05)
            for sock in readable:
                try:
                    data, source = sock.recvfrom(65535)
                except OSError:
                    continue
                if sock is self._front:
                    upstream = self._upstream.get(source)
                    if upstream is None:
                        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        upstream.bind(("127.0.0.1", 0))
                        self._upstream[source] = upstream
                        self._client_of[upstream] = source
                    self._forward(upstream, self.target, data)
                else:
                    self._forward(self._front, self._client_of[sock], data)

    def _forward(self, sock: socket.socket, destination: tuple[str, int], data: bytes) -> None:
        rng, profile, counters = self._rng, self.profile, self.counters
        key = (sock, destination)
        if rng.random() < profile.drop:
            counters.dropped += 1
            return
        copies = 2 if rng.random() < profile.duplicate else 1
        counters.duplicated += copies - 1
        if key not in self._held and rng.random() < profile.reorder:
            counters.reordered += 1
            self._held[key] = data
            return
        for _ in range(copies):
            self._send(sock, destination, data)
        held = self._held.pop(key, None)
        if held is not None:
            self._send(sock, destination, held)

    def _send(self, sock: socket.socket, destination: tuple[str, int], data: bytes) -> None:
        try:
            sock.sendto(data, destination)
            self.counters.forwarded += 1
        except OSError:
            self.counters.dropped += 1
