"""`shoal gateway`: run the MQTT-SN gateway from flags and/or a TOML config file.

Thin: builds a `GatewayConfig` (flags override the file) and calls
`host_sdk.mqttsn.gateway.run_gateway`, which serves until SIGINT/SIGTERM. paho and pyserial are
imported only when this command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from codegen.errors import ShoalInputError

if TYPE_CHECKING:
    from host_sdk.mqttsn.gateway_config import GatewayConfig

EXIT_OK = 0


def configure_gateway(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="mqtt://[user:password@]host:port or mqtts://... "
        "(default: the config file's, else mqtt://127.0.0.1:1883)",
    )
    parser.add_argument(
        "--udp",
        metavar="HOST:PORT",
        help="UDP listener (default 127.0.0.1:1885; port 0 picks one; none: no UDP)",
    )
    parser.add_argument(
        "--serial",
        metavar="URL",
        action="append",
        help="pyserial URL of one device link, e.g. socket://127.0.0.1:4000; repeatable "
        "(replaces the config file's list)",
    )
    parser.add_argument(
        "--serial-listen",
        metavar="HOST:PORT",
        action="append",
        help="listen on TCP there: every accepted connection is one device's serial line "
        "(e.g. QEMU -serial tcp:HOST:PORT,nodelay=on); port 0 picks one (printed in the ready "
        "line); repeatable (replaces the config file's list)",
    )
    parser.add_argument(
        "--advertise-to",
        metavar="HOST:PORT",
        help="send ADVERTISE there every advertise_interval_s (e.g. 255.255.255.255:1885)",
    )
    parser.add_argument(
        "--multicast",
        metavar="GROUP:PORT",
        help="join this IPv4 multicast group: answer SEARCHGW and send ADVERTISE there "
        "(e.g. 225.1.1.1:1884)",
    )
    parser.add_argument(
        "--multicast-interface",
        metavar="ADDR",
        help="address of the local interface for the multicast group (default 0.0.0.0; "
        "127.0.0.1 for loopback)",
    )
    parser.add_argument(
        "--ack",
        choices=("spool", "broker"),
        help="when a device's QoS 1/2 PUBLISH is acknowledged: spool (default: on disk in the "
        "gateway's spool) or broker (the broker acknowledged it)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="spool and stored sessions (default: the config file's, else "
        "$XDG_STATE_HOME/shoal/gateway-<broker client id>)",
    )
    parser.add_argument("--config", metavar="FILE", help="gateway TOML file; flags override it")
    parser.add_argument(
        "--stats-interval",
        metavar="S",
        type=float,
        default=10.0,
        help="seconds between statistics publications (default 10; 0 disables)",
    )
    parser.add_argument(
        "--json-stats", action="store_true", help="also print each statistics snapshot as JSON"
    )


def _parse_udp_flag(text: str) -> tuple[str, int] | None:
    from host_sdk.mqttsn.gateway_config import parse_host_port

    if text == "none":
        return None
    host, sep, port = text.rpartition(":")
    if sep and host and port == "0":
        return host, 0  # tests and scripts let the kernel pick the port
    return parse_host_port(text, "--udp")


def _gateway_config_from_args(args: argparse.Namespace) -> GatewayConfig:
    # Imported here: paho and pyserial load only for the command that needs them.
    from pathlib import Path

    from host_sdk.mqttsn.gateway_config import (
        GatewayConfig,
        load_gateway_config,
        parse_host_port,
        parse_ipv4,
        parse_listen_address,
        parse_multicast_group,
    )
    from host_sdk.mqttsn.mqtt_bridge import parse_broker_url

    config = (
        load_gateway_config(Path(args.config))
        if args.config
        else GatewayConfig(broker=parse_broker_url("mqtt://127.0.0.1:1883"))
    )
    changes: dict[str, Any] = {}
    if args.broker is not None:
        changes["broker"] = parse_broker_url(args.broker, client_id=config.broker.client_id)
    if args.udp is not None:
        changes["udp"] = _parse_udp_flag(args.udp)
    if args.serial is not None:
        changes["serial"] = tuple(args.serial)
    if args.serial_listen is not None:
        changes["serial_listen"] = tuple(
            parse_listen_address(text, "--serial-listen") for text in args.serial_listen
        )
    if args.advertise_to is not None:
        changes["advertise_to"] = parse_host_port(args.advertise_to, "--advertise-to")
    if args.ack is not None:
        changes["ack"] = args.ack
    if args.state_dir is not None:
        changes["state_dir"] = str(Path(args.state_dir).resolve())
    if args.multicast is not None:
        changes["multicast"] = parse_multicast_group(args.multicast, "--multicast")
    if args.multicast_interface is not None:
        changes["multicast_interface"] = parse_ipv4(
            args.multicast_interface, "--multicast-interface"
        )
    if args.stats_interval < 0:
        raise ShoalInputError(
            f"--stats-interval: {args.stats_interval} is negative (give seconds, 0 disables)"
        )
    config = dataclasses.replace(config, **changes)
    if config.udp is None and not config.serial and not config.serial_listen:
        raise ShoalInputError(
            "gateway: no listener (give --udp HOST:PORT, --serial URL or --serial-listen HOST:PORT)"
        )
    return config


def run_gateway_command(args: argparse.Namespace) -> int:
    from host_sdk.mqttsn.gateway import print_ready, run_gateway

    config = _gateway_config_from_args(args)

    def print_stats(stats: dict[str, Any]) -> None:
        print(json.dumps(stats, sort_keys=True), flush=True)

    run_gateway(
        config,
        stats_interval_s=args.stats_interval or None,
        on_ready=print_ready,
        on_stats=print_stats if args.json_stats else None,
    )
    return EXIT_OK
