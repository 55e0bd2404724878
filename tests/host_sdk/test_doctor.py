"""`shoal doctor` finds tools by their real executables and distributions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from host_sdk.doctor import Tool, check_tool, missing_required, run_doctor

pytestmark = pytest.mark.unit


def test_an_executable_is_found_with_its_version(tmp_path: Path) -> None:
    status = check_tool(Tool("python", "x", True, Path(sys.executable).name))
    assert status.found
    assert status.version == "{}.{}.{}".format(*sys.version_info[:3])


def test_a_missing_executable_is_a_finding_not_an_error() -> None:
    status = check_tool(Tool("nothing", "x", True, "shoal-no-such-tool-here"))
    assert not status.found and status.version is None
    assert missing_required([status]) == [status]


def test_a_python_distribution_is_found_with_its_version() -> None:
    status = check_tool(Tool("pytest", "x", False, distribution="pytest"))
    assert status.found and status.version == pytest.__version__
    assert missing_required([status]) == []


def test_optional_tools_never_count_as_missing() -> None:
    statuses = run_doctor((Tool("nothing", "x", False, "shoal-no-such-tool-here"),))
    assert missing_required(statuses) == []
