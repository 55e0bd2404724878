"""The child process that runs TFLM and tflite-runtime for `host_sdk.verify.tflm_oracle`.

Responsible for: loading models into the two runtimes, running invocations, and probing arena
sizes in forked grandchildren (a too-small TFLM arena kills the process that tries it). It
talks to its parent only through length-prefixed pickles on the file descriptors it is given;
everything the runtimes print goes to a log that is returned with errors.

Must not be imported by the caller's process: a crash here must never take the caller down.
Run it as `python -m host_sdk.verify._oracle_worker`.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np

_HEADER = struct.Struct("<Q")
# Exit statuses of a probe grandchild.
_PROBE_OK = 0
_PROBE_REJECTED = 3
_PROBE_TIMEOUT_S = 60.0


def read_message(stream: BinaryIO) -> Any:
    """Read one length-prefixed pickle; None at end of stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return pickle.loads(payload)


def write_message(stream: BinaryIO, message: Any) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _check_inputs(details: Sequence[dict[str, Any]], inputs: Sequence[np.ndarray]) -> None:
    if len(inputs) != len(details):
        raise ValueError(f"the model has {len(details)} input(s) but {len(inputs)} were given")
    for i, (detail, array) in enumerate(zip(details, inputs, strict=True)):
        shape = tuple(int(d) for d in detail["shape"])
        dtype = np.dtype(detail["dtype"])
        if tuple(array.shape) != shape or array.dtype != dtype:
            raise ValueError(
                f"input {i}: expected dtype {dtype.name} and shape {shape}, "
                f"got {array.dtype.name} of shape {tuple(array.shape)}"
            )


def _io_counts(model: bytes) -> tuple[int, int]:
    """(inputs, outputs) of the model's first subgraph, read without any runtime."""
    import tflite

    if len(model) < 8 or model[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (file identifier 'TFL3' missing)")
    subgraph = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    if subgraph is None:
        raise ValueError("the model has no subgraph")
    return int(subgraph.InputsLength()), int(subgraph.OutputsLength())


def _run_tflm(
    model: bytes, invocations: Sequence[Sequence[np.ndarray]], arena_bytes: int
) -> list[list[np.ndarray]]:
    from tflite_micro import runtime

    input_count, output_count = _io_counts(model)
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_bytes)
    details = [interpreter.get_input_details(i) for i in range(input_count)]
    results: list[list[np.ndarray]] = []
    for inputs in invocations:
        _check_inputs(details, inputs)
        for i, array in enumerate(inputs):
            interpreter.set_input(array, i)
        interpreter.invoke()
        results.append(
            [np.array(interpreter.get_output(i), copy=True) for i in range(output_count)]
        )
    return results


def _run_reference(
    model: bytes, invocations: Sequence[Sequence[np.ndarray]]
) -> list[list[np.ndarray]]:
    from tflite_runtime.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
    )
    interpreter.allocate_tensors()
    input_details = interpreter.get_input_details()
    output_details = interpreter.get_output_details()
    details = [{"shape": d["shape"], "dtype": d["dtype"]} for d in input_details]
    results = []
    for inputs in invocations:
        _check_inputs(details, inputs)
        for detail, array in zip(input_details, inputs, strict=True):
            interpreter.set_tensor(detail["index"], array)
        interpreter.invoke()
        results.append([np.array(interpreter.get_tensor(d["index"])) for d in output_details])
    return results


def _probe_arena(model: bytes, arena_bytes: int) -> bool:
    """True when TFLM prepares and invokes the model (zero inputs) in `arena_bytes` bytes."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # grandchild: anything may crash here
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            from tflite_micro import runtime

            input_count, _ = _io_counts(model)
            interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_bytes)
            for index in range(input_count):
                detail = interpreter.get_input_details(index)
                shape = tuple(int(d) for d in detail["shape"])
                interpreter.set_input(np.zeros(shape, dtype=detail["dtype"]), index)
            interpreter.invoke()
        except BaseException:
            os._exit(_PROBE_REJECTED)
        os._exit(_PROBE_OK)
    deadline = time.monotonic() + _PROBE_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == _PROBE_OK
        if time.monotonic() > deadline:
            # A hung probe would outlive this process; it is ours, so end it.
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"arena probe of {arena_bytes} bytes ran over {_PROBE_TIMEOUT_S} s")
        time.sleep(0.001)


def _handle(request: dict[str, Any]) -> Any:
    kind = request["kind"]
    if kind == "tflm":
        return _run_tflm(request["model"], request["invocations"], request["arena_bytes"])
    if kind == "reference":
        return _run_reference(request["model"], request["invocations"])
    if kind == "probe":
        return _probe_arena(request["model"], request["arena_bytes"])
    raise ValueError(f"unknown request kind {kind!r}")


def main() -> None:
    # The protocol owns the original stdout; the runtimes' own prints go to a log file that
    # is attached to error replies, so nothing they print can corrupt a message.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    with tempfile.TemporaryFile() as log, open(log.fileno(), "w", closefd=False) as text_log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = text_log
        _serve(requests, replies, log)


def _serve(requests: BinaryIO, replies: BinaryIO, log: BinaryIO) -> None:
    while True:
        request = read_message(requests)
        if request is None:
            return
        log.seek(0)
        log.truncate()
        try:
            reply: dict[str, Any] = {"ok": True, "value": _handle(request)}
        except Exception as exc:
            sys.stdout.flush()
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "log": text[-4000:],
                "traceback": traceback.format_exc(limit=4),
            }
        write_message(replies, reply)


if __name__ == "__main__":
    main()
