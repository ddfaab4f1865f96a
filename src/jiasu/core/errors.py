"""User-facing errors.

Every error a user can cause (a bad file, a bad config value, a missing extra) is a
`JiasuError`: its message is one sentence naming the problem and the fix. The CLI
prints it without a traceback and exits non-zero; library callers can catch it.
"""

from __future__ import annotations


class JiasuError(Exception):
    """Base class for errors caused by the user's input or environment."""

    exit_code: int = 2


class ConfigError(JiasuError, ValueError):
    """A configuration value is invalid (bad option, unknown name, bad recipe)."""


class DataError(JiasuError):
    """A data file is missing, corrupt, truncated or fails its checksum."""


class MissingExtraError(JiasuError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{module}', which is not installed; "
            f"install it with: pip install 'jiasu[{extra}]'"
        )
        self.module = module
        self.extra = extra


class CheckpointError(JiasuError):
    """A checkpoint or saved model cannot be read or does not match the model."""


class TrainingDivergedError(JiasuError):
    """Training produced weights or a loss that are NaN or infinite (e.g. too high a rate)."""


def one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception as one short line for a report or a reason: ``Type: first line``.

    >>> one_line(ValueError("bad shape\\nmore detail"))
    'ValueError: bad shape'
    >>> one_line(KeyError())
    'KeyError'
    """
    first = first_line(exc, limit=limit, default="")
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def first_line(exc: BaseException, limit: int = 160, default: str | None = None) -> str:
    """The first line of an exception's message, at most `limit` characters; for an empty
    message, `default` (the exception's type name when None)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__ if default is None else default
    return text.splitlines()[0][:limit]
