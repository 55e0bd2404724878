# Self-test run on the real MicroPython unix port (not collected by pytest: no test_ prefix).
# MICROPYPATH holds host_sdk/mqttsn (codec.py, framing.py, qos2.py, client_session.py, flat,
# as the firmware ships them) and this folder (mqttsn_vectors.py). Prints "N passed, N failed".
import client_session as cs
import codec
import framing
from mqttsn_vectors import GOLDEN, MALFORMED, unhex

passed = 0
failed = 0


def check(name, ok):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL", name)


for hex_datagram, cls_name, fields in GOLDEN:
    raw = unhex(hex_datagram)
    msg = getattr(codec, cls_name)(**fields)
    check("encode " + hex_datagram[:20], codec.encode(msg) == raw)
    try:
        check("decode " + hex_datagram[:20], codec.decode(raw) == msg)
    except Exception as exc:
        check("decode " + hex_datagram[:20] + " " + repr(exc), False)

for hex_datagram, text in MALFORMED:
    try:
        codec.decode(unhex(hex_datagram))
        check("malformed accepted " + hex_datagram, False)
    except codec.MqttSnDecodeError as exc:
        check("malformed text " + hex_datagram, text in str(exc))
    except Exception as exc:
        check("malformed wrong error " + hex_datagram + " " + repr(exc), False)

# Framing: CRC check value, COBS edge cases, noise and resynchronisation.
check("crc", framing.crc16_ccitt_false(b"123456789") == 0x29B1)
for raw in (b"", b"\x00", bytes(range(1, 255)), bytes(range(256)), b"\x00" * 300):
    check(f"cobs {len(raw)}", framing.cobs_decode(framing.cobs_encode(raw)) == raw)
decoder = framing.FrameDecoder()
stream = (
    b"\x13\x37noise\x00" + framing.encode_frame(b"\x02\x16") + framing.encode_frame(b"\x02\x17")
)
got = []
for i in range(len(stream)):
    got += decoder.feed(stream[i : i + 1])
check("frames", got == [b"\x02\x16", b"\x02\x17"])
check("frame counters", decoder.frames == 2 and decoder.malformed == 1)

# Client session scenario against a scripted gateway.
client = cs.ClientSession(
    "mp-dev", keep_alive_s=20, will_topic="w/mp", will_message=b"bye", t_retry_s=5.0, n_retry=2
)
out, ev = client.connect(0.0)
check("connect", [codec.decode(d) for d in out] == [codec.Connect("mp-dev", 20, will=True)])
out, ev = client.receive(codec.encode(codec.WillTopicReq()), 0.1)
check("willtopic", [codec.decode(d) for d in out] == [codec.WillTopic("w/mp")])
out, ev = client.receive(codec.encode(codec.WillMsgReq()), 0.2)
check("willmsg", [codec.decode(d) for d in out] == [codec.WillMsg(b"bye")])
out, ev = client.receive(codec.encode(codec.Connack(0)), 0.3)
check("connected", ev == [cs.Connected()] and client.state == cs.ACTIVE)

out, ev = client.publish("mp/temp", b"21", 1, 1.0)
register = codec.decode(out[0])
check("register first", isinstance(register, codec.Register) and register.topic_name == "mp/temp")
out, ev = client.receive(codec.encode(codec.Regack(9, register.msg_id, 0)), 1.1)
publish = codec.decode(out[0])
check("publish", isinstance(publish, codec.Publish) and publish.topic_id == 9 and publish.qos == 1)
check("deadline", client.next_deadline() == 6.1)
out, ev = client.tick(6.1)
check("retransmit dup", codec.decode(out[0]).dup and client.retransmitted == 1)
out, ev = client.receive(codec.encode(codec.Puback(9, publish.msg_id, 0)), 6.2)
check("publish done", ev == [cs.PublishDone("mp/temp", publish.msg_id, 1)])

out, ev = client.subscribe("cmd/#", 2, 7.0)
sub = codec.decode(out[0])
out, ev = client.receive(codec.encode(codec.Suback(0, sub.msg_id, 2, 0)), 7.1)
check("subscribed", ev == [cs.Subscribed("cmd/#", 0, 2)])
out, ev = client.receive(codec.encode(codec.Register(33, 500, "cmd/mp-dev/led")), 7.2)
check("gateway register", [codec.decode(d) for d in out] == [codec.Regack(33, 500, 0)])
incoming = codec.encode(codec.Publish(33, b"on", 2, 501))
out, ev = client.receive(incoming, 7.3)
check("qos2 in", ev == [cs.MessageReceived("cmd/mp-dev/led", b"on", 2, False)])
out, ev = client.receive(incoming, 7.4)
check("qos2 duplicate", ev == [] and [codec.decode(d) for d in out] == [codec.Pubrec(501)])
out, ev = client.receive(codec.encode(codec.Pubrel(501)), 7.5)
check("pubcomp", [codec.decode(d) for d in out] == [codec.Pubcomp(501)])

check("keep-alive deadline", client.next_deadline() == 7.5 + 20)
out, ev = client.tick(27.5)
check("pingreq", [codec.decode(d) for d in out] == [codec.Pingreq()])
out, ev = client.receive(codec.encode(codec.Pingresp()), 27.6)

out, ev = client.sleep(300, 30.0)
check("sleep", [codec.decode(d) for d in out] == [codec.Disconnect(300)])
out, ev = client.receive(codec.encode(codec.Disconnect()), 30.1)
check("asleep", ev == [cs.SleepStarted(300)] and client.state == cs.ASLEEP)
out, ev = client.wake(200.0)
check("wake", [codec.decode(d) for d in out] == [codec.Pingreq("mp-dev")])
out, ev = client.receive(codec.encode(codec.Publish(33, b"off", 1, 502)), 200.1)
check("buffered", ev == [cs.MessageReceived("cmd/mp-dev/led", b"off", 1, False)])
out, ev = client.receive(codec.encode(codec.Pingresp()), 200.2)
check("wake done", ev == [cs.WakeDone()] and client.state == cs.ASLEEP)

out, ev = client.receive(b"\x05\x0c\x00", 201.0)
check("malformed counted", client.malformed == 1 and out == [] and ev == [])

lost = cs.ClientSession("mp-2", t_retry_s=1.0, n_retry=2)
lost.connect(0.0)
events = []
now = 0.0
while not events and now < 10:
    now = lost.next_deadline()
    out, events = lost.tick(now)
check("gateway lost", events == [cs.GatewayLost()] and now == 3.0 and lost.retransmitted == 2)

# Across a lost session: resend with msg id + DUP, re-SUBSCRIBE (clean), DISCONNECT after PUBCOMP.
again = cs.ClientSession("mp-3", t_retry_s=1.0, n_retry=2)
again.connect(0.0)
again.receive(codec.encode(codec.Connack(0)), 0.1)
out, ev = again.subscribe("c/#", 1, 0.2)
again.receive(codec.encode(codec.Suback(0, codec.decode(out[0]).msg_id, 1, 0)), 0.3)
out, ev = again.publish("ab", b"q", 1, 0.4)
first = codec.decode(out[0])
out, ev = again.receive(codec.encode(codec.Disconnect()), 0.5)
check("dropped by gateway", ev == [cs.Disconnected(True)])
again.connect(1.0)
out, ev = again.receive(codec.encode(codec.Connack(0)), 1.1)
resub = codec.decode(out[0])
check("resubscribe", isinstance(resub, codec.Subscribe) and resub.topic_name == "c/#")
out, ev = again.receive(codec.encode(codec.Suback(0, resub.msg_id, 1, 0)), 1.2)
resent = codec.decode(out[0])
check("resent dup", resent.dup and resent.msg_id == first.msg_id and resent.data == b"q")
again.receive(codec.encode(codec.Puback(0x6162, first.msg_id, 0)), 1.3)
out, ev = again.receive(codec.encode(codec.Publish(0x6162, b"z", 2, 40, codec.TOPIC_SHORT)), 2.0)
out, ev = again.disconnect(2.1)
check("disconnect held", out == [])
out, ev = again.receive(codec.encode(codec.Pubrel(40)), 2.2)
check(
    "pubcomp then disconnect",
    [codec.decode(d) for d in out] == [codec.Pubcomp(40), codec.Disconnect()],
)

print(f"{passed} passed, {failed} failed")
