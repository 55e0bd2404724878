"""Gateway configuration files, access rules and MQTT topic matching."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen.errors import ShoalInputError
from host_sdk.mqttsn.gateway_config import (
    filter_covers,
    load_gateway_config,
    parse_host_port,
    topic_matches,
)

pytestmark = pytest.mark.unit

FULL = """
[broker]
url = "mqtts://gw@broker.example:8884"
password_env = "SHOAL_TEST_BROKER_PASSWORD"

[gateway]
id = 7
udp = "0.0.0.0:1885"
serial = ["socket://127.0.0.1:4000", "/dev/ttyUSB0"]
retry_s = 2.5
max_clients = 50
advertise_interval_s = 60
advertise_to = "255.255.255.255:1885"
multicast = "225.1.1.1:1884"
multicast_interface = "127.0.0.1"

[predefined_topics]
1 = "fleet/announce"
42 = "fleet/time"

[[allow]]
client_id_prefix = "sensor-"
publish = ["fleet/%c/#", "fleet/announce"]
subscribe = ["fleet/%c/cmd/#", "fleet/broadcast"]

[[allow]]
client_id = "operator"
publish = ["#"]
subscribe = ["#"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_full_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_TEST_BROKER_PASSWORD", "pw")
    config = load_gateway_config(write(tmp_path, FULL))
    assert (config.broker.host, config.broker.port, config.broker.tls) == (
        "broker.example",
        8884,
        True,
    )
    assert (config.broker.username, config.broker.password) == ("gw", "pw")
    assert config.gateway_id == 7 and config.udp == ("0.0.0.0", 1885)
    assert config.serial == ("socket://127.0.0.1:4000", "/dev/ttyUSB0")
    assert config.retry_s == 2.5 and config.max_clients == 50 and config.max_retries == 3
    assert config.predefined_topics == ((1, "fleet/announce"), (42, "fleet/time"))
    assert config.advertise_to == ("255.255.255.255", 1885)
    assert config.advertise_interval_s == 60.0
    assert config.multicast == ("225.1.1.1", 1884) and config.multicast_interface == "127.0.0.1"


def test_authorize_hook_follows_the_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_TEST_BROKER_PASSWORD", "pw")
    config = load_gateway_config(write(tmp_path, FULL))
    assert config.authorize("sensor-1", "connect", "")
    assert not config.authorize("stranger", "connect", "")
    assert config.authorize("sensor-1", "publish", "fleet/sensor-1/t")
    assert config.authorize("sensor-1", "will", "fleet/sensor-1/status")
    assert not config.authorize("sensor-1", "will", "fleet/sensor-2/status")
    assert config.authorize("sensor-1", "subscribe", "fleet/sensor-1/cmd/#")
    assert not config.authorize("sensor-1", "subscribe", "fleet/#")
    with pytest.raises(ValueError, match="unknown action 'delete'"):
        config.authorize("sensor-1", "delete", "x")


def test_access_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_TEST_BROKER_PASSWORD", "pw")
    config = load_gateway_config(write(tmp_path, FULL))
    assert config.may_connect("sensor-1") and config.may_connect("operator")
    assert not config.may_connect("intruder") and not config.may_connect("operator2")
    assert config.may_publish("sensor-1", "fleet/sensor-1/temp")
    assert not config.may_publish("sensor-1", "fleet/sensor-2/temp")
    assert config.may_subscribe("sensor-1", "fleet/sensor-1/cmd/+")
    assert config.may_subscribe("sensor-1", "fleet/broadcast")
    assert not config.may_subscribe("sensor-1", "fleet/+/cmd/#")
    assert not config.may_subscribe("sensor-1", "#")
    assert config.may_subscribe("operator", "#")


def test_defaults_allow_everyone(tmp_path: Path) -> None:
    config = load_gateway_config(write(tmp_path, ""))
    assert config.broker.port == 1883 and config.udp == ("127.0.0.1", 1885)
    assert config.may_connect("anyone") and config.may_subscribe("anyone", "#")
    assert config.advertise_to is None  # no ADVERTISE unless asked for


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[gateway]\nid = 300", r"field 'gateway.id': expected 0..255"),
        ("[gateway]\nudp = '1885'", r"field 'gateway.udp': '1885' is not host:port"),
        ("[gateway]\nretry_s = -1", r"field 'gateway.retry_s': expected a positive number"),
        ("[gateway]\nmax_clients = true", r"field 'gateway.max_clients': expected an integer"),
        ("[gateway]\nportt = 3", r"field 'gateway.portt': unknown field \(accepted: id, udp"),
        ("[broker]\nurl = 'amqp://x'", r"field 'broker.url': .*scheme 'amqp' is not supported"),
        ("[broker]\npassword_env = 'SHOAL_NOT_SET_ANYWHERE'", r"SHOAL_NOT_SET_ANYWHERE is not set"),
        (
            "[predefined_topics]\n0 = 'a'",
            r"'predefined_topics.0': topic id must be an integer 1..65534",
        ),
        (
            "[predefined_topics]\n5 = 'a/#'",
            r"'predefined_topics.5': expected a topic name without wildcards",
        ),
        ("[[allow]]\npublish = ['#']", r"'allow\[0\].client_id': give exactly one of client_id"),
        ("[gateway\n", r"not a valid TOML file"),
        (
            "[gateway]\nadvertise_to = 'everyone'",
            r"field 'gateway.advertise_to': 'everyone' is not host:port",
        ),
        (
            "[gateway]\nadvertise_interval_s = 70000",
            r"field 'gateway.advertise_interval_s': expected at most 65535 s",
        ),
        (
            "[gateway]\nmulticast = '10.0.0.1:1884'",
            r"field 'gateway.multicast': 10.0.0.1 is not an IPv4 multicast group \(accepted: 224",
        ),
        (
            "[gateway]\nmulticast = '225.1.1.1'",
            r"field 'gateway.multicast': '225.1.1.1' is not host:port",
        ),
        (
            "[gateway]\nmulticast_interface = 'lo'",
            r"field 'gateway.multicast_interface': 'lo' is not an IPv4 address",
        ),
    ],
)
def test_bad_configs_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ShoalInputError, match=message) as caught:
        load_gateway_config(path)
    assert str(path) in str(caught.value)


def test_host_port() -> None:
    assert parse_host_port("127.0.0.1:1885", "x") == ("127.0.0.1", 1885)
    for bad in ("1885", ":1885", "h:0", "h:70000", "h:x"):
        with pytest.raises(ShoalInputError, match="is not host:port"):
            parse_host_port(bad, "x")


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("#", "$SYS/x", False),
        ("+/x", "$SYS/x", False),
        ("$SYS/#", "$SYS/x", True),
        ("a/+/c", "a//c", True),
        ("a/b", "a/b/", False),
    ],
)
def test_topic_matching_cases(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


LEVEL = st.sampled_from(["a", "b", "", "c1"])
TOPICS = st.lists(LEVEL, min_size=1, max_size=4).map("/".join)
FILTER_LEVEL = st.sampled_from(["a", "b", "", "+"])


@st.composite
def filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(FILTER_LEVEL, min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


def _regex_reference(topic_filter: str) -> re.Pattern[str]:
    """An independent matcher: `+` -> one level, a trailing `#` -> this level and below."""
    parts: list[str | None] = [
        None if level == "#" else "[^/]*" if level == "+" else re.escape(level)
        for level in topic_filter.split("/")
    ]
    if parts and parts[-1] is None:
        body = "/".join(p for p in parts[:-1] if p is not None)
        return re.compile(f"^(?:{body}(?:/.*)?)$" if body or len(parts) > 1 else "^.*$")
    return re.compile("^" + "/".join(p for p in parts if p is not None) + "$")


@given(filters(), TOPICS)
def test_matching_agrees_with_a_regex_reference(topic_filter: str, topic: str) -> None:
    assert topic_matches(topic_filter, topic) == bool(_regex_reference(topic_filter).match(topic))


@given(filters(), filters(), TOPICS)
def test_a_covered_filter_only_matches_covered_topics(
    pattern: str, topic_filter: str, topic: str
) -> None:
    if filter_covers(pattern, topic_filter) and topic_matches(topic_filter, topic):
        assert topic_matches(pattern, topic)
