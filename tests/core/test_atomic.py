from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jiasu.core import atomic
from jiasu.core.atomic import (
    JiasuFolder,
    atomic_directory,
    atomic_path,
    atomic_write_text,
    remove_directory,
)
from jiasu.core.errors import ConfigError


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("crash in the middle")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_write_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    atomic_write_text(target, "ok")
    assert target.read_text() == "ok"


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    atomic_write_text(target, "<html></html>")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


# --- folders -----------------------------------------------------------------------------

KIND = JiasuFolder("test folder", "desc.json", "jiasu-test", files=("data.bin",))


def _write_version(target: Path, version: int, extra: dict[str, str] | None = None) -> None:
    with atomic_directory(target, KIND) as staging:
        (staging / "data.bin").write_bytes(bytes([version]) * 4096)
        (staging / "desc.json").write_text(json.dumps({"format": "jiasu-test", "v": version}))
        for name, text in (extra or {}).items():
            (staging / name).write_text(text)


def _version(target: Path) -> int:
    """The version in `target`, checking the folder is complete and consistent."""
    version = json.loads((target / "desc.json").read_text())["v"]
    assert (target / "data.bin").read_bytes() == bytes([version]) * 4096
    return int(version)


def _siblings(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir())


@pytest.fixture(params=[True, False], ids=["exchange", "two-renames"])
def swap_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param and atomic._libc_renameat2() is None:
        pytest.skip("renameat2 is not available here")
    monkeypatch.setattr(atomic, "_USE_EXCHANGE", request.param)
    return bool(request.param)


def test_a_folder_jiasu_did_not_write_is_refused_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "project"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match=r"not a jiasu test folder.*choose a new or empty"):
        _write_version(target, 1)
    assert (target / "thesis.tex").read_text() == "years of work"
    assert _siblings(target) == ["project"]  # no staging folder, no lock file left
    (target / "desc.json").write_text('{"format": "something-else"}')  # a lookalike
    with pytest.raises(ConfigError, match="not a jiasu test folder"):
        _write_version(target, 1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        _write_version(tmp_path / "file", 1)
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        _write_version(tmp_path / "link", 1)


def test_an_empty_folder_and_jiasus_own_folder_are_replaced(
    tmp_path: Path, swap_mode: bool
) -> None:
    target = tmp_path / "out"
    target.mkdir()
    _write_version(target, 1)
    assert _version(target) == 1
    _write_version(target, 2)
    assert _version(target) == 2
    assert _siblings(target) == ["out"]
    manifest = json.loads((target / atomic.MANIFEST).read_text())
    assert manifest["files"] == ["data.bin", "desc.json"]


def test_the_current_folder_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="current folder"):
        _write_version(Path("."), 1)
    with pytest.raises(ConfigError, match="current folder"):
        _write_version(Path(".."), 1)


def test_the_users_files_in_a_jiasu_folder_are_carried_over(
    tmp_path: Path, swap_mode: bool
) -> None:
    target = tmp_path / "artifact"
    _write_version(target, 1, extra={"old-only.txt": "jiasu's, version 1 only"})
    (target / "README.md").write_text("how we deploy this")
    (target / "docs").mkdir()
    (target / "docs" / "notes.txt").write_text("notes")
    (target / "empty").mkdir()
    _write_version(target, 2)
    assert _version(target) == 2
    assert (target / "README.md").read_text() == "how we deploy this"
    assert (target / "docs" / "notes.txt").read_text() == "notes"
    assert (target / "empty").is_dir()
    assert not (target / "old-only.txt").exists()  # jiasu wrote it (the manifest says so)
    assert "README.md" not in json.loads((target / atomic.MANIFEST).read_text())["files"]
    _write_version(target, 3)  # and again: still the user's
    assert (target / "README.md").read_text() == "how we deploy this"


def test_a_user_file_the_new_version_would_overwrite_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "artifact"
    _write_version(target, 1)
    (target / "NOTES.md").write_text("mine")
    with pytest.raises(ConfigError, match=r"NOTES\.md is not a file jiasu wrote"):
        _write_version(target, 2, extra={"NOTES.md": "jiasu's"})
    assert _version(target) == 1 and (target / "NOTES.md").read_text() == "mine"
    assert _siblings(target) == ["artifact"]


def test_a_folder_from_before_the_manifest_keeps_only_the_users_files(tmp_path: Path) -> None:
    target = tmp_path / "old"
    target.mkdir()
    (target / "desc.json").write_text(json.dumps({"format": "jiasu-test", "files": ["w.onnx"]}))
    (target / "data.bin").write_bytes(b"old")
    (target / "w.onnx").write_bytes(b"listed in the description: jiasu's")
    (target / "README.md").write_text("the user's")
    _write_version(target, 2)
    assert sorted(p.name for p in target.iterdir()) == [
        atomic.MANIFEST, "README.md", "data.bin", "desc.json"
    ]  # fmt: skip


def test_concurrent_writers_take_turns(tmp_path: Path, swap_mode: bool) -> None:
    target = tmp_path / "model"
    errors: list[BaseException] = []

    def writer(version: int) -> None:
        try:
            for _ in range(5):
                _write_version(target, version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _version(target) in (1, 2, 3, 4)
    assert _siblings(target) == ["model"]  # no .old copies, no staging, no lock file


def test_a_reader_never_finds_the_folder_missing(tmp_path: Path, swap_mode: bool) -> None:
    if not swap_mode:
        pytest.skip("without renameat2 the folder is missing between two renames")
    target = tmp_path / "model"
    _write_version(target, 1)
    # the reader is another process, so it runs truly in parallel with the renames
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        for version in range(2, 60):
            _write_version(target, version % 250)
    finally:
        reader.send_signal(signal.SIGTERM)
        out, _ = reader.communicate(timeout=30)
    looks, missing = (int(n) for n in out.split())
    assert looks > 1000 and missing == 0


_READER = """
import os, signal, sys
looks = missing = 0
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop:
    looks += 1
    if not os.path.isfile(os.path.join(sys.argv[1], "desc.json")):
        missing += 1
print(looks, missing)
"""

# Subprocesses import jiasu.core.atomic without jiasu/__init__.py (which imports torch), so
# they start in a fraction of a second.
_BARE_IMPORT = f"""
import sys, types
package = types.ModuleType("jiasu")
package.__path__ = [{os.path.dirname(os.path.dirname(atomic.__file__))!r}]
sys.modules["jiasu"] = package
"""

# A writer that kills itself (SIGKILL: no cleanup at all) at one step of a replacement.
_KILLED_WRITER = (
    _BARE_IMPORT
    + """
import json, os, signal, sys
from pathlib import Path
from jiasu.core import atomic
from jiasu.core.atomic import JiasuFolder, atomic_directory

target, step, exchange = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
atomic._USE_EXCHANGE = exchange
atomic._STEP_HOOK = lambda name: name == step and os.kill(os.getpid(), signal.SIGKILL)
kind = JiasuFolder("test folder", "desc.json", "jiasu-test", files=("data.bin",))
with atomic_directory(target, kind) as staging:
    (staging / "data.bin").write_bytes(bytes([2]) * 4096)
    (staging / "desc.json").write_text(json.dumps({"format": "jiasu-test", "v": 2}))
"""
)

_STEPS = {
    True: ["staged", "swapped", "deleting"],
    False: ["staged", "moved-aside", "swapped", "deleting"],
}


@pytest.mark.parametrize("step", ["staged", "moved-aside", "swapped", "deleting"])
def test_a_writer_killed_at_any_step_leaves_a_complete_folder(
    tmp_path: Path, swap_mode: bool, step: str
) -> None:
    if step not in _STEPS[swap_mode]:
        pytest.skip(f"no step {step!r} when folders are exchanged in one step")
    target = tmp_path / "model"
    _write_version(target, 1)
    (target / "README.md").write_text("the user's")
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(target), step, "1" if swap_mode else "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = [name for name in _siblings(target) if name != "model"]
    assert leftovers  # the kill left hidden folders (and the lock file) behind ...
    if step == "moved-aside":
        assert not target.exists()  # ... here even the folder itself was only moved aside
    else:
        expected = 1 if step == "staged" else 2
        assert _version(target) == expected  # ... but the folder is complete, old or new
    _write_version(target, 3)  # the next write restores and cleans up
    assert _version(target) == 3
    assert (target / "README.md").read_text() == "the user's"
    assert _siblings(target) == ["model"]


def test_leftovers_of_a_killed_writer_are_cleaned_by_the_next_write_beside_them(
    tmp_path: Path,
) -> None:
    """A run killed while moving aside restores the folder even if only a sibling is written."""
    target = tmp_path / "model"
    _write_version(target, 1)
    subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(target), "moved-aside", "0"], timeout=60
    )
    assert not target.exists()
    _write_version(tmp_path / "other", 1)
    assert _version(target) == 1  # restored: the previous version, complete
    assert _siblings(target) == ["model", "other"]


def test_writers_killed_at_random_instants_never_lose_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    _write_version(target, 1)
    loop = _BARE_IMPORT + (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from jiasu.core.atomic import JiasuFolder, atomic_directory\n"
        "kind = JiasuFolder('test folder', 'desc.json', 'jiasu-test', files=('data.bin',))\n"
        "print('ready', flush=True)\n"
        "v = 1\n"
        "while True:\n"
        "    v = v % 250 + 1\n"
        "    with atomic_directory(Path(sys.argv[1]), kind) as s:\n"
        "        (s / 'data.bin').write_bytes(bytes([v]) * 4096)\n"
        "        (s / 'desc.json').write_text(json.dumps({'format': 'jiasu-test', 'v': v}))\n"
    )
    rng = random.Random(0)
    for _ in range(12):
        writer = subprocess.Popen(
            [sys.executable, "-c", loop, str(target)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        threading.Event().wait(rng.uniform(0.0, 0.05))
        writer.kill()
        writer.wait(timeout=30)
        _version(target)  # complete, whatever instant the kill hit
    _write_version(target, 7)
    assert _version(target) == 7 and _siblings(target) == ["model"]


def test_remove_directory_deletes_only_jiasus_folders(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    _write_version(ours, 1)
    theirs.mkdir()
    (theirs / "desc.json").write_text("{}")
    assert remove_directory(ours, KIND) is True and not ours.exists()
    assert remove_directory(theirs, KIND) is False and (theirs / "desc.json").exists()
    assert _siblings(theirs) == ["theirs"]
