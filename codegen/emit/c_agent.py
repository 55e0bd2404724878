"""The C agent generator: a role spec becomes a complete C project for one board.

Responsible for: writing, into one folder, `main.c` (rendered from
`firmware_templates/c/agent/main.c.j2`: the platform-neutral event loop, presence, the command
handlers; it includes `role_logic.c.j2`: simulated sensors, windows, triggers, the role's
publishes), the role's models (`codegen.model_compiler.generate_models`), the MQTT-SN C client,
the agent protocol codec and the board's platform layer (copied from `firmware_templates/c/`,
chosen by `AGENT_BOARDS`: board -> platform, HAL folders, toolchain, linker script), a
`Makefile` (host gcc -> `agent`, or arm-none-eabi-gcc -> `agent.elf`),
`shoal_agent_firmware_id.h` and an `agent.json` manifest (`artifact` and `build` say what the
Makefile produces and with which toolchain). Platforms: `posix` (a native process over UDP,
`shoal_agent_platform_posix.c`) and `hal` (any bare-metal board implementing `shoal_hal.h`,
`shoal_agent_platform_hal.c`: MQTT-SN frames on the HAL's UART, console on
`shoal_hal_console_write`). Bare-metal buffers are sized for the role (largest message, layer
count) and the static RAM estimate (`static_ram_estimate`) must fit the board's
`app_ram_bytes`, else generation fails before writing anything. Every number the template
prints (topic levels, periods in ms, per-layer operator codes and MACs, RAM budget) is
computed here. Every file starts with a stamp (generator version, spec and model hashes, board,
"do not edit"). The firmware id is the first 8 bytes of the SHA-256 over the generated sources
(every file but the id header and the manifest, in name order, each as name, NUL, bytes, NUL);
`firmware_id_of(folder)` recomputes it; agent.json also lists every file with its SHA-256.

Must not: build or run anything, read anything but the spec (for its hash), its models and
replay files and the templates, or
leave a half-written folder: everything is rendered into a temporary sibling folder that is
renamed into place at the end (a folder that holds no `agent.json` is never replaced).
Boards without an `AGENT_BOARDS` entry are refused (a real Cortex-M board is added by one
entry once its HAL folder exists).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tflite.BuiltinOperator import BuiltinOperator

from codegen import __version__
from codegen.emit.environment import TEMPLATES_DIR, environment
from codegen.emit.platformio import agent_platformio_files
from codegen.errors import ShoalInputError
from codegen.ir.board import Board
from codegen.ir.role import RoleSpec, SimulatedDriver
from codegen.loaders.role_loader import render_client_id
from codegen.model_compiler import (
    GeneratedModel,
    generate_models,
    load_model,
    plan_model,
    sanitize_prefix,
)


@dataclass(frozen=True)
class AgentBoard:
    """How the agent is built for one board.

    `platform`: "posix" or "hal". `hal_folders`: folders under firmware_templates/c/hal whose
    .c/.h/.ld files are copied flat into the project (hal only). `linker_script`: the copied
    script the Makefile links with (hal only). `defines`: extra -D flags (the console on a
    second UART where the board has one). The compiler and cflags come from the board TOML.
    """

    platform: str
    hal_folders: tuple[str, ...] = ()
    linker_script: str | None = None
    defines: tuple[str, ...] = ()


AGENT_BOARDS: dict[str, AgentBoard] = {
    "native": AgentBoard(platform="posix"),
    "qemu-lm3s6965evb": AgentBoard(
        platform="hal",
        hal_folders=("qemu/common", "qemu/lm3s6965evb"),
        linker_script="shoal_board.ld",
        defines=("SHOAL_HAL_CONSOLE_UART=1",),
    ),
    "qemu-mps2-an386": AgentBoard(
        platform="hal",
        hal_folders=("qemu/common", "qemu/mps2_an386"),
        linker_script="shoal_board.ld",
        defines=("SHOAL_HAL_CONSOLE_UART=1",),
    ),
    # Real Cortex-M boards: Shoal's bare-metal HALs; platformio.ini beside the Makefile.
    "nucleo-f446re": AgentBoard(
        platform="hal",
        hal_folders=("mcu_common", "stm32f4"),
        linker_script="shoal_board.ld",
        defines=("SHOAL_HAL_CONSOLE_UART=1",),
    ),
    "nrf52840-dk": AgentBoard(
        platform="hal",
        hal_folders=("mcu_common", "nrf52840"),
        linker_script="shoal_board.ld",
        defines=("SHOAL_HAL_CONSOLE_UART=1",),
    ),
    "rpi-pico-w": AgentBoard(
        platform="hal",
        hal_folders=("mcu_common", "rp2040"),
        linker_script="shoal_board.ld",
        defines=("SHOAL_HAL_CONSOLE_UART=1",),
    ),
}
SUPPORTED_BOARDS = tuple(AGENT_BOARDS)
MAX_MODELS = 4  # agent protocol v1: models list8 of 0..4
MAX_PAYLOAD_BYTES = 2048  # agent protocol MAX_MESSAGE_BYTES; the hosted C client's payload cap
CMD_HEADER_BYTES = 7  # version, kind, corr u16, code u8, args length u16
RESP_HEADER_BYTES = 13  # version, kind, corr, code, state, error, latency_us u32, length u16
LAYERS_PER_PROFILE = 20  # agent protocol: at most 20 layers per profile message
CLIENT_TICK_MS = 50  # longest sleep between MQTT-SN client polls (its retry timers' resolution)
FIRMWARE_ID_HEADER = "shoal_agent_firmware_id.h"
MANIFEST = "agent.json"
# Copied runtime sources (relative to firmware_templates/c), in the order the Makefile lists them.
RUNTIME_FILES = (
    "agent/shoal_agent_protocol.h",
    "agent/shoal_agent_protocol.c",
    "agent/shoal_agent_platform.h",
    "mqttsn/shoal_mqttsn_client.h",
    "mqttsn/shoal_mqttsn_client.c",
    "mqttsn/shoal_mqttsn_codec.h",
    "mqttsn/shoal_mqttsn_codec.c",
)
PLATFORM_FILES = {
    "posix": (
        "agent/shoal_agent_platform_posix.c",
        "hal/posix/shoal_hal_posix.h",
        "hal/posix/shoal_hal_posix.c",
    ),
    "hal": (
        "agent/shoal_agent_platform_hal.c",
        "hal/shoal_hal.h",
        "hal/shoal_uart_transport.h",
        "hal/shoal_uart_transport.c",
        "mqttsn/shoal_frame.h",
        "mqttsn/shoal_frame.c",
    ),
}
# Bare-metal sizing (bytes / entries): messages the agent sends fit SHOAL_AGENT_SMALL_PAYLOAD
# except cmd/resp (sized by the models) and JSON publishes (text).
SMALL_PAYLOAD_BYTES = 256
JSON_PAYLOAD_BYTES = 512
HAL_OUTBOX_LEN = 4
HAL_CMD_QUEUE_LEN = 2
# RAM the HAL, newlib-nano and printf need beside the agent's own statics (measured on the
# QEMU boards: the UART ring, newlib's reent and stdio, the heap printf's float conversion
# takes), bytes.
HAL_RUNTIME_RAM_BYTES = 3072
# Flash of the bare-metal agent without the models' weights (bytes, Cortex-M -Os, measured on
# the QEMU boards: ~36 KiB for the kws agent with its kernels, agent, MQTT-SN client, protocol
# codec, HAL and newlib-nano printf) and what newlib-nano's float printf adds (JSON payloads).
HAL_CODE_FLASH_BYTES = 40960
HAL_PRINTF_FLOAT_FLASH_BYTES = 12288
RESERVED_PREFIXES = ("main", "agent", "shoal")


def firmware_id_of(folder: Path) -> str:
    """The firmware id (16 hex digits) of a generated agent folder, recomputed from its files."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.is_file() and _is_source(path.name):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _is_source(name: str) -> bool:
    """Files the firmware id covers: every generated source but the id header and manifest."""
    return name not in (FIRMWARE_ID_HEADER, MANIFEST) and (
        name.endswith((".c", ".h", ".ld")) or name == "Makefile"
    )


def generate_c_agent(role: RoleSpec, board: Board, out_dir: Path) -> list[Path]:
    """Write the C project of `role` for `board` into `out_dir`; returns the files written.

    `board` is the target (it wins over the spec's `board`). Raises ShoalInputError (writing
    nothing) for a board without an `AGENT_BOARDS` entry, a sensor driver the board does not
    offer, more than 4 models, a model input that does not fit one `cmd` (2048 - 8 bytes) or an
    output that does not fit one `resp`, more than 9 publishes (the client's topic table), a
    bare-metal agent whose static RAM estimate exceeds the board's `app_ram_bytes`, or an
    `out_dir` that exists, is not empty and was not written by this generator. Spec parts the
    C agent does not do yet (on_threshold triggers, publishes of sensors or subscriptions,
    aggregates, QoS -1, subscribes, duty cycle) are listed in agent.json `not_implemented` and
    printed as NOTE lines at boot. On bare metal a discovery (`gateway.discover`) setting is
    moot: the UART is point to point, the agent connects to whoever is at the other end.
    """
    if board.name not in AGENT_BOARDS:
        raise ShoalInputError(
            f"{role.source}: board '{board.name}': the C agent generator supports "
            f"{', '.join(SUPPORTED_BOARDS)} (other boards have no agent platform entry yet)"
        )
    if len(role.models) > MAX_MODELS:
        raise ShoalInputError(
            f"{role.source}: models: {len(role.models)} models; an agent carries at most "
            f"{MAX_MODELS} (agent protocol v1 birth)"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or _foreign(out_dir)):
        raise ShoalInputError(
            f"{out_dir}: exists and is not a folder generated by shoal (no {MANIFEST}); "
            "choose an empty or new output folder"
        )
    created = out_dir.parent  # the outermost folder this call creates, removed on error
    while not created.parent.exists():
        created = created.parent
    created_new = not created.exists()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".shoal-agent-", dir=out_dir.parent))
    try:
        _render_project(role, board, staging)
        _replace(staging, out_dir)
    except BaseException:
        if created_new:
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(path for path in out_dir.iterdir() if path.is_file())


def _foreign(folder: Path) -> bool:
    return any(folder.iterdir()) and not (folder / MANIFEST).is_file()


def _replace(staging: Path, out_dir: Path) -> None:
    """Move the finished staging folder to `out_dir` (an old generated folder is removed)."""
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + f".old-{os.getpid()}")
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out_dir)


def _prefix(name: str) -> str:
    prefix = sanitize_prefix(name)
    if prefix.lower().startswith(RESERVED_PREFIXES):
        prefix = "m_" + prefix
    return prefix


def _stamp(role: RoleSpec, board: Board, spec_sha: str) -> str:
    models = ", ".join(f"{m.name} sha256 {m.sha256}" for m in role.models) or "none"
    return (
        f"Generated by Shoal {__version__} (C agent) for role '{role.role}' ({role.name}) on "
        f"board {board.name} from {role.source.name} (sha256 {spec_sha}); models: {models}. "
        "Do not edit."
    )


def _render_project(role: RoleSpec, board: Board, folder: Path) -> None:
    spec_sha = hashlib.sha256(role.source.read_bytes()).hexdigest()
    stamp = _stamp(role, board, spec_sha)
    models = _models(role, folder)
    env = environment()
    files: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        files[path.name] = f"/* {stamp} */\n" + path.read_text()
        path.unlink()
    agent_board = AGENT_BOARDS[board.name]
    posix = agent_board.platform == "posix"
    for relative in _copied_files(agent_board):
        text = (TEMPLATES_DIR / "c" / relative).read_text()
        files[Path(relative).name] = f"/* {stamp} */\n" + text
    client_id = render_client_id(role.client_id, role.name, role.role, board.name, uid=spec_sha[:8])
    heartbeat_ms = max(1, round(role.presence.heartbeat_s * 1000))
    logic = _role_logic(role, board, models)
    sizing = _sizing(models, logic, posix)
    estimate = static_ram_estimate(models, logic, sizing, posix)
    flash = flash_estimate(models, logic)
    if not posix and flash > board.memory.app_flash_bytes:
        raise ShoalInputError(
            f"{role.source}: board '{board.name}': the agent needs about {flash} bytes of "
            "flash (weights: "
            + ", ".join(f"{m['name']} {m['weights_bytes']}" for m in models)
            + f"; code ~{HAL_CODE_FLASH_BYTES}), more than the board's app_flash_bytes "
            f"{board.memory.app_flash_bytes}; use a smaller model or a larger board"
        )
    if not posix and estimate > board.memory.app_ram_bytes:
        raise ShoalInputError(
            f"{role.source}: board '{board.name}': the agent needs about {estimate} bytes of "
            f"static RAM (models: "
            + ", ".join(f"{m['name']} arena {m['arena_bytes']}" for m in models)
            + f"; messages up to {sizing['max_payload']} bytes), more than the board's "
            f"app_ram_bytes {board.memory.app_ram_bytes}; use a smaller model or a larger board"
        )
    context: dict[str, object] = {
        "stamp": stamp,
        "role": role.role,
        "name": role.name,
        "board": board.name,
        "generator": __version__,
        "client_id": client_id,
        "models": models,
        "heartbeat_ms": heartbeat_ms,
        # Keep-alive: the gateway declares the agent lost (will) after 1.5x this without traffic.
        "keepalive_s": max(1, min(65535, math.ceil(role.presence.heartbeat_s * 2))),
        "client_tick_ms": CLIENT_TICK_MS,
        "ram_budget_bytes": board.memory.app_ram_bytes,
        **sizing,
        "posix": posix,
        "agent_kind": "native" if posix else "C",
        "platform_text": ("a POSIX process" if posix else "bare metal through shoal_hal.h"),
        "wait_text": "poll() on the UDP socket" if posix else "WFI until a UART byte",
        "platform_source": (
            "shoal_agent_platform_posix.c" if posix else "shoal_agent_platform_hal.c"
        ),
        "commands": {name: name in role.commands for name in _COMMAND_CODES},
        "will": role.presence.will,
        "birth": role.presence.birth,
        "gateway_host": role.gateway.host or "",
        "gateway_port": role.gateway.port or 0,
        "discover": role.gateway.discover,
        "group": role.gateway.group or "",
        "group_port": role.gateway.group_port or 0,
        "layers_per_profile": LAYERS_PER_PROFILE,
        "firmware_id_header": FIRMWARE_ID_HEADER,
    }
    context.update(logic)
    files["main.c"] = env.get_template("c/agent/main.c.j2").render(context)
    sources = sorted(name for name in files if name.endswith(".c"))
    artifact = "agent" if posix else "agent.elf"
    cflags = list(board.toolchain.cflags)
    if not posix:
        cflags += ["-Wall", "-Wextra", "-Werror"]
        cflags += [f"-D{d}" for d in agent_board.defines]
        cflags.append(f"-DSHOAL_MQTTSN_MAX_PAYLOAD={sizing['max_payload']}")
    files["Makefile"] = env.get_template("c/agent/Makefile.j2").render(
        stamp=stamp,
        sources=sources,
        cflags=" ".join(cflags),
        compiler=board.toolchain.compiler,
        posix=posix,
        artifact=artifact,
        linker_script=agent_board.linker_script,
        linker_inputs=sorted(name for name in files if name.endswith(".ld")),
        printf_float=_json_publishes(logic),
    )
    if board.toolchain.build_system == "platformio":
        files.update(
            agent_platformio_files(
                board,
                sources=sources,
                defines=[*agent_board.defines, f"SHOAL_MQTTSN_MAX_PAYLOAD={sizing['max_payload']}"],
                stamp=stamp,
                extra_link_flags=("-u", "_printf_float") if _json_publishes(logic) else (),
            )
        )
    for name, text in files.items():
        (folder / name).write_text(text)
    firmware_id = firmware_id_of(folder)
    id_bytes = ", ".join(f"0x{firmware_id[i : i + 2]}u" for i in range(0, 16, 2))
    (folder / FIRMWARE_ID_HEADER).write_text(
        env.get_template("c/agent/firmware_id.h.j2").render(
            stamp=stamp, firmware_id=firmware_id, id_bytes=id_bytes
        )
    )
    manifest = {
        "stamp": stamp,
        "generator": __version__,
        "role": role.role,
        "name": role.name,
        "board": board.name,
        "client_id": client_id,
        "spec": {"file": role.source.name, "sha256": spec_sha},
        "firmware_id": firmware_id,
        "firmware_id_covers": sorted(n for n in files if _is_source(n)),
        "files": {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.iterdir())
            if path.is_file()
        },
        "models": [
            {
                "name": m["name"],
                "prefix": m["prefix"],
                "sha256": m["sha256"],
                "hash": m["hash"],
                "arena_bytes": m["arena_bytes"],
                "input_bytes": m["input_bytes"],
                "output_bytes": m["output_bytes"],
                "layers": m["layer_count"],
            }
            for m in models
        ],
        "heartbeat_ms": heartbeat_ms,
        "not_implemented": context["not_implemented"],
        "executable": artifact,
        "artifact": artifact,
        "build": {"tool": "make", "toolchain": board.toolchain.compiler},
        "platform": agent_board.platform,
        "static_ram_estimate_bytes": estimate,
        "flash_estimate_bytes": flash,
        "app_ram_bytes": board.memory.app_ram_bytes,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


_COMMAND_CODES = ("infer", "set_param", "status", "profile", "reboot", "sleep")


def _dicts(value: object) -> list[dict[str, object]]:
    """A list of fact dicts (from _models/_role_logic), typed for mypy."""
    assert isinstance(value, list)
    return value


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _json_publishes(logic: dict[str, object]) -> bool:
    return any(bool(p["json"]) for p in _dicts(logic["publishes"]))


def _copied_files(agent_board: AgentBoard) -> list[str]:
    """Runtime files copied into the project (relative to firmware_templates/c)."""
    copied = [*RUNTIME_FILES, *PLATFORM_FILES[agent_board.platform]]
    for folder in agent_board.hal_folders:
        base = TEMPLATES_DIR / "c" / "hal" / folder
        copied += sorted(
            f"hal/{folder}/{p.name}"
            for p in base.iterdir()
            if p.is_file() and p.suffix in (".c", ".h", ".ld")
        )
    names = [Path(r).name for r in copied]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:  # a flat project folder: two HAL files of one name would overwrite
        raise ShoalInputError(f"C agent HAL folders {agent_board.hal_folders}: {duplicates} twice")
    return copied


def _sizing(
    models: list[dict[str, object]], logic: dict[str, object], posix: bool
) -> dict[str, int]:
    """Buffer sizes of the agent: the hosted ones on posix; on bare metal the largest message
    the role needs (a cmd carrying an input, a resp carrying an output, 256 for every other
    kind, 512 with JSON publishes), fewer queue entries and one timing slot per operator."""
    if posix:
        return {
            "max_payload": MAX_PAYLOAD_BYTES,
            "outbox_len": 8,
            "cmd_queue_len": 4,
            "max_layers": 1024,
        }
    need = JSON_PAYLOAD_BYTES if _json_publishes(logic) else SMALL_PAYLOAD_BYTES
    for m in models:
        need = max(
            need,
            _int(m["input_bytes"]) + 1 + CMD_HEADER_BYTES,
            _int(m["output_bytes"]) + RESP_HEADER_BYTES,
        )
    max_layers = max(
        (_int(layer["index"]) + 1 for m in models for layer in _dicts(m["layers"])),
        default=1,
    )
    return {
        "max_payload": (need + 15) // 16 * 16,
        "outbox_len": HAL_OUTBOX_LEN,
        "cmd_queue_len": HAL_CMD_QUEUE_LEN,
        "max_layers": max_layers,
    }


# Sizes (bytes, 32-bit Cortex-M) of the parts of the agent's static RAM that do not scale with
# the message size, rounded up: two shoal_agent_msg, a topic table entry, the agent state's
# scalars, the MQTT-SN client without its buffers, the UART transport framing state.
_AGENT_MSG_BYTES = 720
_TOPIC_BYTES = 65
_AGENT_SCALARS_BYTES = 160
_CLIENT_FIXED_BYTES = 16 * 72 + 8 * 72 + 160
_OP_FIXED_BYTES = 96


def static_ram_estimate(
    models: list[dict[str, object]],
    logic: dict[str, object],
    sizing: dict[str, int],
    posix: bool,
) -> int:
    """Bytes of RAM the agent's statics and the platform runtime take (an upper estimate that
    the QEMU build tests compare with arm-none-eabi-size)."""
    payload = sizing["max_payload"]
    packet = payload + 64 + 16  # SHOAL_MQTTSN_MAX_PACKET
    frame = packet + 2 + (packet + 2) // 254 + 2  # SHOAL_FRAME_ENCODED_MAX
    total = sum(
        _int(m[key]) + 16 for m in models for key in ("arena_bytes", "input_bytes", "output_bytes")
    )
    total += 4 * sizing["max_layers"]
    total += sizing["outbox_len"] * (payload + 4) + payload  # outbox, encode buffer
    total += sizing["cmd_queue_len"] * (payload + 4)
    total += 2 * _AGENT_MSG_BYTES + _AGENT_SCALARS_BYTES
    topics = 8 + len(_dicts(logic["publishes"]))
    total += topics * _TOPIC_BYTES
    total += payload  # role logic's application payload
    for feed in _dicts(logic["feeds"]):
        total += 4 * _int(feed["window_elements"])
    total += 4 * (_int(logic["max_sample_elements"]) + 4) * len(_dicts(logic["sensors"]))
    total += 4 * (SHOAL_MQTTSN_QUEUE_LEN * (packet + _OP_FIXED_BYTES) // 4)
    total += 3 * packet + _CLIENT_FIXED_BYTES
    if not posix:
        total += 2 * frame + 64 + HAL_RUNTIME_RAM_BYTES
    return total


SHOAL_MQTTSN_QUEUE_LEN = 4


def flash_estimate(models: list[dict[str, object]], logic: dict[str, object]) -> int:
    """Bytes of flash the bare-metal agent takes (text + data): the models' weights, replay
    samples (4 bytes each) and the measured code size (an upper estimate the QEMU build tests
    compare with arm-none-eabi-size)."""
    total = HAL_CODE_FLASH_BYTES + sum(_int(m["weights_bytes"]) for m in models)
    if _json_publishes(logic):
        total += HAL_PRINTF_FLOAT_FLASH_BYTES
    for sensor in _dicts(logic["sensors"]):
        replay = sensor["replay"]
        assert isinstance(replay, list)
        total += 4 * len(replay)
    return total


def _models(role: RoleSpec, folder: Path) -> list[dict[str, object]]:
    """Generate the role's models into `folder`; the per-model facts main.c prints."""
    entries: list[Path | bytes | tuple[Path | bytes, str]] = [
        (m.path, _prefix(m.name)) for m in role.models
    ]
    generated: tuple[GeneratedModel, ...] = generate_models(entries, folder) if entries else ()
    facts: list[dict[str, object]] = []
    for spec_model, result in zip(role.models, generated, strict=True):
        summary = result.summary
        if summary.input_bytes + 1 + CMD_HEADER_BYTES > MAX_PAYLOAD_BYTES:
            raise ShoalInputError(
                f"{role.source}: model '{spec_model.name}': input of {summary.input_bytes} "
                f"bytes does not fit one infer command (at most "
                f"{MAX_PAYLOAD_BYTES - 1 - CMD_HEADER_BYTES} bytes)"
            )
        if summary.output_bytes + RESP_HEADER_BYTES > MAX_PAYLOAD_BYTES:
            raise ShoalInputError(
                f"{role.source}: model '{spec_model.name}': output of {summary.output_bytes} "
                f"bytes does not fit one resp (at most {MAX_PAYLOAD_BYTES - RESP_HEADER_BYTES})"
            )
        ir = load_model(spec_model.path)
        plan = plan_model(ir)
        layers = [
            {
                "index": op.index,
                "code": int(getattr(BuiltinOperator, op.op)),
                "macs": int(macs),
            }
            for op, macs in zip(ir.operators, plan.macs, strict=True)
        ]
        name_bytes = spec_model.name.encode()
        facts.append(
            {
                "name": spec_model.name,
                "name_len": len(name_bytes),
                "prefix": result.prefix,
                "PREFIX": result.prefix.upper(),
                "sha256": spec_model.sha256,
                "hash": spec_model.sha256[:16],
                "hash_bytes": ", ".join(
                    f"0x{spec_model.sha256[i : i + 2]}u" for i in range(0, 16, 2)
                ),
                "arena_bytes": summary.arena_bytes,
                "weights_bytes": summary.weights_bytes,
                "input_bytes": summary.input_bytes,
                "output_bytes": summary.output_bytes,
                "layer_count": len(layers),
                "layers": layers,
            }
        )
    return facts


GENERATOR_CODES = {"sine": 0, "noise": 1, "constant": 2, "replay": 3}
U32_MASK = 0xFFFFFFFF


def _replay_values(path: Path) -> list[float]:
    """Every number of a replay file in order (the loader checked the layout)."""
    values: list[float] = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            values.extend(float(field) for field in line.replace(",", " ").split())
    return values


def _topic_segments(template: str, role: RoleSpec) -> list[str | None]:
    """The topic template as literal pieces and None where the client id goes (it may be
    given on the agent's command line)."""
    segments: list[str | None] = []
    for index, piece in enumerate(template.split("{client_id}")):
        if index:
            segments.append(None)
        text = piece.replace("{role}", role.role).replace("{name}", role.name)
        if text:
            segments.append(text)
    return segments


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _role_logic(role: RoleSpec, board: Board, models: list[dict[str, object]]) -> dict[str, object]:
    """Sensors, periodic triggers and model publishes for main.c; what the native agent does
    not do yet is listed in `not_implemented` (agent.json, boot line)."""
    not_implemented: list[str] = []
    model_index = {m.name: i for i, m in enumerate(role.models)}
    sensor_index = {s.name: i for i, s in enumerate(role.sensors)}
    sensors: list[dict[str, object]] = []
    for sensor in role.sensors:
        elements = math.prod(sensor.shape)
        driver = sensor.driver
        if not isinstance(driver, SimulatedDriver):
            raise ShoalInputError(
                f"{role.source}: sensors: '{sensor.name}': driver '{sensor.driver_name}' does "
                f"not exist on board '{board.name}' (it offers: {', '.join(board.sensor_drivers)})"
            )
        replay = _replay_values(driver.file) if driver.file is not None else []
        sensors.append(
            {
                "name": sensor.name,
                "elements": elements,
                "period_us": max(1, round(1_000_000 / sensor.rate_hz)),
                "rate_hz": sensor.rate_hz,
                "generator": GENERATOR_CODES[driver.generator],
                "amplitude": driver.amplitude,
                "frequency_hz": driver.frequency_hz,
                "offset": driver.offset,
                "value": driver.value,
                "seed": ((driver.seed * 2654435761) + 0x9E3779B9) & U32_MASK or 1,
                "replay": replay,
                "replay_samples": len(replay) // elements if replay else 0,
            }
        )
    feeds: list[dict[str, object]] = []
    for spec_model, facts in zip(role.models, models, strict=True):
        sensor = role.sensor(spec_model.input)
        pre = spec_model.preprocess
        feeds.append(
            {
                "sensor": sensor_index[sensor.name],
                "window": pre.window,
                "stride": pre.stride,
                "window_elements": pre.window * math.prod(sensor.shape),
                "sample_elements": math.prod(sensor.shape),
                "scale": pre.scale,
                "offset": pre.offset,
                "quantize": pre.quantize and spec_model.input_dtype == "int8",
                "input_float": spec_model.input_dtype == "float32",
                "output_float": spec_model.output_dtype == "float32",
                "output_elements": spec_model.output_size,
                "prefix": facts["prefix"],
                "PREFIX": facts["PREFIX"],
                "name": spec_model.name,
            }
        )
    periodic: list[dict[str, object]] = []
    on_command = [False] * len(role.models)
    for trigger in role.triggers:
        runs = [model_index[name] for name in trigger.run]
        if trigger.kind == "periodic":
            periodic.append({"period_ms": trigger.period_ms, "models": runs})
        elif trigger.kind == "on_command":
            for index in runs:
                on_command[index] = True
        else:
            not_implemented.append(f"trigger {trigger.kind}")
    publishes: list[dict[str, object]] = []
    for publish in role.publishes:
        if publish.source not in model_index:
            not_implemented.append(f"publish {publish.name}: from {publish.source} (not a model)")
            continue
        if publish.aggregate is not None or publish.qos < 0:
            not_implemented.append(f"publish {publish.name}: aggregate or QoS -1")
            continue
        spec_model = role.model(publish.source)
        post = spec_model.postprocess
        labels = list(post.labels) if post.labels else []
        ranked = bool(labels) or post.top_k is not None
        publishes.append(
            {
                "name": publish.name,
                "segments": [
                    None if s is None else _c_string(s)
                    for s in _topic_segments(publish.topic, role)
                ],
                "qos": publish.qos,
                "retain": 1 if publish.retain else 0,
                "json": publish.payload == "json",
                "model": model_index[publish.source],
                "mode": "anomaly" if post.anomaly else ("ranked" if ranked else "raw"),
                "labels": [_c_string(label) for label in labels],
                "top_k": post.top_k or 1,
                "has_threshold": post.threshold is not None or post.anomaly is not None,
                "threshold": (
                    post.anomaly.threshold
                    if post.anomaly
                    else (post.threshold if post.threshold is not None else 0.0)
                ),
                "mae": post.anomaly is not None and post.anomaly.metric == "mae",
            }
        )
    if role.subscribes:
        not_implemented.append("subscribes")
    if role.duty_cycle is not None:
        not_implemented.append("duty_cycle")
    if len(publishes) + 7 > 16:
        raise ShoalInputError(
            f"{role.source}: publishes: {len(publishes)} topics; the C client's topic table "
            "holds 16, 7 of them the agent protocol's (at most 9 publishes)"
        )
    return {
        "sensors": sensors,
        "max_sample_elements": max((math.prod(s.shape) for s in role.sensors), default=1),
        "feeds": feeds,
        "periodic": periodic,
        "on_command": on_command,
        "publishes": publishes,
        "not_implemented": not_implemented,
        "not_implemented_c": [_c_string(item) for item in not_implemented],
    }
