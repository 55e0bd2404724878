"""The one Jinja2 environment every emitter renders with.

Responsible for: locating `firmware_templates/`, StrictUndefined (a missing value is an error,
never an empty string), and the value-formatting filters templates may use.

Must not: compute numbers; templates only loop and branch over what the plan gives them.
"""

from __future__ import annotations

import functools

import jinja2

from codegen.resources import templates_dir

# The firmware_templates/ folder, in a checkout or in an installed wheel.
TEMPLATES_DIR = templates_dir()


def c_float(value: float) -> str:
    """A C float literal that round-trips the float32 value exactly (9 significant digits)."""
    text = format(float(value), ".9g")
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["c_float"] = c_float
    return env
