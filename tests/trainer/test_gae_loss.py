"""GAE masking and the PPO loss, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer.ppo import categorical_logp_entropy, gae, gaussian_logp_entropy, ppo_loss


def reference_gae(rewards, values, next_values, terminated, ends, gamma, lam):
    """Straightforward per-episode recursion, written differently from `gae`."""
    n = len(rewards)
    adv = [0.0] * n
    for t in range(n):
        total, discount = 0.0, 1.0
        for k in range(t, n):
            boot = 0.0 if terminated[k] else next_values[k]
            delta = rewards[k] + gamma * boot - values[k]
            total += discount * delta
            if ends[k]:
                break
            discount *= gamma * lam
        adv[t] = total
    return np.array(adv)


def test_gae_single_terminated_episode_matches_reference():
    rng = np.random.default_rng(1)
    r, v = rng.normal(size=6), rng.normal(size=6)
    nv = np.append(v[1:], 123.0)  # the value after the terminal step must be ignored
    term = np.array([0, 0, 0, 0, 0, 1], bool)
    adv, ret = gae(r, v, nv, term, term, gamma=0.9, lam=0.95)
    np.testing.assert_allclose(adv, reference_gae(r, v, nv, term, term, 0.9, 0.95), rtol=1e-5)
    np.testing.assert_allclose(ret, adv + v, rtol=1e-5)
    # Last step of a terminated episode: advantage = r - V, no bootstrap.
    assert adv[-1] == pytest.approx(r[-1] - v[-1], rel=1e-5)


def test_gae_truncated_step_bootstraps_from_final_observation():
    r = np.array([1.0, 1.0])
    v = np.array([0.5, 0.5])
    nv = np.array([0.5, 10.0])  # V(final obs) = 10 for the truncated last step
    ends = np.array([False, True])
    term = np.array([False, False])
    adv, _ = gae(r, v, nv, term, ends, gamma=0.5, lam=1.0)
    assert adv[1] == pytest.approx(1.0 + 0.5 * 10.0 - 0.5)
    assert adv[0] == pytest.approx(1.0 + 0.5 * 0.5 - 0.5 + 0.5 * adv[1])


def test_gae_does_not_leak_across_autoreset_boundary():
    """Two episodes back to back (autoreset): the first's advantages ignore the second."""
    rng = np.random.default_rng(2)
    r1, v1 = rng.normal(size=4), rng.normal(size=4)
    r2, v2 = rng.normal(size=5) * 100, rng.normal(size=5) * 100
    nv1 = np.append(v1[1:], 0.0)
    nv2 = np.append(v2[1:], 0.0)
    term1 = np.array([0, 0, 0, 1], bool)
    term2 = np.array([0, 0, 0, 0, 1], bool)
    alone, _ = gae(r1, v1, nv1, term1, term1, 0.99, 0.95)
    both, _ = gae(
        np.concatenate([r1, r2]),
        np.concatenate([v1, v2]),
        np.concatenate([nv1, nv2]),
        np.concatenate([term1, term2]),
        np.concatenate([term1, term2]),
        0.99,
        0.95,
    )
    np.testing.assert_allclose(both[:4], alone, rtol=1e-6)


def test_gae_time_major_batch_equals_per_env():
    rng = np.random.default_rng(3)
    r, v, nv = rng.normal(size=(7, 3)), rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    ends = rng.random((7, 3)) < 0.3
    term = ends & (rng.random((7, 3)) < 0.5)
    adv, _ = gae(r, v, nv, term, ends, 0.97, 0.9)
    for j in range(3):
        one, _ = gae(r[:, j], v[:, j], nv[:, j], term[:, j], ends[:, j], 0.97, 0.9)
        np.testing.assert_allclose(adv[:, j], one, rtol=1e-6)
        np.testing.assert_allclose(
            one,
            reference_gae(r[:, j], v[:, j], nv[:, j], term[:, j], ends[:, j], 0.97, 0.9),
            rtol=1e-5,
            atol=1e-6,
        )


def _loss(new, old, adv, ent=0.0, beta=0.0, vp=0.0, ret=0.0, loss_type="mean squared error"):
    c = lambda x: tf.constant(np.asarray(x, np.float32))  # noqa: E731
    n = len(new)
    return ppo_loss(
        c(new), c(old), c(adv), c([ent] * n), c([vp] * n), c([ret] * n), beta, loss_type
    )


def test_loss_at_ratio_one_is_minus_mean_advantage():
    total, stats = _loss([0.0, 0.0], [0.0, 0.0], [1.0, 3.0])
    assert float(stats["policy_loss"]) == pytest.approx(-2.0)
    assert float(stats["approx_kl"]) == pytest.approx(0.0)
    assert float(total) == pytest.approx(-2.0)


def test_loss_clips_ratio_in_the_direction_of_the_advantage():
    # ratio e^1 ~ 2.7 with positive advantage: clipped at 1.2.
    _, s = _loss([1.0], [0.0], [1.0])
    assert float(s["policy_loss"]) == pytest.approx(-1.2, rel=1e-5)
    assert float(s["clip_fraction"]) == 1.0
    # ratio e^-1 with positive advantage: min keeps the unclipped (pessimistic) value.
    _, s = _loss([-1.0], [0.0], [1.0])
    assert float(s["policy_loss"]) == pytest.approx(-np.exp(-1.0), rel=1e-5)
    # ratio e^1 with negative advantage: unclipped, the larger penalty.
    _, s = _loss([1.0], [0.0], [-1.0])
    assert float(s["policy_loss"]) == pytest.approx(np.e, rel=1e-5)


def test_entropy_bonus_lowers_the_loss_and_value_losses_differ():
    base, _ = _loss([0.0], [0.0], [0.0], ent=2.0, beta=0.0)
    bonus, _ = _loss([0.0], [0.0], [0.0], ent=2.0, beta=0.1)
    assert float(bonus) == pytest.approx(float(base) - 0.2)
    _, mse = _loss([0.0], [0.0], [0.0], vp=3.0, ret=0.0)
    _, hub = _loss([0.0], [0.0], [0.0], vp=3.0, ret=0.0, loss_type="huber")
    assert float(mse["value_loss"]) == pytest.approx(4.5)
    assert float(hub["value_loss"]) == pytest.approx(2.5)


def test_distribution_helpers():
    logits = tf.constant([[0.0, 0.0, 0.0, 0.0]])
    logp, ent = categorical_logp_entropy(logits, tf.constant([2]))
    assert float(logp[0]) == pytest.approx(np.log(0.25))
    assert float(ent[0]) == pytest.approx(np.log(4.0))
    mean = tf.constant([[0.0, 0.0]])
    logp, ent = gaussian_logp_entropy(mean, tf.constant([0.0, 0.0]), tf.constant([[0.0, 0.0]]))
    assert float(logp[0]) == pytest.approx(-np.log(2 * np.pi))
    assert float(ent[0]) == pytest.approx(np.log(2 * np.pi * np.e))
