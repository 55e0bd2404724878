"""The C client on emulated Cortex-M boards (QEMU lm3s6965evb: M3 + PL011; mps2-an386: M4F +
CMSDK UART) with the Shoal serial framing, against a scripted gateway in this test on a TCP
socket that QEMU connects to. The platform layer is hal/qemu/ (shoal_hal.h).

Checks the whole device path: bare-metal build (platform layer, framing, client), noise on
the line, a lost CONNECT retransmitted after T_RETRY by the emulated clock,
QoS 1 both ways, and the semihosting exit status.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.firmware import mqttsn_reference as ref
from tests.firmware.conftest import APPS_DIR, CLIENT_SOURCES, HAL_DIR, MQTTSN_DIR, WARNINGS
from tests.firmware.mqttsn_reference import CodecCli, FrameReader

pytestmark = pytest.mark.sim

QEMU_HAL_DIR = HAL_DIR / "qemu"
QEMU = "qemu-system-arm"
RETRY_MS = 1000
CMD_TOPIC_ID = 0x40
# QEMU machine -> compiler flags (as in boards/qemu-*.toml).
MACHINES = {
    "lm3s6965evb": ["-mcpu=cortex-m3", "-mthumb"],
    "mps2-an386": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
}


def build_demo(machine: str, out: Path) -> Path:
    """Build apps/mqttsn_uart_demo.c with the platform layer in hal/qemu/ for `machine`."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    board_dir = QEMU_HAL_DIR / machine.replace("-", "_")
    common = QEMU_HAL_DIR / "common"
    if not (board_dir / "shoal_board.ld").is_file():
        pytest.skip(f"no QEMU platform layer for {machine} in {QEMU_HAL_DIR}")
    cmd = [
        "arm-none-eabi-gcc", *MACHINES[machine], "-Os", *WARNINGS,
        "-ffunction-sections", "-fdata-sections", f"-I{MQTTSN_DIR}", f"-I{HAL_DIR}",
        f"-I{common}", f"-I{board_dir}", f"-DSHOAL_DEMO_RETRY_MS={RETRY_MS}u",
        str(APPS_DIR / "mqttsn_uart_demo.c"), *map(str, CLIENT_SOURCES),
        str(HAL_DIR / "shoal_uart_transport.c"), *map(str, sorted(common.glob("*.c"))),
        *map(str, sorted(board_dir.glob("*.c"))), "-nostartfiles", "--specs=nano.specs",
        "--specs=nosys.specs", "-Wl,--gc-sections", f"-L{common}",
        "-T", str(board_dir / "shoal_board.ld"), "-o", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return out


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_uart_client_on_qemu(machine: str, tmp_path: Path, codec_cli: Path) -> None:
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed")
    elf = build_demo(machine, tmp_path / "demo.elf")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(10)
    port = server.getsockname()[1]
    qemu = subprocess.Popen(
        [
            QEMU, "-M", machine, "-display", "none", "-monitor", "none",
            "-semihosting-config", "enable=on,target=native",
            "-serial", f"tcp:127.0.0.1:{port},nodelay=on", "-kernel", str(elf),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    received: list[tuple[float, ref.Fields]] = []
    cli = CodecCli(codec_cli)
    try:
        conn, _ = server.accept()
        conn.settimeout(0.05)
        reader = FrameReader()
        topic_ids = {b"shoal/demo/hello": 0x41, b"shoal/demo/echo": 0x42}

        def reply(msg: ref.Fields) -> None:
            # Leading 0x00 flushes; noise before it must be ignored by the device.
            conn.sendall(b"line noise\x00" + ref.frame(ref.encode(msg)))

        deadline = time.monotonic() + 25
        done = False
        while not done and time.monotonic() < deadline:
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            if not data:
                break
            for raw in reader.feed(data):
                m = cli.decode(raw)
                assert isinstance(m, ref.Fields), f"device sent a malformed datagram {raw.hex()}"
                received.append((time.monotonic(), m))
                if m.type == ref.CONNECT and sum(r.type == ref.CONNECT for _, r in received) > 1:
                    reply(ref.Fields(ref.CONNACK))  # the first CONNECT is "lost"
                elif m.type == ref.SUBSCRIBE:
                    reply(
                        ref.Fields(ref.SUBACK, flags=0x20, topic_id=CMD_TOPIC_ID, msg_id=m.msg_id)
                    )
                elif m.type == ref.REGISTER:
                    reply(ref.Fields(ref.REGACK, topic_id=topic_ids[m.text], msg_id=m.msg_id))
                elif m.type == ref.PUBLISH:
                    reply(ref.Fields(ref.PUBACK, topic_id=m.topic_id, msg_id=m.msg_id))
                    if m.topic_id == topic_ids[b"shoal/demo/hello"]:
                        cmd = ref.Fields(
                            ref.PUBLISH,
                            flags=0x20,
                            topic_id=CMD_TOPIC_ID,
                            msg_id=9,
                            data=b"ping-42",
                        )
                        reply(cmd)
                elif m.type == ref.DISCONNECT:
                    reply(ref.Fields(ref.DISCONNECT))
                    done = True
        status = qemu.wait(timeout=10)
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
        server.close()
        cli.close()
    types = [m.type for _, m in received]
    connects = [t for t, m in received if m.type == ref.CONNECT]
    assert len(connects) >= 2, types
    gap_ms = (connects[1] - connects[0]) * 1000
    assert 0.7 * RETRY_MS <= gap_ms <= 1.5 * RETRY_MS, f"T_RETRY on the emulated clock: {gap_ms}"
    pubs = [m for _, m in received if m.type == ref.PUBLISH]
    assert [p.data for p in pubs] == [b"hello from shoal-uart-demo", b"ping-42"]
    assert any(m.type == ref.PUBACK and m.msg_id == 9 for _, m in received)
    assert types[-1] == ref.DISCONNECT
    assert status == 0, "semihosting exit status from the firmware"
    assert reader.bad_frames == 0


def test_uart_client_reaches_broker_through_gateway(tmp_path: Path) -> None:
    """QEMU UART -> `shoal gateway --serial socket://...` -> mosquitto -> paho, and back."""
    pytest.importorskip("host_sdk.mqttsn.gateway", reason="the MQTT-SN gateway is not present")
    from host_sdk.broker import MosquittoBroker, find_mosquitto, free_tcp_port

    if shutil.which(QEMU) is None or find_mosquitto() is None:
        pytest.skip("needs qemu-system-arm and mosquitto")
    elf = build_demo("lm3s6965evb", tmp_path / "demo.elf")
    serial_port = free_tcp_port()
    got: list[tuple[str, bytes]] = []
    with MosquittoBroker() as broker:
        probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{os.getpid()}")
        probe.on_message = lambda _c, _u, m: got.append((m.topic, bytes(m.payload)))
        probe.connect("127.0.0.1", broker.port)
        probe.subscribe("shoal/demo/#", 1)
        probe.loop_start()
        qemu = subprocess.Popen(
            [
                QEMU, "-M", "lm3s6965evb", "-display", "none", "-monitor", "none",
                "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
                "-serial", f"tcp:127.0.0.1:{serial_port},server=on,wait=off,nodelay=on",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        gateway = subprocess.Popen(
            [
                sys.executable, "-m", "host_sdk.cli", "gateway", "--broker", broker.url,
                "--udp", "127.0.0.1:0", "--serial", f"socket://127.0.0.1:{serial_port}",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            sent = False
            while qemu.poll() is None and time.monotonic() < deadline:
                if not sent and ("shoal/demo/hello", b"hello from shoal-uart-demo") in got:
                    probe.publish("shoal/demo/cmd", b"from-the-broker", qos=1)
                    sent = True
                time.sleep(0.05)
            status = qemu.poll()
        finally:
            for proc in (qemu, gateway):
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            probe.loop_stop()
            probe.disconnect()
        gateway_err = gateway.stderr.read() if gateway.stderr else ""
    assert status == 0, f"firmware did not finish (status {status}); gateway: {gateway_err}"
    assert ("shoal/demo/echo", b"from-the-broker") in got, got
