"""Every way a folder's JSON description can be wrong is one clear CheckpointError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jiasu
from jiasu.core.description import read_description
from jiasu.core.errors import CheckpointError


def read(folder: Path) -> dict[str, object]:
    return read_description(
        folder, "thing.json", fmt="jiasu-thing", version=1, what="thing folder",
        create="create one with `jiasu make-thing`",
    )  # fmt: skip


def test_each_fault_has_its_own_sentence(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"thing folder .* does not exist; check the path"):
        read(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match=r"thing.json is missing\); create one with"):
        read(tmp_path)
    (tmp_path / "thing.json").write_text("{oops")
    with pytest.raises(CheckpointError, match=r"thing\.json is corrupt"):
        read(tmp_path)
    (tmp_path / "thing.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="is not a jiasu thing folder description"):
        read(tmp_path)
    (tmp_path / "thing.json").write_text(json.dumps({"format": "jiasu-thing", "format_version": 9}))
    with pytest.raises(CheckpointError, match="format version 9; this jiasu reads version 1"):
        read(tmp_path)
    good = {"format": "jiasu-thing", "format_version": 1, "x": 2}
    (tmp_path / "thing.json").write_text(json.dumps(good))
    assert read(tmp_path) == good


def test_loading_an_artifact_reports_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"inference artifact .* does not exist"):
        jiasu.load(tmp_path / "missing")
    with pytest.raises(CheckpointError, match=r"artifact.json is missing\); create one with"):
        jiasu.load(tmp_path)
