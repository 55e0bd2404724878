"""The agent generator (MicroPython half of `shoal gen`): a role spec and a board in, a complete
MicroPython project out.

Responsible for: loading the role spec (all of `codegen.loaders.role_loader`'s checks), checking
that the board runs MicroPython over a transport and with sensor drivers the runtime has, and
writing the project: `main.py` (rendered from `firmware_templates/micropython/agent/main.py.j2`
with every number computed here), the agent runtime `shoal_agent.py`, the MQTT-SN client files
(the host package's own sans-IO `client_session.py`, `codec.py`, `framing.py`, `qos2.py` and the
device runtime `mqttsn_device.py`), the agent protocol codec as `agent_protocol.py`, one model
module per model (`model_<name>.py`) with the shared `shoal_nn*.py` kernels, `shoal_firmware.py`
(the firmware id), a `manifest.py` for freezing, on real boards `shoal_config.py` (the site's
settings: Wi-Fi credentials and gateway address, or the UART and its pins) and `agent.json`
(the machine-readable manifest `shoal build` and the fleet read). Every file but agent.json
starts with a stamp (generator version, input hashes, board, "do not edit"; shoal_config.py's
says to edit it).

The link to the gateway: "udp" on the unix port (the host's network), "wifi" (UDP through
`network.WLAN`) on boards whose `transports` have udp, "uart" (Shoal serial frames over
machine.UART) on boards with only uart, or when `transport="uart"` is asked for on a board that
has it. Gateway discovery is refused (the runtime does not do it yet); on a UART link the spec's
gateway address is not used (the gateway is the other end of the wire).

The firmware id is the SHA-256 over every other generated file (name and text, sorted by name)
except shoal_config.py and agent.json; its first 8 bytes are the id the birth and boot messages
carry. Model hashes are the first 8 bytes of each `.tflite` file's SHA-256 (the agent
protocol's definition).

Nothing is written on any error: the project is rendered in memory, written to a temporary
directory beside `out_dir` and renamed into place. `.mpy` compilation is not done here: it is
`shoal build`'s job (the project is plain `.py`; `mpy_cross_march` of the board says the arch).

Must not: run anything it generates, talk to devices, or change the role IR.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codegen import __version__
from codegen.emit.environment import TEMPLATES_DIR, environment
from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from codegen.ir.role import RoleModel, RoleSpec, SimulatedDriver
from codegen.loaders.board_loader import get_board, load_boards
from codegen.loaders.role_loader import MAX_CLIENT_ID_BYTES, load_role_spec, render_client_id
from codegen.model_compiler import generate_models, load_model, plan_model

REPO_ROOT = TEMPLATES_DIR.parent
AGENT_TEMPLATES = TEMPLATES_DIR / "micropython" / "agent"
# Files copied unchanged (after the stamp) into every project: name in project -> source.
RUNTIME_FILES = {
    "shoal_agent.py": AGENT_TEMPLATES / "shoal_agent.py",
    "mqttsn_device.py": TEMPLATES_DIR / "micropython" / "mqttsn_device.py",
    "client_session.py": REPO_ROOT / "host_sdk" / "mqttsn" / "client_session.py",
    "codec.py": REPO_ROOT / "host_sdk" / "mqttsn" / "codec.py",
    "framing.py": REPO_ROOT / "host_sdk" / "mqttsn" / "framing.py",
    "qos2.py": REPO_ROOT / "host_sdk" / "mqttsn" / "qos2.py",
    "agent_protocol.py": REPO_ROOT / "host_sdk" / "agent" / "protocol.py",
}
FIRMWARE_MODULE = "shoal_firmware.py"
SITE_CONFIG = "shoal_config.py"
MANIFEST = "agent.json"
TRANSPORTS = ("udp", "uart")
# The serial link's defaults per MicroPython port: (UART id, baud, TX pin, RX pin, shared with
# the REPL console, what that is on the board). Pins None: the port's own for that UART.
UART_DEFAULTS: dict[str, tuple[int, int, int | None, int | None, bool, str]] = {
    "stm32": (2, 115200, None, None, True,
              "UART 2 is the ST-LINK virtual COM port (PA2 TX, PA3 RX), also the REPL."),
    "nrf": (0, 115200, None, None, True,
            "UART 0 is the J-Link virtual COM port (P0.06 TX, P0.08 RX), also the REPL."),
    "esp32": (2, 115200, 17, 16, False,
              "UART 2 on GPIO17 (TX) / GPIO16 (RX) to a USB-serial adapter; REPL stays on UART 0."),
    "rp2": (0, 115200, 0, 1, False,
            "UART 0 on GP0 (TX) / GP1 (RX) to a USB-serial adapter; the REPL stays on USB."),
}  # fmt: skip
MAX_MODELS = 4  # the agent protocol's birth model list
CMD_HEADER_BYTES = 8  # cmd: version, kind, corr u16, code u8, args length u16, then model u8
LARGE_PAYLOAD_RAM_BYTES = 256 * 1024  # boards with this much RAM take 2048-byte cmd payloads


@dataclass(frozen=True)
class GeneratedAgent:
    """What `generate_agent` wrote. `firmware_id` is the hex SHA-256 over the generated files
    (the device reports its first 8 bytes); `model_hashes` maps model name to the first 8 bytes
    of its `.tflite` SHA-256 (hex); `mpy_cross_march` is the board's `mpy-cross -march`."""

    role: str
    name: str
    board: str
    client_id: str
    out_dir: Path
    files: tuple[Path, ...]
    firmware_id: str
    model_hashes: dict[str, str]
    mpy_cross_march: str | None
    generator: str = __version__
    transport: str = "udp"
    link: str = "udp"

    @property
    def firmware_id_bytes(self) -> bytes:
        return bytes.fromhex(self.firmware_id)[:8]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp(role: RoleSpec, board: Board) -> str:
    models = ", ".join(f"{m.path.name} (sha256 {m.sha256})" for m in role.models) or "none"
    return (
        f"# Generated by Shoal {__version__} for board {board.name} from role spec "
        f"{role.source.name} (sha256 {_sha256(role.source)}); models: {models}. Do not edit."
    )


def _unsupported(where: str, what: str) -> ShoalInputError:
    return ShoalInputError(
        f"{where}: {what} is not supported by the MicroPython agent generator yet "
        "(supported: simulated sensors, periodic and on_command triggers, publishes from models "
        "and sensors without aggregate, a fixed gateway address)"
    )


def choose_transport(role: RoleSpec, board: Board, requested: str | None = None) -> str:
    """The MQTT-SN transport of the agent: `requested` when the board has it, else UDP when the
    board has it (Wi-Fi, or the host's network on the unix port), else UART."""
    offered = [t for t in TRANSPORTS if t in board.transports]
    if requested is not None and requested not in TRANSPORTS:
        raise ShoalInputError(
            f"transport '{requested}' is not one the MicroPython agent speaks (accepted: "
            f"{', '.join(TRANSPORTS)})"
        )
    if requested is not None and requested not in board.transports:
        raise ShoalInputError(
            f"board '{board.name}' has no {requested} transport (its transports: "
            f"{', '.join(board.transports)}); choose one of those"
        )
    if not offered:
        raise ShoalInputError(
            f"board '{board.name}': the MicroPython agent talks MQTT-SN over UDP or a UART, and "
            f"the board offers neither (its transports: {', '.join(board.transports)})"
        )
    transport = requested or offered[0]
    if role.gateway.discover and transport == "uart":
        raise ShoalInputError(
            f"{role.source}: gateway.discover: gateway discovery needs UDP, but the agent on "
            f"board '{board.name}' reaches the gateway over its UART (the gateway is the other "
            "end of the wire); give gateway.address instead"
        )
    return transport


def _link(board: Board, transport: str) -> str:
    if transport == "uart":
        return "uart"
    return "udp" if board.micropython.port == "unix" else "wifi"


def check_board(role: RoleSpec, board: Board, transport: str | None = None) -> str:
    """Refuse a board the MicroPython agent cannot target, naming what is missing; return the
    transport (see `choose_transport`)."""
    if not board.micropython.supported:
        raise ShoalInputError(
            f"board '{board.name}' does not run MicroPython (boards that do: "
            f"{', '.join(micropython_boards())}); its agent is C (shoal gen --backend c)"
        )
    chosen = choose_transport(role, board, transport)
    if chosen == "uart" and board.micropython.port not in UART_DEFAULTS:
        raise ShoalInputError(
            f"board '{board.name}': MicroPython port '{board.micropython.port}' has no UART "
            f"settings in the generator (ports with them: {', '.join(sorted(UART_DEFAULTS))})"
        )
    for i, sensor in enumerate(role.sensors):
        if sensor.driver_name not in board.sensor_drivers:
            raise ShoalInputError(
                f"{role.source}: sensors[{i}].driver: driver '{sensor.driver_name}' is not "
                f"available on board '{board.name}' (accepted: {', '.join(board.sensor_drivers)})"
            )
    return chosen


def micropython_boards() -> list[str]:
    return sorted(b.name for b in load_boards().values() if b.micropython.supported)


def _check_role(role: RoleSpec) -> None:
    where = str(role.source)
    for i, sensor in enumerate(role.sensors):
        if not isinstance(sensor.driver, SimulatedDriver):
            raise _unsupported(f"{where}: sensors[{i}].driver", f"driver '{sensor.driver_name}'")
    for i, trigger in enumerate(role.triggers):
        if trigger.kind not in ("periodic", "on_command"):
            raise _unsupported(f"{where}: triggers[{i}]", f"trigger '{trigger.kind}'")
    for i, publish in enumerate(role.publishes):
        if publish.aggregate is not None:
            raise _unsupported(f"{where}: publishes[{i}].aggregate", "aggregate")
        if publish.qos < 0:
            raise _unsupported(f"{where}: publishes[{i}].qos", "QoS -1")
        if all(publish.source != s.name for s in role.sensors) and all(
            publish.source != m.name for m in role.models
        ):
            raise _unsupported(f"{where}: publishes[{i}].from", "a subscription source")
    if role.subscribes:
        raise _unsupported(f"{where}: subscribes", "subscriptions")
    if role.duty_cycle is not None:
        raise _unsupported(f"{where}: duty_cycle", "duty cycling")
    if role.gateway.discover:
        raise _unsupported(f"{where}: gateway.discover", "gateway discovery")
    if len(role.models) > MAX_MODELS:
        raise ShoalInputError(
            f"{where}: models: {len(role.models)} models (accepted: at most {MAX_MODELS}, the "
            "agent protocol's birth list)"
        )


def _module_name(model: RoleModel) -> str:
    return "model_" + model.name.replace("-", "_")


def _op_codes() -> dict[str, int]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {k: v for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _model_layers(model: RoleModel) -> tuple[tuple[int, int, int, bool], ...]:
    """(op index, TFLite builtin code, MACs, elided) per operator, in execution order."""
    codes = _op_codes()
    ir = load_model(model.path)
    plan = plan_model(ir)
    layers = []
    for step in plan.steps:
        op = step.plan.op
        layers.append((step.plan.op_index, codes.get(op, 0) & 0xFF, step.plan.macs, step.elided))
    return tuple(layers)


def _sensor_fields(role: RoleSpec, index: int) -> list[tuple[str, str]]:
    sensor = role.sensors[index]
    driver = sensor.driver
    assert isinstance(driver, SimulatedDriver)
    elements = math.prod(sensor.shape)
    windows = [m.preprocess.window for m in role.models if m.input == sensor.name]
    fields: list[tuple[str, object]] = [
        ("name", sensor.name),
        ("rate_hz", float(sensor.rate_hz)),
        ("elements", elements),
        ("generator", driver.generator),
        ("amplitude", float(driver.amplitude)),
        ("frequency_hz", float(driver.frequency_hz)),
        ("offset", float(driver.offset)),
        ("value", float(driver.value)),
        ("seed", int(driver.seed)),
        ("max_backlog", max([1, *windows])),
    ]
    if driver.generator == "replay":
        assert driver.file is not None
        fields.append(("rows", tuple(_replay_rows(driver.file))))
    return [(repr(key), repr(value)) for key, value in fields]


def _replay_rows(path: Path) -> list[tuple[float, ...]]:
    rows = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        rows.append(tuple(float(v) for v in text.replace(",", " ").split()))
    return rows


def _model_fields(role: RoleSpec, model: RoleModel) -> list[tuple[str, str]]:
    post = model.postprocess
    pre = model.preprocess
    quantize = pre.quantize and model.input_dtype == "int8"
    if quantize and not model.input_scale:
        raise ShoalInputError(
            f"{role.source}: models '{model.name}': int8 input without a scale cannot be quantized"
        )
    ranked = post.labels is not None or post.top_k is not None or post.threshold is not None
    fields: list[tuple[str, object]] = [
        ("name", model.name),
        ("module", _module_name(model)),
        ("hash", bytes.fromhex(model.sha256)[:8]),
        ("input", model.input),
        ("window", pre.window),
        ("stride", pre.stride),
        ("pre_scale", float(pre.scale)),
        ("pre_offset", float(pre.offset)),
        ("quantize", quantize),
        ("input_scale", float(model.input_scale or 1.0)),
        ("input_zero_point", int(model.input_zero_point or 0)),
        ("labels", tuple(post.labels) if post.labels else None),
        ("ranked", ranked),
        ("top_k", post.top_k or 1),
        ("threshold", None if post.threshold is None else float(post.threshold)),
        ("anomaly_metric", post.anomaly.metric if post.anomaly else None),
        ("anomaly_threshold", float(post.anomaly.threshold) if post.anomaly else 0.0),
    ]
    return [(repr(key), repr(value)) for key, value in fields]


def _max_payload(role: RoleSpec, board: Board) -> int:
    """Largest cmd payload the device accepts (bytes, 64..2048): 2048 on boards with at least
    256 KiB of RAM, else 512, and never less than the largest infer command."""
    base = 2048 if board.memory.app_ram_bytes >= LARGE_PAYLOAD_RAM_BYTES else 512
    needed = [CMD_HEADER_BYTES + math.prod(m.input_shape) * (4 if m.input_dtype == "float32" else 1)
              for m in role.models]  # fmt: skip
    return max(64, min(2048, max([base, *needed])))


def _render_main(role: RoleSpec, board: Board, client_id: str, stamp: str, link: str) -> str:
    model_index = {m.name: i for i, m in enumerate(role.models)}
    heartbeat_s = float(role.presence.heartbeat_s)
    periodic = [
        {"period_s": repr((t.period_ms or 1) / 1000), "run": [model_index[name] for name in t.run]}
        for t in role.triggers
        if t.kind == "periodic"
    ]
    publishes = [
        [
            ("'topic'", repr(p.topic.format(client_id=client_id, role=role.role, name=role.name))),
            ("'source'", repr(p.source)),
            ("'qos'", repr(p.qos)),
            ("'retain'", repr(p.retain)),
            ("'json'", repr(p.payload == "json")),
        ]
        for p in role.publishes
    ]
    assert role.gateway.host is not None and role.gateway.port is not None
    context = {
        "stamp": stamp,
        "name": role.name,
        "role": role.role,
        "board": board.name,
        "role_literal": repr(role.role),
        "board_literal": repr(board.name),
        "link": link,
        "link_literal": repr(link),
        "client_id_literal": repr(client_id),
        "gateway_host_literal": repr(role.gateway.host),
        "gateway_port": role.gateway.port,
        "birth": repr(role.presence.birth),
        "will": repr(role.presence.will),
        "heartbeat_s": repr(heartbeat_s),
        # The gateway declares the device lost after 1.5 x keep-alive without traffic; three
        # heartbeats of silence is the keep-alive (at least 3 s, at most MQTT-SN's 65535 s).
        "keep_alive_s": max(3, min(0xFFFF, math.ceil(3 * heartbeat_s))),
        "t_retry_s": repr(5.0),
        "poll_ms": max(1, min([50, *(t.period_ms for t in role.triggers if t.period_ms)])),
        "max_payload": _max_payload(role, board),
        "commands": [repr(c) for c in role.commands],
        "sensors": [_sensor_fields(role, i) for i in range(len(role.sensors))],
        "models": [
            {"fields": _model_fields(role, m), "layers": [repr(x) for x in _model_layers(m)]}
            for m in role.models
        ],
        "periodic": periodic,
        "publishes": publishes,
    }
    return environment().get_template("micropython/agent/main.py.j2").render(**context)


def _render_site_config(role: RoleSpec, board: Board, link: str, stamp: str) -> str:
    """shoal_config.py for a Wi-Fi or UART link: the site's settings with their defaults."""
    host, port = role.gateway.host, role.gateway.port
    spec_gateway = f"{host}:{port}" if host is not None else "none (discovery)"
    context: dict[str, object] = {
        "stamp_site": stamp.replace("Do not edit.", "Site settings: edit them."),
        "name": role.name,
        "board": board.name,
        "link": link,
        "spec_gateway": spec_gateway,
        "gateway_literal": repr(spec_gateway if host is not None else ""),
        "loopback": host is not None and (host == "localhost" or host.startswith("127.")),
    }
    if link == "uart":
        uart_id, baud, tx, rx, shared, note = UART_DEFAULTS[str(board.micropython.port)]
        context.update(
            uart_id=uart_id, baudrate=baud, tx=repr(tx), rx=repr(rx), shared=shared, uart_note=note
        )
    return environment().get_template("micropython/agent/shoal_config.py.j2").render(**context)


def _manifest(
    role: RoleSpec,
    board: Board,
    stamp: str,
    client_id: str,
    transport: str,
    link: str,
    firmware_id: str,
    files: dict[str, str],
) -> str:
    """agent.json: what `shoal build`, `shoal run` and the fleet need to know, as JSON."""
    covered = sorted(n for n in files if n not in (FIRMWARE_MODULE, SITE_CONFIG))
    document = {
        "backend": "micropython",
        "stamp": stamp,
        "generator": __version__,
        "role": role.role,
        "name": role.name,
        "board": board.name,
        "client_id": client_id,
        "spec": {"file": role.source.name, "sha256": _sha256(role.source)},
        "firmware_id": firmware_id,
        "firmware_id_covers": covered,
        "files": {name: hashlib.sha256(files[name].encode()).hexdigest() for name in sorted(files)},
        "models": [
            {"name": m.name, "module": _module_name(m), "sha256": m.sha256, "hash": m.sha256[:16]}
            for m in role.models
        ],
        "transport": transport,
        "link": link,
        "site_config": SITE_CONFIG if SITE_CONFIG in files else None,
        "entry": "main.py",
        "micropython_port": board.micropython.port,
        "build": {"tool": "mpy-cross", "march": board.micropython.mpy_cross_march},
    }
    return json.dumps(document, indent=2) + "\n"


def _render_models(role: RoleSpec, staging: Path) -> dict[str, str]:
    """The model modules and the shared kernels: file name -> text."""
    if not role.models:
        return {}
    scratch = staging / "models"
    generated = generate_models(
        [(m.path, _module_name(m)) for m in role.models], scratch, backend="micropython"
    )
    return {path.name: path.read_text() for result in generated for path in result.files}


def _check_out_dir(out: Path) -> None:
    """`out` may be missing, empty, or a project this generator wrote (it is replaced whole);
    anything else is refused, so a mistyped -o never removes someone's files."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ShoalInputError(f"{out}: output folder is a file (give a folder for the project)")
    if not any(out.iterdir()):
        return
    marker = out / FIRMWARE_MODULE
    if marker.is_file() and marker.read_text().startswith("# Generated by Shoal "):
        return
    raise ShoalInputError(
        f"{out}: output folder exists, is not empty and was not written by `shoal gen` (no "
        f"stamped {FIRMWARE_MODULE}); give a new or empty folder, or a previous agent project"
    )


def generate_agent(
    spec_path: Path | str,
    board_name: str | None,
    out_dir: Path | str,
    *,
    transport: str | None = None,
) -> GeneratedAgent:
    """Generate the MicroPython project of the role spec at `spec_path` for `board_name` (the
    spec's own board when None) into `out_dir` (missing, empty, or a project generated
    before, which is replaced whole). `transport` ("udp" or "uart") picks the link on a board
    that has both (default: udp when the board has it).

    Raises ShoalInputError, writing nothing, for a bad spec (the loader's one-line errors), an
    unknown board, a board without MicroPython, a transport the board lacks (or discovery over
    a UART), a role feature the MicroPython runtime does not have yet, or an `out_dir` holding
    files this generator did not write.
    """
    role = load_role_spec(spec_path)
    board = get_board(board_name or role.board)
    chosen = check_board(role, board, transport)
    link = _link(board, chosen)
    _check_role(role)
    client_id = role.client_id.format(name=role.name, role=role.role, board=board.name, uid="{uid}")
    example = render_client_id(role.client_id, role.name, role.role, board.name)
    if len(example.encode()) > MAX_CLIENT_ID_BYTES:
        raise ShoalInputError(
            f"{role.source}: client_id: '{role.client_id}' gives '{example}' on board "
            f"'{board.name}', {len(example.encode())} bytes (accepted: 1..{MAX_CLIENT_ID_BYTES} "
            "bytes, the MQTT-SN limit; {uid} counts 8)"
        )
    stamp = _stamp(role, board)
    out = Path(out_dir)
    _check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".shoal-agent-", dir=out.parent))
    try:
        files: dict[str, str] = {}
        for name, source in RUNTIME_FILES.items():
            files[name] = stamp + "\n" + source.read_text()
        for name, text in _render_models(role, staging).items():
            files[name] = stamp + "\n" + text
        files["main.py"] = _render_main(role, board, client_id, stamp, link)
        modules = sorted([*files, FIRMWARE_MODULE])
        files["manifest.py"] = (
            stamp + "\n# Freeze the agent into a MicroPython firmware image "
            "(FROZEN_MANIFEST=manifest.py).\n" + "".join(f'module("{m}")\n' for m in modules)
        )
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
        firmware_id = digest.hexdigest()
        files[FIRMWARE_MODULE] = (
            f"{stamp}\n# The firmware id: the SHA-256 over every other file of this project "
            "(name and text, by name);\n# the agent reports its first 8 bytes.\n"
            f'FIRMWARE_SHA256 = "{firmware_id}"\n'
            f"FIRMWARE_ID = {bytes.fromhex(firmware_id)[:8]!r}\n"
            f'GENERATOR = "{__version__}"\n'
        )
        if link != "udp":
            files[SITE_CONFIG] = _render_site_config(role, board, link, stamp)
        files[MANIFEST] = _manifest(role, board, stamp, client_id, chosen, link, firmware_id, files)
        project = staging / "project"
        project.mkdir()
        for name, text in files.items():
            (project / name).write_text(text)
        if out.exists():
            out.replace(staging / "previous")  # removed with the staging directory
        project.replace(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return GeneratedAgent(
        role=role.role,
        name=role.name,
        board=board.name,
        client_id=client_id,
        out_dir=out,
        files=tuple(sorted((out / name).resolve() for name in files)),
        firmware_id=firmware_id,
        model_hashes={m.name: m.sha256[:16] for m in role.models},
        mpy_cross_march=board.micropython.mpy_cross_march,
        transport=chosen,
        link=link,
    )
