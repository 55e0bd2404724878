"""Shoal's MicroPython agent runtime: runs one role (sensors -> windows -> models -> publishes)
and speaks the agent protocol (docs/agent_protocol.md) over the MQTT-SN device runtime.

Responsible for: simulated sensors (sine, noise, constant, replay), the sample window of each
model, quantizing a window with the model's input scale and zero point, invoking the generated
model module, postprocessing (argmax / top-k / threshold / anomaly) into the role's publish
payloads, and the protocol topics: birth (retained), will (set at CONNECT), heartbeat, boot,
and the commands infer, set_param, status, profile, reboot and sleep answered on `resp` with
the command's correlation id.
Must not: compute anything the generator can compute (every constant comes in the CONFIG dict
written by `codegen.agent_compiler` into main.py), or decide MQTT-SN behaviour (the session's).

The link to the gateway is CONFIG["link"]: "udp" (the unix port: the host's network, the
spec's gateway or `--gateway HOST:PORT`), "wifi" (UDP after joining the Wi-Fi network named in
shoal_config.py, gateway from shoal_config.GATEWAY) or "uart" (Shoal serial frames over
machine.UART as shoal_config.py says). shoal_config.py is the site's file (credentials, pins):
the firmware id does not cover it. A missing or wrong setting stops the agent after the boot
line with one "CONFIG ERROR:" line naming the setting.

Runs unchanged on the MicroPython unix port and on the boards (no f-strings with `=`, no
dataclasses, no typing). Units: seconds (`_s`), milliseconds (`_ms`), microseconds (`_us`).
"""

import gc
import struct
import sys
import time

import agent_protocol as proto
from client_session import ClientSession, Connected, Disconnected, GatewayLost, MessageReceived
from mqttsn_device import Backoff, Clock, Device, UartTransport, UdpTransport

try:
    import json
except ImportError:  # a port without json: json payloads are refused at generation
    json = None


def say(line):
    print(line)
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()


def ticks_us():
    if hasattr(time, "ticks_us"):
        return time.ticks_us()
    return int(time.monotonic() * 1000000)


def elapsed_us(start):
    if hasattr(time, "ticks_diff"):
        return time.ticks_diff(ticks_us(), start)
    return ticks_us() - start


def free_ram():
    gc.collect()
    if hasattr(gc, "mem_free"):
        return gc.mem_free()
    return 0


def random_u32():
    try:
        import os

        return struct.unpack("<I", os.urandom(4))[0]
    except Exception:
        return ticks_us() & 0xFFFFFFFF


def unique_id_hex():
    """8 hex digits of the device's unique id (machine.unique_id), random on ports without."""
    try:
        import machine

        uid = machine.unique_id()
        return "".join("%02x" % b for b in uid[-4:])
    except Exception:
        return "%08x" % random_u32()


# ---- the link to the gateway -----------------------------------------------------------------


class ConfigError(Exception):
    """A setting in shoal_config.py (or the command line) is missing or wrong; the text says
    which and what is accepted."""


def _site():
    try:
        import shoal_config
    except ImportError:
        raise ConfigError("shoal_config.py is missing: copy the generated one to the board")
    return shoal_config


def _setting(site, name):
    if not hasattr(site, name):
        raise ConfigError("shoal_config.py has no %s (regenerate it with shoal gen)" % name)
    return getattr(site, name)


def parse_gateway(text):
    """'host:port' -> (host, port); ConfigError naming GATEWAY otherwise."""
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("GATEWAY = %r in shoal_config.py: expected 'host:port'" % (text,))
    if host == "localhost" or host.startswith("127."):
        raise ConfigError(
            "GATEWAY = %r in shoal_config.py is a loopback address: set the LAN address of the "
            "computer running shoal gateway" % (text,)
        )
    return host, int(port)


class WifiLink:
    """The station interface of `network.WLAN`, joined with shoal_config's credentials.
    `up()` waits until joined (trying again every WIFI_TIMEOUT_S seconds, printing each try);
    `check()` rejoins after the network dropped us."""

    def __init__(self, site):
        self.ssid = _setting(site, "WIFI_SSID")
        self.password = _setting(site, "WIFI_PASSWORD")
        self.timeout_s = _setting(site, "WIFI_TIMEOUT_S")
        if not self.ssid:
            raise ConfigError(
                "WIFI_SSID is empty in shoal_config.py: set the network name and WIFI_PASSWORD"
            )
        try:
            import network
        except ImportError:
            raise ConfigError("this MicroPython port has no network module (no Wi-Fi)")
        country = getattr(site, "WIFI_COUNTRY", "")
        if country and hasattr(network, "country"):
            network.country(country)
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        self.next_check_s = 0

    def up(self):
        attempt = 0
        while not self.wlan.isconnected():
            attempt += 1
            say("WIFI joining %s (try %d)" % (self.ssid, attempt))
            self.wlan.connect(self.ssid, self.password)
            waited_ms = 0
            while not self.wlan.isconnected() and waited_ms < self.timeout_s * 1000:
                time.sleep_ms(100)
                waited_ms += 100
        say("WIFI %s ip=%s" % (self.ssid, self.wlan.ifconfig()[0]))

    def check(self, now_s):
        if now_s >= self.next_check_s:
            self.next_check_s = now_s + self.timeout_s
            if not self.wlan.isconnected():
                say("WIFI lost, joining %s again" % self.ssid)
                self.wlan.connect(self.ssid, self.password)


class PolledUart:
    """A machine.UART whose `read()` never blocks: None when nothing waits (some ports'
    read() waits for its timeout or for bytes)."""

    def __init__(self, uart):
        self.uart = uart

    def write(self, data):
        return self.uart.write(data)

    def read(self):
        waiting = self.uart.any()
        if not waiting:
            return None
        return self.uart.read(waiting)


def open_uart(site):
    try:
        import machine

        machine.UART
    except (ImportError, AttributeError):
        raise ConfigError("this MicroPython port has no machine.UART")
    uart_id = _setting(site, "UART_ID")
    baudrate = _setting(site, "BAUDRATE")
    kwargs = {}
    for key, name in (("tx", "TX"), ("rx", "RX")):
        pin = _setting(site, name)
        if pin is not None:
            kwargs[key] = machine.Pin(pin)
    if _setting(site, "SHARED_WITH_CONSOLE"):
        try:
            import micropython

            micropython.kbd_intr(-1)  # a 0x03 inside a frame must not raise KeyboardInterrupt
        except (ImportError, AttributeError):
            pass
    try:
        return machine.UART(uart_id, baudrate, rxbuf=1024, **kwargs)
    except (TypeError, ValueError):
        return machine.UART(uart_id, baudrate, **kwargs)  # a port without rxbuf


def open_link(config, gateway=None):
    """(transport, wifi or None) for CONFIG["link"]; `gateway` (host, port) overrides the
    gateway address of a UDP link."""
    link = config["link"]
    if link == "udp":
        host, port = gateway or (config["gateway_host"], config["gateway_port"])
        return UdpTransport(host, port), None
    site = _site()
    if link == "wifi":
        host, port = gateway or parse_gateway(_setting(site, "GATEWAY"))
        wifi = WifiLink(site)
        wifi.up()
        return UdpTransport(host, port), wifi
    if link == "uart":
        uart = PolledUart(open_uart(site))
        shared = bool(_setting(site, "SHARED_WITH_CONSOLE"))
        note = " (shared with the console)" if shared else ""
        say("UART %r at %d baud%s" % (site.UART_ID, site.BAUDRATE, note))
        return UartTransport(uart, flush_every_frame=shared), None
    raise ConfigError("link %r: expected udp, wifi or uart" % (link,))


# ---- sensors -------------------------------------------------------------------------------


class SimulatedSensor:
    """Samples made on the device; `read(n)` returns sample number n (a list of floats)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.elements = cfg["elements"]
        self._state = (cfg.get("seed", 0) * 2654435761 + 1) & 0xFFFFFFFF or 1

    def _noise(self):
        # xorshift32 -> uniform in [-1, 1)
        x = self._state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._state = x
        return (x / 2147483648.0) - 1.0

    def read(self, n):
        cfg = self.cfg
        generator = cfg["generator"]
        if generator == "constant":
            return [cfg["value"]] * self.elements
        if generator == "replay":
            rows = cfg["rows"]
            return list(rows[n % len(rows)])
        if generator == "sine":
            import math

            t = n / cfg["rate_hz"]
            value = cfg["offset"] + cfg["amplitude"] * math.sin(
                2 * math.pi * cfg["frequency_hz"] * t
            )
            return [value] * self.elements
        return [cfg["offset"] + cfg["amplitude"] * self._noise() for _ in range(self.elements)]


# ---- models --------------------------------------------------------------------------------


class _Timed:
    """Stands in for a model module's kernel library while profiling: every kernel call is
    timed (microseconds) in call order."""

    def __init__(self, nn, times):
        self._nn = nn
        self._times = times

    def __getattr__(self, name):
        kernel = getattr(self._nn, name)
        times = self._times

        def timed(*args):
            start = ticks_us()
            result = kernel(*args)
            times.append(elapsed_us(start))
            return result

        return timed


def clamp_i8(value):
    if value < -128:
        return -128
    if value > 127:
        return 127
    return value


def round_half_away(value):
    if value >= 0:
        return int(value + 0.5)
    return -int(-value + 0.5)


class AgentModel:
    """One model of the role: its window of samples, input encoding and postprocessing."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.module = __import__(cfg["module"])
        self.window = []
        self.new_samples = 0
        self.last_input = None
        self.seq = 0

    def add_sample(self, sample):
        self.window.append(sample)
        if len(self.window) > self.cfg["window"]:
            self.window.pop(0)
        self.new_samples += 1

    def ready(self):
        return len(self.window) == self.cfg["window"] and self.new_samples >= self.cfg["stride"]

    def encode_window(self):
        """The model's input bytes from the current window (time order, flattened)."""
        cfg = self.cfg
        scale, offset = cfg["pre_scale"], cfg["pre_offset"]
        reals = []
        for sample in self.window:
            for raw in sample:
                reals.append(raw * scale + offset)
        self.new_samples = 0
        if cfg["quantize"]:
            in_scale, zero_point = cfg["input_scale"], cfg["input_zero_point"]
            data = bytearray(len(reals))
            for i, real in enumerate(reals):
                data[i] = clamp_i8(round_half_away(real / in_scale) + zero_point) & 0xFF
            return data, reals
        return struct.pack("<%df" % len(reals), *reals), reals

    def invoke(self, data):
        self.last_input = bytes(data)
        return self.module.invoke(data)

    def profile(self):
        """One inference on the last input (zeros when none) with per-kernel timing:
        a list of (index, op, time_us, macs) for every layer."""
        module = self.module
        data = self.last_input or bytes(module.INPUT_BYTES)
        times = []
        nn = module._nn
        module._nn = _Timed(nn, times)
        try:
            module.invoke(data)
        finally:
            module._nn = nn
        layers = []
        timed = 0
        for index, op, macs, elided in self.cfg["layers"]:
            spent = 0
            if not elided and timed < len(times):
                spent = times[timed]
                timed += 1
            layers.append((index, op, spent, macs))
        return layers

    def reals_of_output(self, output):
        module = self.module
        if module.OUTPUT_IS_FLOAT:
            count = len(output) // 4
            return list(struct.unpack("<%df" % count, output))
        scale, zero_point = module.OUTPUT_SCALE, module.OUTPUT_ZERO_POINT
        return [scale * (((b + 128) & 0xFF) - 128 - zero_point) for b in output]

    def postprocess(self, output, input_reals):
        """(kind, entries, extra) to publish, or None when the threshold is not reached.
        Entries are (index, value) with value in the payload's units."""
        cfg = self.cfg
        reals = self.reals_of_output(output)
        self.seq += 1
        if cfg["anomaly_metric"]:
            total = 0.0
            for out, inp in zip(reals, input_reals):
                diff = out - inp
                total += diff * diff if cfg["anomaly_metric"] == "mse" else abs(diff)
            score = total / max(1, len(reals))
            if score < cfg["anomaly_threshold"]:
                return None
            return 2, [(0, min(32767, int(score * 1024)))], {"anomaly": score}
        if cfg["ranked"]:
            order = sorted(range(len(reals)), key=lambda i: -reals[i])
            best = reals[order[0]]
            if cfg["threshold"] is not None and best < cfg["threshold"]:
                return None
            top = order[: cfg["top_k"]]
            entries = [(i, max(-32768, min(32767, int(reals[i] * 32768)))) for i in top]
            return 1, entries, {"top": [(i, reals[i]) for i in top]}
        entries = [(i, ((b + 128) & 0xFF) - 128) for i, b in enumerate(output[:255])]
        return 3, entries, {}


def binary_payload(kind, seq, entries):
    """The role spec's binary publish layout (docs/role_spec.md)."""
    out = bytearray(struct.pack("<BBIB", 1, kind, seq & 0xFFFFFFFF, len(entries)))
    for index, value in entries:
        out += struct.pack("<Bh", index & 0xFF, value)
    return bytes(out)


# ---- the agent -----------------------------------------------------------------------------


class Agent:
    """One role on one device. `run()` connects and loops forever (or until `stop`)."""

    def __init__(self, config, gateway=None):
        self.cfg = config
        uid = unique_id_hex()
        self.client_id = config["client_id"].replace("{uid}", uid)
        base = "shoal/v1/" + config["role"] + "/" + self.client_id + "/"
        self.topic = {leaf: base + leaf for leaf in proto_leaves()}
        self.incarnation = random_u32()
        self.started_ms = time.ticks_ms() if hasattr(time, "ticks_ms") else 0
        self.boot_us = ticks_us()
        self.models = [AgentModel(m) for m in config["models"]]
        self.sensors = {s["name"]: SimulatedSensor(s) for s in config["sensors"]}
        self.samples_taken = {s["name"]: 0 for s in config["sensors"]}
        self.inferences = 0
        self.commands = 0
        self.errors = 0
        self.latency_us = 0
        self.hb_seq = 0
        self.connected = False
        self.booted = False
        self.subscribed = False
        self.sleep_until = None
        self.gateway = gateway
        self.clock = Clock()
        self.device = None  # the link opens in run(), after the boot line
        self.wifi = None
        will = b""
        if config["will"]:
            will = proto.encode({"kind": "will", "incarnation": self.incarnation})
        self.session = ClientSession(
            self.client_id,
            keep_alive_s=config["keep_alive_s"],
            clean_session=True,
            will_topic=self.topic["will"] if config["will"] else "",
            will_message=will,
            will_qos=1,
            will_retain=True,
            t_retry_s=config["t_retry_s"],
        )
        self.start_s = self.clock.now()
        self.next_hb_s = self.start_s
        self.next_trigger_s = [self.start_s + t["period_s"] for t in config["periodic"]]

    def now(self):
        return self.clock.now()

    def open_link(self):
        """Join the network (Wi-Fi boards) or open the UART, then the MQTT-SN device."""
        transport, self.wifi = open_link(self.cfg, self.gateway)
        self.device = Device(self.session, transport, clock=self.clock, backoff=Backoff(0.5, 30.0))

    def publish(self, topic, payload, qos, retain=False):
        self.device.call(self.session.publish, topic, payload, qos, retain=retain)

    # -- presence ----------------------------------------------------------------------------

    def on_connected(self):
        cfg = self.cfg
        self.connected = True
        if not self.subscribed:  # a clean session re-SUBSCRIBEs on its own after a reconnect
            self.subscribed = True
            self.device.call(self.session.subscribe, self.topic["cmd"], 1)
        if not self.booted:
            self.booted = True
            self.publish(self.topic["boot"], self.boot_message(), 1, retain=True)
        if cfg["birth"]:
            self.publish(self.topic["birth"], self.birth_message(), 1, retain=True)
        say("CONNECTED %s" % self.client_id)

    def birth_message(self):
        cfg = self.cfg
        return proto.encode(
            {
                "kind": "birth",
                "incarnation": self.incarnation,
                "role": cfg["role"],
                "board": cfg["board"],
                "firmware_id": cfg["firmware_id"],
                "generator": cfg["generator"],
                "free_ram": free_ram(),
                "max_payload": cfg["max_payload"],
                "models": [{"hash": m["hash"], "name": m["name"]} for m in cfg["models"]],
            }
        )

    def boot_message(self):
        return proto.encode(
            {
                "kind": "boot",
                "incarnation": self.incarnation,
                "reset_cause": 0,
                "corr": 0,
                "boot_ms": elapsed_us(self.boot_us) // 1000,
                "free_ram": free_ram(),
                "firmware_id": self.cfg["firmware_id"],
            }
        )

    def uptime_s(self):
        return int(self.now() - self.start_s)

    def heartbeat(self):
        payload = proto.encode(
            {
                "kind": "hb",
                "incarnation": self.incarnation,
                "seq": self.hb_seq & 0xFFFFFFFF,
                "uptime_s": self.uptime_s(),
                "inferences": self.inferences,
                "commands": self.commands,
                "errors": self.errors,
                "reconnects": min(self.device.reconnects, 0xFFFF),
                "latency_us": self.latency_us,
                "free_ram": free_ram(),
            }
        )
        self.hb_seq += 1
        self.publish(self.topic["hb"], payload, 0)

    def status_message(self, state):
        return proto.encode(
            {
                "kind": "status",
                "incarnation": self.incarnation,
                "state": proto.AGENT_STATES[state],
                "uptime_s": self.uptime_s(),
                "free_ram": free_ram(),
                "params": [],
            }
        )

    # -- sensing and triggers ----------------------------------------------------------------

    def sample_sensors(self):
        elapsed = self.now() - self.start_s
        for cfg in self.cfg["sensors"]:
            name = cfg["name"]
            due = int(elapsed * cfg["rate_hz"])
            taken = self.samples_taken[name]
            if due - taken > cfg["max_backlog"]:
                taken = due - cfg["max_backlog"]  # fell behind: keep only one window
            sensor = self.sensors[name]
            while taken < due:
                sample = sensor.read(taken)
                taken += 1
                for model in self.models:
                    if model.cfg["input"] == name:
                        model.add_sample(sample)
                for pub in self.cfg["publishes"]:
                    if pub["source"] == name:
                        self.publish_sample(pub, taken, sample)
            self.samples_taken[name] = taken

    def run_triggers(self):
        now = self.now()
        for i, trigger in enumerate(self.cfg["periodic"]):
            if now >= self.next_trigger_s[i]:
                self.next_trigger_s[i] = now + trigger["period_s"]
                for number in trigger["run"]:
                    model = self.models[number]
                    if model.ready():
                        self.infer_window(model)

    def infer_window(self, model):
        data, reals = model.encode_window()
        start = ticks_us()
        output = model.invoke(data)
        self.latency_us = elapsed_us(start)
        self.inferences += 1
        self.publish_result(model, output, reals)

    def publish_result(self, model, output, input_reals):
        result = model.postprocess(output, input_reals)
        if result is None:
            return
        kind, entries, extra = result
        for pub in self.cfg["publishes"]:
            if pub["source"] != model.cfg["name"]:
                continue
            if pub["json"]:
                body = {"seq": model.seq, "model": model.cfg["name"]}
                labels = model.cfg["labels"]
                if "top" in extra:
                    best = extra["top"][0]
                    if labels:
                        body["label"] = labels[best[0]]
                        body["top"] = [[labels[i], s] for i, s in extra["top"]]
                    else:
                        body["top"] = [[i, s] for i, s in extra["top"]]
                    body["score"] = best[1]
                elif "anomaly" in extra:
                    body["anomaly"] = extra["anomaly"]
                else:
                    body["values"] = [v for _, v in entries]
                payload = json.dumps(body).encode()
            else:
                payload = binary_payload(kind, model.seq, entries)
            self.publish(pub["topic"], payload, pub["qos"], pub["retain"])

    def publish_sample(self, pub, seq, sample):
        if pub["json"]:
            payload = json.dumps({"seq": seq, "sensor": pub["source"], "values": sample}).encode()
        else:
            entries = [(i, max(-32768, min(32767, int(v)))) for i, v in enumerate(sample[:255])]
            payload = binary_payload(4, seq, entries)
        self.publish(pub["topic"], payload, pub["qos"], pub["retain"])

    # -- commands ----------------------------------------------------------------------------

    def respond(self, corr, code, state, error, started_us, result=b""):
        if state not in ("ok", "accepted"):
            self.errors += 1
        if len(result) > self.cfg["max_payload"] - 13:
            state, error, result = "error", "result_too_large", b""
            self.errors += 1
        payload = proto.encode(
            {
                "kind": "resp",
                "corr": corr,
                "code": code,
                "state": proto.STATES[state],
                "error": proto.ERROR_CODES[error],
                "latency_us": max(0, elapsed_us(started_us)),
                "result": result,
            }
        )
        self.publish(self.topic["resp"], payload, 1)

    def on_command(self, payload):
        started = ticks_us()
        self.commands += 1
        try:
            cmd = proto.decode(payload)
        except proto.AgentProtocolError as exc:
            corr = proto.peek_corr(payload)
            error = "unsupported_version" if exc.error_class == "version" else "malformed"
            self.respond(corr, 0, "rejected", error, started)
            return
        if cmd["kind"] != "cmd":
            self.respond(0, 0, "rejected", "malformed", started)
            return
        corr, code, args = cmd["corr"], cmd["code"], cmd["args"]
        name = None
        for known, number in proto.COMMAND_CODES.items():
            if number == code:
                name = known
        if name is None:
            self.respond(corr, code, "rejected", "unknown_command", started)
            return
        if name not in self.cfg["commands"]:
            self.respond(corr, code, "rejected", "not_supported", started)
            return
        try:
            getattr(self, "cmd_" + name)(corr, code, args, started)
        except Exception as exc:  # the agent keeps running; the fleet learns of it
            say("ERROR command %s: %r" % (name, exc))
            self.respond(corr, code, "error", "internal", started)

    def _model_arg(self, corr, code, args, started):
        if len(args) < 1:
            self.respond(corr, code, "rejected", "bad_arguments", started)
            return None
        if args[0] >= len(self.models):
            self.respond(corr, code, "rejected", "unknown_model", started)
            return None
        return self.models[args[0]]

    def cmd_infer(self, corr, code, args, started):
        model = self._model_arg(corr, code, args, started)
        if model is None:
            return
        data = args[1:]
        if len(data) != model.module.INPUT_BYTES:
            self.respond(corr, code, "rejected", "input_size", started)
            return
        begin = ticks_us()
        try:
            output = model.invoke(data)
        except Exception:
            self.respond(corr, code, "error", "inference_failed", started)
            return
        self.latency_us = elapsed_us(begin)
        self.inferences += 1
        self.respond(corr, code, "ok", "none", started, bytes(output))

    def cmd_set_param(self, corr, code, args, started):
        if len(args) != 5:
            self.respond(corr, code, "rejected", "bad_arguments", started)
            return
        self.respond(corr, code, "rejected", "unknown_param", started)  # no parameters declared

    def cmd_status(self, corr, code, args, started):
        if args:
            self.respond(corr, code, "rejected", "bad_arguments", started)
            return
        self.publish(self.topic["status"], self.status_message("idle"), 1)
        self.respond(corr, code, "ok", "none", started)

    def cmd_profile(self, corr, code, args, started):
        model = self._model_arg(corr, code, args, started)
        if model is None:
            return
        if len(args) != 1:
            self.respond(corr, code, "rejected", "bad_arguments", started)
            return
        layers = model.profile()
        step = proto.MAX_LAYERS_PER_REPORT
        for first in range(0, len(layers), step):
            chunk = layers[first : first + step]
            payload = proto.encode(
                {
                    "kind": "profile",
                    "corr": corr,
                    "model": args[0],
                    "unit": proto.PROFILE_UNITS["us"],
                    "total_layers": len(layers),
                    "layers": [
                        {"index": i, "op": op, "time": t, "macs": m} for i, op, t, m in chunk
                    ],
                }
            )
            self.publish(self.topic["profile"], payload, 1)
        self.respond(corr, code, "ok", "none", started)

    def cmd_reboot(self, corr, code, args, started):
        try:
            import machine

            reset = machine.reset
        except (ImportError, AttributeError):
            self.respond(corr, code, "rejected", "not_supported", started)  # e.g. the unix port
            return
        self.respond(corr, code, "accepted", "none", started)
        self.device.close(timeout_s=2)
        reset()

    def cmd_sleep(self, corr, code, args, started):
        if len(args) != 4:
            self.respond(corr, code, "rejected", "bad_arguments", started)
            return
        seconds = struct.unpack("<I", args)[0]
        if not 1 <= seconds <= 0xFFFF:
            self.respond(corr, code, "rejected", "bad_arguments", started)
            return
        self.respond(corr, code, "ok", "none", started)
        self.device.call(self.session.sleep, seconds)
        self.sleep_until = self.now() + seconds

    # -- the loop ----------------------------------------------------------------------------

    def handle(self, events):
        for event in events:
            if isinstance(event, Connected):
                self.on_connected()
            elif isinstance(event, MessageReceived):
                if event.topic == self.topic["cmd"]:
                    self.on_command(event.payload)
            elif isinstance(event, (Disconnected, GatewayLost)):
                self.connected = False  # the device runtime reconnects with backoff
                if self.sleep_until is None:
                    say("DISCONNECTED")

    def step(self):
        now = self.now()
        if self.sleep_until is not None:
            if now >= self.sleep_until:
                self.sleep_until = None
                self.handle(self.device.start())  # CONNECT ends the sleep
            else:
                self.handle(self.device.poll(50))
            return
        if self.wifi is not None:
            self.wifi.check(now)
        self.sample_sensors()
        if self.connected:
            self.run_triggers()
            if now >= self.next_hb_s:
                self.next_hb_s = now + self.cfg["heartbeat_s"]
                self.heartbeat()
        self.handle(self.device.poll(self.cfg["poll_ms"]))

    def run(self, run_s=None):
        cfg = self.cfg
        say(
            "SHOAL AGENT role=%s board=%s firmware=%s generator=%s free_ram=%d"
            % (cfg["role"], cfg["board"], hexlify(cfg["firmware_id"]), cfg["generator"], free_ram())
        )
        for m in cfg["models"]:
            say("MODEL %s %s" % (m["name"], hexlify(m["hash"])))
        self.open_link()
        self.handle(self.device.start())
        while run_s is None or self.now() - self.start_s < run_s:
            self.step()
        self.device.close(timeout_s=2)


def hexlify(data):
    return "".join("%02x" % b for b in data)


def proto_leaves():
    return ("birth", "will", "hb", "status", "cmd", "resp", "profile", "boot")


def gateway_from_argv(argv):
    """`--gateway HOST:PORT` on the command line (the unix port) overrides the spec's."""
    for i in range(len(argv) - 1):
        if argv[i] == "--gateway":
            host, _, port = argv[i + 1].rpartition(":")
            return host, int(port)
    return None


def main(config):
    argv = getattr(sys, "argv", [])
    try:
        Agent(config, gateway_from_argv(argv)).run()
    except ConfigError as exc:
        say("CONFIG ERROR: %s" % exc)
