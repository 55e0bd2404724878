"""Op name -> op module, and the whole-model support check.

Responsible for: which TFLite builtin ops Shoal compiles, and turning every operator's problems
into ONE `ShoalInputError` that lists each offending operator (index, name, version, dtype) and
the supported ops.

Must not: compute parameters itself (each op module does).
"""

from __future__ import annotations

from types import ModuleType

from codegen.errors import ShoalInputError
from codegen.ir.model import Model, Operator
from codegen.ops import (
    add,
    average_pool_2d,
    concatenation,
    conv_2d,
    depthwise_conv_2d,
    dequantize,
    expand_dims,
    fully_connected,
    hard_swish,
    leaky_relu,
    logistic,
    max_pool_2d,
    mean,
    mul,
    pad,
    padv2,
    quantize,
    relu,
    relu6,
    reshape,
    softmax,
    squeeze,
    strided_slice,
    sub,
    tanh,
    transpose,
    unidirectional_sequence_lstm,
)
from codegen.ops.base import OpPlan

OP_MODULES: dict[str, ModuleType] = {
    module.OP: module
    for module in (
        fully_connected,
        reshape,
        softmax,
        conv_2d,
        depthwise_conv_2d,
        average_pool_2d,
        add,
        sub,
        mul,
        quantize,
        dequantize,
        unidirectional_sequence_lstm,
        relu,
        relu6,
        leaky_relu,
        logistic,
        tanh,
        max_pool_2d,
        squeeze,
        expand_dims,
        pad,
        padv2,
        transpose,
        concatenation,
        mean,
        strided_slice,
        hard_swish,
    )
}


def supported_ops() -> tuple[str, ...]:
    """Names of the TFLite builtin operators Shoal compiles, sorted."""
    return tuple(sorted(OP_MODULES))


def op_problems(model: Model, op: Operator) -> list[str]:
    """Why `op` cannot be compiled (empty when it can)."""
    module = OP_MODULES.get(op.op)
    if module is None:
        return ["operator not supported"]
    if len(op.outputs) != 1:
        return [f"{len(op.outputs)} outputs (expected 1)"]
    problems: list[str] = module.check(model, op)
    return problems


def plan_op(model: Model, op: Operator) -> OpPlan:
    """The kernel call for a supported operator (run `check_supported` first)."""
    result: OpPlan = OP_MODULES[op.op].plan(model, op)
    return result


def _op_dtype(model: Model, op: Operator) -> str:
    for index in (*op.inputs, *op.outputs):
        if index >= 0 and model.tensors[index].data is None:
            return model.tensors[index].dtype
    return "?"


def check_supported(model: Model, source: str) -> None:
    """Raise one `ShoalInputError` naming every unsupported operator of `model`."""
    lines = []
    float_ops = 0
    for op in model.operators:
        problems = op_problems(model, op)
        if problems:
            dtype = _op_dtype(model, op)
            float_ops += dtype == "float32" and op.op not in ("QUANTIZE", "DEQUANTIZE")
            lines.append(
                f"  operator {op.index} {op.op} v{op.version} ({dtype}): {'; '.join(problems)}"
            )
    if not model.inputs or not model.outputs:
        lines.append(
            f"  graph has {len(model.inputs)} inputs and {len(model.outputs)} outputs "
            "(supported: at least one of each)"
        )
    if not lines:
        return
    hint = (
        " (this looks like a float model: Shoal compiles full-integer int8 models; convert it "
        "with full-integer quantization)"
        if float_ops
        else ""
    )
    raise ShoalInputError(
        f"{source}: {len(lines)} unsupported operator(s){hint}:\n"
        + "\n".join(lines)
        + f"\n  supported ops (int8 activations, int8 weights, int32 bias): "
        f"{', '.join(supported_ops())}"
    )
