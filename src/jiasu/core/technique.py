"""Techniques: one acceleration each, small, composable, with a declared effect.

A technique says *where* it acts (stage), *what kind* of acceleration it is (the
founding document's hardware / software / middleware), and *how exact* it is:

- ``exact``: the same function up to floating-point reassociation (threads, data placement);
- ``numeric``: the same maths at another precision or through another kernel (bf16, compile);
- ``approximate``: a different function or optimisation path (int8, large batches); such a
  technique must pass the verifier's accuracy budget before its result is accepted.

Every technique is a frozen dataclass: its fields are its parameters, validated on
construction, so a `Recipe` can round-trip it through TOML or JSON. Every technique
also has a plain-function form (named in `plain_function`) for users' own loops.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC
from enum import Enum
from typing import Any, ClassVar

from jiasu.core.errors import ConfigError
from jiasu.core.registry import Registry


class Stage(str, Enum):
    TRAIN = "train"
    EXPORT = "export"
    RUNTIME = "runtime"


class Kind(str, Enum):
    HARDWARE = "hardware"
    SOFTWARE = "software"
    MIDDLEWARE = "middleware"


class Exactness(str, Enum):
    EXACT = "exact"
    NUMERIC = "numeric"
    APPROXIMATE = "approximate"


@dataclasses.dataclass(frozen=True)
class Effect:
    stage: Stage
    kind: Kind
    exactness: Exactness


@dataclasses.dataclass(frozen=True)
class Applicability:
    """The answer of `applies_to`: yes, or no with a reason a report can show."""

    ok: bool
    reason: str = ""

    @classmethod
    def yes(cls, reason: str = "") -> Applicability:
        return cls(True, reason)

    @classmethod
    def no(cls, reason: str) -> Applicability:
        if not reason:
            raise ValueError("a technique that does not apply must say why")
        return cls(False, reason)

    def __bool__(self) -> bool:
        return self.ok


class Technique(ABC):  # abstract by intent; subclasses are frozen dataclasses
    """Base of all techniques. Subclasses are ``@dataclass(frozen=True)`` and final."""

    name: ClassVar[str]
    effect: ClassVar[Effect]
    summary: ClassVar[str]
    plain_function: ClassVar[str]  # dotted path of the plain-function form
    conflicts_with: ClassVar[frozenset[str]] = frozenset()

    def params(self) -> dict[str, Any]:
        """The technique's parameters (its dataclass fields) as plain values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.name}({args})"


TECHNIQUES: Registry[type[Technique]] = Registry("technique")


def register_technique(cls: type[Technique]) -> type[Technique]:
    """Class decorator: add a technique class to the registry under its `name`."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"technique {cls.__name__} must be a frozen dataclass")
    TECHNIQUES.add(cls.name, cls)
    return cls


def build_technique(name: str, params: dict[str, Any] | None = None) -> Technique:
    """Instantiate a registered technique, with a clear error for unknown parameters."""
    cls = TECHNIQUES.get(name)
    params = dict(params or {})
    allowed = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise ConfigError(
            f"technique {name!r} has no parameter {unknown[0]!r}; accepted parameters: {accepted}"
        )
    try:
        return cls(**params)
    except TypeError as exc:  # e.g. a missing required parameter
        raise ConfigError(f"technique {name!r}: {exc}") from None


def check_int(technique: str, field: str, value: object, *, minimum: int, maximum: int) -> None:
    """Validate an integer parameter against its range (bool is not an int here)."""
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ConfigError(
            f"technique {technique!r}: {field} must be an integer from {minimum} to {maximum}, "
            f"got {value!r:.40}"
        )


def check_number(
    technique: str,
    field: str,
    value: object,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> None:
    """Validate a finite real parameter against its range: one lower bound (`above` open,
    `at_least` closed) and one upper bound (`below` open, `at_most` closed) must be given.

    >>> check_number("ema", "decay", 0.5, above=0, below=1)
    >>> check_number("ema", "decay", float("nan"), above=0, below=1)
    Traceback (most recent call last):
    jiasu.core.errors.ConfigError: technique 'ema': decay must be a number in (0, 1), got nan
    """
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (isinstance(value, int) or math.isfinite(value))  # a huge int overflows isfinite
        and (above is None or value > above)
        and (at_least is None or value >= at_least)
        and (below is None or value < below)
        and (at_most is None or value <= at_most)
    )
    if not ok:
        low = f"({above:g}" if above is not None else f"[{at_least:g}"
        high = f"{below:g})" if below is not None else f"{at_most:g}]"
        raise ConfigError(
            f"technique {technique!r}: {field} must be a number in {low}, {high}, got {value!r:.40}"
        )
