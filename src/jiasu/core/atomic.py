"""Atomic writes: files and whole folders, written beside their target and then renamed.

A reader never sees a half-written file, and a crash never destroys the previous
version: `os.replace` is atomic on POSIX and Windows when source and target are on
the same file system, which a sibling temporary file guarantees.

Folders (`atomic_directory`) are replaced only if jiasu wrote them (`JiasuFolder` says how
to recognise each kind), under a lock, and so that the folder exists and is complete at
every instant even if the process is killed; the user's own files in them are kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jiasu.core.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it onto `target`.

    On any exception the temporary file is removed and `target` is left untouched.

    >>> with atomic_path("out.bin") as tmp:  # doctest: +SKIP
    ...     tmp.write_bytes(b"payload")
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would have
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # flush file contents before the rename
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 `text` to `target` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


# --- folders -------------------------------------------------------------------------------
# A folder cannot be renamed over a non-empty one, so replacing a folder takes more than one
# step. Every step is done under a lock that serialises jiasu's writers of one folder, and
# every intermediate state is a folder under a hidden name that the next writer recognises:
#
#   .NAME.jiasu-lock           the lock file (flock); removed when the writer is done
#   .NAME.jiasu-new-PID-RAND   the new version being staged: deleted if a run is killed
#   .NAME.jiasu-old-PID-RAND   the complete previous version, moved aside (only where the
#                              system cannot exchange two folders in one step): restored to
#                              NAME if NAME is missing
#   .NAME.jiasu-del-PID-RAND   a version being deleted: deleted
#
# On Linux (glibc 2.28 or later) the new version and NAME are exchanged in one step
# (renameat2 RENAME_EXCHANGE), so NAME always exists and always holds a complete version.

MANIFEST = ".jiasu-manifest.json"  # in each folder jiasu writes: the files jiasu wrote there
_MANIFEST_FORMAT = "jiasu-manifest"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.jiasu-(?P<role>new|old|del)-\d+-[0-9a-f]{8}$")
_LOCK_SUFFIX = ".jiasu-lock"
_DESCRIPTION_LIMIT = 16 << 20  # bytes read of a description file: they are a few kB
_LOCK_WAIT_S = 600.0  # only where fcntl is missing: how long to wait for another writer

# Test hook: called with the name of each step of a replacement ("staged", "moved-aside",
# "swapped", "deleting"), so a test can kill the process at an exact point. None outside tests.
_STEP_HOOK: Callable[[str], None] | None = None
# Tests set this to False to exercise the two-rename fallback used where renameat2 is missing.
_USE_EXCHANGE = True


@dataclass(frozen=True)
class JiasuFolder:
    """A kind of folder jiasu writes, recognised by its JSON description file.

    A folder is jiasu's when `description` (e.g. ``model.json``) holds a JSON object whose
    ``"format"`` is `format` (any version), or which `legacy` accepts (descriptions written
    before they named their format). `files` are the other files jiasu always writes there;
    with the file names the description lists under ``"files"``, they tell jiasu's files from
    the user's in a folder written before jiasu kept a manifest.
    """

    what: str  # e.g. "model directory"
    description: str  # e.g. "model.json"
    format: str  # e.g. "jiasu-model"
    files: tuple[str, ...] = ()
    legacy: Callable[[dict[str, Any]], bool] | None = None

    def read(self, folder: Path) -> dict[str, Any] | None:
        """The folder's description if the folder is one of these, else None."""
        try:
            with open(folder / self.description, "rb") as handle:
                meta = json.loads(handle.read(_DESCRIPTION_LIMIT))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict):
            return None
        if meta.get("format") == self.format or (self.legacy is not None and self.legacy(meta)):
            return meta
        return None

    def owns(self, folder: Path) -> bool:
        """True if `folder` is a folder of this kind that jiasu wrote."""
        return folder.is_dir() and not folder.is_symlink() and self.read(folder) is not None

    def written_files(self, folder: Path) -> tuple[set[str], bool]:
        """The files (relative POSIX paths) jiasu wrote in `folder`, and whether that is exact.

        Exact when the folder has jiasu's manifest; else the description, `files` and the
        names the description lists under ``"files"`` (an older folder).
        """
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            if manifest.get("format") == _MANIFEST_FORMAT and all(
                isinstance(name, str) for name in manifest["files"]
            ):
                return {*manifest["files"], MANIFEST}, True
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            pass
        names = {self.description, *self.files}
        meta = self.read(folder) or {}
        names.update(_strings(meta.get("files")))
        return names, False


def _strings(value: object) -> Iterator[str]:
    """Every string inside a JSON value (the file names an artifact description lists)."""
    if isinstance(value, str):
        yield Path(value).as_posix()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def check_replaceable(
    target: str | os.PathLike[str], kind: JiasuFolder, *, option: str | None = None
) -> None:
    """Raise `ConfigError` unless jiasu may write a `kind` folder at `target`.

    Allowed: a path that does not exist, an empty folder, or a folder of this kind that jiasu
    wrote (found by its description file). Refused: a file, a symbolic link, the current
    folder or one that holds it, and any other non-empty folder. `option` (e.g. "--save")
    names the option in the message.
    """
    target = Path(target)
    label = f"{option} {target}" if option else str(target)
    if target.is_symlink():
        raise ConfigError(
            f"{label} is a symbolic link; pass the folder it points to "
            f"({os.path.realpath(target)}) or a new folder"
        )
    here = Path.cwd().resolve()
    if target.exists() and target.resolve() in (here, *here.parents):
        raise ConfigError(
            f"{label} is the current folder or holds it, which jiasu never replaces; "
            f"choose a folder inside it, e.g. {os.path.join(target, 'model')}"
        )
    if not target.exists():
        return
    if not target.is_dir():
        raise ConfigError(f"{label} is a file, not a folder; choose a new or empty folder")
    if kind.owns(target) or not any(target.iterdir()):
        return
    raise ConfigError(
        f"{label} is a non-empty folder that is not a jiasu {kind.what} (it has no "
        f"{kind.description} of format {kind.format}), and jiasu replaces only folders it "
        "wrote; choose a new or empty folder"
    )


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], kind: JiasuFolder) -> Iterator[Path]:
    """Yield an empty staging folder beside `target`; on success it becomes `target`.

    `target` must be new, empty, or a `kind` folder jiasu wrote (see `check_replaceable`;
    anything else raises `ConfigError` before the block runs). Files the user added to an
    existing jiasu folder are kept: they are carried into the new version (hard links where
    possible, else copies). If the new version has a file of the same name as one of them,
    `ConfigError` is raised and nothing changes.

    One writer at a time (a lock file beside `target`; a second one waits), and at every
    instant `target` holds one complete version, old or new: on Linux the two folders are
    exchanged in one step. A run killed at any point leaves hidden leftovers that the next
    write of `target` (or of a sibling) removes; if `target` itself went missing, its previous
    version is restored. On any exception the staging folder is removed and `target` is left
    as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        _recover(target)
        _sweep(target.parent, skip=target.name)
        check_replaceable(target, kind)
        staging = _make_hidden_dir(target, "new")
        try:
            yield staging
            _write_manifest(staging)
            if target.is_dir():
                _carry_user_files(target, staging, kind)
            _step("staged")
            _swap(staging, target)
        except BaseException:
            _remove(staging)
            _recover(target)  # a failure between the two renames of the fallback
            raise


def remove_directory(target: str | os.PathLike[str], kind: JiasuFolder) -> bool:
    """Delete `target` if it is a `kind` folder jiasu wrote; return whether it was deleted.

    The folder is first renamed to a hidden name, so a run killed while deleting never
    leaves half a folder under the real name.
    """
    target = Path(target)
    with _locked(target):
        if not kind.owns(target):
            return False
        doomed = _hidden_path(target, "del")
        os.rename(target, doomed)
        _remove(doomed)
    return True


# --- the steps -----------------------------------------------------------------------------
def _step(name: str) -> None:
    if _STEP_HOOK is not None:
        _STEP_HOOK(name)


def _hidden_path(target: Path, role: str) -> Path:
    return target.parent / f".{target.name}.jiasu-{role}-{os.getpid()}-{secrets.token_hex(4)}"


def _make_hidden_dir(target: Path, role: str) -> Path:
    while True:
        path = _hidden_path(target, role)
        try:
            path.mkdir()  # the usual permissions (mkdtemp would make it 0700)
            return path
        except FileExistsError:
            continue


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(OSError):
            path.unlink()


def _write_manifest(staging: Path) -> None:
    files = sorted(
        path.relative_to(staging).as_posix()
        for path in staging.rglob("*")
        if not path.is_dir() or path.is_symlink()
    )
    manifest = {"format": _MANIFEST_FORMAT, "format_version": 1, "files": files}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def _carry_user_files(old: Path, staging: Path, kind: JiasuFolder) -> None:
    """Copy into `staging` what the user added to the `old` version (files and folders)."""
    ours, exact = kind.written_files(old)
    for root, dirs, files in os.walk(old):
        here = Path(root)
        rel_root = here.relative_to(old)
        links = [d for d in dirs if (here / d).is_symlink()]  # carried as links, not entered
        dirs[:] = [d for d in dirs if d not in links]
        for name in [*files, *links]:
            rel = (rel_root / name).as_posix()
            if rel in ours:
                continue
            dest = staging / rel
            if os.path.lexists(dest):
                if not exact:
                    continue  # an older jiasu's unlisted file, which the new version replaces
                raise ConfigError(
                    f"{old / rel} is not a file jiasu wrote, and the new {kind.what} has a "
                    f"file of that name; move it out of {old} and run again"
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(here / name, dest)
        if not files and not dirs and rel_root != Path("."):
            (staging / rel_root).mkdir(parents=True, exist_ok=True)  # the user's empty folder


def _link_or_copy(source: Path, dest: Path) -> None:
    if source.is_symlink():
        os.symlink(os.readlink(source), dest)
        return
    try:
        os.link(source, dest)  # instant, and no second copy of a large file
    except OSError:
        shutil.copy2(source, dest)


def _swap(staging: Path, target: Path) -> None:
    """Make `staging` the folder at `target`; delete the version it replaces."""
    if not os.path.lexists(target):
        if not _renameat2(staging, target, _RENAME_NOREPLACE):
            os.rename(staging, target)
        return
    if _USE_EXCHANGE and _renameat2(staging, target, _RENAME_EXCHANGE):
        _step("swapped")
        doomed = _hidden_path(target, "del")
        os.rename(staging, doomed)  # the old version, now at the staging name
        _step("deleting")
        _remove(doomed)
        return
    old = _hidden_path(target, "old")
    os.rename(target, old)
    _step("moved-aside")  # `target` is missing until the next rename; _recover restores it
    os.rename(staging, target)
    _step("swapped")
    doomed = _hidden_path(target, "del")
    os.rename(old, doomed)
    _step("deleting")
    _remove(doomed)


def _leftovers(parent: Path) -> dict[str, list[tuple[str, Path]]]:
    """Hidden leftovers in `parent` by the name of the folder they belong to."""
    found: dict[str, list[tuple[str, Path]]] = {}
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return found
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match:
            found.setdefault(match["name"], []).append((match["role"], Path(entry.path)))
    return found


def _recover(target: Path) -> None:
    """With `target`'s lock held: restore a missing `target`, delete every leftover of it."""
    leftovers = _leftovers(target.parent).get(target.name, [])
    if not os.path.lexists(target):
        previous = [path for role, path in leftovers if role == "old"]
        if previous:
            newest = max(previous, key=lambda path: path.stat().st_mtime)
            os.rename(newest, target)
            leftovers = [(role, path) for role, path in leftovers if path != newest]
    for _, path in leftovers:
        _remove(path)


def _sweep(parent: Path, *, skip: str) -> None:
    """Recover the other folders in `parent` that a killed run left leftovers or a lock for,
    each only if no live writer holds its lock."""
    names = set(_leftovers(parent))
    with contextlib.suppress(OSError):
        names.update(
            entry.name[1 : -len(_LOCK_SUFFIX)]
            for entry in os.scandir(parent)
            if entry.name.startswith(".") and entry.name.endswith(_LOCK_SUFFIX)
        )
    for name in sorted(names - {skip}):
        with _locked(parent / name, wait=False) as held:
            if held:
                _recover(parent / name)


# --- the lock ------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(target: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold the lock of `target` (yield True); with wait=False yield False if it is taken.

    The lock file is deleted on release, by its holder: a waiter that then gets the lock of
    the deleted file notices (the path names another file, or none) and tries again.
    """
    path = target.parent / f".{target.name}{_LOCK_SUFFIX}"
    fd = _acquire(path, wait) if fcntl is not None else _acquire_exclusive(path, wait)
    if fd is None:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def _acquire(path: Path, wait: bool) -> int | None:
    assert fcntl is not None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
        os.close(fd)  # the holder deleted this lock file as we waited: lock the new one


def _acquire_exclusive(path: Path, wait: bool) -> int | None:
    """Where fcntl is missing (Windows): the lock is the file's existence."""
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if not wait:
                return None
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"another jiasu process is writing beside {path} for over "
                    f"{_LOCK_WAIT_S:.0f} s; wait for it, or delete {path} if none is running"
                ) from None
            time.sleep(0.05)


# --- renameat2 -----------------------------------------------------------------------------
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


@functools.cache
def _libc_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """Rename with renameat2 `flags`; False where the system or file system cannot."""
    function = _libc_renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False  # an old kernel, or a file system without this (some network ones)
    raise OSError(code, os.strerror(code), str(source), None, str(target))
