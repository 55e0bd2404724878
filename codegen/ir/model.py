"""The model IR: frozen dataclasses describing one quantized TFLite graph.

Responsible for: the shape of the data every later stage reads (tensors with quantization and
constant bytes, operators with typed options, the graph's inputs and outputs) and small derived
facts that need no policy (element counts, byte sizes).

Must not: parse files (that is `codegen.loaders`), compute fixed-point parameters or memory
offsets (that is `codegen.ops` and `codegen.plan`), or know about any output backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

# Bytes per element of every dtype the IR can name (names follow the TFLite schema, lower case).
DTYPE_BYTES: dict[str, int] = {
    "float32": 4,
    "float16": 2,
    "int32": 4,
    "uint8": 1,
    "int64": 8,
    "bool": 1,
    "int16": 2,
    "int8": 1,
    "float64": 8,
    "uint32": 4,
    "uint16": 2,
    "int4": 1,
    "string": 1,
    "complex64": 8,
    "complex128": 16,
    "uint64": 8,
    "resource": 1,
    "variant": 1,
    "bfloat16": 2,
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point).

    One scale/zero point for the whole tensor, or one per slice along `quantized_dimension`
    (per-channel). `quantized_dimension` is kept as the file gave it, even when it does not
    exist in the tensor (real bias tensors carry that quirk); `is_per_channel` is what counts.
    """

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int

    @property
    def is_per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        """The per-tensor scale (the first one for a per-channel tensor)."""
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0] if self.zero_points else 0


@dataclass(frozen=True)
class Tensor:
    """One tensor of the graph; `data` holds the raw little-endian bytes of constants."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: Quantization | None
    data: bytes | None
    is_variable: bool

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def element_count(self) -> int:
        return prod(self.shape)

    @property
    def byte_size(self) -> int:
        """Size of the tensor's data in bytes."""
        return self.element_count * DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class NoOptions:
    """An operator without builtin options."""


@dataclass(frozen=True)
class FullyConnectedOptions:
    fused_activation: str
    keep_num_dims: bool
    weights_format: str


@dataclass(frozen=True)
class Conv2DOptions:
    padding: str
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    fused_activation: str


@dataclass(frozen=True)
class DepthwiseConv2DOptions:
    padding: str
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    depth_multiplier: int
    fused_activation: str


@dataclass(frozen=True)
class Pool2DOptions:
    padding: str
    stride_h: int
    stride_w: int
    filter_h: int
    filter_w: int
    fused_activation: str


@dataclass(frozen=True)
class ElementwiseOptions:
    """ADD, SUB, MUL: only a fused activation."""

    fused_activation: str


@dataclass(frozen=True)
class SoftmaxOptions:
    beta: float


@dataclass(frozen=True)
class ReshapeOptions:
    new_shape: tuple[int, ...] | None


@dataclass(frozen=True)
class ConcatenationOptions:
    axis: int
    fused_activation: str


@dataclass(frozen=True)
class StridedSliceOptions:
    begin_mask: int
    end_mask: int
    ellipsis_mask: int
    new_axis_mask: int
    shrink_axis_mask: int
    offset: bool


@dataclass(frozen=True)
class LeakyReluOptions:
    alpha: float


@dataclass(frozen=True)
class LstmOptions:
    fused_activation: str
    cell_clip: float
    proj_clip: float
    time_major: bool
    asymmetric_quantize_inputs: bool


OperatorOptions = (
    NoOptions
    | FullyConnectedOptions
    | Conv2DOptions
    | DepthwiseConv2DOptions
    | Pool2DOptions
    | ElementwiseOptions
    | SoftmaxOptions
    | ReshapeOptions
    | LstmOptions
    | LeakyReluOptions
    | ConcatenationOptions
    | StridedSliceOptions
)


@dataclass(frozen=True)
class Operator:
    """One operator; `inputs` may hold -1 for an optional input that is absent."""

    index: int
    op: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...]
    options: OperatorOptions


@dataclass(frozen=True)
class Model:
    """A single-subgraph model in execution order."""

    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    source_sha256: str
    description: str = ""

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]
