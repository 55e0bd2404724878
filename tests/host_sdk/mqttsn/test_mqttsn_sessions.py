"""Client and gateway state machines wired together in memory, over clean and lossy links."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mqttsn_harness import LinkProfile, Network

from host_sdk.mqttsn import codec
from host_sdk.mqttsn import gateway_session as gw
from host_sdk.mqttsn.client_session import (
    ASLEEP,
    ClientSession,
    Connected,
    ConnectRejected,
    Disconnected,
    GatewayFound,
    GatewayLost,
    MessageReceived,
    PublishDone,
    Registered,
    SleepStarted,
    Subscribed,
    Unsubscribed,
    WakeDone,
    WillUpdated,
)

pytestmark = pytest.mark.unit

LOSSY = LinkProfile(drop=0.2, duplicate=0.15, min_delay_s=0.01, max_delay_s=0.4)


def make_client(client_id: str = "dev1", **kwargs: Any) -> ClientSession:
    options: dict[str, Any] = {"keep_alive_s": 30, "t_retry_s": 1.0, "n_retry": 10}
    options.update(kwargs)
    return ClientSession(client_id, **options)


def connected_network(
    profile: LinkProfile | None = None,
    seed: int = 7,
    config: gw.GatewayConfig | None = None,
    **client_options: Any,
) -> Network:
    net = Network(gw.GatewayRegistry(config or gw.GatewayConfig(t_retry_s=1.0, n_retry=10)),
                  profile, seed)  # fmt: skip
    net.add("dev1", make_client(**client_options))
    net.call("dev1", lambda c: c.connect(net.now))
    net.run_until(lambda: bool(net.events_of("dev1", Connected)), 60)
    return net


def upstream_payloads(net: Network) -> list[bytes]:
    return [e.payload for e in net.gateway_events_of(gw.PublishUpstream)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_qos1_upstream_arrives_at_least_once_over_a_lossy_link(seed: int) -> None:
    net = connected_network(LOSSY, seed)
    client = net.clients["dev1"]
    for i in range(25):
        net.emit("dev1", client.publish("plant/line1/temp", b"m%d" % i, 1, net.now))
    net.run_until(lambda: len(net.events_of("dev1", PublishDone)) == 25, 600)
    received = set(upstream_payloads(net))
    assert received == {b"m%d" % i for i in range(25)}
    assert net.clients["dev1"].retransmitted > 0  # the link really lost something


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_qos2_upstream_arrives_exactly_once_over_a_lossy_link(seed: int) -> None:
    net = connected_network(LOSSY, seed)
    client = net.clients["dev1"]
    for i in range(25):
        net.emit("dev1", client.publish("plant/line1/count", b"m%d" % i, 2, net.now))
    net.run_until(lambda: len(net.events_of("dev1", PublishDone)) == 25, 600)
    counts = Counter(upstream_payloads(net))
    assert counts == Counter({b"m%d" % i: 1 for i in range(25)})
    assert [e.qos for e in net.gateway_events_of(gw.PublishUpstream)] == [2] * 25


@pytest.mark.parametrize(("seed", "qos"), [(4, 1), (5, 2), (6, 2)])
def test_downstream_delivery_over_a_lossy_link(seed: int, qos: int) -> None:
    net = connected_network(LOSSY, seed)
    net.call("dev1", lambda c: c.subscribe("cmd/#", 2, net.now))
    net.run_until(lambda: bool(net.events_of("dev1", Subscribed)), 120)
    for i in range(20):
        net.deliver(f"cmd/dev1/{i % 3}", b"c%d" % i, qos)
    expected = {b"c%d" % i for i in range(20)}
    net.run_until(
        lambda: {e.payload for e in net.events_of("dev1", MessageReceived)} == expected, 900
    )
    net.run(30)  # let late duplicates and retransmissions drain
    counts = Counter(e.payload for e in net.events_of("dev1", MessageReceived))
    if qos == 2:
        assert counts == Counter({p: 1 for p in expected})
    topics = {e.topic for e in net.events_of("dev1", MessageReceived)}
    assert topics == {"cmd/dev1/0", "cmd/dev1/1", "cmd/dev1/2"}


def test_wildcard_subscription_registers_the_topic_before_the_first_publish() -> None:
    net = connected_network()
    net.call("dev1", lambda c: c.subscribe("sensors/+/temp", 1, net.now))
    net.run(1)
    (sub,) = net.events_of("dev1", Subscribed)
    assert sub.topic_id == 0  # spec: SUBACK carries topic id 0 for a wildcard name
    net.to_client_log["dev1"].clear()
    net.deliver("sensors/kitchen/temp", b"21.5", 1)
    net.deliver("sensors/kitchen/temp", b"21.6", 1)
    net.run(1)
    types = [codec.decode(d).msg_type for d in net.to_client_log["dev1"]]
    assert types == [codec.REGISTER, codec.PUBLISH, codec.PUBLISH]
    register = codec.decode(net.to_client_log["dev1"][0])
    assert isinstance(register, codec.Register)
    assert register.topic_name == "sensors/kitchen/temp"
    got = [(e.topic, e.payload) for e in net.events_of("dev1", MessageReceived)]
    assert got == [("sensors/kitchen/temp", b"21.5"), ("sensors/kitchen/temp", b"21.6")]


def test_will_is_published_when_the_keep_alive_expires() -> None:
    net = connected_network(will_topic="fleet/dev1/status", will_message=b"offline",
                            will_qos=1, will_retain=True, keep_alive_s=10)  # fmt: skip
    net.run(25)  # pings keep the session alive
    assert not net.gateway_events_of(gw.ClientLost)
    net.silenced.add("dev1")  # power loss
    last_rx = net.registry.sessions["dev1"].last_rx
    net.run(last_rx + 14.5 - net.now)
    assert not net.gateway_events_of(gw.ClientLost)
    net.run(1)  # 1.5 x 10 s after the last datagram
    (lost,) = net.gateway_events_of(gw.ClientLost)
    assert (lost.client_id, lost.will_topic, lost.will_message) == (
        "dev1",
        "fleet/dev1/status",
        b"offline",
    )
    assert (lost.will_qos, lost.will_retain) == (1, True)
    assert net.registry.sessions == {}


def test_disconnect_frees_the_session_without_publishing_the_will() -> None:
    net = connected_network(will_topic="w", will_message=b"x")
    net.call("dev1", lambda c: c.disconnect(net.now))
    net.run(1)
    assert net.events_of("dev1", Disconnected)
    assert net.gateway_events_of(gw.ClientDisconnected)
    assert not net.gateway_events_of(gw.ClientLost)
    assert net.registry.sessions == {}
    net.run(100)
    assert not net.gateway_events_of(gw.ClientLost)


@pytest.mark.parametrize("profile", [None, LOSSY])
def test_sleeping_client_gets_buffered_messages_when_it_wakes(
    profile: LinkProfile | None,
) -> None:
    net = connected_network(profile, seed=11)
    net.call("dev1", lambda c: c.subscribe("cmd/dev1", 2, net.now))
    net.run_until(lambda: bool(net.events_of("dev1", Subscribed)), 120)
    net.call("dev1", lambda c: c.sleep(120, net.now))
    net.run_until(lambda: bool(net.events_of("dev1", SleepStarted)), 120)
    net.run(2)
    assert net.clients["dev1"].state == ASLEEP
    net.to_client_log["dev1"].clear()
    for i, qos in enumerate([0, 1, 2, 1]):
        net.deliver("cmd/dev1", b"w%d" % i, qos)
    net.run(20)
    assert net.to_client_log["dev1"] == []  # buffered, nothing sent to a sleeping client
    net.call("dev1", lambda c: c.wake(net.now))
    net.run_until(lambda: bool(net.events_of("dev1", WakeDone)), 300)
    payloads = {e.payload for e in net.events_of("dev1", MessageReceived)}
    # QoS 0 may be lost on the lossy link; QoS 1 and 2 must all have arrived before PINGRESP.
    assert {b"w1", b"w2", b"w3"} <= payloads
    if profile is None:
        assert [e.payload for e in net.events_of("dev1", MessageReceived)] == [
            b"w0", b"w1", b"w2", b"w3"
        ]  # fmt: skip
        types = [codec.decode(d).msg_type for d in net.to_client_log["dev1"]]
        assert types[-1] == codec.PINGRESP
    assert net.clients["dev1"].state == ASLEEP
    assert not net.gateway_events_of(gw.ClientLost)


def test_sleeping_client_that_never_wakes_is_lost() -> None:
    net = connected_network(will_topic="w", will_message=b"gone")
    net.call("dev1", lambda c: c.sleep(20, net.now))
    net.run(1)
    net.silenced.add("dev1")
    net.run(31)
    (lost,) = net.gateway_events_of(gw.ClientLost)
    assert lost.will_message == b"gone"
    assert net.registry.sessions == {}


def test_client_re_registers_after_puback_invalid_topic_id() -> None:
    net = connected_network()
    net.call("dev1", lambda c: c.publish("a/b", b"one", 1, net.now))
    net.run(1)
    session = net.registry.sessions["dev1"]
    session.topic_ids.clear()  # the gateway lost the registration (e.g. restored state)
    session.topic_names.clear()
    net.call("dev1", lambda c: c.publish("a/b", b"two", 1, net.now))
    net.run(2)
    assert upstream_payloads(net) == [b"one", b"two"]
    assert len(net.events_of("dev1", Registered)) == 2
    assert len(net.events_of("dev1", PublishDone)) == 2


def test_gateway_restart_makes_the_client_reconnect_without_losing_a_message() -> None:
    net = connected_network()
    net.call("dev1", lambda c: c.publish("a/b", b"before", 1, net.now))
    net.run(1)
    net.registry = gw.GatewayRegistry(gw.GatewayConfig(t_retry_s=1.0))
    net.call("dev1", lambda c: c.publish("a/b", b"after", 1, net.now))
    net.run(1)
    assert net.events_of("dev1", Disconnected)  # the new gateway does not know the client
    net.call("dev1", lambda c: c.connect(net.now))
    net.run(2)
    assert upstream_payloads(net) == [b"before", b"after"]


def test_qos_minus_one_needs_no_connection_and_leaves_no_session() -> None:
    config = gw.GatewayConfig(predefined_topics={"fleet/beacon": 5})
    net = Network(gw.GatewayRegistry(config))
    net.add("dev9", make_client("dev9", predefined_topics={"fleet/beacon": 5}))
    net.call("dev9", lambda c: c.publish("fleet/beacon", b"hello", -1, net.now))
    net.call("dev9", lambda c: c.publish("ab", b"short", -1, net.now))
    net.run(1)
    assert [(e.topic, e.payload, e.client_id) for e in net.gateway_events_of(gw.PublishUpstream)] == [
        ("fleet/beacon", b"hello", ""), ("ab", b"short", "")
    ]  # fmt: skip
    assert net.registry.sessions == {}
    with pytest.raises(ValueError, match="QoS -1"):
        net.clients["dev9"].publish("long/topic", b"", -1, net.now)


def test_gateway_discovery() -> None:
    net = Network(gw.GatewayRegistry(gw.GatewayConfig(gw_id=42)), LinkProfile(drop=1.0))
    net.add("dev1", make_client())
    net.call("dev1", lambda c: c.search_gateway(net.now))
    assert net.clients["dev1"].next_deadline() == pytest.approx(5.0)
    net.run(5.1)
    assert net.clients["dev1"].sent == 2  # SEARCHGW repeated after T_SEARCHGW
    net.profile.drop = 0.0
    net.run(5.1)
    (found,) = net.events_of("dev1", GatewayFound)
    assert found.gw_id == 42
    assert net.clients["dev1"].next_deadline() is None
    advert = codec.encode(codec.Advertise(42, 900))
    _, events = net.clients["dev1"].receive(advert, net.now)
    assert events == [GatewayFound(42, b"", 900)]


def test_client_declares_the_gateway_lost_after_n_retry() -> None:
    client = ClientSession("dev1", t_retry_s=10.0, n_retry=3)
    out, _ = client.connect(0.0)
    assert len(out) == 1
    sent_at = []
    now = 0.0
    events: list = []
    while now < 100 and not events:
        now = client.next_deadline() or 0.0
        out, events = client.tick(now)
        if out:
            sent_at.append(now)
    assert sent_at == [10.0, 20.0, 30.0]
    assert events == [GatewayLost()] and now == 40.0


def test_congestion_makes_the_client_wait_t_wait() -> None:
    config = gw.GatewayConfig(max_clients=1)
    net = Network(gw.GatewayRegistry(config))
    net.add("a", make_client("a"))
    net.add("b", make_client("b", t_wait_s=30.0))
    net.call("a", lambda c: c.connect(net.now))
    net.call("b", lambda c: c.connect(net.now))
    net.run(1)
    assert net.events_of("a", Connected) and not net.events_of("b", Connected)
    assert net.registry.rejected_clients == 1
    net.call("a", lambda c: c.disconnect(net.now))
    sent = net.clients["b"].sent
    net.run(28)
    assert net.clients["b"].sent == sent  # waiting T_WAIT, not T_RETRY
    net.run(3)
    assert net.events_of("b", Connected)


def test_connect_rejected_for_another_protocol_version() -> None:
    registry = gw.GatewayRegistry()
    connect_v2 = codec.encode(codec.Connect("dev1", 60, protocol_id=0x02))
    out, _events = registry.receive("x", connect_v2, 0.0)
    assert [codec.decode(d) for _, d in out] == [codec.Connack(codec.RC_NOT_SUPPORTED)]
    client = make_client()
    client.connect(0.0)
    _, client_events = client.receive(out[0][1], 0.0)
    assert client_events == [ConnectRejected(codec.RC_NOT_SUPPORTED)]


def test_persistent_session_is_resumed_from_another_address() -> None:
    net = connected_network(clean_session=False)
    net.call("dev1", lambda c: c.subscribe("cmd/dev1", 1, net.now))
    net.run(1)
    net.call("dev1", lambda c: c.disconnect(net.now))
    net.run(1)
    assert net.registry.sessions == {}
    assert [type(e) for e in net.gateway_events[-2:]] == [
        gw.UnsubscribeUpstream, gw.ClientDisconnected
    ]  # fmt: skip
    moved = net.add("dev1-new-address", make_client(clean_session=False))
    net.call("dev1-new-address", lambda c: c.connect(net.now))
    net.run(1)
    connected = net.gateway_events_of(gw.ClientConnected)[-1]
    assert connected.resumed
    assert net.gateway_events_of(gw.SubscribeUpstream)[-1] == gw.SubscribeUpstream(
        "dev1", "cmd/dev1", 1
    )
    net.deliver("cmd/dev1", b"again", 1)
    net.run(1)
    assert [e.payload for e in net.events_of("dev1-new-address", MessageReceived)] == [b"again"]
    assert moved.state == "active"


def test_clean_session_drops_old_subscriptions() -> None:
    net = connected_network(clean_session=False)
    net.call("dev1", lambda c: c.subscribe("cmd/dev1", 1, net.now))
    net.run(1)
    net.call("dev1", lambda c: c.disconnect(net.now))
    net.run(1)
    net.add("dev1b", make_client(clean_session=True))
    net.call("dev1b", lambda c: c.connect(net.now))
    net.run(1)
    assert not net.gateway_events_of(gw.ClientConnected)[-1].resumed
    net.deliver("cmd/dev1", b"nobody", 1)
    net.run(1)
    assert net.events_of("dev1b", MessageReceived) == []


def test_malformed_datagrams_are_counted_and_the_gateway_keeps_serving() -> None:
    net = connected_network()
    net.add("dev2", make_client("dev2"))
    net.call("dev2", lambda c: c.connect(net.now))
    net.run(1)
    for junk in [b"", b"\x05\x0c\x20", b"\x09\x0c\x20\x00\x01", b"\xff" * 40, b"\x02\x11"]:
        net.inject("dev1", junk)
    assert net.registry.sessions["dev1"].counters.malformed == 5
    net.call("dev1", lambda c: c.publish("a/b", b"still-here", 1, net.now))
    net.call("dev2", lambda c: c.publish("c/d", b"me-too", 1, net.now))
    net.run(1)
    assert upstream_payloads(net) == [b"still-here", b"me-too"]
    assert net.registry.total_counters().malformed == 5


def test_overlong_client_id_gets_connack_not_supported_and_no_slot() -> None:
    registry = gw.GatewayRegistry()
    raw = bytes([5 + 30, codec.CONNECT, 0x04, 0x01, 0, 60]) + b"x" * 30
    out, events = registry.receive(("10.0.0.9", 1234), raw, 0.0)
    assert [codec.decode(d) for _, d in out] == [codec.Connack(codec.RC_NOT_SUPPORTED)]
    assert events == [] and registry.sessions == {}
    assert registry.counters.malformed == 1


def test_client_cap_and_freed_slots() -> None:
    registry = gw.GatewayRegistry(gw.GatewayConfig(max_clients=3))
    for i in range(3):
        registry.receive(i, codec.encode(codec.Connect(f"c{i}", 60)), 0.0)
    out, _ = registry.receive(99, codec.encode(codec.Connect("c99", 60)), 0.0)
    assert codec.decode(out[0][1]) == codec.Connack(codec.RC_CONGESTION)
    registry.receive(0, codec.encode(codec.Disconnect()), 1.0)
    out, _ = registry.receive(99, codec.encode(codec.Connect("c99", 60)), 2.0)
    assert codec.decode(out[0][1]) == codec.Connack(codec.RC_ACCEPTED)
    assert sorted(registry.sessions, key=str) == [1, 2, 99]
    registry.tick(200.0)  # all keep-alives expired
    assert registry.sessions == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=60)), max_size=40))
def test_random_datagrams_from_many_addresses_never_raise(
    traffic: list[tuple[int, bytes]],
) -> None:
    registry = gw.GatewayRegistry(gw.GatewayConfig(max_clients=2))
    registry.receive("good", codec.encode(codec.Connect("good", 60)), 0.0)
    now = 0.0
    for address, datagram in traffic:
        now += 0.5
        registry.receive(address, datagram, now)
        registry.tick(now)
    out, _events = registry.receive("good", codec.encode(codec.Pingreq()), now)
    assert [codec.decode(d) for _, d in out] == [codec.Pingresp()]
    total = registry.total_counters()
    assert total.received + total.malformed >= len(traffic) + 2


def test_topic_filter_matching() -> None:
    match = gw.topic_matches
    assert match("a/+/c", "a/b/c") and not match("a/+/c", "a/b/d")
    assert match("a/#", "a") and match("a/#", "a/b/c") and match("#", "x/y")
    assert not match("+", "a/b") and match("+/+", "a/b")
    assert not match("#", "$SYS/x") and match("$SYS/#", "$SYS/x")
    assert not match("a/b", "a/b/c")


def test_late_copy_of_a_qos2_publish_after_pubrel_is_not_passed_up_again() -> None:
    # Over UDP a delayed copy of the PUBLISH can arrive after the PUBREL (reordering).
    registry = gw.GatewayRegistry(gw.GatewayConfig(predefined_topics={"t": 3}))
    registry.receive("a", codec.encode(codec.Connect("a", 60)), 0.0)
    publish = codec.encode(codec.Publish(3, b"once", 2, 77, codec.TOPIC_PREDEFINED))
    _, first = registry.receive("a", publish, 1.0)
    registry.receive("a", codec.encode(codec.Pubrel(77)), 1.1)
    _, late = registry.receive("a", publish, 1.5)
    assert [type(e) for e in first] == [gw.PublishUpstream] and late == []
    _, reused = registry.receive("a", publish, 100.0)  # long after: the id is reused
    assert [type(e) for e in reused] == [gw.PublishUpstream]


def test_client_ignores_a_late_qos2_copy_after_pubrel() -> None:
    client = make_client(predefined_topics={"t": 3})
    client.connect(0.0)
    client.receive(codec.encode(codec.Connack(0)), 0.0)
    publish = codec.encode(codec.Publish(3, b"once", 2, 9, codec.TOPIC_PREDEFINED))
    out, events = client.receive(publish, 1.0)
    assert events == [MessageReceived("t", b"once", 2, False)]
    assert [codec.decode(d) for d in out] == [codec.Pubrec(9)]
    out, _ = client.receive(codec.encode(codec.Pubrel(9)), 1.1)
    assert [codec.decode(d) for d in out] == [codec.Pubcomp(9)]
    out, events = client.receive(publish, 1.3)
    assert events == [] and [codec.decode(d) for d in out] == [codec.Pubrec(9)]


def test_unsubscribe_stops_delivery() -> None:
    net = connected_network()
    net.call("dev1", lambda c: c.subscribe("cmd/dev1", 1, net.now))
    net.run(1)
    net.call("dev1", lambda c: c.unsubscribe("cmd/dev1", net.now))
    net.run(1)
    assert net.events_of("dev1", Unsubscribed) == [Unsubscribed("cmd/dev1")]
    assert net.gateway_events_of(gw.UnsubscribeUpstream) == [
        gw.UnsubscribeUpstream("dev1", "cmd/dev1")
    ]
    assert net.registry.subscription_filters() == {}
    net.deliver("cmd/dev1", b"late", 1)
    net.run(1)
    assert net.events_of("dev1", MessageReceived) == []


def test_will_update_replaces_the_published_will() -> None:
    net = connected_network(will_topic="w/old", will_message=b"old", keep_alive_s=10)
    net.call("dev1", lambda c: c.update_will("w/new", b"new", net.now, qos=1, retain=True))
    net.run(1)
    assert net.events_of("dev1", WillUpdated) == [WillUpdated(0)]
    net.silenced.add("dev1")
    net.run(20)
    (lost,) = net.gateway_events_of(gw.ClientLost)
    assert (lost.will_topic, lost.will_message, lost.will_qos, lost.will_retain) == (
        "w/new", b"new", 1, True
    )  # fmt: skip


def test_will_update_with_an_empty_topic_deletes_the_will() -> None:
    net = connected_network(will_topic="w/old", will_message=b"old", keep_alive_s=10)
    net.call("dev1", lambda c: c.update_will("", b"", net.now))
    net.run(1)
    assert net.events_of("dev1", WillUpdated) == [WillUpdated(0)]
    net.silenced.add("dev1")
    net.run(20)
    (lost,) = net.gateway_events_of(gw.ClientLost)
    assert lost.will_topic == ""


def test_gateway_retransmits_downstream_qos1_then_gives_up() -> None:
    config = gw.GatewayConfig(t_retry_s=2.0, n_retry=3)
    net = connected_network(config=config, keep_alive_s=600)
    net.call("dev1", lambda c: c.subscribe("cmd/#", 1, net.now))
    net.run(1)
    net.silenced.add("dev1")
    net.deliver("cmd/a", b"x", 1)  # REGISTER first: the client does not know cmd/a yet
    net.run(7)
    session = net.registry.sessions["dev1"]
    assert session.counters.retransmitted == 3
    net.run(2)
    assert session.counters.dropped == 2  # the REGISTER and the PUBLISH waiting for it
    net.silenced.clear()
    net.deliver("cmd/b", b"y", 1)  # the next message goes out normally
    net.run(1)
    assert [e.payload for e in net.events_of("dev1", MessageReceived)] == [b"y"]


def test_puback_congestion_makes_the_client_wait_t_wait() -> None:
    client = make_client(t_wait_s=60.0, predefined_topics={"t": 3})
    client.connect(0.0)
    client.receive(codec.encode(codec.Connack(0)), 0.0)
    out, _ = client.publish("t", b"x", 1, 1.0)
    publish = codec.decode(out[0])
    assert isinstance(publish, codec.Publish)
    client.receive(codec.encode(codec.Puback(3, publish.msg_id, codec.RC_CONGESTION)), 1.1)
    assert client.next_deadline() == pytest.approx(61.1)
    out, _ = client.tick(61.1)
    again = codec.decode(out[0])
    assert isinstance(again, codec.Publish) and again.msg_id == publish.msg_id
    _, events = client.receive(codec.encode(codec.Puback(3, publish.msg_id, 0)), 61.2)
    assert events == [PublishDone("t", publish.msg_id, 1)]


def test_a_new_client_on_a_reused_address_replaces_the_old_one_once() -> None:
    registry = gw.GatewayRegistry()
    registry.receive("addr", codec.encode(codec.Connect("old", 60)), 0.0)
    registry.receive("addr", codec.encode(codec.Subscribe(1, "cmd/old", qos=1)), 0.0)
    _, events = registry.receive("addr", codec.encode(codec.Connect("new", 60)), 1.0)
    assert events == [
        gw.UnsubscribeUpstream("old", "cmd/old"),
        gw.ClientDisconnected("old"),
        gw.ClientConnected("new", True, False),
    ]
    assert registry.subscription_filters() == {}
    assert registry.sessions["addr"].client_id == "new"
