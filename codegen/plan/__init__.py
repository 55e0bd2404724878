"""Model planning: arena offsets, per-op kernel calls, budgets."""
