"""The Shoal agent: what a device running a role says to the fleet, and how.

`protocol` (the wire format of docs/agent_protocol.md) runs unchanged on MicroPython, where the
firmware ships it flat on its module path. `virtual` runs generated agents on the virtual
boards (`open_agent`: native, MicroPython unix port, QEMU) behind one interface; `run` keeps the
first MicroPython runner (`run_micropython_agent`) on top of it. Importing the package imports
nothing, so that MicroPython can also load the module as `host_sdk.agent.protocol`.
"""
