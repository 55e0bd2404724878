"""JSON Schemas shipped with Shoal (data files; this package holds no code).

`role_spec.schema.json` describes one agent role spec (see `codegen.loaders.role_loader`).
"""
