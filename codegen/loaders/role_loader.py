"""Read agent role specs (YAML) into `codegen.ir.role.RoleSpec`, with errors at file:line.

Responsible for: parsing a role spec or a fleet file with line numbers kept (ruamel.yaml
round-trip loader), validating it against the JSON Schema `codegen/schemas/role_spec.schema.json`
(draft 2020-12, the `jsonschema` package), then the semantic checks a schema cannot express
(model files exist and are int8 TFLite models whose input matches window x sensor shape, label
counts, the board exists and offers the sensor drivers, references between sections, topic
templates, duplicate names), and building the frozen IR.

Must not: write anything, generate code, or print. Every problem is one `ShoalInputError` line
``FILE:LINE: KEY.PATH: problem (accepted ...)``, e.g.
``roles/kws.yaml:14: models[0].postprocess.argmax.labels: 3 labels for a model with 4 outputs
(give one label per output)``. The format is documented in docs/role_spec.md.

A role spec is one mapping (name, role, board, sensors, models, triggers, publishes, subscribes,
commands, presence, duty_cycle, gateway, client_id). A fleet file is a mapping with `roles:` (a
list of role mappings) and optional `defaults:`; defaults are deep-merged into every role
(mappings merge key by key, the role's value wins; lists and scalars are replaced whole), and an
error in a merged value points at the line it came from. Relative paths (models, replay files)
are relative to the file that holds them.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from codegen.ir.model import Model
from codegen.ir.role import (
    CLIENT_ID_PLACEHOLDERS,
    TOPIC_PLACEHOLDERS,
    AdcDriver,
    Aggregate,
    Anomaly,
    Driver,
    DutyCycle,
    Gateway,
    I2cDriver,
    Postprocess,
    Preprocess,
    Presence,
    Publish,
    RoleModel,
    RoleSpec,
    Sensor,
    SimulatedDriver,
    Subscription,
    Trigger,
    UartLinesDriver,
)
from codegen.loaders.board_loader import board_paths, get_board

SCHEMA_RESOURCE = "role_spec.schema.json"
DEFAULT_CLIENT_ID = "shoal-{name}"
DEFAULT_DISCOVERY_GROUP = "225.1.1.1"
DEFAULT_DISCOVERY_PORT = 1884
# Topics the agent protocol owns (birth, will, hb, cmd, resp, ...): a role never publishes there.
PROTOCOL_TOPIC_PREFIX = "shoal/v1/"
MAX_CLIENT_ID_BYTES = 23  # MQTT-SN v1.2 ClientId
UID_EXAMPLE = "0123abcd"  # {uid}: 8 hex digits of the device's unique id


def render_client_id(
    template: str, name: str, role: str, board: str, uid: str = UID_EXAMPLE
) -> str:
    """The client id a device of this role uses (`uid`: its 8 hex digit unique id)."""
    return template.format(name=name, role=role, board=board, uid=uid)


def _check_replay(resolved: Path, shown: str, shape: list[int], at: KeyPath, where: _Where) -> None:
    """A replay file holds one sample per line: exactly the sensor's element count of numbers,
    separated by commas or spaces; blank lines and lines starting with # are skipped."""
    size = 1
    for dim in shape:
        size *= dim
    try:
        text = resolved.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise where.error(at, f"cannot read replay file {shown}: {exc}") from exc
    samples = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.replace(",", " ").split()
        try:
            values = [float(field) for field in fields]
        except ValueError:
            values = []
        if len(values) != size or not all(math.isfinite(v) for v in values):
            raise where.error(
                at,
                f"replay file {shown} line {number}: {line.strip()[:40]!r} is not {size}"
                f" number(s) (one sample of shape {shape} per line)",
            )
        samples += 1
    if samples == 0:
        raise where.error(at, f"replay file {shown} holds no samples (one per line)")


KeyPath = tuple[str | int, ...]


@cache
def role_schema() -> dict[str, Any]:
    """The role spec JSON Schema (shipped in the package as codegen/schemas/)."""
    text = resources.files("codegen.schemas").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def key_path(path: KeyPath) -> str:
    """('models', 0, 'path') -> 'models[0].path'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


@dataclass(frozen=True)
class _Origin:
    line: int
    from_defaults: bool = False


class _Where:
    """Turns a key path of the (merged) document into `file:line: key.path` for messages."""

    def __init__(self, file: Path, lines: dict[KeyPath, _Origin], prefix: KeyPath = ()) -> None:
        self.file = file
        self.lines = lines
        self.prefix = prefix

    def origin(self, path: KeyPath) -> _Origin:
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return _Origin(1)

    def error(self, path: KeyPath, problem: str) -> ShoalInputError:
        origin = self.origin(path)
        shown = key_path(self.prefix + tuple(path))
        if origin.from_defaults:
            shown += " (from defaults)"
        return ShoalInputError(f"{self.file}:{origin.line}: {shown}: {problem}")


# ---------------------------------------------------------------- YAML with line numbers


def _read_yaml(path: Path) -> tuple[Any, dict[KeyPath, _Origin]]:
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise ShoalInputError(f"{path}: not UTF-8 text (role specs are YAML)") from exc
    except OSError as exc:
        raise ShoalInputError(f"{path}: cannot read role spec: {exc.strerror}") from exc
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        problem = problem.split("\n")[0]
        raise ShoalInputError(f"{path}:{line}: not valid YAML: {problem}") from exc
    except YAMLError as exc:
        first = str(exc).strip().split("\n")[0]
        raise ShoalInputError(f"{path}: not valid YAML: {first}") from exc
    lines: dict[KeyPath, _Origin] = {(): _Origin(1)}
    return _plain(document, (), lines, path), lines


def _key_line(node: CommentedMap, key: str, fallback: int) -> int:
    """1-based line of `key`; a key brought in by a YAML merge (<<: *anchor) has none of its
    own, so it gets the line of the mapping (or of its parent key)."""
    try:
        position = node.lc.key(key)
    except KeyError:
        position = None
    if position is not None:
        return int(position[0]) + 1
    return node.lc.line + 1 if node.lc.line is not None else fallback


def _plain(node: Any, path: KeyPath, lines: dict[KeyPath, _Origin], file: Path) -> Any:
    """ruamel's round-trip tree -> plain dict/list/scalars, recording each key's/item's line."""
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            line = _key_line(node, key, lines.get(path, _Origin(1)).line)
            if not isinstance(key, str):
                where = key_path(path)
                raise ShoalInputError(f"{file}:{line}: {where}: keys must be text, got {key!r}")
            lines[(*path, key)] = _Origin(line)
            out[key] = _plain(node[key], (*path, key), lines, file)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            lines[(*path, index)] = _Origin(node.lc.item(index)[0] + 1)
            items.append(_plain(item, (*path, index), lines, file))
        return items
    if isinstance(node, bool) or type(node).__name__ == "ScalarBoolean":
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        if not math.isfinite(node):
            line = lines.get(path, _Origin(1)).line
            raise ShoalInputError(
                f"{file}:{line}: {key_path(path)}: {node} is not a finite number"
                " (.inf and .nan are not accepted)"
            )
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _rebase(lines: dict[KeyPath, _Origin], prefix: KeyPath, from_defaults: bool) -> dict:
    return {
        path[len(prefix) :]: _Origin(origin.line, from_defaults)
        for path, origin in lines.items()
        if path[: len(prefix)] == prefix
    }


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _deep_merge(base[key], value) if key in base else value
        return merged
    return override


# ---------------------------------------------------------------- schema errors

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, int | float):
        return repr(value)
    return f"a {type(value).__name__} ({value})"


def _number(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _schema_problem(error: jsonschema.ValidationError) -> tuple[KeyPath, str]:
    """One jsonschema error -> (key path to report, problem with the accepted values)."""
    path: KeyPath = tuple(error.absolute_path)
    kind, instance, schema = error.validator, error.instance, error.schema
    if kind == "additionalProperties":
        keys = sorted(schema.get("properties", {}))
        extra = sorted(key for key in instance if key not in keys)[0]
        return (*path, extra), f"unknown key {extra!r} (accepted keys: {', '.join(keys)})"
    if kind == "required":
        missing = next(key for key in error.validator_value if key not in instance)
        required = ", ".join(error.validator_value)
        return path, f"missing required key {missing!r} (required here: {required})"
    if kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        words = " or ".join(_TYPE_WORDS.get(name, name) for name in names)
        return path, f"expected {words}, got {_describe(instance)}"
    if kind == "enum":
        accepted = ", ".join(str(v) for v in error.validator_value)
        return path, f"{instance!r} is not one of: {accepted}"
    if kind == "const":
        return path, f"{instance!r} is not supported (accepted: {error.validator_value})"
    if kind in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            accepted = f"{_number(low)}..{_number(high)}"
        elif low is not None:
            accepted = f">= {_number(low)}"
        else:
            accepted = f"<= {_number(high)}"
        return path, f"{_describe(instance)} is out of range (accepted: {accepted})"
    if kind == "exclusiveMinimum":
        limit = _number(error.validator_value)
        return path, f"must be greater than {limit}, got {_describe(instance)}"
    if kind == "minItems":
        count = error.validator_value
        return path, f"needs at least {count} item{'s' if count != 1 else ''}"
    if kind == "maxItems":
        return path, f"has {len(instance)} items (accepted: at most {error.validator_value})"
    if kind == "uniqueItems":
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                return path, f"lists {item!r} twice"
            seen.append(item)
    if kind == "pattern":
        return path, f"{instance!r} is not {schema.get('description', 'valid')}"
    if kind == "minLength":
        return path, "must not be empty"
    if kind == "maxLength":
        return path, f"is longer than {error.validator_value} characters"
    if kind in ("minProperties", "maxProperties"):
        accepted = ", ".join(schema.get("properties", {}))
        given = ", ".join(instance) or "none"
        return path, f"give exactly one of: {accepted} (given: {given})"
    return path, error.message


def _validate(
    document: Any, schema: Mapping[str, Any], where: _Where, what: str, accepted: Sequence[str]
) -> None:
    if not isinstance(document, dict):
        raise where.error(
            (),
            f"the top level must be a mapping of {what} ({', '.join(accepted)}),"
            f" got {_describe(document)}",
        )
    validator = jsonschema.Draft202012Validator(schema)
    problems = [_schema_problem(error) for error in validator.iter_errors(document)]
    if problems:
        path, problem = min(problems, key=lambda p: (where.origin(p[0]).line, len(p[0])))
        raise where.error(path, problem)


# ---------------------------------------------------------------- public API


def load_role_spec(path: Path | str) -> RoleSpec:
    """Read, validate and check one role spec file."""
    file = Path(path)
    document, lines = _read_yaml(file)
    where = _Where(file, lines)
    if isinstance(document, dict) and "roles" in document:
        raise where.error(("roles",), "this is a fleet file: load it with load_fleet")
    schema = role_schema()
    _validate(document, schema, where, "role fields", _role_keys())
    return _build_role(document, where, file.parent)


def load_fleet(path: Path | str) -> tuple[RoleSpec, ...]:
    """Read a fleet file (`defaults:` + `roles:`) into its roles; a plain role spec file
    gives a fleet of one."""
    file = Path(path)
    document, lines = _read_yaml(file)
    if not (isinstance(document, dict) and "roles" in document):
        return (load_role_spec(file),)
    top = _Where(file, lines)
    fleet_schema = role_schema()["$defs"]["fleet"]
    _validate(document, fleet_schema, top, "fleet fields", ("version", "defaults", "roles"))
    defaults = document.get("defaults", {})
    default_lines = _rebase(lines, ("defaults",), True)
    if defaults:
        # Defaults alone need not be a whole role, but every key they set must exist.
        partial = dict(role_schema())
        partial.pop("required", None)
        _validate(
            defaults,
            partial,
            _Where(file, _rebase(lines, ("defaults",), False), ("defaults",)),
            "role fields",
            _role_keys(),
        )
    roles: list[RoleSpec] = []
    seen: dict[str, int] = {}
    client_ids: dict[str, int] = {}
    for index, raw in enumerate(document["roles"]):
        role_lines = {**default_lines, **_rebase(lines, ("roles", index), False)}
        role_lines[()] = lines[("roles", index)]
        where = _Where(file, role_lines, ("roles", index))
        merged = _deep_merge(defaults, raw)
        _validate(merged, role_schema(), where, "role fields", _role_keys())
        role = _build_role(merged, where, file.parent)
        if role.name in seen:
            first = seen[role.name]
            line = lines[("roles", first)].line
            raise where.error(
                ("name",),
                f"role name {role.name!r} is already used by roles[{first}] (line {line})",
            )
        seen[role.name] = index
        if "{uid}" not in role.client_id:
            rendered = render_client_id(role.client_id, role.name, role.role, role.board)
            if rendered in client_ids:
                first = client_ids[rendered]
                raise where.error(
                    ("client_id",),
                    f"client id {rendered!r} is also roles[{first}]'s (client ids must differ:"
                    " use {name} or {uid})",
                )
            client_ids[rendered] = index
        roles.append(role)
    return tuple(roles)


def _role_keys() -> tuple[str, ...]:
    return tuple(role_schema()["properties"])


# ---------------------------------------------------------------- semantic checks + IR


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) or "(none)"


def _build_role(doc: dict[str, Any], where: _Where, base: Path) -> RoleSpec:
    board = _board(doc["board"], where)
    _check_unique_names(doc, where)
    sensors = tuple(
        _sensor(raw, ("sensors", i), where, base, board)
        for i, raw in enumerate(doc.get("sensors", []))
    )
    sensor_names = [s.name for s in sensors]
    models = tuple(
        _model(raw, ("models", i), where, base, sensors)
        for i, raw in enumerate(doc.get("models", []))
    )
    model_names = [m.name for m in models]
    subscribes = tuple(
        _subscription(raw, ("subscribes", i), where)
        for i, raw in enumerate(doc.get("subscribes", []))
    )
    commands = tuple(doc.get("commands", ("infer", "status", "profile") if models else ("status",)))
    triggers = tuple(
        _trigger(raw, ("triggers", i), where, model_names, sensor_names, commands)
        for i, raw in enumerate(doc.get("triggers", []))
    )
    sources = model_names + sensor_names + [s.name for s in subscribes]
    publishes = tuple(
        _publish(raw, ("publishes", i), where, sources)
        for i, raw in enumerate(doc.get("publishes", []))
    )
    client_id = doc.get("client_id", DEFAULT_CLIENT_ID)
    _check_template(client_id, CLIENT_ID_PLACEHOLDERS, ("client_id",), where)
    literal = _PLACEHOLDER.sub("", client_id)
    bad = sorted({c for c in literal if c in "/+#" or not 0x21 <= ord(c) <= 0x7E})
    if bad:
        raise where.error(
            ("client_id",),
            f"{client_id!r} contains {bad[0]!r} (a client id is a topic level: printable"
            " ASCII without '/', '+', '#' or spaces)",
        )
    example = render_client_id(client_id, doc["name"], doc["role"], board.name)
    if len(example) > MAX_CLIENT_ID_BYTES:
        raise where.error(
            ("client_id",),
            f"{client_id!r} gives {example!r}, {len(example)} bytes"
            f" (accepted: 1..{MAX_CLIENT_ID_BYTES} bytes, the MQTT-SN limit; {{uid}} counts 8)",
        )
    presence_raw = doc.get("presence", {})
    duty = doc.get("duty_cycle")
    return RoleSpec(
        name=doc["name"],
        role=doc["role"],
        board=board.name,
        client_id=client_id,
        sensors=sensors,
        models=models,
        triggers=triggers,
        publishes=publishes,
        subscribes=subscribes,
        commands=commands,
        presence=Presence(**presence_raw),
        duty_cycle=DutyCycle(**duty) if duty is not None else None,
        gateway=_gateway(doc.get("gateway", {"discover": {}}), where),
        source=where.file,
        version=doc.get("version", 1),
    )


def _board(name: str, where: _Where) -> Board:
    known = [p.stem for p in board_paths()]
    if name not in known:
        raise where.error(("board",), f"unknown board {name!r} (accepted: {_names(known)})")
    return get_board(name)


def _check_unique_names(doc: dict[str, Any], where: _Where) -> None:
    seen: dict[str, KeyPath] = {}
    for section in ("sensors", "models", "subscribes"):
        for index, item in enumerate(doc.get(section, [])):
            here: KeyPath = (section, index, "name")
            if item["name"] in seen:
                first = seen[item["name"]]
                raise where.error(
                    here,
                    f"name {item['name']!r} is already used by {key_path(first[:2])}"
                    f" (line {where.origin(first).line}); sensors, models and subscriptions"
                    " need distinct names",
                )
            seen[item["name"]] = here
    names: dict[str, KeyPath] = {}
    for index, item in enumerate(doc.get("publishes", [])):
        here = ("publishes", index, "name")
        if item["name"] in names:
            first = names[item["name"]]
            raise where.error(
                here,
                f"name {item['name']!r} is already used by {key_path(first[:2])}"
                f" (line {where.origin(first).line})",
            )
        names[item["name"]] = here


def _sensor(raw: dict, path: KeyPath, where: _Where, base: Path, board: Board) -> Sensor:
    ((driver_name, options),) = raw["driver"].items()
    driver_path = (*path, "driver", driver_name)
    if driver_name not in board.sensor_drivers:
        raise where.error(
            driver_path,
            f"driver {driver_name!r} is not available on board {board.name!r}"
            f" (accepted: {_names(board.sensor_drivers)})",
        )
    driver: Driver
    if driver_name == "simulated":
        file = options.get("file")
        if options["generator"] == "replay":
            if file is None:
                raise where.error(
                    driver_path, "generator 'replay' needs 'file' (samples to replay)"
                )
            resolved = (base / file).resolve()
            if not resolved.is_file():
                raise where.error(
                    (*driver_path, "file"), f"replay file {file} not found ({resolved})"
                )
            _check_replay(resolved, file, raw["shape"], (*driver_path, "file"), where)
            options = {**options, "file": resolved}
        elif file is not None:
            raise where.error(
                (*driver_path, "file"),
                f"'file' is only for generator 'replay', not {options['generator']!r}",
            )
        driver = SimulatedDriver(**options)
    elif driver_name == "adc":
        driver = AdcDriver(**options)
    elif driver_name == "i2c":
        driver = I2cDriver(**options)
    else:
        driver = UartLinesDriver(**options)
    return Sensor(
        name=raw["name"],
        kind=raw["kind"],
        rate_hz=float(raw["rate_hz"]),
        shape=tuple(raw["shape"]),
        driver=driver,
    )


def _squeeze(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _load(path: Path, shown: str, at: KeyPath, where: _Where) -> Model:
    from codegen.model_compiler import load_model  # heavy import, only when a role has models

    if not path.is_file():
        raise where.error(at, f"model file {shown} not found ({path})")
    try:
        return load_model(path)
    except ShoalInputError as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise where.error(at, f"not a loadable int8 TFLite model: {detail}") from exc


def _model(
    raw: dict, path: KeyPath, where: _Where, base: Path, sensors: Sequence[Sensor]
) -> RoleModel:
    sensor_names = [s.name for s in sensors]
    if raw["input"] not in sensor_names:
        raise where.error(
            (*path, "input"), f"unknown sensor {raw['input']!r} (accepted: {_names(sensor_names)})"
        )
    sensor = next(s for s in sensors if s.name == raw["input"])
    resolved = (base / raw["path"]).resolve()
    model = _load(resolved, raw["path"], (*path, "path"), where)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise where.error(
            (*path, "path"),
            f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs"
            " (a role model takes one input and gives one output)",
        )
    tin, tout = model.tensor(model.inputs[0]), model.tensor(model.outputs[0])
    if not any(t.dtype == "int8" for t in model.tensors):
        raise where.error((*path, "path"), "not an int8 model (no int8 tensors)")
    if tin.dtype not in ("int8", "float32"):
        raise where.error(
            (*path, "path"),
            f"the model's input is {tin.dtype} (accepted: int8, or float32 quantized in the graph)",
        )
    pre = raw.get("preprocess", {})
    pre_path = (*path, "preprocess")
    sensor_size = 1
    for dim in sensor.shape:
        sensor_size *= dim
    input_shape = tin.shape[1:] if tin.shape and tin.shape[0] == 1 else tin.shape
    window = pre["window"] if "window" in pre else max(tin.element_count // sensor_size, 1)
    wanted = _squeeze((window, *sensor.shape))
    flat = len(_squeeze(input_shape)) <= 1 and tin.element_count == window * sensor_size
    if _squeeze(input_shape) != wanted and not flat:
        fits = tin.element_count // sensor_size if tin.element_count % sensor_size == 0 else None
        layout = list(input_shape)
        if fits is not None and fits != window:
            accepted = f"window {fits}"
        elif len(layout) > 1:
            accepted = f"window {layout[0]} x sensor shape {layout[1:]}"
        else:
            accepted = f"a sensor whose shape divides {layout}"
        raise where.error(
            (*pre_path, "window") if "window" in pre else (*path, "input"),
            f"model input shape {list(tin.shape)} does not match window {window} x sensor"
            f" {sensor.name!r} shape {list(sensor.shape)} (accepted: {accepted})",
        )
    quantize = pre.get("quantize", tin.dtype == "int8")
    quant = tin.quantization
    if quantize and tin.dtype != "int8":
        raise where.error(
            (*pre_path, "quantize"),
            f"the model's input is {tin.dtype} (the graph quantizes it): use quantize: false",
        )
    if quantize and quant is None:
        raise where.error(
            (*pre_path, "quantize"),
            "the model's int8 input has no scale/zero point to quantize with",
        )
    preprocess = Preprocess(
        window=window,
        stride=pre.get("stride", window),
        scale=float(pre.get("scale", 1.0)),
        offset=float(pre.get("offset", 0.0)),
        quantize=quantize,
    )
    postprocess = _postprocess(
        raw.get("postprocess", {}),
        (*path, "postprocess"),
        where,
        tout.element_count,
        tin.element_count,
    )
    return RoleModel(
        name=raw["name"],
        path=resolved,
        input=sensor.name,
        preprocess=preprocess,
        postprocess=postprocess,
        sha256=model.source_sha256,
        input_shape=tin.shape,
        input_dtype=tin.dtype,
        input_scale=quant.scale if quant is not None else None,
        input_zero_point=quant.zero_point if quant is not None else None,
        output_shape=tout.shape,
        output_dtype=tout.dtype,
    )


def _postprocess(raw: dict, path: KeyPath, where: _Where, outputs: int, inputs: int) -> Postprocess:
    labels = tuple(raw["argmax"]["labels"]) if "argmax" in raw else None
    if labels is not None and len(labels) != outputs:
        raise where.error(
            (*path, "argmax", "labels"),
            f"{len(labels)} labels for a model with {outputs} outputs (give one label per output)",
        )
    top_k = raw.get("top_k")
    if top_k is not None and top_k > outputs:
        raise where.error(
            (*path, "top_k"),
            f"{top_k} exceeds the model's {outputs} outputs (accepted: 1..{outputs})",
        )
    anomaly = None
    if "anomaly" in raw:
        if labels is not None or top_k is not None:
            raise where.error(
                (*path, "anomaly"), "anomaly excludes argmax and top_k (give one kind of result)"
            )
        if outputs != inputs:
            raise where.error(
                (*path, "anomaly"),
                f"the reconstruction error needs as many outputs as inputs; the model has"
                f" {outputs} outputs for {inputs} inputs (accepted: an autoencoder)",
            )
        anomaly = Anomaly(**raw["anomaly"])
    return Postprocess(labels=labels, top_k=top_k, threshold=raw.get("threshold"), anomaly=anomaly)


def _trigger(
    raw: dict,
    path: KeyPath,
    where: _Where,
    models: Sequence[str],
    sensors: Sequence[str],
    commands: Sequence[str],
) -> Trigger:
    ((kind, options),) = raw.items()
    here = (*path, kind)
    run = tuple(options.get("run", models))
    for index, name in enumerate(options.get("run", [])):
        if name not in models:
            raise where.error(
                (*here, "run", index), f"unknown model {name!r} (accepted: {_names(models)})"
            )
    if kind == "on_command" and "infer" not in commands:
        raise where.error(here, "an on_command trigger needs 'infer' in commands")
    if kind == "on_threshold":
        source = options["source"]
        if source not in (*models, *sensors):
            raise where.error(
                (*here, "source"),
                f"unknown source {source!r} (accepted: models and sensors:"
                f" {_names([*models, *sensors])})",
            )
        if ("above" in options) == ("below" in options):
            raise where.error(here, "give exactly one of: above, below")
    return Trigger(
        kind=kind,
        run=run,
        period_ms=options.get("period_ms"),
        source=options.get("source"),
        above=options.get("above"),
        below=options.get("below"),
    )


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _check_template(text: str, accepted: Sequence[str], path: KeyPath, where: _Where) -> None:
    for name in _PLACEHOLDER.findall(text):
        if name not in accepted:
            shown = ", ".join("{" + a + "}" for a in accepted)
            raise where.error(
                path, f"unknown placeholder {{{name}}} in {text!r} (accepted: {shown})"
            )
    if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
        raise where.error(path, f"unbalanced brace in {text!r} (placeholders look like {{role}})")


def _check_topic(topic: str, path: KeyPath, where: _Where, *, wildcards: bool) -> None:
    _check_template(topic, TOPIC_PLACEHOLDERS, path, where)
    if not wildcards and topic.startswith(PROTOCOL_TOPIC_PREFIX):
        raise where.error(
            path,
            f"topic {topic!r} is under {PROTOCOL_TOPIC_PREFIX!r}, reserved for the agent protocol"
            " (docs/agent_protocol.md); publish application data elsewhere",
        )
    levels = topic.split("/")
    for index, level in enumerate(levels):
        for wildcard in ("+", "#"):
            if wildcard not in level:
                continue
            if not wildcards:
                raise where.error(
                    path,
                    f"topic {topic!r} contains the MQTT wildcard {wildcard!r}"
                    " (a publish topic names one topic; wildcards are for subscribes)",
                )
            if level != wildcard or (wildcard == "#" and index != len(levels) - 1):
                raise where.error(
                    path,
                    f"misplaced wildcard {wildcard!r} in {topic!r} ('+' fills a whole level,"
                    " '#' only the last)",
                )


def _subscription(raw: dict, path: KeyPath, where: _Where) -> Subscription:
    _check_topic(raw["topic"], (*path, "topic"), where, wildcards=True)
    return Subscription(name=raw["name"], topic=raw["topic"], qos=raw.get("qos", 0))


def _publish(raw: dict, path: KeyPath, where: _Where, sources: Sequence[str]) -> Publish:
    _check_topic(raw["topic"], (*path, "topic"), where, wildcards=False)
    if raw["from"] not in sources:
        raise where.error(
            (*path, "from"),
            f"unknown source {raw['from']!r} (accepted: models, sensors and subscriptions:"
            f" {_names(sources)})",
        )
    aggregate = raw.get("aggregate")
    return Publish(
        name=raw["name"],
        topic=raw["topic"],
        source=raw["from"],
        qos=raw.get("qos", 0),
        retain=raw.get("retain", False),
        payload=raw.get("payload", "binary"),
        aggregate=Aggregate(aggregate["reduce"], float(aggregate["window_s"]))
        if aggregate is not None
        else None,
    )


def _gateway(raw: dict, where: _Where) -> Gateway:
    if "address" in raw:
        host, _, port_text = raw["address"].rpartition(":")
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise where.error(
                ("gateway", "address"), f"port {port} is out of range (accepted: 1..65535)"
            )
        return Gateway(discover=False, host=host, port=port)
    options = raw["discover"]
    group = options.get("group", DEFAULT_DISCOVERY_GROUP)
    try:
        multicast = ipaddress.IPv4Address(group).is_multicast
    except ipaddress.AddressValueError:
        multicast = False
    if not multicast:
        raise where.error(
            ("gateway", "discover", "group"),
            f"{group!r} is not an IPv4 multicast address (accepted: 224.0.0.0..239.255.255.255)",
        )
    return Gateway(
        discover=True, group=group, group_port=options.get("port", DEFAULT_DISCOVERY_PORT)
    )
