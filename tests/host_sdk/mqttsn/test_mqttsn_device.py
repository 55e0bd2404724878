"""The MicroPython device runtime (firmware_templates/micropython/mqttsn_device.py) on CPython
with a scripted transport and a fake clock: reconnect after a gateway DISCONNECT or loss spaced
by the exponential backoff (bounds checked as a property), reset by CONNACK; a clean close that
sends DISCONNECT only after the PUBCOMP of a received QoS 2 message."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host_sdk.mqttsn import codec
from host_sdk.mqttsn.client_session import ClientSession, Disconnected

pytestmark = pytest.mark.unit

DEVICE_PY = Path(__file__).resolve().parents[3] / "firmware_templates/micropython/mqttsn_device.py"


def load_device_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mqttsn_device_under_test", DEVICE_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


device_module = load_device_module()


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


class ScriptedTransport:
    """Records what the device sends (with the time); `wait` moves the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, Any]] = []
        self.inbox: list[bytes] = []
        self.closed = False
        self.has_gateway = True

    def send(self, datagram: bytes) -> None:
        self.sent.append((self.clock.t, codec.decode(datagram)))

    send_search = send

    def use_gateway(self, gw_address: bytes = b"") -> None:
        pass

    def receive(self) -> bytes | None:
        return self.inbox.pop(0) if self.inbox else None

    def wait(self, timeout_ms: float) -> None:
        self.clock.t = round(self.clock.t + max(timeout_ms, 1) / 1000, 6)

    def close(self) -> None:
        self.closed = True

    def connects(self) -> list[float]:
        return [t for t, m in self.sent if isinstance(m, codec.Connect)]


def make_device(rng: float) -> tuple[Any, ScriptedTransport, FakeClock]:
    clock = FakeClock()
    transport = ScriptedTransport(clock)
    session = ClientSession(
        "dev", keep_alive_s=0, t_retry_s=1.0, n_retry=1, predefined_topics={"cmd": 5}
    )
    backoff = device_module.Backoff(1.0, 8.0, rng=lambda: rng)
    device = device_module.Device(session, transport, clock=clock, backoff=backoff)
    return device, transport, clock


def poll_until(device: Any, clock: FakeClock, done: Any, limit_s: float) -> list[Any]:
    events: list[Any] = []
    end = clock.t + limit_s
    while not done():
        assert clock.t < end, "condition not reached"
        events.extend(device.poll(50))
    return events


@pytest.mark.parametrize(("rng", "factor"), [(1.0, 1.0), (0.0, 0.5)])
def test_reconnect_pauses_double_up_to_the_cap_and_reset_on_connack(
    rng: float, factor: float
) -> None:
    device, transport, clock = make_device(rng)
    device.start()
    transport.inbox.append(codec.encode(codec.Connack(0)))
    device.poll(10)
    transport.inbox.append(codec.encode(codec.Disconnect()))  # the gateway forgot us
    dropped_at = clock.t
    events = device.poll(10)
    assert Disconnected(by_gateway=True) in events
    # Every CONNECT goes unanswered: 1 retransmission (N_RETRY 1, T_RETRY 1 s), then lost.
    poll_until(device, clock, lambda: len(transport.connects()) >= 1 + 5 * 2, 200)
    attempts = transport.connects()[1::2]  # first CONNECT of each attempt
    lost_at = [dropped_at] + [t + 2.0 for t in attempts[:-1]]
    pauses = [round(a - lost, 2) for a, lost in zip(attempts, lost_at, strict=True)]
    assert pauses == pytest.approx([factor * d for d in (1, 2, 4, 8, 8)], abs=0.02)
    transport.inbox.append(codec.encode(codec.Connack(0)))
    poll_until(device, clock, lambda: device.session.state == "active", 5)
    assert device.backoff.attempt == 0


@given(
    initial_s=st.floats(0.01, 10),
    extra_s=st.floats(0, 100),
    draws=st.lists(st.floats(0, 1), min_size=1, max_size=40),
)
def test_backoff_delay_stays_within_half_and_whole_of_the_capped_doubling(
    initial_s: float, extra_s: float, draws: list[float]
) -> None:
    values = iter(draws)
    backoff = device_module.Backoff(initial_s, initial_s + extra_s, rng=lambda: next(values))
    for n in range(len(draws)):
        ceiling = min(initial_s + extra_s, initial_s * 2**n)
        delay = backoff.next_delay()
        assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9


def test_close_sends_disconnect_only_after_pubcomp() -> None:
    device, transport, clock = make_device(1.0)
    device.start()
    transport.inbox.append(codec.encode(codec.Connack(0)))
    device.poll(10)
    transport.inbox.append(codec.encode(codec.Publish(5, b"x", 2, 9, codec.TOPIC_PREDEFINED)))
    device.poll(10)

    def gateway_side() -> None:
        # The PUBREL comes 0.5 s after the PUBLISH; a DISCONNECT is answered at once.
        if clock.t >= 0.5 and not any(isinstance(m, codec.Pubcomp) for _, m in transport.sent):
            transport.inbox.append(codec.encode(codec.Pubrel(9)))
        if isinstance(transport.sent[-1][1], codec.Disconnect):
            transport.inbox.append(codec.encode(codec.Disconnect()))

    # close() polls the transport: the gateway's side runs as time passes.
    original_wait = transport.wait

    def wait(timeout_ms: float) -> None:
        original_wait(timeout_ms)
        gateway_side()

    transport.wait = wait  # type: ignore[method-assign]
    assert device.close(timeout_s=5) is True
    kinds = [type(m).__name__ for _, m in transport.sent]
    assert kinds == ["Connect", "Pubrec", "Pubcomp", "Disconnect"]
    assert transport.closed and device.reconnect_at is None
