"""The role IR: frozen dataclasses describing one agent role, read from a role spec.

Responsible for: what an agent is once its spec has been validated (sensors and their drivers,
models with their resolved input/output facts, triggers, publishes, subscriptions, commands,
presence, duty cycle, gateway, client id template) and the closed vocabularies of the format.
Filled by `codegen.loaders.role_loader`; read by the firmware generators.

Must not: parse files, load models or boards (the loader does), or know about any backend.
Units: rates in Hz, periods in ms (`period_ms`) or seconds (`*_s`), as the field names say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SENSOR_KINDS = (
    "audio",
    "audio_features",
    "accelerometer",
    "vibration",
    "temperature",
    "humidity",
    "pressure",
    "light",
    "generic",
)
GENERATORS = ("sine", "noise", "constant", "replay")
COMMANDS = ("infer", "set_param", "status", "profile", "reboot", "sleep")
PAYLOADS = ("binary", "json")
REDUCTIONS = ("vote", "mean", "max", "min", "count", "last")
ANOMALY_METRICS = ("mse", "mae")
# Placeholders a publish/subscribe topic template may use, and those of the client id template.
TOPIC_PLACEHOLDERS = ("client_id", "role", "name")
CLIENT_ID_PLACEHOLDERS = ("name", "role", "board", "uid")


@dataclass(frozen=True)
class SimulatedDriver:
    """Samples made on the device: sine (amplitude, frequency_hz, offset), noise (amplitude,
    offset, seed), constant (value) or replay (`file`: one sample per line, resolved path)."""

    generator: str
    amplitude: float = 1.0
    frequency_hz: float = 1.0
    offset: float = 0.0
    value: float = 0.0
    seed: int = 0
    file: Path | None = None


@dataclass(frozen=True)
class AdcDriver:
    """One ADC channel; real value = raw * scale + offset."""

    channel: int
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class I2cDriver:
    """Reads `length` bytes from `register` of the 7-bit `address` on I2C `bus`."""

    address: int
    register: int
    length: int
    bus: int = 0


@dataclass(frozen=True)
class UartLinesDriver:
    """One sample per text line on UART `port` (values separated by commas or spaces)."""

    port: int
    baud: int = 115200


Driver = SimulatedDriver | AdcDriver | I2cDriver | UartLinesDriver
DRIVER_NAMES: dict[type, str] = {
    SimulatedDriver: "simulated",
    AdcDriver: "adc",
    I2cDriver: "i2c",
    UartLinesDriver: "uart_lines",
}


@dataclass(frozen=True)
class Sensor:
    """A sample stream: `shape` is one sample, `rate_hz` samples per second."""

    name: str
    kind: str
    rate_hz: float
    shape: tuple[int, ...]
    driver: Driver

    @property
    def driver_name(self) -> str:
        return DRIVER_NAMES[type(self.driver)]


@dataclass(frozen=True)
class Preprocess:
    """`window` samples form one input, the next input starts `stride` samples later.
    Each value becomes real = raw * scale + offset, then q = round(real / input_scale) +
    input_zero_point (clamped to int8) when `quantize` (the model's own input quantization)."""

    window: int = 1
    stride: int = 1
    scale: float = 1.0
    offset: float = 0.0
    quantize: bool = True


@dataclass(frozen=True)
class Anomaly:
    """Anomaly score = reconstruction error (`metric` of output vs input, real units)."""

    threshold: float
    metric: str = "mse"


@dataclass(frozen=True)
class Postprocess:
    """What is published from the output: argmax (with one label per output), the top_k
    scores, a score threshold (below it, no result), or an anomaly score."""

    labels: tuple[str, ...] | None = None
    top_k: int | None = None
    threshold: float | None = None
    anomaly: Anomaly | None = None


@dataclass(frozen=True)
class RoleModel:
    """One model of the role with the facts read from the file (`path` is resolved)."""

    name: str
    path: Path
    input: str
    preprocess: Preprocess
    postprocess: Postprocess
    sha256: str
    input_shape: tuple[int, ...]
    input_dtype: str
    input_scale: float | None
    input_zero_point: int | None
    output_shape: tuple[int, ...]
    output_dtype: str

    @property
    def output_size(self) -> int:
        size = 1
        for dim in self.output_shape:
            size *= dim
        return size


@dataclass(frozen=True)
class Trigger:
    """`periodic` (every period_ms), `on_command` (the infer command) or `on_threshold`
    (when `source`, a sensor or model, goes above/below a value); runs the models `run`."""

    kind: str
    run: tuple[str, ...]
    period_ms: int | None = None
    source: str | None = None
    above: float | None = None
    below: float | None = None


@dataclass(frozen=True)
class Aggregate:
    """Reduce the values received within `window_s` seconds before publishing."""

    reduce: str
    window_s: float


@dataclass(frozen=True)
class Publish:
    """Publishes each new value of `source` (a model, sensor or subscription)."""

    name: str
    topic: str
    source: str
    qos: int = 0
    retain: bool = False
    payload: str = "binary"
    aggregate: Aggregate | None = None


@dataclass(frozen=True)
class Subscription:
    """A topic filter (wildcards allowed) whose messages feed publishes with `from: <name>`."""

    name: str
    topic: str
    qos: int = 0


@dataclass(frozen=True)
class Presence:
    birth: bool = True
    will: bool = True
    heartbeat_s: float = 30.0


@dataclass(frozen=True)
class DutyCycle:
    """MQTT-SN sleep: asleep `sleep_s` seconds, then awake at least `awake_s` seconds."""

    sleep_s: float
    awake_s: float = 1.0


@dataclass(frozen=True)
class Gateway:
    """Either a fixed `host:port`, or discovery (SEARCHGW/ADVERTISE) on a multicast group."""

    discover: bool
    host: str | None = None
    port: int | None = None
    group: str | None = None
    group_port: int | None = None


@dataclass(frozen=True)
class RoleSpec:
    """One validated agent role. `source` is the spec file it was read from."""

    name: str
    role: str
    board: str
    client_id: str
    sensors: tuple[Sensor, ...]
    models: tuple[RoleModel, ...]
    triggers: tuple[Trigger, ...]
    publishes: tuple[Publish, ...]
    subscribes: tuple[Subscription, ...]
    commands: tuple[str, ...]
    presence: Presence
    duty_cycle: DutyCycle | None
    gateway: Gateway
    source: Path
    version: int = 1

    def model(self, name: str) -> RoleModel:
        return next(m for m in self.models if m.name == name)

    def sensor(self, name: str) -> Sensor:
        return next(s for s in self.sensors if s.name == name)
