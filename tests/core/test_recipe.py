from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import jiasu.train  # noqa: F401  (registers the training techniques)
from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.core.technique import TECHNIQUES, build_technique
from jiasu.train.techniques import DeviceData, FusedOptimizer, Threads


def sample_recipe() -> Recipe:
    return Recipe("sample", (Threads(num_threads=2), DeviceData(), FusedOptimizer(mode="foreach")))


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_recipe_round_trips_through_a_file(tmp_path: Path, suffix: str) -> None:
    recipe = sample_recipe()
    path = tmp_path / f"recipe{suffix}"
    recipe.save(path)
    loaded = Recipe.load(path)
    assert loaded == recipe
    assert loaded.names() == ["threads", "device_data", "fused_optimizer"]
    assert [t.params() for t in loaded.techniques] == [t.params() for t in recipe.techniques]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_toml_text_is_what_a_person_would_write() -> None:
    text = sample_recipe().to_toml()
    assert 'name = "sample"' in text
    assert '{ name = "threads", num_threads = 2 }' in text
    assert Recipe.from_toml(text) == sample_recipe()


def test_unknown_technique_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        Recipe.from_toml('name = "x"\n[[techniques]]\nname = "warp_drive"\n')
    message = str(info.value)
    assert "unknown technique 'warp_drive'" in message
    for known in TECHNIQUES.names():
        assert known in message


def test_unknown_parameter_names_the_accepted_ones() -> None:
    with pytest.raises(
        ConfigError, match="no parameter 'threads'; accepted parameters: num_threads"
    ):
        build_technique("threads", {"threads": 4})


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4", True, 100_000])
def test_bad_parameter_value_is_rejected_on_construction(bad: object) -> None:
    with pytest.raises(
        ConfigError, match=r"num_threads .* is out of range; use a whole number from 1 to"
    ):
        Threads(num_threads=bad)  # type: ignore[arg-type]


def test_duplicate_and_non_technique_entries_are_rejected() -> None:
    with pytest.raises(ConfigError, match="lists technique 'device_data' twice"):
        Recipe("dup", (DeviceData(), DeviceData()))
    with pytest.raises(ConfigError, match="is not a technique"):
        Recipe("bad", ("device_data",))  # type: ignore[arg-type]


def test_bad_files_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"use \.toml or \.json"):
        Recipe.load(tmp_path / "recipe.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        Recipe.load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Recipe.load(broken)
    wrong_key = tmp_path / "wrong.json"
    wrong_key.write_text('{"name": "x", "steps": []}')
    with pytest.raises(ConfigError, match="unknown recipe key 'steps'"):
        Recipe.load(wrong_key)


def test_techniques_declare_their_effect_and_are_frozen() -> None:
    for name in TECHNIQUES.names():
        technique = TECHNIQUES.get(name)()
        assert technique.effect.stage.value in {"train", "export", "runtime"}
        assert technique.summary and technique.plain_function
        for field in dataclasses.fields(technique):  # type: ignore[arg-type]
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(technique, field.name, None)
