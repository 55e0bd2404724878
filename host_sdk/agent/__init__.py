"""The Shoal agent: what a device running a role says to the fleet, and how.

`protocol` (the wire format of docs/agent_protocol.md) runs unchanged on MicroPython, where the
firmware ships it flat on its module path. Importing the package imports nothing, so that
MicroPython can also load the module as `host_sdk.agent.protocol`.
"""
