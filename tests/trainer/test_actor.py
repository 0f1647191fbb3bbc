"""The NumPy actor: the same network outputs as Keras for every topology, the same
sampling rules as the learner, and episodes that depend only on their number."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trainer.actor import ActorSpec, act, forward
from trainer.episodes import EpisodeItem, play_episode, sampling_seed
from trainer.networks import TOPOLOGIES, build_networks
from vehicle.metadata import ModelMetadata

from .conftest import FAKE_ENV, continuous_metadata


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_forward_matches_keras(name):
    md = dataclasses.replace(ModelMetadata(), neural_network=name)
    nets = build_networks(md, seed=3)
    obs = np.random.default_rng(0).integers(0, 256, (3, 120, 160, 1), dtype=np.uint8)
    keras_out = np.asarray(nets.policy_logits(obs, training=False))
    ours = forward(TOPOLOGIES[name], nets.policy_logits.get_weights(), obs)
    assert ours.shape == keras_out.shape
    scale = float(np.abs(keras_out).max())
    np.testing.assert_allclose(ours, keras_out, rtol=1e-4, atol=1e-5 * max(scale, 1.0))


def test_continuous_head_applies_tanh_like_keras():
    md = continuous_metadata("OPENRACER_LOWRES")
    nets = build_networks(md, seed=1)
    weights = nets.policy_logits.get_weights()
    weights[-2] = weights[-2] * 300.0  # push the mean towards the tanh's flat ends
    nets.policy_logits.set_weights(weights)
    obs = np.random.default_rng(1).integers(0, 256, (4, 120, 160, 1), dtype=np.uint8)
    spec = ActorSpec(TOPOLOGIES["OPENRACER_LOWRES"], weights, discrete=False, log_std=np.zeros(2))
    np.testing.assert_allclose(spec.head(obs), nets.policy_logits(obs), atol=1e-5)
    assert np.abs(spec.head(obs)).max() > 0.9


def test_act_samples_the_softmax_and_reports_its_log_probability():
    spec = ActorSpec((), [], discrete=True)
    logits = np.log(np.array([[0.7, 0.2, 0.1]] * 20_000, dtype=np.float32))
    actions, logp = act(spec, logits, np.random.default_rng(0))
    freq = np.bincount(actions, minlength=3) / len(actions)
    np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.01)
    np.testing.assert_allclose(np.exp(logp), np.array([0.7, 0.2, 0.1])[actions], rtol=1e-5)
    greedy, _ = act(dataclasses.replace(spec, greedy=True), logits[:3], np.random.default_rng(0))
    assert greedy.tolist() == [0, 0, 0]


def test_act_gaussian_log_probability():
    spec = ActorSpec((), [], discrete=False, log_std=np.log(np.array([0.5, 0.25])))
    mean = np.zeros((5, 2), np.float32)
    actions, logp = act(spec, mean, np.random.default_rng(2))
    std = np.array([0.5, 0.25])
    expected = np.sum(-0.5 * (actions / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), axis=1)
    np.testing.assert_allclose(logp, expected, rtol=1e-5)


def test_episode_depends_only_on_its_item(track_file):
    from trainer.workers import make_env

    md = dataclasses.replace(ModelMetadata(), neural_network="OPENRACER_LOWRES")
    nets = build_networks(md, seed=0)
    spec = ActorSpec(TOPOLOGIES["OPENRACER_LOWRES"], nets.policy_logits.get_weights(), True)
    item = EpisodeItem(index=7, seed=123, start_progress=0.35, rng_seed=sampling_seed(0, 7))
    env = make_env(FAKE_ENV, {"track": track_file}, max_episode_steps=40)
    first = play_episode(env, spec, item)
    # Another episode in between must not change what episode 7 does.
    play_episode(env, spec, dataclasses.replace(item, index=8, seed=9))
    again = play_episode(env, spec, item)
    assert first.actions == again.actions and first.rewards == again.rewards
    assert len(first.obs) == len(first.actions) == len(first.rewards)
    assert len(first.infos) == len(first.actions) + 1  # the reset's info first
    assert first.terminated or first.truncated
