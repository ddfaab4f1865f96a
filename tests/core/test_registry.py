from __future__ import annotations

import pytest

from jiasu.core.errors import ConfigError
from jiasu.core.registry import Registry


def test_get_returns_registered_item_and_lists_names() -> None:
    registry = Registry[int]("number")
    registry.add("two", 2)
    registry.add("one", 1)
    assert registry.get("two") == 2
    assert registry.names() == ["one", "two"]
    assert "one" in registry and "three" not in registry


def test_unknown_name_lists_known_names_and_suggests_close_one() -> None:
    registry = Registry[int]("number")
    registry.add("seven", 7)
    registry.add("eight", 8)
    with pytest.raises(ConfigError) as info:
        registry.get("sevn")
    message = str(info.value)
    assert "unknown number 'sevn'" in message
    assert "did you mean 'seven'" in message
    assert "known: eight, seven" in message


def test_a_name_registers_once() -> None:
    registry = Registry[int]("number")
    registry.add("one", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("one", 11)
