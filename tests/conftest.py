"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS_DIR = PROJECT_ROOT.parent / "shared" / "models"


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    """The reference models in ../shared/models (read in place, never copied into the repo)."""
    if not SHARED_MODELS_DIR.is_dir():
        pytest.skip(f"reference models not found: {SHARED_MODELS_DIR} is absent on this machine")
    return SHARED_MODELS_DIR
