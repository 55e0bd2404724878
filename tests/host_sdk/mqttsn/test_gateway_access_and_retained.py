"""The gateway registry's access-control hook and its routing of retained replays, driven by
raw MQTT-SN datagrams (sans-IO, no sockets)."""

from __future__ import annotations

import pytest
from mqttsn_harness import Network

from host_sdk.mqttsn import codec
from host_sdk.mqttsn import gateway_session as gw
from host_sdk.mqttsn.client_session import (
    ClientSession,
    Connected,
    GatewayLost,
    RequestRejected,
)

pytestmark = pytest.mark.unit

DEVICE = ("10.0.0.1", 5000)
OTHER = ("10.0.0.2", 5000)


def allow_rules(client_id: str, action: str, topic: str) -> bool:
    """A small policy: ids starting "ok-" may connect, publish under up/<id>/, subscribe under
    down/<id>/, and leave a will under will/<id>."""
    if not client_id.startswith("ok-"):
        return False
    if action == gw.ACTION_CONNECT:
        return True
    if action == gw.ACTION_PUBLISH:
        return topic.startswith(f"up/{client_id}/")
    if action == gw.ACTION_SUBSCRIBE:
        return topic.startswith(f"down/{client_id}/")
    return action == gw.ACTION_WILL and topic == f"will/{client_id}"


def send(
    registry: gw.GatewayRegistry, address: object, message: codec.Message, now: float = 0.0
) -> tuple[list[codec.Message], list[gw.GatewayEvent]]:
    out, events = registry.receive(address, codec.encode(message), now)
    assert all(to == address for to, _ in out)
    return [codec.decode(datagram) for _, datagram in out], events


def connect(registry: gw.GatewayRegistry, address: object, client_id: str) -> None:
    replies, _ = send(registry, address, codec.Connect(client_id, 60))
    assert replies == [codec.Connack(codec.RC_ACCEPTED)]


def guarded_registry() -> gw.GatewayRegistry:
    return gw.GatewayRegistry(gw.GatewayConfig(authorize=allow_rules))


def test_refused_connect_gets_connack_not_supported_and_no_session() -> None:
    registry = guarded_registry()
    replies, events = send(registry, DEVICE, codec.Connect("intruder", 60))
    assert replies == [codec.Connack(codec.RC_NOT_SUPPORTED)]
    assert events == [] and registry.sessions == {}
    assert registry.denied == {"connect": 1} and registry.counters.denied == 1


def test_refused_subscribe_gets_suback_not_supported_and_no_upstream_subscription() -> None:
    registry = guarded_registry()
    connect(registry, DEVICE, "ok-1")
    replies, events = send(registry, DEVICE, codec.Subscribe(3, "down/ok-2/#", qos=1))
    assert replies == [codec.Suback(0, 3, 0, codec.RC_NOT_SUPPORTED)]
    assert events == [] and registry.subscription_filters() == {}
    # Short topic names are checked by the name they stand for.
    short_id = codec.short_topic_id("zz")
    short = codec.Subscribe(4, topic_id=short_id, topic_id_type=codec.TOPIC_SHORT, qos=1)
    replies, _ = send(registry, DEVICE, short)
    assert replies == [codec.Suback(short_id, 4, 0, codec.RC_NOT_SUPPORTED)]
    replies, events = send(registry, DEVICE, codec.Subscribe(5, "down/ok-1/#", qos=1))
    assert replies == [codec.Suback(0, 5, 1, codec.RC_ACCEPTED)]
    assert events == [gw.SubscribeUpstream("ok-1", "down/ok-1/#", 1)]
    assert registry.denied == {"subscribe": 2}


def test_register_needs_a_topic_the_client_may_publish_or_subscribe_to() -> None:
    registry = guarded_registry()
    connect(registry, DEVICE, "ok-1")
    replies, _ = send(registry, DEVICE, codec.Register(0, 1, "elsewhere/temp"))
    assert replies == [codec.Regack(0, 1, codec.RC_NOT_SUPPORTED)]
    replies, _ = send(registry, DEVICE, codec.Register(0, 2, "up/ok-1/temp"))
    assert isinstance(replies[0], codec.Regack) and replies[0].return_code == codec.RC_ACCEPTED
    replies, _ = send(registry, DEVICE, codec.Register(0, 3, "down/ok-1/cmd"))
    assert isinstance(replies[0], codec.Regack) and replies[0].return_code == codec.RC_ACCEPTED
    assert registry.denied == {"register": 1}


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_refused_publish_is_answered_puback_not_supported_and_not_sent_upstream(
    qos: int,
) -> None:
    registry = guarded_registry()
    connect(registry, DEVICE, "ok-1")
    replies, _ = send(registry, DEVICE, codec.Register(0, 1, "down/ok-1/cmd"))
    assert isinstance(replies[0], codec.Regack)
    topic_id = replies[0].topic_id
    msg_id = 7 if qos else 0
    replies, events = send(registry, DEVICE, codec.Publish(topic_id, b"x", qos, msg_id))
    assert events == []
    expected = [] if qos == 0 else [codec.Puback(topic_id, msg_id, codec.RC_NOT_SUPPORTED)]
    assert replies == expected
    assert registry.denied == {"publish": 1}
    assert registry.sessions[DEVICE].counters.denied == 1


def test_qos_minus_one_publish_is_checked_with_an_empty_client_id() -> None:
    config = gw.GatewayConfig(predefined_topics={"up/ok-1/t": 9}, authorize=allow_rules)
    registry = gw.GatewayRegistry(config)
    publish = codec.Publish(9, b"x", -1, 0, codec.TOPIC_PREDEFINED)
    replies, events = send(registry, DEVICE, publish)
    assert (replies, events) == ([], [])
    assert registry.denied == {"publish": 1}


def test_refused_will_topic_refuses_the_connect_and_will_updates() -> None:
    registry = guarded_registry()
    replies, _ = send(registry, DEVICE, codec.Connect("ok-1", 60, will=True))
    assert replies == [codec.WillTopicReq()]
    replies, events = send(registry, DEVICE, codec.WillTopic("up/ok-1/will", qos=1))
    assert replies == [codec.Connack(codec.RC_NOT_SUPPORTED)]
    assert not any(isinstance(e, gw.ClientConnected) for e in events)
    assert registry.sessions == {}
    replies, _ = send(registry, DEVICE, codec.Connect("ok-1", 60, will=True))
    send(registry, DEVICE, codec.WillTopic("will/ok-1", qos=1))
    replies, _ = send(registry, DEVICE, codec.WillMsg(b"bye"))
    assert replies == [codec.Connack(codec.RC_ACCEPTED)]
    replies, _ = send(registry, DEVICE, codec.WillTopicUpd("up/ok-1/x", qos=0))
    assert replies == [codec.WillTopicResp(codec.RC_NOT_SUPPORTED)]
    assert registry.sessions[DEVICE].will_topic == "will/ok-1"
    assert registry.denied == {"will": 2}


def test_without_a_hook_everything_is_allowed() -> None:
    registry = gw.GatewayRegistry(gw.GatewayConfig())
    connect(registry, DEVICE, "anyone")
    replies, _ = send(registry, DEVICE, codec.Register(0, 1, "any/topic"))
    assert isinstance(replies[0], codec.Regack) and replies[0].return_code == codec.RC_ACCEPTED
    assert registry.denied == {}


# ---- retained replay ----------------------------------------------------------------------------


def publishes_to(out: list[tuple[object, bytes]], address: object) -> list[codec.Publish]:
    messages = [codec.decode(datagram) for to, datagram in out if to == address]
    return [m for m in messages if isinstance(m, codec.Publish)]


def subscribed_registry() -> gw.GatewayRegistry:
    registry = gw.GatewayRegistry(gw.GatewayConfig(retained_replay_window_s=30.0))
    connect(registry, DEVICE, "first")
    replies, _ = send(registry, DEVICE, codec.Subscribe(1, "cfg/dev", qos=0))
    assert isinstance(replies[0], codec.Suback) and replies[0].return_code == codec.RC_ACCEPTED
    return registry


def test_retained_replay_goes_only_to_the_device_that_just_subscribed() -> None:
    registry = subscribed_registry()
    # The broker's replay for the first device's SUBSCRIBE.
    out, _ = registry.deliver_downstream("cfg/dev", b"v1", 0, True, 1.0)
    assert [p.data for p in publishes_to(out, DEVICE)] == [b"v1"]
    assert publishes_to(out, DEVICE)[0].retain
    # A second device subscribes later to the same filter: the gateway re-SUBSCRIBEs and the
    # broker replays the retained message again, with retain=1.
    connect(registry, OTHER, "second")
    send(registry, OTHER, codec.Subscribe(1, "cfg/dev", qos=0), now=2.0)
    out, _ = registry.deliver_downstream("cfg/dev", b"v1", 0, True, 2.1)
    assert publishes_to(out, DEVICE) == []  # already has it: no duplicate
    assert [p.data for p in publishes_to(out, OTHER)] == [b"v1"]
    # A live message (retain=0) goes to both.
    out, _ = registry.deliver_downstream("cfg/dev", b"v2", 0, False, 3.0)
    assert [p.data for p in publishes_to(out, DEVICE)] == [b"v2"]
    assert [p.data for p in publishes_to(out, OTHER)] == [b"v2"]
    assert not publishes_to(out, DEVICE)[0].retain


def test_retained_replay_after_a_live_message_or_the_window_is_not_delivered() -> None:
    registry = subscribed_registry()
    registry.deliver_downstream("cfg/dev", b"live", 0, False, 1.0)
    out, _ = registry.deliver_downstream("cfg/dev", b"live", 0, True, 2.0)
    assert publishes_to(out, DEVICE) == []  # it had the topic live since subscribing
    out, _ = registry.deliver_downstream("cfg/other", b"x", 0, True, 2.0)
    assert publishes_to(out, DEVICE) == []  # not a topic its filter matches
    send(registry, DEVICE, codec.Subscribe(2, "cfg/#", qos=0), now=3.0)
    out, _ = registry.deliver_downstream("cfg/new", b"n", 0, True, 40.0)
    assert publishes_to(out, DEVICE) == []  # the window (30 s) has passed


def delivered(
    registry: gw.GatewayRegistry, topic: str, payload: bytes, retain: bool, now: float
) -> dict[object, list[bytes]]:
    """Payloads each device gets for one broker message, answering the gateway's REGISTERs
    (wildcard subscriptions) as a device would."""
    out, _ = registry.deliver_downstream(topic, payload, 0, retain, now)
    got: dict[object, list[bytes]] = {}
    while out:
        address, datagram = out.pop(0)
        message = codec.decode(datagram)
        if isinstance(message, codec.Publish):
            got.setdefault(address, []).append(message.data)
        elif isinstance(message, codec.Register):
            regack = codec.Regack(message.topic_id, message.msg_id, codec.RC_ACCEPTED)
            more, _ = registry.receive(address, codec.encode(regack), now)
            out.extend(more)
    return got


def test_a_new_overlapping_subscription_replays_only_to_its_subscriber() -> None:
    registry = gw.GatewayRegistry(gw.GatewayConfig())
    connect(registry, DEVICE, "wide")
    send(registry, DEVICE, codec.Subscribe(1, "cfg/#", qos=0))
    # The replay for "wide".
    assert delivered(registry, "cfg/a", b"a", True, 0.5) == {DEVICE: [b"a"]}
    connect(registry, OTHER, "narrow")
    send(registry, OTHER, codec.Subscribe(1, "cfg/a", qos=0), now=1.0)
    assert delivered(registry, "cfg/a", b"a", True, 1.1) == {OTHER: [b"a"]}
    assert delivered(registry, "cfg/a", b"b", False, 1.2) == {DEVICE: [b"b"], OTHER: [b"b"]}


# ---- the Python/MicroPython client facing refusals ----------------------------------------------


@pytest.mark.parametrize("qos", [1, 2])
def test_client_reports_a_refused_publish_and_keeps_its_gateway(qos: int) -> None:
    # Topic "down/ok-1/cmd" may be subscribed to (so it registers) but not published to.
    net = Network(gw.GatewayRegistry(gw.GatewayConfig(t_retry_s=1.0, authorize=allow_rules)))
    net.add("dev", ClientSession("ok-1", keep_alive_s=30, t_retry_s=1.0, n_retry=3))
    net.call("dev", lambda c: c.connect(net.now))
    net.run_until(lambda: bool(net.events_of("dev", Connected)), 10)
    net.call("dev", lambda c: c.publish("down/ok-1/cmd", b"no", qos, net.now))
    net.call("dev", lambda c: c.publish("up/ok-1/t", b"yes", qos, net.now))
    net.run(10)
    rejected = net.events_of("dev", RequestRejected)
    assert [(r.kind, r.topic, r.return_code) for r in rejected] == [
        ("publish", "down/ok-1/cmd", codec.RC_NOT_SUPPORTED)
    ]
    assert net.events_of("dev", GatewayLost) == []
    assert [e.payload for e in net.gateway_events_of(gw.PublishUpstream)] == [b"yes"]
    assert net.registry.denied == {"publish": 1}
