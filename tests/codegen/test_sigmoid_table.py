"""The LSTM kernel's sigmoid table is exactly the one `codegen.ops.sigmoid_table` derives."""

from __future__ import annotations

import itertools
import re

import pytest

from codegen.ops.sigmoid_table import sigmoid_table_q16
from codegen.resources import templates_dir

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("path", "opening", "closing"),
    [
        ("c/nn/shoal_nn_lstm_impl.h", "shoal_sigmoid_lut[256] = {", "}"),
        ("micropython/nn/shoal_nn.py", '_SIGMOID_LUT = array("H", (', ")"),
    ],
)
def test_kernel_tables_equal_the_derived_table(path: str, opening: str, closing: str) -> None:
    source = (templates_dir() / path).read_text()
    body = source.split(opening, 1)[1].split(closing, 1)[0]
    assert tuple(int(value) for value in re.findall(r"\d+", body)) == sigmoid_table_q16()


def test_table_shape() -> None:
    table = sigmoid_table_q16()
    assert len(table) == 256 and table[0] == 32768 and table[-1] == 65535
    assert all(a <= b for a, b in itertools.pairwise(table))
