"""The gateway's configuration: broker, listeners, predefined topics, limits and access control.

Responsible for reading a TOML file (and CLI overrides) into frozen settings, validating every
field with errors that name the file and the field, and answering access-control questions
(may this client id connect? publish to / subscribe to this topic?). It opens no sockets.

Example (every table optional except what the gateway needs to listen and reach a broker):

    [broker]
    url = "mqtt://127.0.0.1:1883"    # mqtts:// for TLS; user:password@ allowed in the URL
    password_env = "SHOAL_BROKER_PASSWORD"  # or password = "..."; username = "..."
    ca_file = "/etc/ssl/certs/my-ca.pem"
    max_inflight = 20                # QoS 1/2 messages unacknowledged by the broker at a time;
                                     # mosquitto silently drops beyond its max_inflight_messages

    [gateway]
    id = 1                           # GwId in ADVERTISE/GWINFO
    udp = "127.0.0.1:1885"           # where devices send MQTT-SN datagrams
    serial = ["socket://127.0.0.1:4000"]   # pyserial URLs; framing: COBS + CRC-16
    serial_listen = ["127.0.0.1:5600"]  # TCP listeners: each connection is one device's serial
                                     # line (same framing), e.g. QEMU -serial tcp:HOST:PORT;
                                     # port 0 picks a free port (printed when ready)
    advertise_interval_s = 900       # seconds between ADVERTISEs (and their Duration field)
    advertise_to = "255.255.255.255:1885"  # where ADVERTISE goes; omitted: no ADVERTISE
    multicast = "225.1.1.1:1884"     # join this group: answer SEARCHGW there, ADVERTISE there
    multicast_interface = "127.0.0.1"  # local address to join and send on (default 0.0.0.0)
    ack = "spool"                    # when a device's QoS 1/2 PUBLISH is acknowledged, below
    state_dir = "/var/lib/shoal/gw1" # spool + sessions (relative: to this file); default
                                     # $XDG_STATE_HOME/shoal/gateway-<broker client id>
    spool_max_bytes = 268435456      # a full spool stops acknowledging (nothing is dropped)
    retry_s = 10.0                   # T_RETRY for downstream QoS 1/2
    max_retries = 3                  # N_RETRY
    max_clients = 10000              # new CONNECTs beyond this get CONNACK congestion
    keepalive_grace = 1.5            # a client is lost after grace x its keep-alive
    sleep_buffer_messages = 100      # per sleeping client; oldest dropped (and counted) beyond

    [predefined_topics]
    1 = "fleet/announce"

Acknowledgement modes (`ack`): a device's QoS 1 PUBLISH gets its PUBACK, and a QoS 2 PUBLISH
its PUBREC, only when the message is safe:
- "spool" (default): its record in the gateway's spool is on disk (fdatasync, batched across
  devices). Nothing acknowledged is lost if the gateway is killed (even by a power cut) or the
  broker is away; the spool replays it to the broker in order; QoS 2 stays exactly-once.
- "broker": the broker acknowledged it (PUBACK for QoS 1, PUBREC for QoS 2); the spool is still
  written (without waiting for the disk) so a gateway crash neither loses nor duplicates QoS 2.
  From then on the broker's own persistence decides what survives a broker crash.
CleanSession=0 device sessions (subscriptions, topic ids, will, sleep buffer) are kept in
`state_dir` too and continue after a gateway restart, crash or clean stop.

    [[allow]]                        # no [[allow]] table: every client id may connect
    client_id_prefix = "sensor-"     # or client_id = "exact-id"
    publish = ["fleet/%c/#"]         # %c: the client's own id
    subscribe = ["fleet/%c/cmd/#", "fleet/broadcast"]
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegen.errors import ShoalInputError
from host_sdk.mqttsn.mqtt_bridge import BrokerSettings, parse_broker_url

MAX_TOPIC_ID = 0xFFFE  # 0x0000 and 0xFFFF are reserved by MQTT-SN
MAX_ADVERTISE_INTERVAL_S = 0xFFFF  # ADVERTISE carries the interval in 2 octets (seconds)
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
ACK_MODES = ("spool", "broker")


@dataclass(frozen=True)
class AccessRule:
    """Which client ids a rule covers and what they may publish and subscribe to.

    Topic patterns are MQTT filters in which `%c` stands for the client's own id."""

    client_id: str | None
    client_id_prefix: str | None
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def covers(self, client_id: str) -> bool:
        if self.client_id is not None:
            return client_id == self.client_id
        assert self.client_id_prefix is not None
        return client_id.startswith(self.client_id_prefix)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs; times in seconds."""

    broker: BrokerSettings
    gateway_id: int = 1
    udp: tuple[str, int] | None = ("127.0.0.1", 1885)
    serial: tuple[str, ...] = ()
    serial_listen: tuple[tuple[str, int], ...] = ()
    advertise_interval_s: float = 900.0
    advertise_to: tuple[str, int] | None = None
    multicast: tuple[str, int] | None = None
    multicast_interface: str = "0.0.0.0"
    ack: str = "spool"
    state_dir: str | None = None
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    broker_max_inflight: int = 20
    retry_s: float = 10.0
    max_retries: int = 3
    max_clients: int = 10000
    keepalive_grace: float = 1.5
    sleep_buffer_messages: int = 100
    predefined_topics: tuple[tuple[int, str], ...] = ()
    allow: tuple[AccessRule, ...] = field(default=())

    def resolved_state_dir(self) -> Path:
        """`state_dir`, or by default `$XDG_STATE_HOME/shoal/gateway-<broker client id>`
        (`~/.local/state/...` without XDG_STATE_HOME): one directory per gateway."""
        if self.state_dir is not None:
            return Path(self.state_dir)
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "shoal" / f"gateway-{self.broker.client_id}"

    def rule_for(self, client_id: str) -> AccessRule | None:
        """The first rule covering `client_id` (None: not allowed), or an allow-all rule when
        the configuration has no rules at all."""
        if not self.allow:
            return AccessRule(None, "", ("#",), ("#",))
        for rule in self.allow:
            if rule.covers(client_id):
                return rule
        return None

    def authorize(self, client_id: str, action: str, topic: str) -> bool:
        """The session layer's access-control hook: action "connect" (topic ""),
        "publish" or "will" (a topic name) or "subscribe" (a topic filter)."""
        if action == "connect":
            return self.may_connect(client_id)
        if action == "subscribe":
            return self.may_subscribe(client_id, topic)
        if action in ("publish", "will"):
            return self.may_publish(client_id, topic)
        raise ValueError(
            f"access control: unknown action {action!r} (accepted: connect, "
            "publish, subscribe, will)"
        )

    def may_connect(self, client_id: str) -> bool:
        return self.rule_for(client_id) is not None

    def may_publish(self, client_id: str, topic: str) -> bool:
        rule = self.rule_for(client_id)
        return rule is not None and any(
            topic_matches(pattern.replace("%c", client_id), topic) for pattern in rule.publish
        )

    def may_subscribe(self, client_id: str, topic_filter: str) -> bool:
        """True when every topic `topic_filter` can match is allowed by one pattern."""
        rule = self.rule_for(client_id)
        return rule is not None and any(
            filter_covers(pattern.replace("%c", client_id), topic_filter)
            for pattern in rule.subscribe
        )


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching of a concrete `topic` against `topic_filter` (`+` one level, `#` the rest;
    topics starting with `$` are not matched by a leading wildcard)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


def filter_covers(pattern: str, topic_filter: str) -> bool:
    """True when every topic matched by `topic_filter` is also matched by `pattern`."""
    pattern_levels = pattern.split("/")
    filter_levels = topic_filter.split("/")
    for index, level in enumerate(pattern_levels):
        if level == "#":
            return True
        if index >= len(filter_levels):
            return False
        wanted = filter_levels[index]
        if wanted == "#":
            return False
        if level == "+":
            continue
        if wanted == "+" or wanted != level:
            return False
    return len(pattern_levels) == len(filter_levels)


def parse_host_port(text: str, where: str) -> tuple[str, int]:
    """`host:port` -> (host, port), with an error naming `where` it came from."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ShoalInputError(f"{where}: {text!r} is not host:port (e.g. 127.0.0.1:1885)")
    return host, int(port_text)


def parse_listen_address(text: str, where: str) -> tuple[str, int]:
    """`host:port` of a listener -> (host, port); port 0 asks for any free port."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ShoalInputError(
            f"{where}: {text!r} is not HOST:PORT (accepted: a local address and a port "
            "0..65535, 0 picks a free one, e.g. 127.0.0.1:5600)"
        )
    return host, int(port_text)


def parse_ipv4(text: str, where: str) -> str:
    """A dotted IPv4 address, with an error naming `where` it came from."""
    try:
        socket.inet_aton(text)
    except OSError:
        raise ShoalInputError(
            f"{where}: {text!r} is not an IPv4 address (e.g. 127.0.0.1)"
        ) from None
    if text.count(".") != 3:
        raise ShoalInputError(f"{where}: {text!r} is not a dotted IPv4 address (e.g. 127.0.0.1)")
    return text


def parse_multicast_group(text: str, where: str) -> tuple[str, int]:
    """`group:port` with an IPv4 multicast group (224.0.0.0/4) -> (group, port)."""
    group, port = parse_host_port(text, where)
    parse_ipv4(group, where)
    if not 224 <= int(group.split(".")[0]) <= 239:
        raise ShoalInputError(
            f"{where}: {group} is not an IPv4 multicast group (accepted: 224.0.0.0 to "
            "239.255.255.255, e.g. 225.1.1.1:1884)"
        )
    return group, port


class _Reader:
    def __init__(self, path: Path, section: str, data: dict[str, Any], known: tuple[str, ...]):
        self.path, self.section, self.data = path, section, data
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise self.error(unknown[0], f"unknown field (accepted: {', '.join(known)})")

    def error(self, key: str, problem: str) -> ShoalInputError:
        return ShoalInputError(f"{self.path}: field '{self.section}{key}': {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind is not bool:
            raise self.error(key, f"expected {_kind_name(kind)}, got {value!r}")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {_kind_name(kind)}, got {value!r}")
        return value

    def positive(self, key: str, default: float, *, integer: bool = False) -> Any:
        value = self.get(key, int if integer else (int, float), default)
        if value <= 0:
            raise self.error(key, f"expected a positive number, got {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        if not all(isinstance(item, str) and item for item in value):
            raise self.error(key, "expected a list of non-empty strings")
        return tuple(value)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def load_gateway_config(path: Path) -> GatewayConfig:
    """Read and validate a gateway TOML file."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ShoalInputError(f"{path}: cannot read gateway config: {exc.strerror}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ShoalInputError(f"{path}: not a valid TOML file: {exc}") from exc
    top = _Reader(path, "", document, ("broker", "gateway", "predefined_topics", "allow"))
    broker_table = _Reader(
        path,
        "broker.",
        top.get("broker", dict, {}),
        ("url", "username", "password", "password_env", "ca_file", "client_id", "max_inflight"),
    )
    url = broker_table.get("url", str, "mqtt://127.0.0.1:1883")
    try:
        broker = parse_broker_url(
            url, client_id=broker_table.get("client_id", str, "shoal-gateway")
        )
    except ShoalInputError as exc:
        raise broker_table.error("url", str(exc)) from exc
    password = broker_table.get("password", str, broker.password)
    env_name = broker_table.get("password_env", str, None)
    if env_name is not None:
        if env_name not in os.environ:
            raise broker_table.error("password_env", f"environment variable {env_name} is not set")
        password = os.environ[env_name]
    broker = BrokerSettings(
        host=broker.host,
        port=broker.port,
        username=broker_table.get("username", str, broker.username),
        password=password,
        tls=broker.tls or "ca_file" in broker_table.data,
        ca_file=broker_table.get("ca_file", str, None),
        client_id=broker.client_id,
    )
    gateway = _Reader(
        path,
        "gateway.",
        top.get("gateway", dict, {}),
        (
            "id",
            "udp",
            "serial",
            "serial_listen",
            "advertise_interval_s",
            "advertise_to",
            "multicast",
            "multicast_interface",
            "ack",
            "state_dir",
            "spool_max_bytes",
            "retry_s",
            "max_retries",
            "max_clients",
            "keepalive_grace",
            "sleep_buffer_messages",
        ),
    )
    gateway_id = gateway.get("id", int, 1)
    if not 0 <= gateway_id <= 255:
        raise gateway.error("id", f"expected 0..255 (one octet), got {gateway_id}")
    udp_text = gateway.get("udp", str, "127.0.0.1:1885")
    advertise_text = gateway.get("advertise_to", str, None)
    advertise_interval_s = float(gateway.positive("advertise_interval_s", 900.0))
    if advertise_interval_s > MAX_ADVERTISE_INTERVAL_S:
        raise gateway.error(
            "advertise_interval_s",
            f"expected at most {MAX_ADVERTISE_INTERVAL_S} s (ADVERTISE's 2-octet Duration), "
            f"got {advertise_interval_s:g}",
        )
    multicast_text = gateway.get("multicast", str, None)
    multicast_interface = gateway.get("multicast_interface", str, "0.0.0.0")
    multicast = (
        parse_multicast_group(multicast_text, f"{path}: field 'gateway.multicast'")
        if multicast_text
        else None
    )
    parse_ipv4(multicast_interface, f"{path}: field 'gateway.multicast_interface'")
    ack = gateway.get("ack", str, "spool")
    if ack not in ACK_MODES:
        raise gateway.error("ack", f"{ack!r} is not an ack mode (accepted: spool, broker)")
    state_dir = gateway.get("state_dir", str, None)
    if state_dir is not None:
        state_dir = str((path.parent / state_dir).resolve())  # relative to the config file
    return GatewayConfig(
        broker=broker,
        gateway_id=gateway_id,
        udp=parse_host_port(udp_text, f"{path}: field 'gateway.udp'") if udp_text else None,
        serial=gateway.strings("serial"),
        serial_listen=tuple(
            parse_listen_address(text, f"{path}: field 'gateway.serial_listen'")
            for text in gateway.strings("serial_listen")
        ),
        advertise_interval_s=advertise_interval_s,
        advertise_to=(
            parse_host_port(advertise_text, f"{path}: field 'gateway.advertise_to'")
            if advertise_text
            else None
        ),
        multicast=multicast,
        multicast_interface=multicast_interface,
        ack=ack,
        broker_max_inflight=broker_table.positive("max_inflight", 20, integer=True),
        state_dir=state_dir,
        spool_max_bytes=gateway.positive("spool_max_bytes", DEFAULT_SPOOL_MAX_BYTES, integer=True),
        retry_s=float(gateway.positive("retry_s", 10.0)),
        max_retries=gateway.positive("max_retries", 3, integer=True),
        max_clients=gateway.positive("max_clients", 10000, integer=True),
        keepalive_grace=float(gateway.positive("keepalive_grace", 1.5)),
        sleep_buffer_messages=gateway.positive("sleep_buffer_messages", 100, integer=True),
        predefined_topics=_predefined(path, top.get("predefined_topics", dict, {})),
        allow=tuple(
            _rule(path, index, item) for index, item in enumerate(top.get("allow", list, []))
        ),
    )


def _predefined(path: Path, table: dict[str, Any]) -> tuple[tuple[int, str], ...]:
    entries = []
    for key, topic in table.items():
        where = f"{path}: field 'predefined_topics.{key}'"
        if not key.isdigit() or not 1 <= int(key) <= MAX_TOPIC_ID:
            raise ShoalInputError(f"{where}: topic id must be an integer 1..{MAX_TOPIC_ID}")
        if not isinstance(topic, str) or not topic or "+" in topic or "#" in topic:
            raise ShoalInputError(f"{where}: expected a topic name without wildcards")
        entries.append((int(key), topic))
    return tuple(sorted(entries))


def _rule(path: Path, index: int, item: Any) -> AccessRule:
    if not isinstance(item, dict):
        raise ShoalInputError(f"{path}: field 'allow[{index}]': expected a table ([[allow]])")
    reader = _Reader(
        path, f"allow[{index}].", item, ("client_id", "client_id_prefix", "publish", "subscribe")
    )
    client_id = reader.get("client_id", str, None)
    prefix = reader.get("client_id_prefix", str, None)
    if (client_id is None) == (prefix is None):
        raise reader.error("client_id", "give exactly one of client_id or client_id_prefix")
    return AccessRule(client_id, prefix, reader.strings("publish"), reader.strings("subscribe"))
