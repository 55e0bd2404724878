"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(scope="session", autouse=True)
def private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Gateways started by tests (in process or as `shoal gateway`) keep their spool and
    sessions under a private XDG_STATE_HOME, never in the user's ~/.local/state."""
    state_home = tmp_path_factory.mktemp("state-home")
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(state_home)
    try:
        yield state_home
    finally:
        if previous is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = previous
