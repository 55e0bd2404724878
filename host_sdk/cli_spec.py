"""`shoal spec check SPEC`: validate a role spec or a fleet file and summarise its roles.

Thin: parses arguments, calls `codegen.loaders.role_loader.load_fleet` (a plain role spec is a
fleet of one) and prints the roles as text or JSON. Writes nothing. Exit codes follow
`host_sdk.cli`: 0 valid, 2 bad usage or bad input (the error names file:line, the key, the
problem and what is accepted).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from codegen.ir.role import RoleSpec
from codegen.loaders.role_loader import load_fleet

EXIT_OK = 0


def configure_spec(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="spec_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate a role spec or fleet file",
        description="Validate a role spec (or a fleet file) and print its roles.",
    )
    check.add_argument("spec", type=Path, help="a role spec or fleet file (YAML)")
    check.add_argument("--json", action="store_true", help="print JSON for scripts")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def role_to_json(role: RoleSpec) -> dict[str, Any]:
    """The role as plain JSON data (paths as text; each sensor's driver named)."""
    data: dict[str, Any] = _jsonable(dataclasses.asdict(role))
    for sensor, raw in zip(role.sensors, data["sensors"], strict=True):
        raw["driver"] = {sensor.driver_name: raw["driver"]}
    return data


def format_role(role: RoleSpec) -> str:
    """A few lines per role: identity, sensors, models, triggers, publishes, presence."""
    gateway = (
        f"discover on {role.gateway.group}:{role.gateway.group_port}"
        if role.gateway.discover
        else f"{role.gateway.host}:{role.gateway.port}"
    )
    lines = [
        f"role {role.name} ({role.role}) on {role.board}; client id {role.client_id};"
        f" gateway {gateway}",
    ]
    for s in role.sensors:
        lines.append(
            f"  sensor    {s.name}: {s.kind}, {s.rate_hz:g} Hz, shape {list(s.shape)},"
            f" {s.driver_name}"
        )
    for m in role.models:
        post = m.postprocess
        result = (
            f"anomaly {post.anomaly.metric} > {post.anomaly.threshold:g}"
            if post.anomaly
            else f"argmax {list(post.labels)}"
            if post.labels
            else "raw output"
        )
        lines.append(
            f"  model     {m.name}: {m.path.name} input {list(m.input_shape)} {m.input_dtype}"
            f" from {m.input} (window {m.preprocess.window}, stride {m.preprocess.stride}),"
            f" {result}"
        )
    for t in role.triggers:
        detail = (
            f"every {t.period_ms} ms"
            if t.kind == "periodic"
            else f"{t.source} {'above ' + format(t.above, 'g') if t.above is not None else ''}"
            f"{'below ' + format(t.below, 'g') if t.below is not None else ''}"
            if t.kind == "on_threshold"
            else "infer command"
        )
        lines.append(f"  trigger   {t.kind}: {detail}, runs {', '.join(t.run) or '(nothing)'}")
    for sub in role.subscribes:
        lines.append(f"  subscribe {sub.name}: {sub.topic} qos {sub.qos}")
    for p in role.publishes:
        lines.append(
            f"  publish   {p.name}: {p.topic} from {p.source}, qos {p.qos},"
            f" {p.payload}{', retained' if p.retain else ''}"
        )
    presence = role.presence
    lines.append(
        f"  commands  {', '.join(role.commands)}; heartbeat {presence.heartbeat_s:g} s,"
        f" birth {'on' if presence.birth else 'off'}, will {'on' if presence.will else 'off'}"
        + (f"; sleeps {role.duty_cycle.sleep_s:g} s" if role.duty_cycle else "")
    )
    return "\n".join(lines)


def run_spec(args: argparse.Namespace) -> int:
    roles = load_fleet(args.spec)
    if args.json:
        print(json.dumps([role_to_json(role) for role in roles], indent=2, sort_keys=True))
    else:
        print(f"{args.spec}: valid ({len(roles)} role{'s' if len(roles) != 1 else ''})")
        for role in roles:
            print(format_role(role))
    return EXIT_OK
