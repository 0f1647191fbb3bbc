"""Network topologies layer for layer (compat reference 4.2) and the export contract."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trainer.networks import build_networks, build_policy, feature_shapes
from vehicle.metadata import ModelMetadata

from .conftest import continuous_metadata

# Shapes from the compat reference's table, 120x160x1 input.
EXPECTED = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": [
        (29, 39, 32),
        (13, 18, 64),
        (11, 16, 64),
        (11264,),
        (512,),
    ],
    "DEEP_CONVOLUTIONAL_NETWORK": [
        (58, 78, 32),
        (56, 76, 32),
        (27, 37, 64),
        (25, 35, 64),
        (25, 35, 64),
        (56000,),
        (512,),
    ],
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP": [
        (29, 39, 32),
        (13, 18, 32),
        (5, 8, 64),
        (3, 6, 64),
        (3, 6, 512),
        (3, 6, 512),
        (9216,),
        (256,),
        (128,),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_deepracer_topologies_match_reference_shapes(name):
    assert feature_shapes(name) == EXPECTED[name]


def test_fast_network_downsamples_early():
    shapes = feature_shapes("OPENRACER_FAST")
    assert shapes[0] == (60, 80, 1)
    assert shapes[-1] == (256,)


def test_lowres_network_shapes_as_documented():
    assert feature_shapes("OPENRACER_LOWRES") == [
        (30, 40, 1),
        (13, 18, 16),
        (6, 8, 32),
        (4, 6, 32),
        (768,),
        (128,),
    ]


def test_discrete_policy_contract():
    md = dataclasses.replace(ModelMetadata(), neural_network="OPENRACER_FAST")
    model = build_policy(md)
    assert model.inputs[0].shape == (None, 120, 160, 1)
    assert model.inputs[0].dtype == "uint8"
    obs = np.random.default_rng(0).integers(0, 256, (3, 120, 160, 1), dtype=np.uint8)
    probs = np.asarray(model(obs))
    assert probs.shape == (3, md.action_space.n)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_continuous_policy_outputs_mean_in_unit_box_and_towers_are_separate():
    md = continuous_metadata("OPENRACER_FAST")
    nets = build_networks(md)
    obs = np.full((2, 120, 160, 1), 255, np.uint8)
    mean = np.asarray(nets.policy(obs))
    assert mean.shape == (2, 2) and np.all(np.abs(mean) <= 1.0)
    assert np.asarray(nets.value(obs)).shape == (2,)
    policy_vars = {id(v) for v in nets.policy.trainable_variables}
    assert not policy_vars & {id(v) for v in nets.value.trainable_variables}


def test_same_seed_same_weights():
    md = dataclasses.replace(ModelMetadata(), neural_network="OPENRACER_FAST")
    a = build_networks(md, seed=3).policy.get_weights()
    b = build_networks(md, seed=3).policy.get_weights()
    c = build_networks(md, seed=4).policy.get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
