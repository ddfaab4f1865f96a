"""The CLI boundary's translation of a failure into the one line the user sees.

The library raises; only `jiasu.cli.main` converts. A `JiasuError` already is a sentence.
The failures the environment causes — a file that cannot be read or written, memory that
runs out, an optional package that is not installed — become one sentence here that names
the problem and the fix. Anything else is a bug in jiasu: `describe_failure` returns None
and the CLI says so in one line, with the traceback behind ``--debug``.
"""

from __future__ import annotations

import errno

from jiasu.core.errors import JiasuError, first_line
from jiasu.core.extras import missing_extra

# errno -> (what went wrong with the path, the fix)
_OS_REASONS: dict[int, tuple[str, str]] = {
    errno.EACCES: ("permission denied", "check its permissions or choose another location"),
    errno.EPERM: ("operation not permitted", "check its permissions or choose another location"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.EISDIR: ("it is a folder where a file is expected", "pass a file"),
    errno.EEXIST: ("it already exists", "choose another path"),
    errno.ENOSPC: ("no space left on the device", "free some space or choose another location"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another location"),
    errno.EROFS: ("read-only file system", "choose a writable location"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path"),
    errno.ELOOP: ("too many symbolic links", "check the path"),
    errno.ENOTEMPTY: ("the folder is not empty", "choose a new or empty folder"),
    errno.EXDEV: ("it is on another file system", "choose a path on the same disk"),
}
_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM})


def describe_failure(exc: BaseException, command: str | None) -> str | None:
    """The one-line message for `exc` (without ``error:``), or None for a bug in jiasu.

    `command` is the subcommand that ran (``"train"``), used to name what needed the memory
    or the package.
    """
    what = f"jiasu {command}" if command else "jiasu"
    if isinstance(exc, JiasuError):
        return str(exc)
    if isinstance(exc, ImportError):
        missing = missing_extra(exc, purpose=what)
        return None if missing is None else str(missing)
    if _is_out_of_memory(exc):
        return (
            f"not enough memory for {what} ({first_line(exc, limit=120)}); use a smaller "
            "--batch-size or fewer samples, or close other programs"
        )
    if isinstance(exc, OSError):
        return _describe_os_error(exc, what)
    return None


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    # torch's CPU allocator raises RuntimeError("DefaultCPUAllocator: can't allocate memory")
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def _describe_os_error(exc: OSError, what: str) -> str:
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"{what} could not reach a network service ({exc}); check the address and retry"
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    reason, fix = _OS_REASONS.get(exc.errno or -1, (exc.strerror or first_line(exc), ""))
    if exc.errno in _RESOURCES:
        fix = "close other programs or lower --workers / --threads, then retry"
    if not fix:
        fix = "check the path and retry" if paths else "retry, or rerun with --debug"
    return f"{reason}: {paths}; {fix}" if paths else f"{what} failed: {reason}; {fix}"
