"""A replay that misses its cassette (the file is absent, or holds no answer to a request
the connector sends) fails in one line saying to run `make record-connector NAME=...`:
from the command line (`connectors run NAME --replay`) and from a connector's tests
(`tests.recording.replay`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dlt
import pytest
import yaml

import shared.tooling.cassettes as cassettes
from connectors.cli import main
from connectors.sandbox import load_recording
from shared.tooling.cassettes import MissingRecording
from tests.empty_folder import use_empty_folder
from tests.recording import replay

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_empty_folder(monkeypatch, tmp_path)


@pytest.fixture
def cassettes_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's cassettes the CLI replays instead (one may be removed
    or cut short)."""
    copy = tmp_path / "cassettes"
    shutil.copytree(ROOT / "cassettes", copy)
    monkeypatch.setattr(cassettes, "CASSETTES_DIR", copy)
    return copy


def without_requests_to(path: Path, url_path: str) -> None:
    """Drop every recorded interaction whose request goes to `url_path`."""
    recorded = yaml.safe_load(path.read_text(encoding="utf-8"))
    kept = [
        interaction
        for interaction in recorded["interactions"]
        if url_path not in interaction["request"]["uri"]
    ]
    assert len(kept) < len(recorded["interactions"]), url_path
    path.write_text(yaml.safe_dump({**recorded, "interactions": kept}), encoding="utf-8")


def test_run_replay_without_its_cassette_says_to_record_it_in_one_line(
    cassettes_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cassettes_dir / "crm" / "full_sync.yaml").unlink()

    code = main(["run", "crm", "--replay", "--resources", "users"])

    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[-1] == (
        "error: crm: no cassette cassettes/crm/full_sync.yaml; run make record-connector NAME=crm"
    )
    assert not any("Traceback" in line for line in err)


def test_run_replay_of_a_request_the_cassette_lacks_says_to_record_again_in_one_line(
    cassettes_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    without_requests_to(cassettes_dir / "crm" / "full_sync.yaml", "/api/v2/users")

    code = main(["run", "crm", "--replay", "--resources", "users"])

    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[-1].startswith(
        "error: crm: cassettes/crm/full_sync.yaml has no recorded answer to "
        "GET https://api.example.com/api/v2/users"
    )
    assert err[-1].endswith("; the cassette is out of date: run make record-connector NAME=crm")


def test_a_connectors_replay_helper_without_its_cassette_says_to_record_it(
    tmp_path: Path, pipeline: dlt.Pipeline
) -> None:
    rec = load_recording("project_tracker")

    with pytest.raises(MissingRecording) as missed:
        replay(rec, pipeline, steps=["full_sync"], root=tmp_path / "empty")

    assert str(missed.value) == (
        "project_tracker: no cassette cassettes/project_tracker/full_sync.yaml; "
        "run make record-connector NAME=project_tracker"
    )


def test_a_connectors_replay_helper_missing_a_request_says_to_record_again(
    cassettes_dir: Path, pipeline: dlt.Pipeline
) -> None:
    rec = load_recording("project_tracker")
    without_requests_to(cassettes_dir / "project_tracker" / "full_sync.yaml", "/labels")

    with pytest.raises(MissingRecording) as missed:
        replay(rec, pipeline, steps=["full_sync"], root=cassettes_dir)

    (line,) = str(missed.value).splitlines()
    assert line.startswith(
        "project_tracker: cassettes/project_tracker/full_sync.yaml has no recorded answer to GET "
    )
    assert "/labels" in line
    assert line.endswith("run make record-connector NAME=project_tracker")
