"""Named recipes: presets are compositions of techniques with no logic of their own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jiasu.core.recipe import Recipe
from jiasu.core.registry import Registry
from jiasu.train.techniques import DeviceData, FusedOptimizer, Threads

RECIPES: Registry[Callable[[], Recipe]] = Registry("recipe")


@RECIPES.register("baseline")
def baseline() -> Recipe:
    """Plain PyTorch as most tutorials write it: DataLoader, eager fp32, default optimizer."""
    return Recipe("baseline", ())


@RECIPES.register("fast")
def fast() -> Recipe:
    """The exact and numeric techniques that paid on every CPU measured so far."""
    return Recipe("fast", (Threads(), DeviceData(), FusedOptimizer()))


def resolve_recipe(spec: str) -> Recipe:
    """A preset name (`baseline`, `fast`) or a path to a .toml / .json recipe file."""
    if spec in RECIPES:
        return RECIPES.get(spec)()
    if spec.endswith((".toml", ".json")) or Path(spec).exists():
        return Recipe.load(spec)
    return RECIPES.get(spec)()  # raises: unknown recipe, with the known names
