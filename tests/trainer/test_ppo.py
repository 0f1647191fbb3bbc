"""PPO's learner against its actor, and learning itself: the rollout actor's behaviour
log-probabilities are the learner's at the same weights (probability ratio 1 on the first
minibatch) for every way of sampling, and a tiny run on the fake track measurably
improves its policy, so a change that breaks learning fails here."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.trainer.conftest import FAKE_ENV, continuous_metadata
from trainer.config import Hyperparameters, TrainConfig
from trainer.episodes import EpisodeItem, play_episode
from trainer.ppo import Learner, learning_rate, make_batch, train
from trainer.workers import make_env
from vehicle.metadata import ModelMetadata

LOWRES = dataclasses.replace(ModelMetadata(), neural_network="OPENRACER_LOWRES")


@pytest.mark.parametrize(
    ("metadata", "epsilon"),
    [
        (LOWRES, 0.0),
        (LOWRES, 0.3),
        (continuous_metadata("OPENRACER_LOWRES"), 0.0),
    ],
    ids=["categorical", "e-greedy", "gaussian"],
)
def test_probability_ratio_is_one_before_the_first_update(
    track_file: str, metadata: ModelMetadata, epsilon: float
) -> None:
    learner = Learner(metadata, Hyperparameters(), seed=4)
    env = make_env(
        FAKE_ENV, {"track": track_file, "action_space": metadata.to_json()}, max_episode_steps=50
    )
    episodes = [
        play_episode(env, learner.actor_spec(epsilon=epsilon), EpisodeItem.training(0, k))
        for k in range(3)
    ]
    batch = make_batch(episodes, learner, gamma=0.99, epsilon=epsilon)
    first = slice(0, min(64, len(batch.rewards)))  # the first minibatch's worth
    new_logp = learner.log_prob(batch.obs[first], batch.actions[first], epsilon)
    ratio = np.exp(new_logp - batch.logp[first])
    np.testing.assert_allclose(ratio, 1.0, atol=2e-4)
    if epsilon:
        # the mixture, not the softmax: a uniformly drawn action is never impossible
        plain = learner.log_prob(batch.obs[first], batch.actions[first], 0.0)
        assert np.all(new_logp >= np.log(epsilon / metadata.action_space.n) - 1e-5)
        assert not np.allclose(plain, batch.logp[first], atol=1e-3)


@pytest.mark.slow
def test_a_tiny_run_improves_its_policy(tmp_path, track_file: str) -> None:
    """Fixed seed, LOWRES network, the fake 60-step track: greedy evaluation progress
    after 8 iterations beats the untrained policy's by a wide margin."""
    hp = Hyperparameters(
        batch_size=64,
        num_epochs=4,
        num_episodes_between_training=6,
        discount_factor=0.9,
        lr=1e-3,
        beta_entropy=0.0,
    )
    config = TrainConfig(
        out=str(tmp_path / "run"),
        track=(track_file,),
        minutes=10,
        workers=1,
        eval_episodes=6,
        max_iterations=8,
        env_id=FAKE_ENV,
        randomize="none",
        max_episode_steps=120,
    )
    result = train(config, hp, LOWRES)
    progress = [h["eval_progress"] for h in result.history]
    assert len(progress) == 8
    # laps by the end, and clearly better than the first iterations (a broken update,
    # e.g. the advantage's sign flipped, stays below 20 %)
    assert min(progress[-3:]) >= 95.0, progress
    assert np.mean(progress[-3:]) >= np.mean(progress[:3]) + 5.0, progress


def test_the_anchor_keeps_the_policy_near_its_warm_start(track_file: str) -> None:
    """The same batch and updates, with and without the KL term toward the warm start:
    with it, the policy moves measurably less far from where it started."""
    import tensorflow as tf

    from trainer.ppo import anchor_divergence

    hp = Hyperparameters(batch_size=32, num_epochs=6, lr=3e-3)
    env = make_env(
        FAKE_ENV, {"track": track_file, "action_space": LOWRES.to_json()}, max_episode_steps=40
    )
    drift = {}
    for weight in (0.0, 5.0):
        learner = Learner(LOWRES, hp, seed=2)
        learner.set_anchor()
        episodes = [
            play_episode(env, learner.actor_spec(), EpisodeItem.training(0, k)) for k in range(4)
        ]
        batch = make_batch(episodes, learner, gamma=0.9, epsilon=0.0)
        stats = learner.update(batch, np.random.default_rng(0), anchor_kl=weight)
        assert "anchor_kl" in stats
        obs = tf.constant(batch.obs)
        drift[weight] = float(
            anchor_divergence(learner.anchor(obs), learner.nets.policy_logits(obs))
        )
    assert drift[5.0] < 0.5 * drift[0.0], drift


def test_a_state_critic_values_the_privileged_state(track_file: str) -> None:
    """`--critic state`: the value network reads `info["state"]` of the frame each action
    was chosen on (the reset's for the first), learns from it, and its weights round-trip;
    the policy still reads frames only."""
    from sim2real.privileged import STATE_SIZE

    learner = Learner(LOWRES, Hyperparameters(batch_size=32, num_epochs=1), seed=1, critic="state")
    env = make_env(
        "openracer/Race-v0",
        {"track": track_file, "action_space": LOWRES.to_json()},
        max_episode_steps=20,
    )
    episodes = [
        play_episode(env, learner.actor_spec(), EpisodeItem.training(0, k)) for k in range(2)
    ]
    batch = make_batch(episodes, learner, gamma=0.99, epsilon=0.0)
    assert batch.critic_in.shape == (len(batch.rewards), STATE_SIZE)
    np.testing.assert_array_equal(batch.critic_in[0], episodes[0].infos[0]["state"])
    np.testing.assert_allclose(batch.values, learner.values(batch.critic_in), rtol=1e-5)
    before = learner.values(batch.critic_in)
    stats = learner.update(batch, np.random.default_rng(0))
    assert np.isfinite(stats["value_loss"])
    assert not np.allclose(before, learner.values(batch.critic_in))
    twin = Learner(LOWRES, Hyperparameters(), seed=9, critic="state")
    twin.set_weights(learner.weights())
    np.testing.assert_allclose(
        twin.values(batch.critic_in), learner.values(batch.critic_in), rtol=1e-5
    )


def test_a_state_critic_needs_an_environment_that_gives_the_state(track_file: str) -> None:
    from trainer.errors import TrainConfigError

    learner = Learner(LOWRES, Hyperparameters(), seed=1, critic="state")
    env = make_env(
        FAKE_ENV, {"track": track_file, "action_space": LOWRES.to_json()}, max_episode_steps=10
    )
    episode = play_episode(env, learner.actor_spec(), EpisodeItem.training(0, 0))
    with pytest.raises(TrainConfigError, match="--critic camera"):
        make_batch([episode], learner, gamma=0.99, epsilon=0.0)


def test_the_learning_rate_anneals_over_env_steps_then_holds(tmp_path) -> None:
    hp = Hyperparameters(lr=1e-3)
    constant = TrainConfig(out=str(tmp_path))
    assert learning_rate(constant, hp, 0) == learning_rate(constant, hp, 10**9) == 1e-3
    anneal = dataclasses.replace(constant, lr_anneal_steps=1000)
    assert learning_rate(anneal, hp, 0) == pytest.approx(1e-3)
    assert learning_rate(anneal, hp, 500) == pytest.approx(0.55e-3)
    assert learning_rate(anneal, hp, 1000) == pytest.approx(1e-4)
    assert learning_rate(anneal, hp, 5000) == pytest.approx(1e-4)
