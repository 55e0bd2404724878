"""The session layer's side of "durable before acknowledged", sans-IO: deferred PUBACK/PUBREC,
duplicates while a message is not yet safe, refusals, PUBREL reported before PUBCOMP, and
CleanSession=0 sessions that come back from their snapshot unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sdk.mqttsn import codec
from host_sdk.mqttsn.gateway_session import (
    ASLEEP,
    DeviceReleased,
    GatewayConfig,
    GatewayEvent,
    GatewayRegistry,
    PublishUpstream,
    SessionChanged,
    SubscribeUpstream,
)

pytestmark = pytest.mark.unit

ADDRESS = ("10.0.0.1", 5000)


def registry() -> GatewayRegistry:
    return GatewayRegistry(GatewayConfig(defer_acks=True, track_sessions=True))


def send(
    gateway: GatewayRegistry, message: codec.Message, now: float = 0.0, address: Any = ADDRESS
) -> tuple[list[codec.Message], list[GatewayEvent]]:
    out, events = gateway.receive(address, codec.encode(message), now)
    return [codec.decode(datagram) for _address, datagram in out], events


def connected(gateway: GatewayRegistry, client_id: str = "dev", clean: bool = False) -> int:
    replies, _ = send(gateway, codec.Connect(client_id, 60, clean_session=clean))
    assert replies == [codec.Connack(codec.RC_ACCEPTED)]
    replies, _ = send(gateway, codec.Register(0, 1, "up/t"))
    assert isinstance(replies[0], codec.Regack)
    return replies[0].topic_id


def publishes(events: list[GatewayEvent]) -> list[PublishUpstream]:
    return [event for event in events if isinstance(event, PublishUpstream)]


def test_qos1_is_acknowledged_only_when_the_gateway_says_so() -> None:
    gateway = registry()
    topic_id = connected(gateway)
    replies, events = send(gateway, codec.Publish(topic_id, b"a", 1, 7))
    assert replies == [] and [(e.msg_id, e.payload) for e in publishes(events)] == [(7, b"a")]
    # A retransmission while the message is not yet safe: no second copy upward, no ack.
    replies, events = send(gateway, codec.Publish(topic_id, b"a", 1, 7, dup=True))
    assert replies == [] and publishes(events) == []
    out, _ = gateway.acknowledge("dev", 7)
    assert [codec.decode(d) for _a, d in out] == [codec.Puback(topic_id, 7, codec.RC_ACCEPTED)]
    assert gateway.acknowledge("dev", 7) == ([], [])  # once only


def test_qos2_publish_pubrec_pubrel_with_deferred_ack() -> None:
    gateway = registry()
    topic_id = connected(gateway)
    replies, events = send(gateway, codec.Publish(topic_id, b"b", 2, 9))
    assert replies == [] and len(publishes(events)) == 1
    assert send(gateway, codec.Publish(topic_id, b"b", 2, 9, dup=True)) == ([], [])
    out, _ = gateway.acknowledge("dev", 9)
    assert [codec.decode(d) for _a, d in out] == [codec.Pubrec(9)]
    # After the ack a retransmission is answered from the dedup state, never passed up again.
    replies, events = send(gateway, codec.Publish(topic_id, b"b", 2, 9, dup=True))
    assert replies == [codec.Pubrec(9)] and publishes(events) == []
    replies, events = send(gateway, codec.Pubrel(9))
    assert replies == [codec.Pubcomp(9)]
    assert [e for e in events if isinstance(e, DeviceReleased)] == [DeviceReleased("dev", 9)]
    replies, events = send(gateway, codec.Pubrel(9))  # our PUBCOMP was lost
    assert replies == [codec.Pubcomp(9)] and events == []


def test_a_refused_message_is_not_acknowledged_and_its_retransmission_is_new() -> None:
    gateway = registry()
    topic_id = connected(gateway)
    send(gateway, codec.Publish(topic_id, b"c", 2, 3))
    assert gateway.refuse("dev", 3) == ([], [])
    replies, events = send(gateway, codec.Publish(topic_id, b"c", 2, 3, dup=True))
    assert replies == [] and len(publishes(events)) == 1
    assert gateway.total_counters().dropped >= 1


def test_immediate_acks_without_defer() -> None:
    gateway = GatewayRegistry(GatewayConfig())
    topic_id = connected(gateway)
    replies, events = send(gateway, codec.Publish(topic_id, b"d", 1, 4))
    assert replies == [codec.Puback(topic_id, 4, codec.RC_ACCEPTED)]
    assert publishes(events)[0].msg_id == 4


def changes(events: list[GatewayEvent]) -> list[SessionChanged]:
    return [event for event in events if isinstance(event, SessionChanged)]


def test_persistent_sessions_report_snapshots_clean_ones_report_none() -> None:
    gateway = registry()
    _, events = send(gateway, codec.Connect("keep", 60, clean_session=False))
    (change,) = changes(events)
    assert change.snapshot is not None and change.snapshot["state"] == "active"
    _, events = send(gateway, codec.Subscribe(2, "cmd/keep", qos=1))
    (change,) = changes(events)
    assert change.snapshot is not None and change.snapshot["subscriptions"] == {"cmd/keep": 1}
    other = ("10.0.0.2", 1)
    _, events = send(gateway, codec.Connect("gone", 60, clean_session=True), address=other)
    assert [c.snapshot for c in changes(events)] == [None]


def restored(snapshots: list[dict[str, Any]], unreleased: dict[str, list[int]]) -> GatewayRegistry:
    gateway = registry()
    out, events = gateway.restore_sessions(snapshots, unreleased, 100.0)
    assert out == []
    assert all(not isinstance(e, SessionChanged) for e in events)
    return gateway


def test_a_restored_session_keeps_topic_ids_subscriptions_will_and_qos2_state() -> None:
    gateway = registry()
    send(gateway, codec.Connect("dev", 60, will=True, clean_session=False))
    send(gateway, codec.WillTopic("will/dev", 1, False))
    _, events = send(gateway, codec.WillMsg(b"bye"))
    topic_id = send(gateway, codec.Register(0, 1, "up/t"))[0][0].topic_id  # type: ignore[attr-defined]
    _, events = send(gateway, codec.Subscribe(2, "cmd/dev", qos=1))
    snapshot = changes(events)[-1].snapshot
    assert snapshot is not None
    send(gateway, codec.Publish(topic_id, b"q2", 2, 11))  # accepted before the "crash"

    again = restored([snapshot], {"dev": [11]})
    session = again.sessions[ADDRESS]
    assert session.snapshot() == snapshot
    assert again.subscription_filters() == {"cmd/dev": 1}
    # The device goes on as if nothing happened: same topic id, no CONNECT.
    replies, events = send(again, codec.Publish(topic_id, b"next", 1, 12), now=101.0)
    assert [e.topic for e in publishes(events)] == ["up/t"] and replies == []
    # Its QoS 2 message accepted before the restart is a duplicate now.
    replies, events = send(again, codec.Publish(topic_id, b"q2", 2, 11, dup=True), now=101.0)
    assert replies == [codec.Pubrec(11)] and publishes(events) == []
    # Downstream goes straight out with the topic id the device already knows.
    out, _ = again.deliver_downstream("cmd/dev", b"go", 1, False, 101.0)
    (publish,) = [codec.decode(d) for _a, d in out]
    assert isinstance(publish, codec.Publish) and publish.data == b"go"
    # Supervision restarts at the restore: lost after 1.5 x 60 s, will reported.
    _, events = again.tick(100.0 + 91.0)
    assert any(getattr(e, "will_topic", "") == "will/dev" for e in events)


def test_a_sleeping_session_keeps_its_buffer_across_a_restore() -> None:
    gateway = registry()
    send(gateway, codec.Connect("sleepy", 60, clean_session=False))
    send(gateway, codec.Subscribe(2, "cmd/sleepy", qos=1))
    send(gateway, codec.Disconnect(120))
    last: dict[str, Any] | None = None
    for n in range(3):
        _, events = gateway.deliver_downstream("cmd/sleepy", b"m%d" % n, 1, False, 1.0)
        last = changes(events)[-1].snapshot
    assert last is not None and last["state"] == ASLEEP and len(last["buffer"]) == 3
    again = restored([last], {})
    replies, _ = send(again, codec.Pingreq("sleepy"), now=101.0)
    assert [m.data for m in replies if isinstance(m, codec.Publish)] == [b"m0"]  # one in flight
    delivered = [b"m0"]
    for _ in range(2):
        publish = next(m for m in replies if isinstance(m, codec.Publish))
        replies, _ = send(
            again, codec.Puback(publish.topic_id, publish.msg_id, codec.RC_ACCEPTED), now=101.0
        )
        delivered += [m.data for m in replies if isinstance(m, codec.Publish)]
    assert delivered == [b"m0", b"m1", b"m2"]


def test_a_disconnected_persistent_session_resumes_on_connect_after_a_restore() -> None:
    gateway = registry()
    send(gateway, codec.Connect("away", 60, clean_session=False))
    send(gateway, codec.Subscribe(2, "cmd/away", qos=1))
    _, events = send(gateway, codec.Disconnect())
    snapshot = changes(events)[-1].snapshot
    assert snapshot is not None and snapshot["state"] == "disconnected"
    again = restored([snapshot], {})
    assert again.sessions == {}
    _, events = send(again, codec.Connect("away", 60, clean_session=False), now=101.0)
    assert SubscribeUpstream("away", "cmd/away", 1) in events


topics = st.text(alphabet="abc/", min_size=1, max_size=6).filter(
    lambda t: "//" not in t and not t.startswith("/") and not t.endswith("/")
)


@settings(max_examples=80, deadline=None)
@given(
    subscriptions=st.dictionaries(topics, st.integers(0, 2), max_size=4),
    registered=st.lists(topics, max_size=4, unique=True),
    will=st.one_of(st.none(), st.tuples(topics, st.binary(max_size=8), st.integers(0, 2))),
    buffered=st.lists(st.tuples(st.binary(max_size=8), st.integers(0, 1)), max_size=4),
    sleep=st.booleans(),
)
def test_snapshot_restore_snapshot_is_identity(
    subscriptions: dict[str, int],
    registered: list[str],
    will: tuple[str, bytes, int] | None,
    buffered: list[tuple[bytes, int]],
    sleep: bool,
) -> None:
    gateway = registry()
    send(gateway, codec.Connect("p", 30, will=will is not None, clean_session=False))
    if will is not None:
        send(gateway, codec.WillTopic(will[0], will[2], False))
        send(gateway, codec.WillMsg(will[1]))
    for index, topic in enumerate(registered, start=1):
        send(gateway, codec.Register(0, index, topic))
    for index, (topic, qos) in enumerate(subscriptions.items(), start=10):
        send(gateway, codec.Subscribe(index, topic, qos=qos))
    if sleep:
        send(gateway, codec.Disconnect(300))
        for payload, qos in buffered:
            gateway.deliver_downstream(next(iter(subscriptions), "x"), payload, qos, False, 1.0)
    snapshot = gateway.sessions[ADDRESS].snapshot()
    again = restored([snapshot], {})
    assert again.sessions[ADDRESS].snapshot() == snapshot


def test_a_will_topic_with_a_wildcard_is_refused() -> None:
    gateway = registry()
    send(gateway, codec.Connect("w", 60, will=True, clean_session=False))
    replies, _ = send(gateway, codec.WillTopic("will/+", 1, False))
    assert replies == [codec.Connack(codec.RC_NOT_SUPPORTED)]
    assert gateway.sessions == {}
    connected(gateway, "w2")
    replies, _ = send(gateway, codec.WillTopicUpd("will/#", 1, False))
    assert replies == [codec.WillTopicResp(codec.RC_NOT_SUPPORTED)]
