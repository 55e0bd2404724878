"""MQTT-SN gateway benchmark: messages/s, loss, latency, gateway CPU and memory per client.

Every QoS 1 row says its acknowledgement mode: "spool" (the default and the headline: a
device's PUBLISH is acknowledged once fdatasync'd in the gateway's spool) or "broker" (once
mosquitto acknowledged it); QoS 0 is never acknowledged. Each gateway gets a fresh state
directory (spool + sessions) in a temporary folder on this machine's disk.

Measures, in one run on this machine, MQTT-SN clients (simulated over UDP) -> `shoal gateway`
-> mosquitto -> one paho-mqtt subscriber, and as the in-run peer the same load published over
plain MQTT (paho) straight to mosquitto. Prints markdown tables. Not a test: nothing is
asserted; numbers vary with the machine's load, so read the ratios.

    .venv/bin/python bench/mqttsn_bench.py [--quick] [--only TEXT] [--profile-gateway DIR]

`--only` runs the scenarios whose name contains TEXT (and their peers); `--profile-gateway`
runs the gateway under cProfile and writes one `<scenario>.pstats` per scenario into DIR.
The gateway is started as `python -m host_sdk.cli gateway`, so PYTHONPATH (with the current
directory outside the repository) selects which gateway code is measured.

Each part runs in its own process (gateway, load generator, subscriber, broker) so that no two
share a Python interpreter lock. Payloads are 32 bytes: sequence number, client number and the
send time (CLOCK_MONOTONIC ns, shared by all processes on the host).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_sdk.broker import MosquittoBroker  # noqa: E402
from host_sdk.mqttsn import codec  # noqa: E402

PAYLOAD = struct.Struct(">IIQ16x")  # seq, client, send ns, padding -> 32 bytes
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- measurement helpers ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def udp_receive_buffer_errors() -> int:
    """Datagrams the kernel dropped for full UDP receive buffers, machine-wide (so that a loss
    can be told apart: at a UDP socket, or further on at the broker or the subscriber)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    header, values = [row for row in lines if row[0] == "Udp:"][:2]
    return int(values[header.index("RcvbufErrors")])


def _cpu_or_nan(pid: int | None) -> float:
    try:
        return cpu_seconds(pid) if pid is not None else float("nan")
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- subscriber process ----------------------------------------------------------------------


def subscriber_main(
    port: int, qos: int, ready: mp.Event, stop: mp.Event, results: mp.Queue
) -> None:
    """Subscribe to bench/#; record (client, seq) and latency of every message until `stop`."""
    seen: set[tuple[int, int]] = set()
    latencies_ms: list[float] = []
    duplicates = 0

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        nonlocal duplicates
        now = time.monotonic_ns()
        seq, client, sent = PAYLOAD.unpack(message.payload)
        key = (client, seq)
        if key in seen:
            duplicates += 1
            return
        seen.add(key)
        latencies_ms.append((now - sent) / 1e6)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}")
    client.on_message = on_message
    client.on_subscribe = lambda *_a: ready.set()
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.subscribe("bench/#", qos)
    client.loop_start()
    stop.wait()
    client.loop_stop()
    client.disconnect()
    results.put((len(seen), duplicates, latencies_ms))


# --- MQTT-SN load generator process ----------------------------------------------------------


# PUBLISH with a 32-byte payload, built with one struct call per message so that the simulated
# fleet costs the shared CPU little: length, type, flags, topic id, msg id, payload.
PUBLISH_32 = struct.Struct(">BBBHH32s")
PUBACK_TYPE = codec.PUBACK


class SnClient(asyncio.DatagramProtocol):
    """One simulated device: CONNECT, REGISTER bench/<n>, then PUBLISH as told. In closed-loop
    mode (`closed_loop_until` set) each PUBACK sends the next PUBLISH until that loop time."""

    def __init__(self, number: int, qos: int) -> None:
        self.number = number
        self.qos = qos
        self.flags = codec.encode(codec.Publish(1, b"", qos, 1 if qos else 0))[2]
        self.closed_loop_until: float | None = None
        self.finished: asyncio.Future[None] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.topic_id = 0
        self.ready = asyncio.Event()
        self.inflight: int | None = None
        self.ack = asyncio.Event()
        self.seq = 0
        self.sent = 0
        self.acked = 0
        self.msg_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.sendto(codec.encode(codec.Connect(f"b{self.number}", 600)))

    def datagram_received(self, data: bytes, _addr: object) -> None:
        if len(data) == 7 and data[1] == PUBACK_TYPE:
            # The hot path: no codec objects (the decoder is tested elsewhere).
            if int.from_bytes(data[4:6], "big") == self.inflight:
                self.inflight = None
                self.acked += 1
                self.ack.set()
                self._next_in_closed_loop()
            return
        message = codec.decode(data)
        if isinstance(message, codec.Connack):
            assert self.transport is not None
            self.transport.sendto(codec.encode(codec.Register(0, 1, f"bench/{self.number}")))
        elif isinstance(message, codec.Regack):
            self.topic_id = message.topic_id
            self.ready.set()

    def _next_in_closed_loop(self) -> None:
        until = self.closed_loop_until
        if until is None:
            return
        if asyncio.get_running_loop().time() < until:
            self.publish()
        else:
            self.closed_loop_until = None
            if self.finished is not None and not self.finished.done():
                self.finished.set_result(None)

    def publish(self) -> None:
        assert self.transport is not None
        self.seq += 1
        self.msg_id = self.msg_id % 0xFFFF + 1
        payload = PAYLOAD.pack(self.seq, self.number, time.monotonic_ns())
        if self.qos == 1:
            self.inflight = self.msg_id
            self.ack.clear()
        msg_id = self.msg_id if self.qos else 0
        self.transport.sendto(
            PUBLISH_32.pack(39, codec.PUBLISH, self.flags, self.topic_id, msg_id, payload)
        )
        self.sent += 1


async def run_load(
    gateway_port: int,
    clients: int,
    qos: int,
    rate: float | None,
    per_client_rate: float | None,
    duration_s: float,
    connected: mp.Event,
    go: mp.Event,
) -> int:
    loop = asyncio.get_running_loop()
    devices = []
    for number in range(clients):
        _transport, device = await loop.create_datagram_endpoint(
            lambda n=number: SnClient(n, qos), remote_addr=("127.0.0.1", gateway_port)
        )
        devices.append(device)
        if number % 50 == 49:
            await asyncio.sleep(0.01)  # let the gateway keep up with the CONNECT burst
    await asyncio.wait_for(asyncio.gather(*(d.ready.wait() for d in devices)), 30)
    connected.set()
    while not go.is_set():
        await asyncio.sleep(0.01)
    deadline = loop.time() + duration_s
    if qos == 1 and rate is None and per_client_rate is None:
        # Each PUBACK sends the next PUBLISH from the protocol callback (no task per message);
        # a device whose PUBACK does not come within 2 s past the end stops there.
        for device in devices:
            device.finished = loop.create_future()
            device.closed_loop_until = deadline
            device.publish()
        await asyncio.wait([d.finished for d in devices if d.finished], timeout=duration_s + 2)
    else:
        # Open loop: `rate` messages/s over all clients (or `per_client_rate` each, taken in
        # turn); a QoS 1 client with a message still in flight skips its turn (counted as not
        # offered, since MQTT-SN allows one in flight).
        start = loop.time()
        total_rate = rate if rate is not None else (per_client_rate or 0) * clients
        sent_by_schedule = 0
        turn = 0
        while loop.time() < deadline:
            due = int((loop.time() - start) * total_rate)
            while sent_by_schedule < due:
                if per_client_rate is not None:
                    device = devices[turn % clients]
                else:
                    device = devices[sent_by_schedule % clients]
                turn += 1
                sent_by_schedule += 1
                if device.inflight is None:
                    device.publish()
            await asyncio.sleep(0.001 if per_client_rate is None else 0.005)
    await asyncio.sleep(1.0)  # let the last acks arrive
    return sum(d.sent for d in devices)


def load_main(
    port: int,
    clients: int,
    qos: int,
    rate: float | None,
    per_client: float | None,
    duration_s: float,
    connected: mp.Event,
    go: mp.Event,
    results: mp.Queue,
) -> None:
    sent = asyncio.run(run_load(port, clients, qos, rate, per_client, duration_s, connected, go))
    results.put(sent)


# --- plain MQTT peer -------------------------------------------------------------------------


def mqtt_peer_main(
    port: int, clients: int, qos: int, duration_s: float, go: mp.Event, results: mp.Queue
) -> None:
    """Closed-loop QoS 1 (or as-fast-as-possible QoS 0) publishing over plain MQTT."""
    publishers = []
    for number in range(clients):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"peer{number}")
        client.connect("127.0.0.1", port)
        client.loop_start()
        publishers.append(client)
    go.wait()
    deadline = time.monotonic() + duration_s
    sent = 0
    seqs = [0] * clients
    pending = [None] * clients
    while time.monotonic() < deadline:
        for number, client in enumerate(publishers):
            info = pending[number]
            if info is not None and not info.is_published():
                continue
            seqs[number] += 1
            payload = PAYLOAD.pack(seqs[number], 100000 + number, time.monotonic_ns())
            pending[number] = client.publish(f"bench/peer/{number}", payload, qos=qos)
            sent += 1
        if qos == 1:
            time.sleep(0)
    time.sleep(1.0)
    for client in publishers:
        client.loop_stop()
        client.disconnect()
    results.put(sent)


# --- orchestration ---------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    ack: str
    offered: int
    delivered: int
    duration_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    gateway_cpu_s: float

    @property
    def rate(self) -> float:
        return self.delivered / self.duration_s

    @property
    def loss(self) -> float:
        return 0.0 if not self.offered else max(0.0, 1 - self.delivered / self.offered)


def start_gateway(
    broker_url: str, ack: str, state_dir: Path, profile: Path | None = None
) -> tuple[subprocess.Popen[str], int]:
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    process = subprocess.Popen(
        [
            *python,
            "-m",
            "host_sdk.cli",
            "gateway",
            "--broker",
            broker_url,
            "--udp",
            "127.0.0.1:0",
            "--stats-interval",
            "0",
            "--ack",
            ack,
            "--state-dir",
            str(state_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("gateway ready udp="):
        process.kill()
        raise RuntimeError(
            f"gateway did not start: {line!r} {process.stderr.read() if process.stderr else ''}"
        )
    port = int(line.split()[2].split("=")[1].rsplit(":", 1)[1])
    return process, port


def run_scenario(
    broker: MosquittoBroker,
    name: str,
    clients: int,
    qos: int,
    duration_s: float,
    rate: float | None = None,
    per_client: float | None = None,
    peer: bool = False,
    profile_dir: Path | None = None,
    ack: str = "spool",
) -> tuple[Row, int | None]:
    ctx = mp.get_context("spawn")
    sub_ready, sub_stop, connected, go = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    sub_results: mp.Queue = ctx.Queue()
    load_results: mp.Queue = ctx.Queue()
    subscriber = ctx.Process(
        target=subscriber_main, args=(broker.port, qos, sub_ready, sub_stop, sub_results)
    )
    subscriber.start()
    sub_ready.wait(10)
    gateway = None
    memory_per_client = None
    try:
        if peer:
            loader = ctx.Process(
                target=mqtt_peer_main,
                args=(broker.port, clients, qos, duration_s, go, load_results),
            )
            loader.start()
            time.sleep(0.5)
            cpu_before = 0.0
        else:
            profile = None
            if profile_dir is not None:
                profile = profile_dir / f"{''.join(c if c.isalnum() else '_' for c in name)}.pstats"
            state_dir = Path(tempfile.mkdtemp(prefix="shoal-bench-gw-"))
            gateway, port = start_gateway(broker.url, ack, state_dir, profile)
            rss_before = rss_bytes(gateway.pid)
            loader = ctx.Process(
                target=load_main,
                args=(
                    port,
                    clients,
                    qos,
                    rate,
                    per_client,
                    duration_s,
                    connected,
                    go,
                    load_results,
                ),
            )
            loader.start()
            if not connected.wait(60):
                raise RuntimeError(f"{name}: clients did not connect")
            memory_per_client = (rss_bytes(gateway.pid) - rss_before) // clients
            cpu_before = cpu_seconds(gateway.pid)
        others = {"load": loader.pid, "subscriber": subscriber.pid, "broker": broker.pid}
        others_before = {role: _cpu_or_nan(pid) for role, pid in others.items()}
        udp_drops_before = udp_receive_buffer_errors()
        go.set()
        offered = load_results.get(timeout=duration_s + 120)
        others_after = {role: _cpu_or_nan(pid) for role, pid in others.items()}
        loader.join(10)
        time.sleep(0.5)
        cpu = cpu_seconds(gateway.pid) - cpu_before if gateway else 0.0
        # Where the machine's CPU went (the load generator and the subscriber share it).
        spent = ", ".join(
            f"{role} {others_after[role] - others_before[role]:.2f}" for role in others
        )
        print(f"  {name}: CPU s during the run: gateway {cpu:.2f}, {spent}", file=sys.stderr)
        udp_drops = udp_receive_buffer_errors() - udp_drops_before
        print(
            f"  {name}: UDP datagrams dropped by full receive buffers: {udp_drops}", file=sys.stderr
        )
        sub_stop.set()
        delivered, _duplicates, latencies = sub_results.get(timeout=60)
        subscriber.join(10)
    finally:
        sub_stop.set()
        if gateway is not None:
            gateway.terminate()
            gateway.wait(10)
            shutil.rmtree(state_dir, ignore_errors=True)
        for process in (subscriber,):
            if process.is_alive():
                process.kill()
    row = Row(
        name,
        "-" if peer else (ack if qos > 0 else "- (QoS 0)"),
        offered,
        delivered,
        duration_s,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        cpu,
    )
    return row, memory_per_client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="short runs (smoke test of the script)"
    )
    parser.add_argument("--only", default="", help="run only scenarios whose name has this")
    parser.add_argument(
        "--profile-gateway", type=Path, metavar="DIR", help="cProfile the gateway into DIR"
    )
    args = parser.parse_args()
    if args.profile_gateway is not None:
        args.profile_gateway.mkdir(parents=True, exist_ok=True)
    seconds = 2.0 if args.quick else 5.0
    rows: list[tuple[Row, int | None, str]] = []
    with MosquittoBroker() as broker:
        plan = [
            ("QoS 1, 1 client (closed loop)", dict(clients=1, qos=1, duration_s=seconds)),
            (
                "QoS 1, 1 client (closed loop)",
                dict(clients=1, qos=1, duration_s=seconds, ack="broker"),
            ),
            ("QoS 1, 50 clients (closed loop)", dict(clients=50, qos=1, duration_s=seconds)),
            (
                "QoS 1, 50 clients (closed loop)",
                dict(clients=50, qos=1, duration_s=seconds, ack="broker"),
            ),
            (
                "QoS 0, 50 clients, 5k msg/s offered",
                dict(clients=50, qos=0, duration_s=seconds, rate=5000),
            ),
            (
                "QoS 0, 50 clients, 10k msg/s offered",
                dict(clients=50, qos=0, duration_s=seconds, rate=10000),
            ),
            (
                "QoS 0, 50 clients, 20k msg/s offered",
                dict(clients=50, qos=0, duration_s=seconds, rate=20000),
            ),
            (
                "QoS 1, 1000 clients, 1 msg/s each",
                dict(clients=1000, qos=1, duration_s=2 * seconds, per_client=1.0),
            ),
        ]
        for name, kwargs in plan:
            if args.only not in name:
                continue
            row, memory = run_scenario(
                broker,
                name,
                profile_dir=args.profile_gateway,
                **kwargs,  # type: ignore[arg-type]
            )
            rows.append((row, memory, "MQTT-SN via shoal gateway"))
            print(
                f"  done: {name} (ack {row.ack}): {row.rate:.0f} msg/s, loss {row.loss:.2%}",
                file=sys.stderr,
            )
        for name, kwargs in [
            ("QoS 1, 1 client (closed loop)", dict(clients=1, qos=1, duration_s=seconds)),
            ("QoS 1, 50 clients (closed loop)", dict(clients=50, qos=1, duration_s=seconds)),
        ]:
            if args.only not in name:
                continue
            row, _ = run_scenario(broker, name, peer=True, **kwargs)  # type: ignore[arg-type]
            rows.append((row, None, "peer: plain MQTT (paho) to mosquitto"))
    print(
        f"\nMQTT-SN gateway benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"32-byte payloads, subscriber on bench/# (delivered = unique messages it received)\n"
    )
    print(
        "| path | scenario | ack mode | offered | delivered | msg/s | loss | p50 ms | p99 ms | gw CPU s / 10k msg | gw memory / client |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row, memory, path in rows:
        cpu_per_10k = (
            row.gateway_cpu_s / row.delivered * 10000
            if row.delivered and row.gateway_cpu_s
            else float("nan")
        )
        print(
            f"| {path} | {row.scenario} | {row.ack} | {row.offered} | {row.delivered} | {row.rate:.0f} | {row.loss:.2%} | "
            f"{row.latency_p50_ms:.2f} | {row.latency_p99_ms:.2f} | "
            f"{'-' if cpu_per_10k != cpu_per_10k else f'{cpu_per_10k:.2f}'} | "
            f"{'-' if memory is None else f'{memory} B'} |"
        )
    peer = {row.scenario: row.rate for row, _, path in rows if path.startswith("peer")}
    print("\n| scenario | ack mode | MQTT-SN via gateway / plain MQTT (msg/s ratio) |")
    print("|---|---|---:|")
    for row, _, path in rows:
        if not path.startswith("peer") and row.scenario in peer and peer[row.scenario]:
            print(f"| {row.scenario} | {row.ack} | {row.rate / peer[row.scenario]:.2f} |")


if __name__ == "__main__":
    main()
