"""Alter one constant in generated sources, as a slip of an editor or a bad merge would.

Not a test module: the verify tests import it to check that `shoal verify` notices.
Both edits change the bias of channel 0 of the model's last layer that has a per-channel bias
(by `delta`, in accumulator units), which moves that output element; a large positive
`delta` makes channel 0 win a following softmax whatever the input.
"""

from __future__ import annotations

import ast
import re
import struct
from pathlib import Path

_C_BIAS = re.compile(r"(const int32_t \w+_op(\d+)_bias\[\d+\] = \{\s*)(-?\d+)")
_MP_PER_CHANNEL = re.compile(r"^_op(\d+)_q$")


def alter_c_bias(sources: Path, prefix: str, delta: int) -> str:
    """Add `delta` to the first bias of the last op with a bias in `<prefix>_weights.c`;
    returns a description of the edit."""
    path = sources / f"{prefix}_weights.c"
    text = path.read_text()
    matches = list(_C_BIAS.finditer(text))
    assert matches, f"{path}: no bias array to alter"
    last = max(matches, key=lambda m: int(m.group(2)))
    new_value = int(last.group(3)) + delta
    path.write_text(text[: last.start(3)] + str(new_value) + text[last.end(3) :])
    return f"{path.name}: op {last.group(2)} bias[0] {last.group(3)} -> {new_value}"


def alter_micropython_bias(sources: Path, prefix: str, delta: int) -> str:
    """Add `delta` to the first bias (int32 little-endian, first of each bias/multiplier/shift
    triple) of the last per-channel parameter block `_op<N>_q` in `<prefix>.py`."""
    path = sources / f"{prefix}.py"
    text = path.read_text()
    tree = ast.parse(text)
    blocks = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            found = _MP_PER_CHANNEL.match(node.targets[0].id)
            if found and isinstance(node.value, ast.Constant):
                blocks.append((int(found.group(1)), node))
    assert blocks, f"{path}: no per-channel parameter block to alter"
    op, node = max(blocks, key=lambda item: item[0])
    assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, bytes)
    data = bytearray(node.value.value)
    (bias,) = struct.unpack_from("<i", data, 0)
    struct.pack_into("<i", data, 0, bias + delta)
    lines = text.splitlines(keepends=True)
    assert node.end_lineno is not None
    replacement = f"_op{op}_q = {bytes(data)!r}\n"
    lines[node.lineno - 1 : node.end_lineno] = [replacement]
    path.write_text("".join(lines))
    return f"{path.name}: op {op} bias[0] {bias} -> {bias + delta}"
