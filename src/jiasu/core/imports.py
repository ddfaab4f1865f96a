"""Naming the user's code: ``package.module:attribute``, imported in one place.

Importing a module runs its code, as any Python import does, so only names the user gives on
the command line, in the Python API or in a recipe they chose reach `import_attribute`; a file
jiasu loads never does unless the user opts in (``trust_code``).
"""

from __future__ import annotations

import importlib
import re

from jiasu.core.errors import ConfigError, one_line

# package.module:attribute, e.g. "mypkg.models:resnet18"
QUALIFIED_NAME = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_qualified_name(text: str) -> bool:
    """Whether `text` looks like ``package.module:attribute``.

    >>> is_qualified_name("mypkg.models:resnet18"), is_qualified_name("resnet")
    (True, False)
    """
    return bool(QUALIFIED_NAME.match(text))


def import_attribute(name: str, *, what: str) -> object:
    """The attribute that ``package.module:attribute`` names, imported (running the module).

    `what` says what it is for in the one-sentence error ("model factory", ...).
    """
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what} must look like 'package.module:name', got {name!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # ImportError, AttributeError, or the module's own failure
        raise ConfigError(
            f"cannot import {what} {name!r} ({one_line(exc, limit=160)}); check it is "
            "importable from the current directory or PYTHONPATH"
        ) from exc


def call_factory(name: str) -> object:
    """Import the factory ``package.module:function`` and call it with no arguments."""
    factory = import_attribute(name, what="model factory")
    if not callable(factory):
        raise ConfigError(f"model factory {name!r} is not callable; name a function")
    try:
        return factory()
    except Exception as exc:  # the user's code: its failure is theirs to fix
        raise ConfigError(
            f"model factory {name!r} raised {one_line(exc, limit=160)}; fix the factory"
        ) from exc
