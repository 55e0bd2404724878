"""Golden model outputs from TensorFlow Lite Micro and tflite-runtime's reference kernels.

Responsible for: running a `.tflite` model in TFLM (`tflite-micro`) and in tflite-runtime
with `OpResolverType.BUILTIN_REF` (the two agree bit for bit on int8 models), and finding
TFLM's smallest working arena. Both runtimes run in one long-lived child process (started on
first use, restarted after a crash) because TFLM kills its process on a too-small arena and
can crash on malformed models; the caller sees an `OracleError`, never a crash.

Must not: compute outputs itself, or be used as anything but a test/benchmark oracle (it
needs the `oracle` extra installed).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import select
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from host_sdk.verify._oracle_worker import read_message, write_message

DEFAULT_TIMEOUT_S = 120.0
# Arena used when the caller gives none: generous, since TFLM needs the arena for
# activations, scratch and its own bookkeeping (about 1-2 KiB even for a tiny model).
DEFAULT_ARENA_BYTES = 4 * 1024 * 1024
MAX_PROBED_ARENA_BYTES = 256 * 1024 * 1024


class OracleError(RuntimeError):
    """A runtime rejected a model or its inputs, crashed, or timed out.

    `log` holds what the runtime printed (TFLM reports its reasons on stderr).
    """

    def __init__(self, message: str, log: str = "") -> None:
        log = log.replace("\r\n", "\n").strip()
        super().__init__(message + (f"\nruntime log:\n{log}" if log else ""))
        self.log = log


def _describe(model_bytes: bytes) -> str:
    digest = hashlib.sha256(model_bytes).hexdigest()[:16]
    return f"model ({len(model_bytes)} bytes, sha256 {digest})"


class _Worker:
    """One child process running `_oracle_worker`; requests are serialised by a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        # The child must import this package from the same place as the caller.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
        return subprocess.Popen(
            [sys.executable, "-m", "host_sdk.verify._oracle_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def request(self, message: dict[str, Any], what: str, timeout_s: float) -> Any:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            process = self._process
            assert process.stdin is not None and process.stdout is not None
            try:
                write_message(process.stdin, message)  # type: ignore[arg-type]
            except BrokenPipeError:
                self._stop()
                raise OracleError(f"{what}: the oracle process exited before the request") from None
            ready, _, _ = select.select([process.stdout], [], [], timeout_s)
            if not ready:
                self._stop()
                raise OracleError(f"{what}: no answer within {timeout_s:.0f} s; oracle stopped")
            reply = read_message(process.stdout)  # type: ignore[arg-type]
            if reply is None:
                code = process.wait(timeout=10)
                self._process = None
                cause = f"signal {-code}" if code < 0 else f"exit status {code}"
                raise OracleError(f"{what}: the runtime crashed ({cause})")
        if not reply["ok"]:
            raise OracleError(f"{what}: {reply['error']}", reply.get("log", ""))
        return reply["value"]

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def close(self) -> None:
        with self._lock:
            self._stop()


_WORKER = _Worker()
atexit.register(_WORKER.close)


def close_oracle() -> None:
    """Stop the oracle's child process (it restarts on the next call)."""
    _WORKER.close()


def _as_arrays(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(a) for a in inputs]


def run_tflm_invocations(
    model_bytes: bytes,
    inputs_per_invocation: Sequence[Sequence[np.ndarray]],
    *,
    arena_bytes: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[list[np.ndarray]]:
    """Run consecutive TFLM invocations on one interpreter, never resetting it in between.

    Variable (state) tensors, e.g. an LSTM's, carry over from one invocation to the next, as
    on a device. Each invocation gets one array per model input (dtype and shape exactly the
    model's). Returns each invocation's outputs in model order. `arena_bytes` is TFLM's
    tensor arena in bytes (default `DEFAULT_ARENA_BYTES`). Raises `OracleError` when TFLM
    rejects the model or the inputs, crashes (e.g. an arena too small), or exceeds
    `timeout_s` seconds.
    """
    invocations = [_as_arrays(inputs) for inputs in inputs_per_invocation]
    request = {
        "kind": "tflm",
        "model": bytes(model_bytes),
        "invocations": invocations,
        "arena_bytes": int(arena_bytes or DEFAULT_ARENA_BYTES),
    }
    result: list[list[np.ndarray]] = _WORKER.request(
        request, f"TFLM on {_describe(model_bytes)}", timeout_s
    )
    return result


def run_tflm(
    model_bytes: bytes,
    inputs: Sequence[np.ndarray],
    *,
    arena_bytes: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[np.ndarray]:
    """One TFLM invocation on a fresh interpreter; the outputs in model order.

    See `run_tflm_invocations` for the arguments and errors.
    """
    return run_tflm_invocations(
        model_bytes, [inputs], arena_bytes=arena_bytes, timeout_s=timeout_s
    )[0]


def reference_runtime_invocations(
    model_bytes: bytes,
    inputs_per_invocation: Sequence[Sequence[np.ndarray]],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[list[np.ndarray]]:
    """Like `run_tflm_invocations`, with tflite-runtime's reference kernels (BUILTIN_REF).

    A second, independent oracle: TFLite's reference kernels, not TFLM's. Raises
    `OracleError` when tflite-runtime rejects the model or the inputs.
    """
    request = {
        "kind": "reference",
        "model": bytes(model_bytes),
        "invocations": [_as_arrays(inputs) for inputs in inputs_per_invocation],
    }
    result: list[list[np.ndarray]] = _WORKER.request(
        request, f"tflite-runtime BUILTIN_REF on {_describe(model_bytes)}", timeout_s
    )
    return result


def reference_runtime_outputs(
    model_bytes: bytes, inputs: Sequence[np.ndarray], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[np.ndarray]:
    """One invocation with tflite-runtime's reference kernels; the outputs in model order."""
    return reference_runtime_invocations(model_bytes, [inputs], timeout_s=timeout_s)[0]


def tflm_arena_works(
    model_bytes: bytes, arena_bytes: int, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> bool:
    """True when TFLM prepares and invokes the model (all-zero inputs) with an arena of
    `arena_bytes` bytes. Each probe runs in its own forked process, so a crash is a False.
    """
    request = {"kind": "probe", "model": bytes(model_bytes), "arena_bytes": int(arena_bytes)}
    works: bool = _WORKER.request(
        request, f"TFLM arena probe on {_describe(model_bytes)}", timeout_s
    )
    return works


def tflm_min_arena_bytes(model_bytes: bytes, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """The smallest TFLM tensor arena (bytes) with which the model prepares and invokes.

    Found by doubling from 1 KiB until a probe works, then binary search to the byte; each
    probe is a separate child process (a too-small arena crashes TFLM). Assumes that any
    arena larger than a working one also works, which holds for TFLM's allocator. Raises
    `OracleError` when no arena up to `MAX_PROBED_ARENA_BYTES` works.
    """
    high = 1024
    while not tflm_arena_works(model_bytes, high, timeout_s=timeout_s):
        if high >= MAX_PROBED_ARENA_BYTES:
            raise OracleError(
                f"TFLM on {_describe(model_bytes)}: the model does not run with any arena up to "
                f"{MAX_PROBED_ARENA_BYTES} bytes (run_tflm gives TFLM's reason)"
            )
        high *= 2
    low = high // 2 if high > 1024 else 0  # low never works (or is 0)
    while high - low > 1:
        middle = (low + high) // 2
        if tflm_arena_works(model_bytes, middle, timeout_s=timeout_s):
            high = middle
        else:
            low = middle
    return high
