"""MQTT-SN v1.2 for Shoal: sans-IO codec, serial framing and session state machines.

`codec`, `framing` and `client_session` run unchanged on MicroPython (the firmware ships them
flat on its module path); `gateway_session` is CPython-only. This package does no I/O: the
asyncio gateway and transports build on it. Importing the package imports nothing, so that
MicroPython can also load the modules as `host_sdk.mqttsn.<name>`.
"""
