"""A wheel install (not only the editable one) carries its board files and firmware templates."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gen, pytest.mark.slow]

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(out),
            str(PROJECT_ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("shoal-*.whl")
    return built


def test_wheel_contains_packages_and_data_folders(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for board in (PROJECT_ROOT / "boards").glob("*.toml"):
        assert f"shoal_resources/boards/{board.name}" in names
    templates = [p for p in (PROJECT_ROOT / "firmware_templates").rglob("*") if p.is_file()]
    for template in templates:
        relative = template.relative_to(PROJECT_ROOT / "firmware_templates").as_posix()
        if "__pycache__" not in relative:
            assert f"shoal_resources/firmware_templates/{relative}" in names
    assert "host_sdk/cli.py" in names and "codegen/loaders/board_loader.py" in names
    entry_points = zipfile.ZipFile(wheel).read("shoal-0.1.0.dist-info/entry_points.txt").decode()
    assert "shoal = host_sdk.cli:main" in entry_points


def test_installed_wheel_finds_its_boards_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # -S: the site module does not run, so the editable install's .pth finder is never loaded
    # and the checkout cannot be found; the environment's site-packages is still on the path
    # (after the wheel) for the third-party dependencies.
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "import sys; from host_sdk.cli import main; from codegen.resources import boards_dir,"
            " templates_dir; print(boards_dir()); print(templates_dir()); sys.exit(main(['boards']))",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{target}:{site_packages}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    boards_line, templates_line, *table = result.stdout.splitlines()
    assert boards_line.startswith(str(target)) and templates_line.startswith(str(target))
    assert any(line.startswith("qemu-mps2-an386 ") for line in table)
