"""Shared fixtures of the trainer tests: a tiny valid track file, fast metadata and
hyperparameters, and the fake environment id."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FAKE_ENV = "tests.trainer.fake_env:FakeRace-v0"


@pytest.fixture
def track_file(tmp_path):
    """A 3 m radius circle with a 1 m wide road, as a DeepRacer .npy route file."""
    t = np.linspace(0, 2 * np.pi, 61)
    t[-1] = 0.0
    ring = lambda r: np.stack([r * np.cos(t), r * np.sin(t)], axis=1)  # noqa: E731
    arr = np.concatenate([ring(3.0), ring(2.5), ring(3.5)], axis=1)
    arr[-1] = arr[0]
    path = tmp_path / "circle.npy"
    np.save(path, arr)
    return str(path)


@pytest.fixture
def fast_metadata():
    from vehicle.metadata import ModelMetadata

    return dataclasses.replace(ModelMetadata(), neural_network="OPENRACER_FAST")


@pytest.fixture
def small_hp():
    from trainer.config import Hyperparameters

    return Hyperparameters(
        batch_size=32, num_epochs=2, num_episodes_between_training=4, discount_factor=0.95
    )


def continuous_metadata(network: str):
    """A continuous action space (steering -30..30 deg, speed 0.5..2 m/s) on `network`."""
    from vehicle.metadata import parse_metadata

    return parse_metadata(
        {
            "action_space": {
                "steering_angle": {"low": -30, "high": 30},
                "speed": {"low": 0.5, "high": 2.0},
            },
            "action_space_type": "continuous",
            "neural_network": network,
        }
    )
