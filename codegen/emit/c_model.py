"""C backend: render one model's header, graph and weights, and pick the kernel sources.

Responsible for: turning the IR and the `ModelPlan` into the values the C templates print
(C types, pointer expressions, literals) and rendering `firmware_templates/c/model/`.

Linking several models into one binary: every external symbol and macro a model's files define
starts with its prefix (`P_invoke`, `P_reset`, `P_set_profiler`, the weight arrays `P_t<N>`
and `P_op<N>_<name>`, `P_*` macros); everything else in the graph file is `static`. The kernel
library (`shoal_nn*.c`, `shoal_nn*.h`, `shoal_fixedpoint.h`) defines only `shoal_nn_*` symbols
and is byte-identical whichever model it was generated with (its stamp names no model), so
models generated into one folder share one copy and it is compiled once. Speed builds inline
the specialised kernel bodies into each model's graph file as `static` functions.

Must not: compute offsets, multipliers or shapes (the plan does) or write files (the caller
does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen import __version__
from codegen.emit.environment import TEMPLATES_DIR, c_float, environment
from codegen.ir.model import Model
from codegen.ops.base import ArrayRef, ConstArray
from codegen.plan.model_plan import ARENA, CONSTANT, GRAPH_INPUT, GRAPH_OUTPUT, ModelPlan

C_TYPES = {
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "int32": "int32_t",
    "float32": "float",
}
NUMPY_TYPES = {
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "int32": np.int32,
    "float32": np.float32,
}

# Kernel id -> its family: shoal_nn_<family>.c (out of line) and shoal_nn_<family>_impl.h
# (always-inline bodies the generated graph specialises).
KERNEL_FAMILIES = {
    "fully_connected_s8": "fully_connected",
    "conv_2d_s8": "conv",
    "conv_2d_direct_s8": "conv",
    "depthwise_conv_2d_s8": "conv",
    "average_pool_2d_s8": "pool",
    "binary_s8": "elementwise",
    "quantize_f32_s8": "elementwise",
    "requantize_s8": "elementwise",
    "dequantize_s8_f32": "elementwise",
    "copy": "elementwise",
    "lut_s8": "elementwise",
    "max_pool_2d_s8": "pool",
    "pad_s8": "layout",
    "gather_s8": "layout",
    "concat_s8": "layout",
    "mean_s8": "pool",
    "softmax_s8": "softmax",
    "lstm_s8": "lstm",
}
# Kernel id -> the .c file holding its out-of-line definition (used by `shoal check`).
KERNEL_SOURCES = {kernel: f"shoal_nn_{family}.c" for kernel, family in KERNEL_FAMILIES.items()}
NN_HEADERS = ("shoal_nn.h", "shoal_fixedpoint.h")
NN_DIR = TEMPLATES_DIR / "c" / "nn"
VALUES_PER_LINE = 16


@dataclass(frozen=True)
class WeightArray:
    name: str
    ctype: str
    count: int
    lines: tuple[str, ...]


def _literal(value: int | float, dtype: str) -> str:
    if dtype == "float32":
        return c_float(float(value))
    if dtype == "int32" and value == -(2**31):
        return "INT32_MIN"
    return str(int(value))


def _array_lines(values: np.ndarray, dtype: str) -> tuple[str, ...]:
    flat = [_literal(v, dtype) for v in values.reshape(-1).tolist()]
    return tuple(
        ", ".join(flat[i : i + VALUES_PER_LINE]) + "," for i in range(0, len(flat), VALUES_PER_LINE)
    )


def _weight_arrays(model: Model, plan: ModelPlan, prefix: str) -> list[WeightArray]:
    arrays = []
    for t in plan.constant_tensors:
        tensor = model.tensors[t]
        assert tensor.data is not None
        values = np.frombuffer(tensor.data, dtype=NUMPY_TYPES[tensor.dtype])
        arrays.append(
            WeightArray(
                name=f"{prefix}_t{t}",
                ctype=C_TYPES[tensor.dtype],
                count=int(values.size),
                lines=_array_lines(values, tensor.dtype),
            )
        )
    for step in plan.steps:
        if step.elided:
            continue
        for array in step.plan.arrays:
            arrays.append(_derived_array(array, prefix, step.plan.op_index))
    return arrays


def _derived_array(array: ConstArray, prefix: str, op_index: int) -> WeightArray:
    values = np.asarray(array.values, dtype=NUMPY_TYPES[array.dtype])
    return WeightArray(
        name=f"{prefix}_op{op_index}_{array.name}",
        ctype=C_TYPES[array.dtype],
        count=int(values.size),
        lines=_array_lines(values, array.dtype),
    )


def _pointer(model: Model, plan: ModelPlan, prefix: str, tensor: int, writable: bool) -> str:
    location = plan.location(tensor)
    ctype = C_TYPES[model.tensors[tensor].dtype]
    qualifier = "" if writable else "const "
    if location.kind == ARENA:
        return f"({qualifier}{ctype} *)(arena + {location.offset})"
    if location.kind == GRAPH_INPUT:
        assert not writable, "the graph input is read-only"
        if location.offset:
            return f"(const {ctype} *)((const uint8_t *)input + {location.offset})"
        return f"(const {ctype} *)input"
    if location.kind == GRAPH_OUTPUT:
        if location.offset:
            return f"({qualifier}{ctype} *)((uint8_t *)output + {location.offset})"
        return f"({qualifier}{ctype} *)output"
    assert location.kind == CONSTANT
    return f"{prefix}_t{tensor}"


def _steps(model: Model, plan: ModelPlan, prefix: str) -> list[dict[str, object]]:
    steps: list[dict[str, object]] = []
    for step in plan.steps:
        p = step.plan
        fields = []
        for name, value in p.params:
            if isinstance(value, ArrayRef):
                text = f"{prefix}_op{p.op_index}_{value.name}"
            elif isinstance(value, float):
                text = c_float(value)
            else:
                text = _literal(value, "int32")
            fields.append((name, text))
        args: list[str] = []
        if not step.elided:
            ins = [_pointer(model, plan, prefix, t, writable=False) for t in p.inputs]
            if p.inputs_as_array:
                ctype = C_TYPES[model.tensors[p.inputs[0]].dtype]
                ins = [f"(const {ctype} *const[]){{{', '.join(ins)}}}"]
            args += ins
            args += [_pointer(model, plan, prefix, t, writable=True) for t in p.outputs]
            args += [_pointer(model, plan, prefix, t, writable=True) for t in p.states]
        if step.scratch_offset is not None:
            args.append(f"(void *)(arena + {step.scratch_offset})")
        steps.append(
            {
                "index": p.op_index,
                "op": p.op,
                "elided": step.elided,
                "function": f"shoal_nn_{p.kernel}",
                "params_type": f"shoal_nn_{p.kernel}_params_t",
                "fields": fields,
                "args": args,
                "macs": p.macs,
                "tensors": f"{list(p.inputs)} -> {list(p.outputs)}",
            }
        )
    return steps


def stamp(model: Model, source_name: str) -> str:
    """The first line of every generated file."""
    return (
        f"/* Generated by Shoal {__version__} from {source_name} "
        f"(sha256 {model.source_sha256}). Do not edit. */"
    )


def kernel_stamp() -> str:
    """The first line of every kernel library file: names no model, so the library files are
    byte-identical for every model generated by this version of Shoal."""
    return (
        f"/* Generated by Shoal {__version__}: kernel library, identical for every model. "
        "Do not edit. */"
    )


def kernel_families(plan: ModelPlan) -> tuple[str, ...]:
    """The kernel families the plan calls, sorted."""
    return tuple(sorted({KERNEL_FAMILIES[s.plan.kernel] for s in plan.steps if not s.elided}))


def kernel_sources(plan: ModelPlan) -> tuple[str, ...]:
    """The nn files (names under firmware_templates/c/nn) the generated model needs."""
    families = kernel_families(plan)
    return (
        *NN_HEADERS,
        *(f"shoal_nn_{f}_impl.h" for f in families),
        *(f"shoal_nn_{f}.c" for f in families),
    )


def emit_c(model: Model, plan: ModelPlan, prefix: str, source_name: str) -> dict[str, str]:
    """Render every file of the C model: name -> text (header, graph, weights, kernels)."""
    env = environment()
    header_stamp = stamp(model, source_name)
    context = {
        "stamp": header_stamp,
        "prefix": prefix,
        "PREFIX": prefix.upper(),
        "plan": plan,
        "input_ctype": C_TYPES[plan.input.dtype],
        "output_ctype": C_TYPES[plan.output.dtype],
        "steps": _steps(model, plan, prefix),
        "weights": _weight_arrays(model, plan, prefix),
        "op_count": len(plan.steps),
        "kernel_impl_headers": [f"shoal_nn_{f}_impl.h" for f in kernel_families(plan)],
        "total_macs": sum(plan.macs),
    }
    files = {
        f"{prefix}.h": env.get_template("c/model/model.h.j2").render(context),
        f"{prefix}.c": env.get_template("c/model/model.c.j2").render(context),
        f"{prefix}_weights.c": env.get_template("c/model/model_weights.c.j2").render(context),
    }
    for name in kernel_sources(plan):
        files[name] = kernel_stamp() + "\n" + (NN_DIR / name).read_text()
    return files
