"""In-memory wiring of ClientSession(s) and a GatewayRegistry over a seeded lossy link.

The link drops, duplicates and reorders datagrams deterministically (random.Random(seed));
time is a fake clock advanced in fixed steps, so every run of a scenario is identical.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from host_sdk.mqttsn.client_session import ClientEvent, ClientSession
from host_sdk.mqttsn.gateway_session import GatewayEvent, GatewayRegistry

Output = tuple[list[bytes], list[ClientEvent]]


@dataclass
class LinkProfile:
    """Per-datagram probabilities, and the delivery delay range in seconds."""

    drop: float = 0.0
    duplicate: float = 0.0
    min_delay_s: float = 0.01
    max_delay_s: float = 0.01  # a spread larger than the step reorders datagrams


@dataclass(order=True)
class _InFlight:
    deliver_at: float
    seq: int
    to_gateway: bool = field(compare=False)
    address: str = field(compare=False)
    datagram: bytes = field(compare=False)


class Network:
    """Clients by address, one gateway registry, and the link between them."""

    def __init__(
        self, registry: GatewayRegistry, profile: LinkProfile | None = None, seed: int = 1
    ) -> None:
        self.registry = registry
        self.profile = profile or LinkProfile()
        self.rng = random.Random(seed)
        self.clients: dict[str, ClientSession] = {}
        self.client_events: dict[str, list[ClientEvent]] = {}
        self.gateway_events: list[GatewayEvent] = []
        self.to_client_log: dict[str, list[bytes]] = {}
        self.silenced: set[str] = set()  # clients whose radio is off (power loss)
        self.now = 0.0
        self._queue: list[_InFlight] = []
        self._seq = 0

    def add(self, address: str, client: ClientSession) -> ClientSession:
        self.clients[address] = client
        self.client_events[address] = []
        self.to_client_log[address] = []
        return client

    def call(self, address: str, action: Callable[[ClientSession], Output]) -> None:
        """Run a ClientSession method (e.g. lambda c: c.publish(..., net.now)) and send."""
        out, events = action(self.clients[address])
        self._from_client(address, out, events)

    def emit(self, address: str, output: Output) -> None:
        """Send what a ClientSession method returned, e.g. net.emit(a, c.publish(...))."""
        self._from_client(address, *output)

    def deliver(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        out, events = self.registry.deliver_downstream(topic, payload, qos, retain, self.now)
        self._from_gateway(out, events)

    def inject(self, address: str, datagram: bytes) -> None:
        """A datagram straight into the gateway (bypassing the link)."""
        out, events = self.registry.receive(address, datagram, self.now)
        self._from_gateway(out, events)

    def run(self, seconds: float, step_s: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = round(self.now + step_s, 6)
            self._deliver_due()
            for address, client in self.clients.items():
                deadline = client.next_deadline()
                if address not in self.silenced and deadline is not None and deadline <= self.now:
                    self._from_client(address, *client.tick(self.now))
            deadline = self.registry.next_deadline()
            if deadline is not None and deadline <= self.now:
                self._from_gateway(*self.registry.tick(self.now))

    def run_until(self, done: Callable[[], bool], limit_s: float, step_s: float = 0.05) -> None:
        end = self.now + limit_s
        while not done():
            assert self.now < end, f"condition not reached within {limit_s} s"
            self.run(step_s, step_s)

    def events_of(self, address: str, kind: type) -> list:
        return [e for e in self.client_events[address] if isinstance(e, kind)]

    def gateway_events_of(self, kind: type) -> list:
        return [e for e in self.gateway_events if isinstance(e, kind)]

    # ---- internals -------------------------------------------------------------------------

    def _from_client(self, address: str, out: list[bytes], events: list[ClientEvent]) -> None:
        self.client_events[address].extend(events)
        if address in self.silenced:
            return
        for datagram in out:
            self._transmit(True, address, datagram)

    def _from_gateway(self, out: list[tuple[object, bytes]], events: list[GatewayEvent]) -> None:
        self.gateway_events.extend(events)
        for address, datagram in out:
            self._transmit(False, str(address), datagram)

    def _transmit(self, to_gateway: bool, address: str, datagram: bytes) -> None:
        p = self.profile
        copies = 0 if self.rng.random() < p.drop else 1
        if copies and self.rng.random() < p.duplicate:
            copies = 2
        for _ in range(copies):
            self._seq += 1
            delay = self.rng.uniform(p.min_delay_s, p.max_delay_s)
            self._queue.append(
                _InFlight(self.now + delay, self._seq, to_gateway, address, datagram)
            )

    def _deliver_due(self) -> None:
        due = sorted(item for item in self._queue if item.deliver_at <= self.now)
        if not due:
            return
        self._queue = [item for item in self._queue if item.deliver_at > self.now]
        for item in due:
            if item.to_gateway:
                self._from_gateway(*self.registry.receive(item.address, item.datagram, self.now))
                continue
            if item.address in self.silenced or item.address not in self.clients:
                continue
            self.to_client_log[item.address].append(item.datagram)
            out, events = self.clients[item.address].receive(item.datagram, self.now)
            self._from_client(item.address, out, events)
