"""hyperparameters.json and TrainConfig: DeepRacer defaults, strict keys and ranges."""

from __future__ import annotations

import dataclasses
import json

import pytest

from trainer.config import (
    Hyperparameters,
    TrainConfig,
    config_from_json,
    field_help,
    load_hyperparameters,
    parse_hyperparameters,
)
from trainer.errors import TrainConfigError

DRFC_DEFAULT = {
    "batch_size": 64,
    "beta_entropy": 0.01,
    "discount_factor": 0.995,
    "e_greedy_value": 0.05,
    "epsilon_steps": 10000,
    "exploration_type": "categorical",
    "loss_type": "huber",
    "lr": 0.0003,
    "num_episodes_between_training": 20,
    "num_epochs": 10,
    "stack_size": 1,
    "term_cond_avg_score": 350.0,
    "term_cond_max_episodes": 1000,
    "sac_alpha": 0.2,
}


def test_simapp_defaults():
    hp = Hyperparameters()
    assert (hp.batch_size, hp.beta_entropy, hp.discount_factor, hp.lr) == (64, 0.01, 0.999, 3e-4)
    assert (hp.num_episodes_between_training, hp.num_epochs, hp.loss_type) == (
        20,
        10,
        "mean squared error",
    )
    assert parse_hyperparameters({}) == hp


def test_drfc_file_loads_as_is_and_round_trips(tmp_path):
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps(DRFC_DEFAULT))
    hp = load_hyperparameters(path)
    assert hp.discount_factor == 0.995 and hp.loss_type == "huber"
    assert hp.to_json() == DRFC_DEFAULT


def test_console_style_values_are_normalised():
    hp = parse_hyperparameters({"loss_type": "Mean squared error", "batch_size": "128"})
    assert hp.loss_type == "mean squared error" and hp.batch_size == 128


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"learning_rate": 0.1}, ["unknown key", "learning_rate"]),
        ({"lr": 0.5}, ["lr", "0.5", "range"]),
        ({"discount_factor": 1.5}, ["discount_factor", "1.5"]),
        ({"batch_size": 64.5}, ["batch_size", "whole number"]),
        ({"num_epochs": 0}, ["num_epochs", "0"]),
        ({"loss_type": "l1"}, ["loss_type", "l1"]),
        ({"exploration_type": "greedy"}, ["exploration_type"]),
        ({"stack_size": 4}, ["stack_size", "4"]),
        ({"beta_entropy": "lots"}, ["beta_entropy", "not a number"]),
        ({"lr": True}, ["lr", "not a number"]),
    ],
)
def test_bad_hyperparameters_are_clear_errors(data, words):
    with pytest.raises(TrainConfigError) as info:
        parse_hyperparameters(data, source="hp.json")
    text = str(info.value)
    assert "hp.json" in text
    for w in words:
        assert w in text


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "h.json"
    path.write_text('{"lr": 0.001,\n  oops}')
    with pytest.raises(TrainConfigError, match=r"h\.json.*line 2"):
        load_hyperparameters(path)


def test_train_config_validation():
    with pytest.raises(TrainConfigError, match="randomize"):
        TrainConfig(randomize="extreme")
    with pytest.raises(TrainConfigError, match="minutes"):
        TrainConfig(minutes=0)
    with pytest.raises(TrainConfigError, match="resume and --clone"):
        TrainConfig(resume=True, clone="x")
    with pytest.raises(TrainConfigError, match="workers"):
        TrainConfig(workers=0)


def test_every_field_has_help():
    for cls in (TrainConfig, Hyperparameters):
        helps = field_help(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        assert sorted(helps) == sorted(names)
        assert all(len(h) > 10 for h in helps.values())


BAD_CONFIG_VALUES = [
    ("minutes", "abc", "'minutes' is \"abc\"; it must be a finite number"),
    ("minutes", True, "'minutes' is true"),
    ("workers", "2", "'workers' is \"2\"; it must be a whole number"),
    ("workers", 2.5, "'workers' is 2.5"),
    ("seed", "x", "'seed' is \"x\""),
    ("track", 5, "'track' is 5; it must be a track name or a list of them"),
    ("track", ["reinvent_like", 3], "'track' is [\"reinvent_like\", 3]"),
    ("out", 5, "'out' is 5; it must be a string in quotes"),
    ("reward", 1, "'reward' is 1; it must be a string in quotes, or null"),
    ("resume", "yes", "'resume' is \"yes\"; it must be true or false"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_CONFIG_VALUES)
def test_a_config_value_of_the_wrong_type_names_key_value_and_form(
    tmp_path, key, value, message
) -> None:
    from trainer.config import load_train_config

    path = tmp_path / "train.json"
    path.write_text(json.dumps({"out": "runs/r1", "track": ["reinvent_like"], key: value}))
    with pytest.raises(TrainConfigError) as err:
        load_train_config(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert err.value.exit_code == 2


def test_one_track_name_and_a_byte_order_mark_are_fine(tmp_path) -> None:
    from trainer.config import load_train_config

    path = tmp_path / "train.json"
    text = json.dumps({"out": "runs/r1", "track": "reinvent_like", "minutes": 3})
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    config = load_train_config(path)
    assert config.track == ("reinvent_like",) and config.minutes == 3.0


def test_reward_time_limit_flows_from_json_and_is_checked():
    config = config_from_json({"reward_time_limit_s": 0.5}, "train.json")
    assert config.reward_time_limit_s == 0.5
    assert TrainConfig().reward_time_limit_s == 5.0
    with pytest.raises(TrainConfigError, match="'reward_time_limit_s' is \"abc\""):
        config_from_json({"reward_time_limit_s": "abc"}, "train.json")
    for bad in (0, -1, 601):
        with pytest.raises(TrainConfigError, match="--reward-time-limit-s"):
            TrainConfig(reward_time_limit_s=bad)
