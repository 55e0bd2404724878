"""Where Shoal's data folders are: `boards/` and `firmware_templates/`.

In a source checkout (or an editable install) they sit beside the `codegen` package; in a wheel
install they travel as the resource packages `shoal_resources.boards` and
`shoal_resources.firmware_templates` (see setup.py). This module only finds folders; it reads
nothing in them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def _data_dir(folder: str) -> Path:
    in_checkout = _CHECKOUT_ROOT / folder
    if in_checkout.is_dir():
        return in_checkout
    spec = importlib.util.find_spec(f"shoal_resources.{folder}")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    raise FileNotFoundError(
        f"Shoal's '{folder}' data folder is missing from this installation "
        f"(looked in {in_checkout} and the package shoal_resources.{folder}); reinstall shoal"
    )


def boards_dir() -> Path:
    """The folder holding one board file per supported board."""
    return _data_dir("boards")


def templates_dir() -> Path:
    """The folder holding the C and MicroPython firmware templates."""
    return _data_dir("firmware_templates")
