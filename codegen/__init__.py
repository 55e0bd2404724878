"""Shoal's compiler: models, role specs and board files in; firmware sources out.

Stages (each a subpackage, each reading only the one before it): `loaders` parse inputs into
the frozen dataclasses of `ir`; `plan` computes every number the output needs (arena offsets,
fixed-point multipliers, topic ids, budgets); `ops` holds one module per TFLite operator;
`emit` renders `firmware_templates/`. Nothing here does I/O beyond reading its inputs and
writing the output directory it is given.
"""

__version__ = "0.1.0"
