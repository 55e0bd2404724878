"""ClientSession across a lost session (sans-IO, in memory): re-SUBSCRIBE after a clean
reconnect but not for a persistent session, the interrupted PUBLISH resent with its message id
and DUP, a QoS 2 PUBLISH that had its PUBREC finished with PUBREL only, and DISCONNECT held
(bounded) until the PUBREL of a received QoS 2 message has been answered with PUBCOMP."""

from __future__ import annotations

from typing import Any

import pytest
from mqttsn_harness import Network

from host_sdk.mqttsn import codec
from host_sdk.mqttsn import gateway_session as gw
from host_sdk.mqttsn.client_session import (
    ClientSession,
    Connected,
    Disconnected,
    MessageReceived,
    PublishDone,
    Subscribed,
)

pytestmark = pytest.mark.unit


def network(**client_options: Any) -> Network:
    net = Network(gw.GatewayRegistry(gw.GatewayConfig(t_retry_s=1.0, n_retry=10)))
    options: dict[str, Any] = {"keep_alive_s": 5, "t_retry_s": 1.0, "n_retry": 10}
    options.update(client_options)
    net.add("dev1", ClientSession("dev1", **options))
    net.call("dev1", lambda c: c.connect(net.now))
    net.run_until(lambda: bool(net.events_of("dev1", Connected)), 10)
    return net


def restart_gateway_and_reconnect(net: Network) -> None:
    """A gateway that forgot every session answers the next PINGREQ with DISCONNECT."""
    net.registry = gw.GatewayRegistry(gw.GatewayConfig(t_retry_s=1.0, n_retry=10))
    dropped = [e for e in net.client_events["dev1"] if isinstance(e, Disconnected)]
    net.run_until(lambda: len(net.events_of("dev1", Disconnected)) > len(dropped), 20)
    assert net.events_of("dev1", Disconnected)[-1] == Disconnected(by_gateway=True)
    connected = len(net.events_of("dev1", Connected))
    net.call("dev1", lambda c: c.connect(net.now))
    net.run_until(lambda: len(net.events_of("dev1", Connected)) > connected, 10)


def test_clean_session_subscribes_again_after_the_gateway_forgot_it() -> None:
    net = network()
    net.call("dev1", lambda c: c.subscribe("cmd/#", 1, net.now))
    net.call("dev1", lambda c: c.subscribe("old/x", 0, net.now))
    net.run(1)
    net.call("dev1", lambda c: c.unsubscribe("old/x", net.now))
    net.run(1)
    restart_gateway_and_reconnect(net)
    net.run(1)
    subscribed = [e.topic for e in net.events_of("dev1", Subscribed)]
    assert subscribed == ["cmd/#", "old/x", "cmd/#"]  # unsubscribed filters stay gone
    net.deliver("cmd/led", b"on", 1)
    net.run(1)
    assert net.events_of("dev1", MessageReceived) == [MessageReceived("cmd/led", b"on", 1, False)]


def test_persistent_session_does_not_subscribe_again() -> None:
    client = ClientSession("dev1", clean_session=False, t_retry_s=1.0)
    client.connect(0.0)
    client.receive(codec.encode(codec.Connack(0)), 0.1)
    out, _ = client.subscribe("cmd/#", 1, 0.2)
    sub = codec.decode(out[0])
    client.receive(codec.encode(codec.Suback(0, sub.msg_id, 1, 0)), 0.3)
    _, events = client.receive(codec.encode(codec.Disconnect()), 1.0)
    assert events == [Disconnected(by_gateway=True)]
    out, _ = client.connect(2.0)
    assert [type(codec.decode(d)) for d in out] == [codec.Connect]
    out, events = client.receive(codec.encode(codec.Connack(0)), 2.1)
    assert events == [Connected()] and out == []  # the gateway kept the subscription
    assert client.subscriptions() == {"cmd/#": 1}


def test_interrupted_publish_is_resent_with_its_msg_id_and_dup() -> None:
    client = ClientSession("dev1", predefined_topics={"up": 7}, t_retry_s=1.0)
    client.connect(0.0)
    client.receive(codec.encode(codec.Connack(0)), 0.1)
    out, _ = client.publish("up", b"v", 1, 0.2)
    first = codec.decode(out[0])
    assert isinstance(first, codec.Publish) and not first.dup
    client.receive(codec.encode(codec.Disconnect()), 0.3)  # the gateway dropped us
    client.connect(1.0)
    out, _ = client.receive(codec.encode(codec.Connack(0)), 1.1)
    again = codec.decode(out[0])
    assert isinstance(again, codec.Publish)
    assert (again.msg_id, again.dup, again.data) == (first.msg_id, True, b"v")
    _, events = client.receive(codec.encode(codec.Puback(7, first.msg_id, 0)), 1.2)
    assert events == [PublishDone("up", first.msg_id, 1)]


def test_qos2_publish_after_pubrec_is_finished_with_pubrel_only() -> None:
    client = ClientSession("dev1", t_retry_s=1.0)
    client.connect(0.0)
    client.receive(codec.encode(codec.Connack(0)), 0.1)
    out, _ = client.publish("up", b"once", 2, 0.2)  # "up": a short topic name, no REGISTER
    publish = codec.decode(out[0])
    out, _ = client.receive(codec.encode(codec.Pubrec(publish.msg_id)), 0.3)
    assert [codec.decode(d) for d in out] == [codec.Pubrel(publish.msg_id)]
    client.receive(codec.encode(codec.Disconnect()), 0.4)  # lost before PUBCOMP
    client.connect(1.0)
    out, _ = client.receive(codec.encode(codec.Connack(0)), 1.1)
    # The gateway has the message (it sent PUBREC): a second PUBLISH could duplicate it.
    assert [codec.decode(d) for d in out] == [codec.Pubrel(publish.msg_id)]
    _, events = client.receive(codec.encode(codec.Pubcomp(publish.msg_id)), 1.2)
    assert events == [PublishDone("up", publish.msg_id, 2)]
    assert client.pending() == 0


def test_disconnect_waits_for_the_pubrel_of_a_received_qos2_message() -> None:
    client = ClientSession("dev1", predefined_topics={"cmd": 5}, t_retry_s=1.0, n_retry=2)
    client.connect(0.0)
    client.receive(codec.encode(codec.Connack(0)), 0.1)
    out, _ = client.receive(codec.encode(codec.Publish(5, b"x", 2, 9, codec.TOPIC_PREDEFINED)), 1)
    assert [codec.decode(d) for d in out] == [codec.Pubrec(9)]
    out, _ = client.disconnect(1.1)
    assert out == [] and client.pending() == 2  # DISCONNECT queued, PUBREL awaited
    out, _ = client.receive(codec.encode(codec.Pubrel(9)), 1.5)
    assert [codec.decode(d) for d in out] == [codec.Pubcomp(9), codec.Disconnect()]
    _, events = client.receive(codec.encode(codec.Disconnect()), 1.6)
    assert events == [Disconnected(by_gateway=False)]


def test_disconnect_goes_anyway_when_the_pubrel_never_comes() -> None:
    client = ClientSession("dev1", predefined_topics={"cmd": 5}, t_retry_s=1.0, n_retry=2)
    client.connect(0.0)
    client.receive(codec.encode(codec.Connack(0)), 0.1)
    client.receive(codec.encode(codec.Publish(5, b"x", 2, 9, codec.TOPIC_PREDEFINED)), 1.0)
    client.disconnect(2.0)
    assert client.next_deadline() == pytest.approx(2.0 + 1.0 * 3)
    out, _ = client.tick(4.9)
    assert out == []
    out, _ = client.tick(5.0)
    assert [codec.decode(d) for d in out] == [codec.Disconnect()]
