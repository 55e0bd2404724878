"""End to end through a lossy UDP proxy (seeded drops, duplicates, reordering): QoS 1 arrives
at least once and QoS 2 exactly once, in both directions, for the C and MicroPython clients."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from gateway_harness import (
    ClientKind,
    ClientProcess,
    GatewayThread,
    MqttProbe,
    unique,
)
from lossy_proxy import LossProfile, LossyUdpProxy

pytestmark = [pytest.mark.sim, pytest.mark.slow]

ROUNDS = 15
DOWNSTREAM = 8
PROFILE = LossProfile(drop=0.15, duplicate=0.15, reorder=0.15)


@pytest.fixture
def lossy_gateway(
    start_gateway: Callable[..., GatewayThread],
) -> Iterator[tuple[GatewayThread, LossyUdpProxy]]:
    gateway = start_gateway(retry_s=0.25, max_retries=30)
    proxy = LossyUdpProxy(("127.0.0.1", gateway.port), PROFILE, seed=20261127).start()
    try:
        yield gateway, proxy
    finally:
        proxy.stop()


def test_qos1_at_least_once_and_qos2_exactly_once_through_loss(
    client_kind: ClientKind,
    probe: MqttProbe,
    lossy_gateway: tuple[GatewayThread, LossyUdpProxy],
    clients: list[ClientProcess],
) -> None:
    gateway, proxy = lossy_gateway
    device = unique("lossy-")
    probe.subscribe(f"up/{device}/#", 2)
    client = client_kind.start(
        "--gateway", f"127.0.0.1:{proxy.port}", "--client-id", device,
        "--sub", f"down/{device}/#:2",
        "--pub", f"up/{device}/q1:1:one-{{n}}", "--pub", f"up/{device}/q2:2:two-{{n}}",
        "--count", str(ROUNDS), "--expect", str(2 * DOWNSTREAM), "--timeout-ms", "60000",
        "--retry-ms", "250", "--max-retries", "30", "--reconnect-ms", "250",
    )  # fmt: skip
    clients.append(client)
    client.wait_line("READY", 30)
    stats = gateway.wait_stats(lambda s: s["broker"]["filters"] >= 1)
    assert stats["broker"]["filters"] >= 1
    for n in range(1, DOWNSTREAM + 1):
        probe.publish(f"down/{device}/q1", f"d1-{n}".encode(), qos=1)
        probe.publish(f"down/{device}/q2", f"d2-{n}".encode(), qos=2)
    assert client.wait_exit(60) == 0, client.output()

    expected_up = {qos: [f"{name}-{n}".encode() for n in range(1, ROUNDS + 1)]
                   for qos, name in ((1, "one"), (2, "two"))}  # fmt: skip
    probe.wait_for(lambda m: set(expected_up[2]) <= {p for t, p, *_ in m}, 20)
    probe.wait_for(lambda m: set(expected_up[1]) <= {p for t, p, *_ in m}, 20)
    q2_up = Counter(probe.payloads(f"up/{device}/q2"))
    assert q2_up == Counter(expected_up[2]), "QoS 2 upstream must arrive exactly once"
    assert set(probe.payloads(f"up/{device}/q1")) == set(expected_up[1])

    received = Counter(line.split()[-1] for line in client.matching(f"RECV down/{device}/"))
    for n in range(1, DOWNSTREAM + 1):
        assert received[f"d1-{n}".encode().hex()] >= 1, client.output()
        assert received[f"d2-{n}".encode().hex()] == 1, client.output()
    # The link really was lossy, and the gateway really retransmitted.
    assert proxy.counters.dropped > 0 and proxy.counters.duplicated > 0
    assert proxy.counters.reordered > 0
    assert gateway.stats()["gateway"]["retransmitted"] > 0
