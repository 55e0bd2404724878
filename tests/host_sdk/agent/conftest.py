"""Fixtures of the agent end-to-end tests: the gateway harness of tests/host_sdk/mqttsn (a
folder of test modules, not a package) with its real mosquitto and paho probe."""

import sys
from pathlib import Path

_MQTTSN_TESTS = Path(__file__).resolve().parents[1] / "mqttsn"
if str(_MQTTSN_TESTS) not in sys.path:
    sys.path.insert(0, str(_MQTTSN_TESTS))

from gateway_harness import broker, probe  # noqa: E402, F401  (pytest finds fixtures by name)
