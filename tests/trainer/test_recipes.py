"""Recipes (`racer train --recipe NAME`): each is a complete set of DeepRacer files plus
training options, and the options given beside it win over it."""

from __future__ import annotations

import json

import pytest

from sim2real.reward import load_reward_function
from tools import cmd_train
from trainer import recipes
from trainer.config import load_hyperparameters
from trainer.errors import TrainConfigError
from vehicle.metadata import load_metadata


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_is_a_complete_set_of_deepracer_files(name):
    recipe = recipes.get(name)
    assert recipe.title and recipe.summary
    load_metadata(recipe.metadata)
    load_hyperparameters(recipe.hyperparameters)
    assert callable(load_reward_function(str(recipe.reward)))
    options = recipe.train_options()
    assert options["recipe"] == name


def _resolve(*argv):
    args = cmd_train.build_parser().parse_args(list(argv))
    return cmd_train.resolve(args)


def test_recipe_sets_files_and_options_and_flags_win(tmp_path):
    config, hp, metadata = _resolve("--recipe", "fast_laps", "--out", str(tmp_path / "a"))
    assert config.recipe == "fast_laps"
    assert config.expert == "racing" and config.dagger_rounds > 0
    assert metadata.action_space.kind == "continuous"
    assert config.reward == str(recipes.FAST_LAPS.reward)
    config, _, _ = _resolve(
        "--recipe", "fast_laps", "--dagger-rounds", "2", "--out", str(tmp_path / "b")
    )
    assert config.dagger_rounds == 2 and config.expert == "racing"


def test_config_file_keys_win_over_the_recipe_and_flags_over_both(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(
        json.dumps({"recipe": "fast_laps", "dagger_rounds": 3, "out": str(tmp_path / "c")}),
        encoding="utf-8",
    )
    config, _, _ = _resolve("--config", str(path))
    assert config.dagger_rounds == 3 and config.imitation_episodes == 20
    config, _, _ = _resolve("--config", str(path), "--dagger-rounds", "4")
    assert config.dagger_rounds == 4


def test_unknown_recipe_names_the_choices(tmp_path):
    with pytest.raises(TrainConfigError, match="first_lap, fast_laps"):
        _resolve("--recipe", "fastest", "--out", str(tmp_path / "d"))
