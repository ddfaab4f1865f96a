"""Reading the JSON file that describes a jiasu folder (a model directory, an artifact).

Each such folder holds one JSON object with ``"format"`` and ``"format_version"``; every way
it can be wrong — no folder, no file, bad JSON, another kind of file, another version — is
one `CheckpointError` sentence that names the problem and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jiasu.core.errors import CheckpointError


def read_description(
    folder: Path, filename: str, *, fmt: str, version: int, what: str, create: str
) -> dict[str, Any]:
    """The description `folder/filename` of a jiasu `what` ("model directory", ...).

    `create` says how to make one, e.g. "create one with `jiasu train --save DIR`".
    """
    path = folder / filename
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
    if meta.get("format_version") != version:
        raise CheckpointError(
            f"{folder} has {what} format version {meta.get('format_version')!r}; "
            f"this jiasu reads version {version}"
        )
    return meta
