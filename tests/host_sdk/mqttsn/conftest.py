"""Fixtures of the gateway and end-to-end tests in this folder (defined in gateway_harness)."""

from gateway_harness import (  # noqa: F401  (pytest finds fixtures by name here)
    broker,
    c_client_exe,
    client_kind,
    clients,
    probe,
    start_gateway,
)
