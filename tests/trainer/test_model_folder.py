"""The model folder `racer new` writes: the choices make the DeepRacer files `racer train`
reads, and a choice that cannot be trained is a `ModelFolderError`."""

from __future__ import annotations

import numpy as np
import pytest

from tests.analysis.fixtures import stadium_track
from trainer.errors import ModelFolderError
from trainer.model_folder import ModelChoices, validate, write_model_folder
from vehicle.metadata import load_metadata


@pytest.fixture()
def track_file(tmp_path):
    path = tmp_path / "stadium.npy"
    np.save(path, stadium_track())
    return path


def test_console_defaults_give_the_console_default_action_space(tmp_path, track_file):
    result = write_model_folder(ModelChoices(name=str(tmp_path / "m"), track=str(track_file)))
    md = load_metadata(tmp_path / "m" / "model_metadata.json")
    steer = sorted({a.steer_deg for a in md.action_space.actions})
    speed = sorted({a.speed_mps for a in md.action_space.actions})
    assert steer == [-30, -15, 0, 15, 30] and speed == [0.4, 0.8]
    assert result["actions"] == 10 and "centerline" in result["reward"]


def test_continuous_space(tmp_path, track_file):
    c = ModelChoices(
        name=str(tmp_path / "c"),
        track=str(track_file),
        action_space="continuous",
        min_speed_mps=0.6,
        max_speed_mps=2.0,
        max_steer_deg=20,
    )
    write_model_folder(c)
    md = load_metadata(tmp_path / "c" / "model_metadata.json")
    assert md.action_space.kind == "continuous"
    assert md.action_space.steer_range_deg == (-20, 20)
    assert md.action_space.speed_range_mps == (0.6, 2.0)


def test_a_choice_that_cannot_be_trained_names_the_flag(tmp_path):
    with pytest.raises(ModelFolderError, match="--randomize 'extreme'"):
        validate(ModelChoices(name=str(tmp_path / "m"), randomize="extreme"))
