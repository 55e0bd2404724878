"""Role specs: the schema, the loader's file:line errors, fleets with defaults, the examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from codegen.errors import ShoalInputError
from codegen.ir.role import AdcDriver, I2cDriver, SimulatedDriver, UartLinesDriver
from codegen.loaders.role_loader import load_fleet, load_role_spec, role_schema
from codegen.tflite_writer import TensorSpec, single_op_model

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
KWS = ROOT / "tests" / "data" / "shoal_kws_tiny.tflite"
DENSE = ROOT / "tests" / "data" / "shoal_dense_tiny.tflite"
EXAMPLES = ROOT / "examples" / "roles"
REPLAY = ROOT / "tests" / "data" / "roles" / "vibration_replay.csv"

# A valid spec; every error case below changes one part of it. Line numbers matter.
BASE = """\
name: a
role: r
board: native
sensors:
  - name: mic
    kind: audio_features
    rate_hz: 50
    shape: [10]
    driver: {simulated: {generator: noise}}
models:
  - name: kws
    path: KWS
    input: mic
    postprocess: {argmax: {labels: [a, b, c, d]}}
publishes:
  - {name: out, topic: "t/{client_id}", from: kws, qos: 1}
"""

ROLE_KEYS = (
    "board, client_id, commands, duty_cycle, gateway, models, name, presence, publishes, role,"
    " sensors, subscribes, triggers, version"
)
BOARDS = (
    "esp32-devkitc, micropython-unix, native, nrf52840-dk, nucleo-f446re, qemu-lm3s6965evb,"
    " qemu-mps2-an386, rpi-pico-w"
)
NAME_RULE = "a name: lower-case letter first, then a-z 0-9 _ -, at most 32 characters"
TRIG = "publishes:"

# (id, [(old, new) replacements in BASE], line, "key: problem")
ERRORS: list[tuple[str, list[tuple[str, str]], int, str]] = [
    (
        "unknown top key",
        [("board: native\n", "board: native\nboard_rev: 2\n")],
        4,
        f"board_rev: unknown key 'board_rev' (accepted keys: {ROLE_KEYS})",
    ),
    (
        "missing required",
        [("role: r\n", "")],
        1,
        "(top level): missing required key 'role' (required here: name, role, board)",
    ),
    (
        "wrong type",
        [("rate_hz: 50", "rate_hz: fast")],
        7,
        "sensors[0].rate_hz: expected a number, got the text 'fast'",
    ),
    (
        "null value",
        [("rate_hz: 50", "rate_hz:")],
        7,
        "sensors[0].rate_hz: expected a number, got nothing (null)",
    ),
    (
        "boolean type",
        [("qos: 1}", 'qos: 1, retain: "yes"}')],
        16,
        "publishes[0].retain: expected true or false, got the text 'yes'",
    ),
    (
        "enum kind",
        [("kind: audio_features", "kind: sonar")],
        6,
        "sensors[0].kind: 'sonar' is not one of: audio, audio_features, accelerometer, vibration,"
        " temperature, humidity, pressure, light, generic",
    ),
    (
        "enum generator",
        [("generator: noise", "generator: square")],
        9,
        "sensors[0].driver.simulated.generator: 'square' is not one of: sine, noise, constant, replay",
    ),
    (
        "qos out of range",
        [("qos: 1}", "qos: 3}")],
        16,
        "publishes[0].qos: 3 is out of range (accepted: -1..2)",
    ),
    (
        "rate not positive",
        [("rate_hz: 50", "rate_hz: 0")],
        7,
        "sensors[0].rate_hz: must be greater than 0, got 0",
    ),
    ("name pattern", [("name: a\n", "name: A b\n")], 1, f"name: 'A b' is not {NAME_RULE}"),
    (
        "two drivers",
        [("{simulated: {generator: noise}}", "{simulated: {generator: noise}, adc: {channel: 1}}")],
        9,
        "sensors[0].driver: give exactly one of: simulated, adc, i2c, uart_lines (given: simulated, adc)",
    ),
    (
        "no driver",
        [("{simulated: {generator: noise}}", "{}")],
        9,
        "sensors[0].driver: give exactly one of: simulated, adc, i2c, uart_lines (given: none)",
    ),
    (
        "unknown nested key",
        [("input: mic\n", "input: mic\n    inptu: x\n")],
        14,
        "models[0].inptu: unknown key 'inptu' (accepted keys: input, name, path, postprocess, preprocess)",
    ),
    (
        "empty labels",
        [("[a, b, c, d]", "[]")],
        14,
        "models[0].postprocess.argmax.labels: needs at least 1 item",
    ),
    (
        "duplicate label",
        [("[a, b, c, d]", "[a, b, a, d]")],
        14,
        "models[0].postprocess.argmax.labels: lists 'a' twice",
    ),
    (
        "label count",
        [("[a, b, c, d]", "[a, b, c]")],
        14,
        "models[0].postprocess.argmax.labels: 3 labels for a model with 4 outputs (give one label per output)",
    ),
    (
        "model file missing",
        [("path: KWS", "path: nope.tflite")],
        12,
        "models[0].path: model file nope.tflite not found (TMP/nope.tflite)",
    ),
    (
        "model not tflite",
        [("path: KWS", "path: not.tflite")],
        12,
        "models[0].path: not a loadable int8 TFLite model: TMP/not.tflite: not a TFLite model"
        " (expected a flatbuffer with file identifier 'TFL3' at bytes 4..8, got b'o' in 5 bytes)",
    ),
    (
        "window mismatch",
        [("input: mic\n", "input: mic\n    preprocess: {window: 40}\n")],
        14,
        "models[0].preprocess.window: model input shape [1, 49, 10, 1] does not match window 40 x"
        " sensor 'mic' shape [10] (accepted: window 49)",
    ),
    (
        "sensor shape mismatch",
        [("shape: [10]", "shape: [3]")],
        13,
        "models[0].input: model input shape [1, 49, 10, 1] does not match window 163 x sensor 'mic'"
        " shape [3] (accepted: window 49 x sensor shape [10, 1])",
    ),
    (
        "sensor layout mismatch",
        [("shape: [10]", "shape: [5, 2]")],
        13,
        "models[0].input: model input shape [1, 49, 10, 1] does not match window 49 x sensor 'mic'"
        " shape [5, 2] (accepted: window 49 x sensor shape [10, 1])",
    ),
    (
        "unknown sensor",
        [("input: mic\n", "input: mice\n")],
        13,
        "models[0].input: unknown sensor 'mice' (accepted: mic)",
    ),
    (
        "unknown board",
        [("board: native", "board: arduino")],
        3,
        f"board: unknown board 'arduino' (accepted: {BOARDS})",
    ),
    (
        "driver not on board",
        [("{simulated: {generator: noise}}", "{adc: {channel: 1}}")],
        9,
        "sensors[0].driver.adc: driver 'adc' is not available on board 'native' (accepted: simulated)",
    ),
    (
        "duplicate name",
        [("  - name: kws\n", "  - name: mic\n"), ("from: kws", "from: mic")],
        11,
        "models[0].name: name 'mic' is already used by sensors[0] (line 5); sensors, models and"
        " subscriptions need distinct names",
    ),
    (
        "duplicate publish name",
        [(TRIG, f"{TRIG}\n  - {{name: out, topic: t, from: mic}}")],
        17,
        "publishes[1].name: name 'out' is already used by publishes[0] (line 16)",
    ),
    (
        "publish unknown source",
        [("from: kws", "from: kwz")],
        16,
        "publishes[0].from: unknown source 'kwz' (accepted: models, sensors and subscriptions: kws, mic)",
    ),
    (
        "topic placeholder",
        [("t/{client_id}", "t/{clientid}")],
        16,
        "publishes[0].topic: unknown placeholder {clientid} in 't/{clientid}' (accepted: {client_id}, {role}, {name})",
    ),
    (
        "topic wildcard",
        [("t/{client_id}", "t/+/x")],
        16,
        "publishes[0].topic: topic 't/+/x' contains the MQTT wildcard '+' (a publish topic names one"
        " topic; wildcards are for subscribes)",
    ),
    (
        "topic reserved for the protocol",
        [("t/{client_id}", "shoal/v1/{role}/{client_id}/x")],
        16,
        "publishes[0].topic: topic 'shoal/v1/{role}/{client_id}/x' is under 'shoal/v1/', reserved"
        " for the agent protocol (docs/agent_protocol.md); publish application data elsewhere",
    ),
    (
        "client id character",
        [("board: native\n", 'board: native\nclient_id: "a/{name}"\n')],
        4,
        "client_id: 'a/{name}' contains '/' (a client id is a topic level: printable ASCII"
        " without '/', '+', '#' or spaces)",
    ),
    (
        "role too long",
        [("role: r\n", "role: abcdefghijklmnopq\n")],
        2,
        "role: 'abcdefghijklmnopq' is not a role: lower-case letter first, then a-z 0-9 _, at most"
        " 16 characters (a topic level of the agent protocol)",
    ),
    (
        "not a finite number",
        [("board: native\n", "board: native\npresence: {heartbeat_s: .inf}\n")],
        4,
        "presence.heartbeat_s: inf is not a finite number (.inf and .nan are not accepted)",
    ),
    (
        "yaml merge key",
        [("board: native\n", "board: native\nduty_cycle: &d {sleep_s: 2}\npresence:\n  <<: *d\n")],
        6,  # the merge line: a merged key has no line of its own
        "presence.sleep_s: unknown key 'sleep_s' (accepted keys: birth, heartbeat_s, will)",
    ),
    (
        "client id too long",
        [
            ("name: a\n", "name: abcdefghij\n"),
            ("board: native\n", 'board: native\nclient_id: "{board}-{role}-{name}-{uid}"\n'),
        ],
        4,
        "client_id: '{board}-{role}-{name}-{uid}' gives 'native-r-abcdefghij-0123abcd', 28 bytes"
        " (accepted: 1..23 bytes, the MQTT-SN limit; {uid} counts 8)",
    ),
    (
        "replay file content",
        [("generator: noise", "generator: replay, file: bad.csv"), ("shape: [10]", "shape: [1]")],
        9,
        "sensors[0].driver.simulated.file: replay file bad.csv line 3: '1 2' is not 1 number(s)"
        " (one sample of shape [1] per line)",
    ),
    (
        "topic brace",
        [("t/{client_id}", "t/{client_id")],
        16,
        "publishes[0].topic: unbalanced brace in 't/{client_id' (placeholders look like {role})",
    ),
    (
        "subscribe wildcard placement",
        [(TRIG, 'subscribes:\n  - {name: s, topic: "a/#/b"}\n' + TRIG)],
        16,
        "subscribes[0].topic: misplaced wildcard '#' in 'a/#/b' ('+' fills a whole level, '#' only the last)",
    ),
    (
        "top_k",
        [("[a, b, c, d]}}", "[a, b, c, d]}, top_k: 5}")],
        14,
        "models[0].postprocess.top_k: 5 exceeds the model's 4 outputs (accepted: 1..4)",
    ),
    (
        "anomaly on a classifier",
        [("{argmax: {labels: [a, b, c, d]}}", "{anomaly: {threshold: 0.5}}")],
        14,
        "models[0].postprocess.anomaly: the reconstruction error needs as many outputs as inputs; the"
        " model has 4 outputs for 490 inputs (accepted: an autoencoder)",
    ),
    (
        "anomaly with argmax",
        [("labels: [a, b, c, d]}}", "labels: [a, b, c, d]}, anomaly: {threshold: 1}}")],
        14,
        "models[0].postprocess.anomaly: anomaly excludes argmax and top_k (give one kind of result)",
    ),
    (
        "quantize a float input",
        [
            ("path: KWS", "path: DENSE"),
            ("shape: [10]", "shape: [1]"),
            ("[a, b, c, d]", "[a, b, c]"),
            ("input: mic\n", "input: mic\n    preprocess: {window: 16, quantize: true}\n"),
        ],
        14,
        "models[0].preprocess.quantize: the model's input is float32 (the graph quantizes it): use quantize: false",
    ),
    (
        "heartbeat not positive",
        [("board: native\n", "board: native\npresence: {heartbeat_s: 0}\n")],
        4,
        "presence.heartbeat_s: must be greater than 0, got 0",
    ),
    (
        "period not positive",
        [(TRIG, "triggers:\n  - periodic: {period_ms: -5}\n" + TRIG)],
        16,
        "triggers[0].periodic.period_ms: -5 is out of range (accepted: >= 1)",
    ),
    (
        "sleep not positive",
        [("board: native\n", "board: native\nduty_cycle: {sleep_s: -1}\n")],
        4,
        "duty_cycle.sleep_s: must be greater than 0, got -1",
    ),
    (
        "trigger runs unknown model",
        [(TRIG, "triggers:\n  - periodic: {period_ms: 5, run: [kws, other]}\n" + TRIG)],
        16,
        "triggers[0].periodic.run[1]: unknown model 'other' (accepted: kws)",
    ),
    (
        "threshold both sides",
        [(TRIG, "triggers:\n  - on_threshold: {source: mic, above: 1, below: 2}\n" + TRIG)],
        16,
        "triggers[0].on_threshold: give exactly one of: above, below",
    ),
    (
        "threshold unknown source",
        [(TRIG, "triggers:\n  - on_threshold: {source: ghost, above: 1}\n" + TRIG)],
        16,
        "triggers[0].on_threshold.source: unknown source 'ghost' (accepted: models and sensors: kws, mic)",
    ),
    (
        "on_command without infer",
        [(TRIG, "commands: [status]\ntriggers:\n  - on_command: {}\n" + TRIG)],
        17,
        "triggers[0].on_command: an on_command trigger needs 'infer' in commands",
    ),
    (
        "unknown command",
        [(TRIG, "commands: [status, dance]\n" + TRIG)],
        15,
        "commands[1]: 'dance' is not one of: infer, set_param, status, profile, reboot, sleep",
    ),
    (
        "duplicate command",
        [(TRIG, "commands: [status, status]\n" + TRIG)],
        15,
        "commands: lists 'status' twice",
    ),
    (
        "gateway port",
        [("board: native\n", 'board: native\ngateway: {address: "h:70000"}\n')],
        4,
        "gateway.address: port 70000 is out of range (accepted: 1..65535)",
    ),
    (
        "gateway form",
        [("board: native\n", "board: native\ngateway: {address: localhost}\n")],
        4,
        "gateway.address: 'localhost' is not host:port",
    ),
    (
        "gateway group",
        [("board: native\n", "board: native\ngateway: {discover: {group: 10.0.0.1}}\n")],
        4,
        "gateway.discover.group: '10.0.0.1' is not an IPv4 multicast address (accepted: 224.0.0.0..239.255.255.255)",
    ),
    (
        "client id placeholder",
        [("board: native\n", 'board: native\nclient_id: "x-{serial}"\n')],
        4,
        "client_id: unknown placeholder {serial} in 'x-{serial}' (accepted: {name}, {role}, {board}, {uid})",
    ),
    (
        "replay file missing",
        [("generator: noise", "generator: replay, file: gone.csv")],
        9,
        "sensors[0].driver.simulated.file: replay file gone.csv not found (TMP/gone.csv)",
    ),
    (
        "replay without file",
        [("generator: noise", "generator: replay")],
        9,
        "sensors[0].driver.simulated: generator 'replay' needs 'file' (samples to replay)",
    ),
    (
        "file without replay",
        [("generator: noise", "generator: sine, file: x.csv")],
        9,
        "sensors[0].driver.simulated.file: 'file' is only for generator 'replay', not 'sine'",
    ),
    (
        "version",
        [("name: a\n", "version: 2\nname: a\n")],
        1,
        "version: 2 is not supported (accepted: 1)",
    ),
    (
        "yaml syntax",
        [("kind: audio_features", "kind: [audio")],
        7,
        "not valid YAML: while parsing a flow sequence expected ',' or ']', but got ':'",
    ),
    (
        "duplicate yaml key",
        [("board: native\n", "board: native\nboard: qemu\n")],
        4,
        'not valid YAML: while constructing a mapping found duplicate key "board" with value "qemu"'
        ' (original value: "native")',
    ),
    (
        "non-text key",
        [("board: native\n", "board: native\n3: x\n")],
        4,
        "(top level): keys must be text, got 3",
    ),
]


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    (tmp_path / "not.tflite").write_bytes(b"hello")
    (tmp_path / "bad.csv").write_text("# g\n0.5\n1 2\n")
    path = tmp_path / name
    path.write_text(text.replace("KWS", str(KWS)).replace("DENSE", str(DENSE)))
    return path


@pytest.mark.parametrize(
    ("replacements", "line", "message"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_each_error_names_file_line_key_problem_and_accepted(
    tmp_path: Path, replacements: list[tuple[str, str]], line: int, message: str
) -> None:
    text = BASE
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new, 1)
    path = write(tmp_path, text)
    with pytest.raises(ShoalInputError) as info:
        load_role_spec(path)
    assert str(info.value) == f"{path}:{line}: {message.replace('TMP', str(tmp_path))}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "not.tflite", "spec.yaml"]


def test_the_base_spec_is_valid_and_resolves_model_facts(tmp_path: Path) -> None:
    spec = load_role_spec(write(tmp_path, BASE))
    (model,) = spec.models
    assert model.input_shape == (1, 49, 10, 1) and model.output_size == 4
    assert model.preprocess.window == 49 and model.preprocess.stride == 49  # defaults
    assert model.preprocess.quantize and model.input_dtype == "int8"
    assert model.input_scale is not None and model.input_zero_point is not None
    assert model.postprocess.labels == ("a", "b", "c", "d")
    assert spec.publishes[0].qos == 1 and spec.publishes[0].payload == "binary"
    assert spec.commands == ("infer", "status", "profile")
    assert spec.gateway.discover and spec.gateway.group == "225.1.1.1"
    assert spec.client_id == "shoal-{name}"


@pytest.mark.parametrize(
    ("text", "got"),
    [("- a\n- b\n", "a list"), ("just text\n", "the text 'just text'"), ("", "nothing (null)")],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ShoalInputError) as info:
        load_role_spec(path)
    assert str(info.value) == (
        f"{path}:1: (top level): the top level must be a mapping of role fields (version, name,"
        " role, board, client_id, sensors, models, triggers, publishes, subscribes, commands,"
        f" presence, duty_cycle, gateway), got {got}"
    )


def _tiny_model(op: str, in_dtype: str, out_dtype: str) -> bytes:
    def spec(shape: tuple[int, ...], dtype: str) -> TensorSpec:
        quantized = dtype != "float32"
        return TensorSpec(
            shape,
            dtype=dtype,
            scale=(0.1,) if quantized else None,
            zero_point=(128 if dtype == "uint8" else 0,) if quantized else None,
        )

    return single_op_model(op, [spec((1, 490), in_dtype)], [spec((1, 490), out_dtype)])


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (_tiny_model("RESHAPE", "float32", "float32"), "not an int8 model (no int8 tensors)"),
        (_tiny_model("RESHAPE", "int16", "int16"), "not an int8 model (no int8 tensors)"),
        (
            _tiny_model("QUANTIZE", "uint8", "int8"),
            "not a loadable int8 TFLite model: TMP/m.tflite: 1 unsupported operator(s):;"
            " operator 0 QUANTIZE v1 (uint8): input dtype uint8 (supported: float32, int8);"
            " supported ops (int8 activations",
        ),
    ],
    ids=["float32", "int16", "uint8 input"],
)
def test_models_that_are_not_int8_are_refused_in_one_line(
    tmp_path: Path, model: bytes, problem: str
) -> None:
    (tmp_path / "m.tflite").write_bytes(model)
    path = write(
        tmp_path,
        BASE.replace("path: KWS", "path: m.tflite").replace("labels: [a, b, c, d]", "labels: [x]"),
    )
    with pytest.raises(ShoalInputError) as info:
        load_role_spec(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:12: models[0].path: {problem.replace('TMP', str(tmp_path))}")


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "role_spec.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "../../tests/data/shoal_kws_tiny.tflite" in example
    spec = load_role_spec(
        write(tmp_path, example.replace("../../tests/data/shoal_kws_tiny.tflite", "KWS"))
    )
    assert spec.name == "kws-kitchen" and spec.models[0].postprocess.top_k == 2


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ShoalInputError, match=r"absent\.yaml: cannot read role spec"):
        load_role_spec(tmp_path / "absent.yaml")


def test_real_board_drivers_replay_and_an_autoencoder_anomaly(tmp_path: Path) -> None:
    # A 16 -> 16 int8 fully connected model: output size equals input size, so the
    # reconstruction error is defined.
    weights = np.eye(16, dtype=np.int8) * 64
    model = single_op_model(
        "FULLY_CONNECTED",
        [
            TensorSpec((1, 16), scale=(0.05,), zero_point=(3,)),
            TensorSpec((16, 16), scale=(0.01,), zero_point=(0,), data=weights),
            TensorSpec(
                (16,),
                dtype="int32",
                scale=(0.0005,),
                zero_point=(0,),
                data=np.zeros(16, dtype=np.int32),
            ),
        ],
        [TensorSpec((1, 16), scale=(0.05,), zero_point=(3,))],
    )
    (tmp_path / "ae.tflite").write_bytes(model)
    path = tmp_path / "ad.yaml"
    path.write_text(f"""\
name: pump
role: anomaly
board: rpi-pico-w
sensors:
  - {{name: vib, kind: vibration, rate_hz: 200, shape: [1], driver: {{adc: {{channel: 2}}}}}}
  - {{name: imu, kind: accelerometer, rate_hz: 10, shape: [6], driver: {{i2c: {{address: 0x68, register: 0x3B, length: 12}}}}}}
  - {{name: log, kind: generic, rate_hz: 1, shape: [2], driver: {{uart_lines: {{port: 1}}}}}}
  - {{name: rep, kind: vibration, rate_hz: 5, shape: [1], driver: {{simulated: {{generator: replay, file: {REPLAY}}}}}}}
models:
  - name: ae
    path: ae.tflite
    input: vib
    preprocess: {{window: 16, stride: 8, scale: 0.5, offset: -1}}
    postprocess: {{anomaly: {{threshold: 0.2, metric: mae}}}}
triggers:
  - on_threshold: {{source: ae, above: 0.2, run: [ae]}}
""")
    spec = load_role_spec(path)
    drivers = [s.driver for s in spec.sensors]
    assert drivers[0] == AdcDriver(channel=2)
    assert drivers[1] == I2cDriver(address=0x68, register=0x3B, length=12)
    assert drivers[2] == UartLinesDriver(port=1)
    assert isinstance(drivers[3], SimulatedDriver) and drivers[3].file == REPLAY
    (ae,) = spec.models
    assert ae.postprocess.anomaly is not None and ae.postprocess.anomaly.metric == "mae"
    assert (ae.input_scale, ae.input_zero_point) == (pytest.approx(0.05), 3)
    assert ae.preprocess.stride == 8 and ae.preprocess.offset == -1.0
    assert spec.triggers[0].above == 0.2 and spec.triggers[0].run == ("ae",)


@pytest.mark.parametrize("name", ["kws", "vibration_anomaly", "coordinator"])
def test_examples_load(name: str) -> None:
    spec = load_role_spec(EXAMPLES / f"{name}.yaml")
    assert spec.source == EXAMPLES / f"{name}.yaml"
    for model in spec.models:
        assert model.path.is_file() and len(model.sha256) == 64
    if name == "kws":
        assert spec.models[0].postprocess.labels == ("silence", "unknown", "yes", "no")
    if name == "vibration_anomaly":
        assert spec.models[0].input_dtype == "float32" and not spec.models[0].preprocess.quantize
        assert spec.duty_cycle is not None and spec.duty_cycle.sleep_s == 30
    if name == "coordinator":
        assert spec.models == () and spec.publishes[0].aggregate is not None


def test_fleet_merges_defaults_into_every_role() -> None:
    roles = load_fleet(EXAMPLES / "fleet.yaml")
    assert [r.name for r in roles] == ["kws-kitchen", "kws-hall", "coordinator"]
    kitchen, hall, coordinator = roles
    assert kitchen.board == "native" and hall.board == "micropython-unix"  # role wins
    assert hall.presence.heartbeat_s == 5 and hall.presence.birth and hall.presence.will
    assert kitchen.presence.heartbeat_s == 20
    assert {r.client_id for r in roles} == {"{name}"}
    assert coordinator.commands == ("status",) and kitchen.commands == (
        "infer",
        "status",
        "profile",
    )
    assert all(r.gateway.port == 10000 for r in roles)
    assert kitchen.models[0].sha256 == hall.models[0].sha256


def test_a_plain_spec_is_a_fleet_of_one_and_a_fleet_is_not_a_spec() -> None:
    (one,) = load_fleet(EXAMPLES / "kws.yaml")
    assert one.name == "kws-kitchen"
    with pytest.raises(ShoalInputError, match=r"fleet\.yaml:\d+: roles: this is a fleet file"):
        load_role_spec(EXAMPLES / "fleet.yaml")


FLEET = """\
defaults:
  board: native
  presence: {heartbeat_s: 10}
roles:
  - name: one
    role: r
  - name: two
    role: r
    presence: {heartbeat_s: 3}
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        (
            "heartbeat_s: 10}",
            "heartbeat_s: 0}",
            3,
            "defaults.presence.heartbeat_s: must be greater than 0, got 0",
        ),
        (
            "heartbeat_s: 3}",
            "heartbeat_s: -3}",
            9,
            "roles[1].presence.heartbeat_s: must be greater than 0, got -3",
        ),
        (
            "  board: native\n",
            "  board: nowhere\n",
            2,
            f"roles[0].board (from defaults): unknown board 'nowhere' (accepted: {BOARDS})",
        ),
        (
            "  board: native\n",
            "  bored: native\n",
            2,
            f"defaults.bored: unknown key 'bored' (accepted keys: {ROLE_KEYS})",
        ),
        (
            "  - name: two\n",
            "  - name: one\n",
            7,
            "roles[1].name: role name 'one' is already used by roles[0] (line 5)",
        ),
        (
            "  board: native\n",
            '  board: native\n  client_id: "{role}-x"\n',
            3,
            "roles[1].client_id (from defaults): client id 'r-x' is also roles[0]'s (client ids"
            " must differ: use {name} or {uid})",
        ),
        (
            "defaults:\n",
            "extra: 1\ndefaults:\n",
            1,
            "extra: unknown key 'extra' (accepted keys: defaults, roles, version)",
        ),
        (
            "    role: r\n  - name: two",
            "    role: 5\n  - name: two",
            6,
            "roles[0].role: expected text, got 5",
        ),
    ],
)
def test_fleet_errors_point_where_the_value_came_from(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    assert old in FLEET
    path = write(tmp_path, FLEET.replace(old, new, 1), "fleet.yaml")
    with pytest.raises(ShoalInputError) as info:
        load_fleet(path)
    assert str(info.value) == f"{path}:{line}: {message}"


def test_fleet_needs_roles(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults: {board: native}\nroles: []\n", "fleet.yaml")
    with pytest.raises(ShoalInputError) as info:
        load_fleet(path)
    assert str(info.value) == f"{path}:2: roles: needs at least 1 item"


def _objects(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += _objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value)
    return found


def test_schema_is_draft_2020_12_and_closed_everywhere() -> None:
    import jsonschema

    schema = role_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    shipped = ROOT / "codegen" / "schemas" / "role_spec.schema.json"
    assert json.loads(shipped.read_text()) == schema
    objects = _objects(schema)
    assert len(objects) > 20
    for obj in objects:
        if "properties" in obj:
            assert obj["additionalProperties"] is False, obj


names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=names,
    role=names,
    rate=st.floats(min_value=0.01, max_value=1e5, allow_nan=False),
    shape=st.lists(st.integers(1, 64), min_size=1, max_size=3),
    qos=st.integers(-1, 2),
    retain=st.booleans(),
    payload=st.sampled_from(["binary", "json"]),
    heartbeat=st.floats(min_value=0.001, max_value=86400, allow_nan=False),
    levels=st.lists(
        st.sampled_from(["{client_id}", "{role}", "{name}", "data", "x1"]), min_size=1, max_size=4
    ),
    board=st.sampled_from(["native", "qemu-mps2-an386", "esp32-devkitc"]),
)
def test_random_valid_specs_round_trip(
    tmp_path: Path,
    name: str,
    role: str,
    rate: float,
    shape: list[int],
    qos: int,
    retain: bool,
    payload: str,
    heartbeat: float,
    levels: list[str],
    board: str,
) -> None:
    document = {
        "name": name,
        "role": role,
        "board": board,
        "sensors": [
            {
                "name": "s",
                "kind": "generic",
                "rate_hz": rate,
                "shape": shape,
                "driver": {"simulated": {"generator": "sine", "frequency_hz": 2.5}},
            }
        ],
        "publishes": [
            {
                "name": "p",
                "topic": "/".join(levels),
                "from": "s",
                "qos": qos,
                "retain": retain,
                "payload": payload,
            }
        ],
        "presence": {"heartbeat_s": heartbeat},
    }
    path = tmp_path / "random.yaml"
    with path.open("w") as handle:
        YAML().dump(document, handle)
    spec = load_role_spec(path)
    assert (spec.name, spec.role, spec.board) == (name, role, board)
    assert spec.sensors[0].rate_hz == rate and spec.sensors[0].shape == tuple(shape)
    publish = spec.publishes[0]
    assert (publish.topic, publish.qos, publish.retain, publish.payload) == (
        "/".join(levels),
        qos,
        retain,
        payload,
    )
    assert spec.presence.heartbeat_s == heartbeat


def test_cli_spec_check_prints_roles_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    from host_sdk.cli import main

    assert main(["spec", "check", str(EXAMPLES / "fleet.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{EXAMPLES / 'fleet.yaml'}: valid (3 roles)\n")
    assert "role kws-hall (keyword_spotter) on micropython-unix" in out
    assert "heartbeat 5 s, birth on, will on" in out
    assert main(["spec", "check", str(EXAMPLES / "vibration_anomaly.yaml"), "--json"]) == 0
    (role,) = json.loads(capsys.readouterr().out)
    assert role["sensors"][0]["driver"] == {"adc": {"channel": 3, "scale": 0.001, "offset": -1.65}}
    assert role["models"][0]["path"] == str(DENSE)


def test_cli_spec_check_bad_spec_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from host_sdk.cli import main

    path = write(tmp_path, BASE.replace("qos: 1}", "qos: 7}"))
    assert main(["spec", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"shoal spec: error: {path}:16: publishes[0].qos: 7 is out of range (accepted: -1..2)\n"
    )


def test_shared_models_in_role_specs(tmp_path: Path, shared_models_dir: Path) -> None:
    """The reference autoencoder (tiny_ad01, 640 in, 640 out) takes an anomaly score; the
    float-I/O variant needs quantize: false; tiny_kws has 12 outputs, so 4 labels are refused."""
    spec = f"""\
name: fan
role: anomaly
board: nucleo-f446re
sensors:
  - {{name: mel, kind: audio_features, rate_hz: 32, shape: [128], driver: {{i2c: {{address: 0x1a, register: 0, length: 32}}}}}}
  - {{name: mfcc, kind: audio_features, rate_hz: 50, shape: [10], driver: {{simulated: {{generator: sine}}}}}}
models:
  - name: ad
    path: {shared_models_dir / "tiny_ad01.tflite"}
    input: mel
    postprocess: {{anomaly: {{threshold: 4.0}}}}
  - name: adf
    path: {shared_models_dir / "tiny_ad01_fullint_floatio.tflite"}
    input: mel
    preprocess: {{quantize: false}}
    postprocess: {{anomaly: {{threshold: 4.0, metric: mae}}}}
  - name: kws
    path: {shared_models_dir / "tiny_kws.tflite"}
    input: mfcc
    postprocess: {{argmax: {{labels: [a, b, c, d]}}}}
"""
    path = tmp_path / "fan.yaml"
    path.write_text(spec)
    with pytest.raises(ShoalInputError) as info:
        load_role_spec(path)
    assert str(info.value) == (
        f"{path}:20: models[2].postprocess.argmax.labels: 4 labels for a model with 12 outputs"
        " (give one label per output)"
    )
    path.write_text(spec.replace("[a, b, c, d]", "[" + ", ".join(f"w{i}" for i in range(12)) + "]"))
    role = load_role_spec(path)
    ad, adf, kws = role.models
    assert ad.preprocess.window == 5 and ad.input_dtype == "int8" and ad.preprocess.quantize
    assert adf.input_dtype == "float32" and not adf.preprocess.quantize
    assert kws.output_size == 12 and kws.preprocess.window == 49
