# Self-test run on the real MicroPython unix port (not collected by pytest: no test_ prefix).
# MICROPYPATH holds host_sdk/agent (protocol.py, flat, as the firmware ships it); argv[1] is the
# golden vectors file. Runs every valid vector both ways, every invalid vector, and decodes
# deterministic mutations of the vectors (only AgentProtocolError may come out).
# Prints "N passed, N failed".
import json
import sys

import protocol

passed = 0
failed = 0


def check(name, ok):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL", name)


with open(sys.argv[1]) as f:
    vectors = json.load(f)

for vec in vectors["valid"]:
    name = vec["name"]
    try:
        fields = protocol.from_json_fields(vec["fields"])
        raw = bytes.fromhex(vec["hex"])
        check("encode " + name, protocol.encode(fields) == raw)
        check("decode " + name, protocol.decode(raw) == fields)
        check("json " + name, protocol.to_json_fields(protocol.decode(raw)) == vec["fields"])
        corr = fields["corr"] if fields["kind"] == "cmd" else 0
        check("peek corr " + name, protocol.peek_corr(raw) == corr)
    except Exception as exc:
        check(name + " raised " + repr(exc), False)

for vec in vectors["invalid"]:
    name = vec["name"]
    try:
        protocol.decode(bytes.fromhex(vec["hex"]))
        check("accepted " + name, False)
    except protocol.AgentProtocolError as exc:
        check(
            name + ": " + vec["error"] + " != " + exc.error_class, exc.error_class == vec["error"]
        )
        check(name + ": text " + str(exc), str(exc).startswith("agent ") and "expected" in str(exc))
    except Exception as exc:
        check(name + " wrong exception " + repr(exc), False)

# Deterministic mutations (a 32-bit LCG; MicroPython's random differs from CPython's).
state = 12345


def rand(n):
    global state
    state = (state * 1103515245 + 12345) & 0x7FFFFFFF
    return state % n


mutations = 0
for _round in range(20):
    for vec in vectors["valid"]:
        data = bytearray(bytes.fromhex(vec["hex"]))
        for _ in range(1 + rand(3)):
            op = rand(3)
            pos = rand(len(data) + 1)
            if op == 0 and data:
                data[pos % len(data)] ^= 1 << rand(8)
            elif op == 1:
                data = data[:pos] + bytearray([rand(256)]) + data[pos:]
            else:
                data = data[:pos]
        mutations += 1
        try:
            msg = protocol.decode(bytes(data))
            check("canonical " + vec["name"], protocol.encode(msg) == bytes(data))
        except protocol.AgentProtocolError:
            pass
        except Exception as exc:
            check("mutation of " + vec["name"] + " raised " + repr(exc), False)
print("mutations", mutations)
print(str(passed) + " passed, " + str(failed) + " failed")
