"""Intermediate representation: frozen dataclasses only (models, boards, roles); no logic beyond
derived properties, no I/O."""
