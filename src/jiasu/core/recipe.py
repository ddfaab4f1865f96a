"""Recipes: an ordered, validated list of techniques, saved as TOML or JSON.

A recipe file looks like this::

    name = "fast-cpu"

    [[techniques]]
    name = "device_data"

    [[techniques]]
    name = "threads"
    num_threads = 2

Order is the order in which techniques configure the run; conflicting or repeated
techniques are rejected when the recipe is built, not half-way through training.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from jiasu.core.atomic import atomic_write_text
from jiasu.core.errors import ConfigError
from jiasu.core.technique import Technique, build_technique

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FORMATS = (".toml", ".json")


@dataclass(frozen=True)
class Recipe:
    """An ordered list of techniques with a name.

    >>> from jiasu.train.techniques import DeviceData, Threads
    >>> Recipe("fast", (DeviceData(), Threads(num_threads=2))).names()
    ['device_data', 'threads']
    """

    name: str
    techniques: tuple[Technique, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a recipe needs a non-empty name, got {self.name!r}")
        object.__setattr__(self, "techniques", tuple(self.techniques))
        seen: set[str] = set()
        for technique in self.techniques:
            if not isinstance(technique, Technique):
                raise ConfigError(f"recipe {self.name!r}: {technique!r} is not a technique")
            if technique.name in seen:
                raise ConfigError(
                    f"recipe {self.name!r} lists technique {technique.name!r} twice; keep one"
                )
            seen.add(technique.name)
        for technique in self.techniques:
            clash = sorted(technique.conflicts_with & seen)
            if clash:
                raise ConfigError(
                    f"recipe {self.name!r}: technique {technique.name!r} conflicts with "
                    f"{clash[0]!r}; remove one of them"
                )

    def names(self) -> list[str]:
        return [t.name for t in self.techniques]

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain values only; a technique holding a Python object cannot be saved."""
        entries = []
        for technique in self.techniques:
            params = {k: v for k, v in technique.params().items() if v is not None}
            for key, value in params.items():
                if not isinstance(value, str | int | float | bool | list):
                    raise ConfigError(
                        f"recipe {self.name!r}: technique {technique.name!r} parameter {key!r} "
                        f"holds a Python object ({type(value).__name__}); to save the recipe, "
                        "give it as a 'package.module:function' string"
                    )
            entries.append({"name": technique.name, **params})
        return {"name": self.name, "techniques": entries}

    @classmethod
    def from_dict(cls, data: object, *, source: str = "recipe") -> Recipe:
        if not isinstance(data, dict):
            raise ConfigError(
                f"{source}: a recipe must be a table/object, got {type(data).__name__}"
            )
        unknown = sorted(set(data) - {"name", "techniques"})
        if unknown:
            raise ConfigError(
                f"{source}: unknown recipe key {unknown[0]!r}; allowed keys: name, techniques"
            )
        entries = data.get("techniques", [])
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: 'techniques' must be a list of tables")
        techniques = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ConfigError(
                    f"{source}: technique #{index + 1} must be a table with a 'name' string"
                )
            params = {k: v for k, v in entry.items() if k != "name"}
            techniques.append(build_technique(entry["name"], params))
        return cls(name=data.get("name", "recipe"), techniques=tuple(techniques))

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_toml(cls, text: str, *, source: str = "recipe") -> Recipe:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source} is not valid TOML ({exc}); fix the syntax") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_json(cls, text: str, *, source: str = "recipe") -> Recipe:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source} is not valid JSON ({exc}); fix the syntax") from None
        return cls.from_dict(data, source=source)

    def save(self, path: str | Path) -> None:
        """Write the recipe atomically as TOML or JSON, chosen by the file's suffix."""
        path = Path(path)
        text = self.to_toml() if _format(path) == ".toml" else self.to_json()
        atomic_write_text(path, text)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        path = Path(path)
        fmt = _format(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"recipe file {path} does not exist; check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"recipe file {path} cannot be read ({exc})") from None
        source = f"recipe file {path}"
        return (
            cls.from_toml(text, source=source)
            if fmt == ".toml"
            else cls.from_json(text, source=source)
        )


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"recipe file {path} has suffix {suffix or '(none)'!r}; use .toml or .json"
        )
    return suffix
