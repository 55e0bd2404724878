"""Fixtures for the model-compiler tests: build generated C once per session, run TFLM.

`c_model` builds a model's generated C into a shared library (gcc -O2, warnings as errors)
and returns a `CModel` whose `invoke(bytes) -> bytes` calls `<prefix>_invoke` through ctypes;
builds are cached per session by model sha256. `tflm_model` wraps the TFLM oracle.
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from codegen.loaders.tflite_loader import decode_tflite
from codegen.model_compiler import GeneratedModel, generate_model, load_model, plan_model
from codegen.plan.model_plan import ModelPlan

GCC_FLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror"]
TFLM_ARENA_BYTES = 1 << 20


@dataclass
class CModel:
    """A generated model compiled into a shared library."""

    generated: GeneratedModel
    plan: ModelPlan
    library: ctypes.CDLL
    arena: ctypes.Array  # type: ignore[type-arg]
    arena_offset: int

    @property
    def prefix(self) -> str:
        return self.generated.prefix

    def _arena_pointer(self) -> ctypes.c_void_p:
        return ctypes.c_void_p(ctypes.addressof(self.arena) + self.arena_offset)

    def reset(self) -> None:
        getattr(self.library, f"{self.prefix}_reset")(self._arena_pointer())

    def invoke(self, data: bytes) -> bytes:
        summary = self.generated.summary
        assert len(data) == summary.input_bytes
        src = ctypes.create_string_buffer(data, len(data))
        dst = ctypes.create_string_buffer(summary.output_bytes)
        status = getattr(self.library, f"{self.prefix}_invoke")(src, dst, self._arena_pointer())
        assert status == 0
        return dst.raw

    def invoke_many(self, inputs: list[bytes]) -> list[bytes]:
        """Pack several graph inputs at their planned offsets; unpack every output."""
        packed = bytearray(self.plan.input_bytes)
        for edge, data in zip(self.plan.inputs, inputs, strict=True):
            assert len(data) == edge.byte_size
            packed[edge.offset : edge.offset + edge.byte_size] = data
        out = self.invoke(bytes(packed))
        return [out[e.offset : e.offset + e.byte_size] for e in self.plan.outputs]


def compile_shared(gen_dir: Path, out: Path, extra_flags: tuple[str, ...] = ()) -> Path:
    """gcc every generated .c file into one shared library (warnings are errors)."""
    sources = sorted(str(p) for p in gen_dir.glob("*.c"))
    cmd = ["gcc", *GCC_FLAGS, *extra_flags, "-shared", "-fPIC", "-o", str(out), *sources]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"gcc failed:\n{' '.join(cmd)}\n{result.stderr}"
    return out


@pytest.fixture(scope="session")
def c_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., CModel]:
    """Build (once per session) the generated C of a model given as bytes.

    `flags` are extra gcc flags, e.g. ("-Os",) or ("-DSHOAL_SPECIALIZE=0",).
    """
    cache: dict[str, CModel] = {}

    def build(model_bytes: bytes, prefix: str = "model", flags: tuple[str, ...] = ()) -> CModel:
        key = hashlib.sha256(model_bytes).hexdigest() + prefix + " ".join(flags)
        if key not in cache:
            root = tmp_path_factory.mktemp(f"c_{prefix}")
            generated = generate_model(model_bytes, root / "gen", prefix=prefix)
            plan = plan_model(load_model(model_bytes))
            lib_path = compile_shared(root / "gen", root / f"lib{prefix}.so", flags)
            library = ctypes.CDLL(str(lib_path))
            arena_bytes = max(generated.summary.arena_bytes, 1)
            arena = (ctypes.c_uint8 * (arena_bytes + 16))()
            offset = (-ctypes.addressof(arena)) % 16
            model = CModel(generated, plan, library, arena, offset)
            model.reset()
            cache[key] = model
        return cache[key]

    return build


class TflmModel:
    """TensorFlow Lite Micro running a model: the golden oracle."""

    def __init__(self, model_bytes: bytes) -> None:
        from tflite_micro import runtime

        self.interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=TFLM_ARENA_BYTES)
        self.output_count = len(decode_tflite(model_bytes).outputs)
        self.input_details = self.interpreter.get_input_details(0)
        self.output_details = self.interpreter.get_output_details(0)

    def invoke(self, data: bytes) -> bytes:
        array = np.frombuffer(data, dtype=self.input_details["dtype"]).reshape(
            self.input_details["shape"]
        )
        self.interpreter.set_input(array, 0)
        self.interpreter.invoke()
        out: np.ndarray = self.interpreter.get_output(0)
        return out.tobytes()

    def invoke_many(self, inputs: list[bytes]) -> list[bytes]:
        for index, data in enumerate(inputs):
            details = self.interpreter.get_input_details(index)
            array = np.frombuffer(data, dtype=details["dtype"]).reshape(details["shape"])
            self.interpreter.set_input(array, index)
        self.interpreter.invoke()
        return [self.interpreter.get_output(i).tobytes() for i in range(self.output_count)]

    def reset(self) -> None:
        self.interpreter.reset()


@pytest.fixture(scope="session")
def tflm_model() -> Callable[[bytes], TflmModel]:
    return TflmModel
