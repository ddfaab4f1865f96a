"""Reading the JSON file that describes a jiasu folder (a model directory, an artifact).

Each such folder holds one JSON object with ``"format"`` and ``"format_version"``; every way
it can be wrong — no folder, no file, bad JSON, another kind of file, another version, a
field of the wrong type (read with `int_tuple_field`, `int_field`, `str_field`,
`object_field`) — is one `CheckpointError` sentence that names the problem and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from jiasu.core.errors import CheckpointError


def read_description(
    folder: Path,
    filename: str,
    *,
    fmt: str,
    version: int | tuple[int, ...],
    what: str,
    create: str,
) -> dict[str, Any]:
    """The description `folder/filename` of a jiasu `what` ("model directory", ...).

    `version` is the format version read, or the versions read (the newest last).
    `create` says how to make one, e.g. "create one with `jiasu train --save DIR`".
    """
    versions = version if isinstance(version, tuple) else (version,)
    path = folder / filename
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} is a file, not a jiasu {what} (a folder); {create}")
    if not folder.is_dir():
        raise CheckpointError(f"{what} {folder} does not exist; check the path")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{folder} is not a jiasu {what} ({filename} is missing); {create}"
        ) from None
    except (ValueError, OSError) as exc:
        raise CheckpointError(f"{path} is corrupt ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise CheckpointError(f"{path} is not a jiasu {what} description")
    if meta.get("format_version") not in versions:
        raise CheckpointError(
            f"{folder} has {what} format version {meta.get('format_version')!r}; "
            f"this jiasu reads version {' or '.join(map(str, versions))}"
        )
    return meta


# Typed fields of a description: a value of the wrong type (``"input_shape": "abc"``) is a
# `CheckpointError` naming the file, the field and what it must be, not a traceback later.
# `key` may be dotted ("candidate.backend") for a field inside an object.

_ABSENT: Any = object()


def object_field(
    meta: Mapping[str, Any], key: str, path: Path, *, default: Any = _ABSENT
) -> dict[str, Any]:
    """`meta[key]` as a JSON object (a dict with string keys)."""
    value = _get(meta, key, path, default)
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        _wrong(path, key, "an object ({...})", value)
    return value


def str_field(meta: Mapping[str, Any], key: str, path: Path, *, default: Any = _ABSENT) -> str:
    """`meta[key]` as a non-empty string."""
    value = _get(meta, key, path, default)
    if not isinstance(value, str) or not value:
        _wrong(path, key, "a non-empty string", value)
    return value


def int_field(meta: Mapping[str, Any], key: str, path: Path, *, default: Any = _ABSENT) -> int:
    """`meta[key]` as a positive integer (a count such as ``num_classes``)."""
    value = _get(meta, key, path, default)
    if not _is_positive_int(value):
        _wrong(path, key, "a positive integer", value)
    return int(value)


def int_tuple_field(
    meta: Mapping[str, Any], key: str, path: Path, *, default: Any = _ABSENT
) -> tuple[int, ...]:
    """`meta[key]` as a shape: a non-empty list of positive integers, e.g. [1, 28, 28]."""
    value = _get(meta, key, path, default)
    if not isinstance(value, list | tuple) or not value or not all(map(_is_positive_int, value)):
        _wrong(path, key, "a list of positive integers such as [1, 28, 28]", value)
    return tuple(int(d) for d in value)


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _get(meta: Mapping[str, Any], key: str, path: Path, default: Any) -> Any:
    value: Any = meta
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(value, Mapping):
            _wrong(path, ".".join(parts[:depth]), "an object ({...})", value)
        if part not in value:
            if default is not _ABSENT:
                return default
            missing = ".".join(parts[: depth + 1])
            raise CheckpointError(
                f"{path} has no {missing!r}; the file was edited or damaged: write the folder again"
            )
        value = value[part]
    return value


def _wrong(path: Path, key: str, expected: str, value: object) -> NoReturn:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:59] + "…"
    raise CheckpointError(
        f"{path}: {key!r} must be {expected}, not {shown}; the file was edited or damaged: "
        "write the folder again"
    )
