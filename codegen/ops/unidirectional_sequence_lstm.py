"""UNIDIRECTIONAL_SEQUENCE_LSTM, integer 8x8->16 (int8 activations, int16 cell state).

Responsible for: validating the standard-LSTM form TFLM's integer kernel runs (no CIFG,
peephole, projection or layer norm), and the compile-time parameters: per-gate input and
recurrent fully-connected multipliers onto Q3.12, folded biases, the inter-gate multiply
multipliers, the cell-state tanh scaling and the quantized cell clip. Kernel: `lstm_s8`; the
hidden and cell state are variable tensors that persist in the arena between invocations.

Must not: place tensors in memory.
"""

from __future__ import annotations

import numpy as np

from codegen.ir.model import LstmOptions, Model, Operator, Tensor
from codegen.ops.base import (
    ArrayRef,
    ConstArray,
    OpPlan,
    operand,
    per_tensor_problems,
    tensor_problems,
)
from codegen.ops.common import tensor_array
from codegen.ops.quantization import quantize_multiplier

OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"

# TFLite LSTM input slots.
INPUT = 0
INPUT_WEIGHTS = (1, 2, 3, 4)  # input, forget, cell, output gates
RECURRENT_WEIGHTS = (5, 6, 7, 8)
GATE_BIASES = (12, 13, 14, 15)
HIDDEN_STATE = 18
CELL_STATE = 19
ABSENT_SLOTS = (9, 10, 11, 16, 17, 20, 21, 22, 23)
GATE_INPUT_SCALE = 2.0**-12  # gates are computed in Q3.12
GATE_OUTPUT_SCALE = 2.0**-15  # sigmoid/tanh outputs are Q0.15


def _cell_scale_power(cell: Tensor) -> int | None:
    """log2 of the cell-state scale when it is a power of two (as TFLite's CheckedLog2)."""
    if cell.quantization is None or cell.quantization.scale <= 0:
        return None
    log2 = float(np.log2(np.float32(cell.quantization.scale)))
    rounded = round(log2)
    return int(rounded) if abs(log2 - rounded) < 1e-3 else None


def check(model: Model, op: Operator) -> list[str]:
    """Problems that stop this op from compiling (empty when supported)."""
    assert isinstance(op.options, LstmOptions)
    if len(op.inputs) != 24:
        return [f"{len(op.inputs)} inputs (expected 24)"]
    problems: list[str] = []
    x = operand(model, op, INPUT)
    if x is None:
        return ["input missing"]
    problems += tensor_problems(x, "input", ("int8",)) + per_tensor_problems(x, "input")
    if len(x.shape) != 3:
        problems.append(f"input shape {list(x.shape)} is not 3-D")
    for slot in ABSENT_SLOTS:
        if operand(model, op, slot) is not None:
            problems.append(
                f"input {slot} is present (CIFG, peephole, projection and layer-norm LSTMs "
                "are not supported)"
            )
    for slot in (*INPUT_WEIGHTS, *RECURRENT_WEIGHTS):
        w = operand(model, op, slot)
        if w is None or w.data is None:
            problems.append(f"weights input {slot} missing or not constant")
            continue
        problems += tensor_problems(w, f"weights {slot}", ("int8",))
        problems += per_tensor_problems(w, f"weights {slot}")
        if w.quantization and w.quantization.zero_point != 0:
            problems.append(f"weights {slot} zero point is not 0")
    for slot in GATE_BIASES:
        b = operand(model, op, slot)
        if b is None or b.data is None:
            problems.append(f"bias input {slot} missing or not constant")
        else:
            problems += tensor_problems(b, f"bias {slot}", ("int32",), quantized=False)
    hidden, cell = operand(model, op, HIDDEN_STATE), operand(model, op, CELL_STATE)
    if hidden is None or not hidden.is_variable:
        problems.append("hidden state (input 18) must be a variable tensor")
    else:
        problems += tensor_problems(hidden, "hidden state", ("int8",))
    if cell is None or not cell.is_variable:
        problems.append("cell state (input 19) must be a variable tensor")
    else:
        problems += tensor_problems(cell, "cell state", ("int16",))
        if not problems and _cell_scale_power(cell) is None:
            problems.append("cell state scale is not a power of two")
    out = model.tensors[op.outputs[0]]
    problems += tensor_problems(out, "output", ("int8",))
    if op.options.fused_activation != "TANH":
        problems.append(f"cell activation {op.options.fused_activation} (supported: TANH)")
    if op.options.cell_clip < 0:
        problems.append("negative cell clip")
    return problems


def _gate_multiplier(activation_scale: float, weights: Tensor) -> tuple[int, int]:
    assert weights.quantization is not None
    real = float(activation_scale) * float(weights.quantization.scale) / GATE_INPUT_SCALE
    return quantize_multiplier(real)


def _folded_bias(weights: Tensor, bias: Tensor | None, zero_point: int) -> np.ndarray:
    w = tensor_array(weights).astype(np.int64)
    folded = -zero_point * w.sum(axis=1)
    if bias is not None:
        folded = folded + tensor_array(bias).astype(np.int64).reshape(-1)
    wrapped: np.ndarray = ((folded + 2**31) % 2**32) - 2**31
    return wrapped


def plan(model: Model, op: Operator) -> OpPlan:
    assert isinstance(op.options, LstmOptions)
    x = model.tensors[op.inputs[INPUT]]
    hidden = model.tensors[op.inputs[HIDDEN_STATE]]
    cell = model.tensors[op.inputs[CELL_STATE]]
    assert x.quantization and hidden.quantization and cell.quantization
    if op.options.time_major:
        time_steps, batches, input_dim = x.shape
        outer, step_batches = 1, batches
    else:
        batches, time_steps, input_dim = x.shape
        outer, step_batches = batches, 1
    w_in = [model.tensors[op.inputs[s]] for s in INPUT_WEIGHTS]
    w_rec = [model.tensors[op.inputs[s]] for s in RECURRENT_WEIGHTS]
    biases = [model.tensors[op.inputs[s]] for s in GATE_BIASES]
    state_dim = w_in[0].shape[0]
    in_mults = [_gate_multiplier(x.quantization.scale, w) for w in w_in]
    rec_mults = [_gate_multiplier(hidden.quantization.scale, w) for w in w_rec]
    bias_in = np.concatenate(
        [_folded_bias(w, b, x.quantization.zero_point) for w, b in zip(w_in, biases, strict=True)]
    )
    bias_rec = np.concatenate(
        [_folded_bias(w, None, hidden.quantization.zero_point) for w in w_rec]
    )
    cell_scale = float(cell.quantization.scale)
    forget_mult = quantize_multiplier(GATE_OUTPUT_SCALE * cell_scale / cell_scale)
    input_mult = quantize_multiplier(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / cell_scale)
    hidden_mult = quantize_multiplier(
        GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / float(hidden.quantization.scale)
    )
    power = _cell_scale_power(cell)
    assert power is not None
    tanh_shift = 15 + power - 3
    # TFLite's int16 tanh takes Q3.12 input: scale the cell state by 3 * 2**tanh_shift.
    if tanh_shift < 0:
        tanh_multiplier, tanh_right_shift = 3, -tanh_shift
    else:
        tanh_multiplier, tanh_right_shift = 3 << tanh_shift, 0
    cell_clip = 0
    if op.options.cell_clip > 0:
        cell_clip = int(min(max(op.options.cell_clip / cell_scale, -32768.0), 32767.0))
    arrays = (
        ConstArray(
            "w_in", "int8", tuple(int(v) for w in w_in for v in tensor_array(w).reshape(-1))
        ),
        ConstArray(
            "w_rec", "int8", tuple(int(v) for w in w_rec for v in tensor_array(w).reshape(-1))
        ),
        ConstArray("bias_in", "int32", tuple(int(v) for v in bias_in)),
        ConstArray("bias_rec", "int32", tuple(int(v) for v in bias_rec)),
        ConstArray("in_multiplier", "int32", tuple(m for m, _ in in_mults)),
        ConstArray("in_shift", "int32", tuple(s for _, s in in_mults)),
        ConstArray("rec_multiplier", "int32", tuple(m for m, _ in rec_mults)),
        ConstArray("rec_shift", "int32", tuple(s for _, s in rec_mults)),
    )
    macs = batches * time_steps * 4 * state_dim * (input_dim + state_dim)
    return OpPlan(
        op_index=op.index,
        op=op.op,
        kernel="lstm_s8",
        inputs=(op.inputs[INPUT],),
        outputs=(op.outputs[0],),
        states=(op.inputs[HIDDEN_STATE], op.inputs[CELL_STATE]),
        params=(
            ("outer_batches", outer),
            ("step_batches", step_batches),
            ("time_steps", time_steps),
            ("input_dim", input_dim),
            ("state_dim", state_dim),
            ("w_in", ArrayRef("w_in")),
            ("w_rec", ArrayRef("w_rec")),
            ("bias_in", ArrayRef("bias_in")),
            ("bias_rec", ArrayRef("bias_rec")),
            ("in_multiplier", ArrayRef("in_multiplier")),
            ("in_shift", ArrayRef("in_shift")),
            ("rec_multiplier", ArrayRef("rec_multiplier")),
            ("rec_shift", ArrayRef("rec_shift")),
            ("forget_cell_multiplier", forget_mult[0]),
            ("forget_cell_shift", forget_mult[1]),
            ("input_cell_multiplier", input_mult[0]),
            ("input_cell_shift", input_mult[1]),
            ("hidden_multiplier", hidden_mult[0]),
            ("hidden_shift", hidden_mult[1]),
            ("hidden_zero_point", hidden.quantization.zero_point),
            ("tanh_multiplier", tanh_multiplier),
            ("tanh_right_shift", tanh_right_shift),
            ("cell_clip", cell_clip),
        ),
        arrays=arrays,
        macs=macs,
        scratch_bytes=4 * 2 * step_batches * state_dim,
    )
