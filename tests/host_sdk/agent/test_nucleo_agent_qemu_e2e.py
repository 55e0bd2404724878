"""End to end: the C agent generated for the real board nucleo-f446re (Shoal's bare-metal
STM32F4 HAL) runs on QEMU's netduinoplus2, with mosquitto and `shoal gateway`.

The netduinoplus2 is an STM32F405: USART1/USART2, their IRQs (37/38), SysTick, the NVIC and
the memory map are the STM32F446's, so the nucleo image runs unchanged except for one build
define: SHOAL_STM32F4_SWAP_UARTS=1 puts the link on USART1 (QEMU's first -serial, which
QemuBoard connects to the gateway's --serial-listen) and the console on USART2 (the second
-serial, which QemuBoard reads). QEMU models no RCC, so the HAL's clock bring-up times out and
it runs on its 16 MHz HSI fallback while QEMU clocks SysTick at 168 MHz: the agent's
milliseconds pass about 10x faster than real ones (retries and heartbeats come sooner; nothing
here depends on their period). Checked: the boot line carries agent.json's firmware id and the
model's hash, the birth arrives through the gateway with the same id, and an infer command is
answered with exactly TFLM's output bytes; with the project's kws model and with tiny_kws from
../shared/models (skipped when absent). Every process is stopped in a `finally`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import gateway_harness as harness  # tests/host_sdk/mqttsn, put on sys.path by conftest.py
import numpy as np
import pytest

from codegen.emit.c_agent import generate_c_agent
from codegen.ir.board import Qemu
from codegen.loaders.board_loader import get_board
from codegen.loaders.role_loader import load_role_spec
from host_sdk.agent import protocol
from host_sdk.hil.qemu import QemuBoard, qemu_available

REPO = Path(__file__).resolve().parents[3]
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"
BOARD = "nucleo-f446re"

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def _decoded(probe_client, topic: str, predicate, timeout_s: float) -> list[dict]:
    msgs = probe_client.wait_for(
        lambda all_msgs: predicate([protocol.decode(p) for t, p, _q, _r in all_msgs if t == topic]),
        timeout_s,
    )
    return [protocol.decode(p) for t, p, _q, _r in msgs if t == topic]


# tiny_kws (MLPerf Tiny keyword spotting, ../shared/models) has the same (1, 49, 10, 1) input
# as the project's own model but 12 outputs.
TINY_KWS_LABELS = '[down, go, left, "no", "off", "on", right, stop, up, "yes", silence, unknown]'


def _spec(tmp_path: Path, client_id: str, model: Path) -> Path:
    text = EXAMPLE.read_text()
    replacements = {
        "../../tests/data/shoal_kws_tiny.tflite": str(model),
        'client_id: "kws-{name}"': f'client_id: "{client_id}"',
    }
    if model.name == "tiny_kws.tflite":
        replacements['labels: [silence, unknown, "yes", "no"]'] = f"labels: {TINY_KWS_LABELS}"
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "kws.yaml"
    path.write_text(text)
    return path


def _make_with(folder: Path, define: str) -> Path:
    """Build with the generated Makefile, its CFLAGS plus `define`."""
    makefile = (folder / "Makefile").read_text()
    cflags = next(line for line in makefile.splitlines() if line.startswith("CFLAGS"))
    flags = f"{cflags.split('=', 1)[1].strip()} -D{define}"
    built = subprocess.run(
        ["make", f"CFLAGS={flags}"], cwd=folder, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "warning" not in (built.stdout + built.stderr).lower()
    return folder / json.loads((folder / "agent.json").read_text())["artifact"]


@pytest.mark.parametrize("model_name", ["shoal_kws_tiny", "tiny_kws"])
def test_nucleo_agent_on_netduinoplus2_boots_births_and_infers_like_tflm(
    broker, probe, tmp_path: Path, request: pytest.FixtureRequest, model_name: str
) -> None:
    for tool in ("arm-none-eabi-gcc", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is needed to build the agent")
    if not qemu_available():
        pytest.skip("qemu-system-arm is not installed")
    run_tflm = pytest.importorskip("host_sdk.verify.tflm_oracle").run_tflm
    if model_name == "tiny_kws":
        model = request.getfixturevalue("shared_models_dir") / "tiny_kws.tflite"
    else:
        model = MODEL
    nucleo = get_board(BOARD)
    client_id = harness.unique("kn")
    role = load_role_spec(_spec(tmp_path, client_id, model))
    out = tmp_path / "agent"
    generate_c_agent(role, nucleo, out)
    elf = _make_with(out, "SHOAL_STM32F4_SWAP_UARTS=1")
    manifest = json.loads((out / "agent.json").read_text())
    firmware_id = bytes.fromhex(manifest["firmware_id"])
    model_hash = hashlib.sha256(model.read_bytes()).digest()[:8]
    emulated = dataclasses.replace(
        nucleo,
        qemu=Qemu(machine="netduinoplus2", cpu="cortex-m4", uart="stm32", uart_base_address=0),
    )

    base = f"shoal/v1/{role.role}/{client_id}"
    probe.subscribe(f"{base}/#", qos=1)
    gateway = harness.ShoalGatewayProcess(
        broker.url, "--serial-listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "gw")
    )
    qemu = None
    try:
        ((host, port),) = gateway.serial_listen
        qemu = QemuBoard(emulated, elf, serial_link=f"tcp:{host}:{port},nodelay=on", name=BOARD)
        qemu.start()
        boot = qemu.expect(r"^SHOAL-AGENT BOOT .*$", 30).group(0).decode()
        assert f"firmware={manifest['firmware_id']}" in boot
        assert f"models=kws:{model_hash.hex()}" in boot
        assert f"role={role.role} board={BOARD}" in boot
        qemu.expect(r"^CONNECTED\r?$", 30)

        birth = _decoded(probe, f"{base}/birth", lambda b: len(b) >= 1, 30)[0]
        assert birth["board"] == BOARD and birth["firmware_id"] == firmware_id
        assert [(m["hash"], m["name"]) for m in birth["models"]] == [(model_hash, "kws")]
        assert 0 < birth["free_ram"] < nucleo.memory.app_ram_bytes

        rng = np.random.default_rng(int(port))
        x = rng.integers(-128, 128, size=role.models[0].input_shape, dtype=np.int8)
        expected = run_tflm(model.read_bytes(), [x])[0].tobytes()
        cmd = {"kind": "cmd", "corr": 777, "code": 1, "args": b"\x00" + x.tobytes()}
        probe.publish(f"{base}/cmd", protocol.encode(cmd), qos=1)
        resps = _decoded(probe, f"{base}/resp", lambda r: any(m["corr"] == 777 for m in r), 40)
        resp = next(m for m in resps if m["corr"] == 777)
        assert (resp["code"], resp["state"], resp["error"]) == (1, 0, 0)
        assert resp["result"] == expected
    finally:
        if qemu is not None:
            qemu.close()
        gateway.stop()
