"""Output locations, checked before any long work starts.

A command that trains for minutes and then cannot write its result has wasted those minutes
(and used to end in a traceback). `check_outputs` is called first: each output (``--save``,
``--out``, ``--json``, ``--html``, ``--output``) must be writable, a file target must not be a
folder, a folder target must be one jiasu may replace (`jiasu.core.atomic.check_replaceable`),
and no output may be, or hold, one of the command's inputs. Each problem is one
`ConfigError` sentence naming the option and the fix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from jiasu.core.atomic import JiasuFolder, check_replaceable
from jiasu.core.errors import ConfigError


@dataclass(frozen=True)
class Output:
    """One output of a command: `option` (e.g. "--json") and its `path` (None: not asked for).

    `folder` is the kind of jiasu folder written there; None means a single file.
    """

    option: str
    path: Path | None
    folder: JiasuFolder | None = None


def check_outputs(
    outputs: Iterable[Output],
    *,
    inputs: Mapping[str, Path | None] | Iterable[tuple[str, Path | None]] = (),
) -> None:
    """Raise `ConfigError` unless every output can be written, before the work starts.

    `inputs` maps an option (e.g. "--data-dir"; or gives pairs) to a path the command reads:
    an output that is that path, or a folder holding it, is refused, so a save never
    replaces its own data.

    >>> check_outputs([Output("--json", Path("run.json"))])  # doctest: +SKIP
    """
    pairs = inputs.items() if isinstance(inputs, Mapping) else inputs
    sources = [(option, _absolute(path)) for option, path in pairs if path is not None]
    seen: dict[Path, str] = {}
    for output in outputs:
        if output.path is None:
            continue
        path = Path(output.path)
        absolute = _absolute(path)
        label = f"{output.option} {path}"
        if absolute in seen:
            raise ConfigError(f"{label} is also given to {seen[absolute]}; give each its own path")
        seen[absolute] = output.option
        for option, source in sources:
            if absolute == source or absolute in source.parents:
                what = "is" if absolute == source else "holds"
                raise ConfigError(
                    f"{label} {what} the {option} input {source}, which the output would "
                    "replace; choose another path"
                )
        if output.folder is not None:
            check_replaceable(path, output.folder, option=output.option)
        elif path.is_dir():
            raise ConfigError(f"{label} is a folder; give a file path, e.g. {path / 'result'}")
        check_writable(output.option, path)


def check_writable(option: str, path: Path, *, inside: bool = False) -> None:
    """Raise `ConfigError` unless `path` can be created (or replaced) where it is; with
    `inside`, unless files can be created inside the folder `path`.

    Tried for real, not read from permission bits (which do not bind root, nor describe a
    read-only mount or /proc): a folder is created and removed again in the nearest
    existing folder above `path` (or `path` itself, with `inside`); the parents jiasu would
    create later are not created now.
    """
    label = f"{option} {path}"
    parent = _absolute(path) if inside else _absolute(path).parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(
            f"{label} cannot be written: {parent} is a file, not a folder; choose another path"
        )
    try:
        probe = tempfile.mkdtemp(prefix=".jiasu-probe-", dir=parent)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{label} cannot be written ({reason} in {parent}); choose a writable location"
        ) from None
    os.rmdir(probe)


def _absolute(path: Path) -> Path:
    # absolute, normalised and with symbolic links resolved: two spellings of one place
    # compare equal
    return Path(os.path.realpath(path))
