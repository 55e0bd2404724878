"""A scripted MQTT-SN client for MicroPython, for end-to-end tests and for trying the client by
hand; the MicroPython twin of firmware_templates/c/apps/mqttsn_native_client.c.

Arguments (a subset of the C program's, same meaning):
  --gateway HOST:PORT  --client-id ID  [--clean 0|1] [--keepalive S]
  [--will-topic T --will-msg M --will-qos Q --will-retain 0|1]
  [--sub FILTER:QOS]...  [--pub TOPIC:QOS:PAYLOAD[:RETAIN]]...  ("{n}" in PAYLOAD: round number)
  [--count N] [--interval-ms MS] [--expect N] [--sleep S] [--run-ms MS] [--timeout-ms MS]
  [--retry-ms MS] [--max-retries N]
  [--reconnect-ms MS]      first reconnect delay (doubles per failed attempt, with jitter)
  [--reconnect-max-ms MS]  cap of the reconnect delay (default 60000)
  [--multicast GROUP:PORT --multicast-interface ADDR]  discover the gateway on that IPv4
                           multicast group (SEARCHGW there; GWINFO/ADVERTISE heard there);
                           --gateway is then not needed
  [--search 1]             SEARCHGW to --gateway (e.g. a broadcast address), then connect to
                           the responder
  [--search-delay-ms MS]   random delay 0..MS before the first SEARCHGW (default 0)
  [--local-port P]

Output lines, as the C program prints them:
  CONNACK <rc> | READY | SUBACK 0 <granted_qos> 0 <topic_id> <filter> | REGISTER <id> <name> |
  RECV <topic> <qos> <retain> <hex> | PUBDONE <msgid> 0 | LOST | DISCONNECTED | RECONNECTED |
  GWINFO <gw_id> | ADVERTISE <gw_id> <duration_s> | ASLEEP | AWAKE |
  STATS sent=<n> received=<n> retransmitted=<n> malformed=<n> dropped=0 | DONE | TIMEOUT |
  ERROR <text>
SUBACK carries no message id here (the session does not report it): it prints 0. RECV of a
QoS 2 message is printed once, when it first arrives (later copies are duplicates); the program
exits only after the PUBRELs of the QoS 2 messages it received (PUBCOMP sent), and after DONE
it sends DISCONNECT (so the gateway publishes no will). LOST (gateway silent) and DISCONNECTED
(the gateway ended the session, or our own DISCONNECT was answered) are followed by reconnect
attempts with backoff and RECONNECTED; a clean session is subscribed again by the session.
Exit status: 0 DONE, 1 TIMEOUT, 2 ERROR.
"""

import sys

from client_session import (
    ClientSession,
    Connected,
    ConnectRejected,
    Disconnected,
    GatewayFound,
    GatewayLost,
    MessageReceived,
    PublishDone,
    Registered,
    SleepStarted,
    Subscribed,
    WakeDone,
)
from mqttsn_device import Backoff, Device, UdpTransport


def say(line):
    print(line)
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()


def fail(text):
    say("ERROR " + text)
    sys.exit(2)


def to_hex(data):
    if not data:
        return "-"
    return "".join("%02x" % b for b in data)


def parse_args(argv):
    options = {
        "clean": 1, "keepalive": 60, "will-topic": "", "will-msg": "", "will-qos": 0,
        "will-retain": 0, "count": 1, "interval-ms": 0, "expect": 0, "sleep": 0, "run-ms": 0,
        "timeout-ms": 60000, "retry-ms": 10000, "max-retries": 3, "reconnect-ms": 1000,
        "reconnect-max-ms": 60000, "search": 0, "search-delay-ms": 0, "local-port": 0,
        "multicast-interface": "0.0.0.0",
    }
    subs, pubs = [], []
    index = 0
    while index < len(argv):
        name = argv[index]
        if not name.startswith("--") or index + 1 >= len(argv):
            fail("bad argument " + name)
        value = argv[index + 1]
        key = name[2:]
        index += 2
        if key == "sub":
            topic, _, qos = value.rpartition(":")
            subs.append((topic, int(qos)))
        elif key == "pub":
            parts = value.split(":")
            if len(parts) < 3:
                fail("--pub needs TOPIC:QOS:PAYLOAD[:RETAIN]")
            retain = 0
            if len(parts) >= 4 and parts[-1] in ("0", "1"):
                retain = int(parts.pop())
            pubs.append((parts[0], int(parts[1]), ":".join(parts[2:]), retain))
        elif key in (
            "gateway", "client-id", "will-topic", "will-msg", "multicast", "multicast-interface"
        ):
            options[key] = value
        elif key in options:
            options[key] = int(value)
        else:
            fail("unknown option " + name)
    if ("gateway" not in options and "multicast" not in options) or "client-id" not in options:
        fail("--client-id and --gateway (or --multicast) are required")
    return options, subs, pubs


def host_port(text, what):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        fail(what + " expects HOST:PORT")
    return host, int(port)


class Script:
    def __init__(self, options, subs, pubs):
        self.options, self.subs, self.pubs = options, subs, pubs
        self.session = ClientSession(
            options["client-id"],
            keep_alive_s=options["keepalive"],
            clean_session=bool(options["clean"]),
            will_topic=options["will-topic"],
            will_message=options["will-msg"].encode(),
            will_qos=options["will-qos"],
            will_retain=bool(options["will-retain"]),
            t_retry_s=options["retry-ms"] / 1000,
            n_retry=options["max-retries"],
        )
        gateway = host_port(options["gateway"], "--gateway") if "gateway" in options else None
        multicast = None
        if "multicast" in options:
            multicast = host_port(options["multicast"], "--multicast")
        try:
            transport = UdpTransport(
                gateway[0] if gateway else None,
                gateway[1] if gateway else None,
                local_port=options["local-port"],
                multicast=multicast,
                multicast_interface=options["multicast-interface"],
            )
        except (OSError, ValueError) as exc:
            fail("cannot open the UDP transport: %r" % (exc,))
        backoff = Backoff(options["reconnect-ms"] / 1000, options["reconnect-max-ms"] / 1000)
        self.device = Device(self.session, transport, backoff=backoff)
        self.discover = multicast is not None or bool(options["search"])
        self.connected = False
        self.ever_connected = False
        self.ready = False
        self.subacks = 0
        self.received = 0
        self.pending_publishes = 0
        self.rounds_done = 0
        self.next_round_at = 0.0
        self.asleep = False
        self.wake_at = None

    def handle(self, events):
        for event in events:
            if isinstance(event, Connected):
                say("CONNACK 0")
                self.connected = True
                if self.ever_connected:
                    say("RECONNECTED")  # the session subscribes a clean session again
                else:
                    self.ever_connected = True
                    self.subscribe_all()
                    self.check_ready()
            elif isinstance(event, GatewayFound):
                if event.duration_s:
                    say("ADVERTISE %d %d" % (event.gw_id, event.duration_s))
                else:
                    say("GWINFO %d" % event.gw_id)
            elif isinstance(event, Disconnected):
                say("DISCONNECTED")
                self.connected = False
            elif isinstance(event, ConnectRejected):
                say("CONNACK %d" % event.return_code)
            elif isinstance(event, Subscribed):
                say("SUBACK 0 %d 0 %d %s" % (event.granted_qos, event.topic_id, event.topic))
                self.subacks += 1
                self.check_ready()
            elif isinstance(event, Registered):
                say("REGISTER %d %s" % (event.topic_id, event.topic))
            elif isinstance(event, MessageReceived):
                say("RECV %s %d %d %s" % (event.topic, event.qos, int(event.retain), to_hex(event.payload)))
                self.received += 1
            elif isinstance(event, PublishDone):
                say("PUBDONE %d 0" % event.msg_id)
                self.pending_publishes -= 1
            elif isinstance(event, GatewayLost):
                say("LOST")
                self.connected = False
            elif isinstance(event, SleepStarted):
                say("ASLEEP")
                self.asleep = True
                self.wake_at = self.device.now() + 0.75 * self.options["sleep"]
            elif isinstance(event, WakeDone):
                say("AWAKE")
                self.wake_at = self.device.now() + 0.75 * self.options["sleep"]

    def subscribe_all(self):
        self.subacks = 0
        for topic, qos in self.subs:
            self.handle(self.device.call(self.session.subscribe, topic, qos))

    def check_ready(self):
        if not self.ready and self.ever_connected and self.subacks >= len(self.subs):
            self.ready = True
            say("READY")

    def publish_round(self):
        self.rounds_done += 1
        for topic, qos, payload, retain in self.pubs:
            data = payload.replace("{n}", str(self.rounds_done)).encode()
            if qos > 0:
                self.pending_publishes += 1
            self.handle(self.device.call(self.session.publish, topic, data, qos, retain=bool(retain)))
            if qos <= 0:
                say("PUBDONE 0 0")
        self.next_round_at = self.device.now() + self.options["interval-ms"] / 1000

    def complete(self, started):
        options = self.options
        return (
            self.ready
            and self.rounds_done >= options["count"]
            and self.pending_publishes <= 0
            and self.received >= options["expect"]
            and self.device.now() - started >= options["run-ms"] / 1000
        )

    def run(self):
        options = self.options
        started = self.device.now()
        if self.discover:
            self.handle(self.device.discover(delay_s=options["search-delay-ms"] / 1000))
        else:
            self.handle(self.device.start())
        while not self.complete(started):
            now = self.device.now()
            if now - started > options["timeout-ms"] / 1000:
                self.stats()
                say("TIMEOUT")
                sys.exit(1)
            if (
                self.ready
                and self.connected
                and not self.asleep
                and self.rounds_done < options["count"]
                and now >= self.next_round_at
            ):
                self.publish_round()
                if self.rounds_done >= options["count"] and options["sleep"] > 0:
                    self.handle(self.device.call(self.session.sleep, options["sleep"]))
            if self.asleep and self.wake_at is not None and now >= self.wake_at:
                self.wake_at = None
                self.handle(self.device.call(self.session.wake))
            self.handle(self.device.poll(20))
        say("DONE")
        # Clean exit: QoS 2 exchanges finish (PUBCOMP sent), then DISCONNECT: no will.
        self.device.close(on_events=self.handle)
        self.stats()

    def stats(self):
        s = self.session
        say(
            "STATS sent=%d received=%d retransmitted=%d malformed=%d dropped=0"
            % (s.sent, s.received, s.retransmitted, s.malformed)
        )


def main(argv):
    options, subs, pubs = parse_args(argv)
    Script(options, subs, pubs).run()


if __name__ == "__main__":
    main(sys.argv[1:])
