"""Clipped PPO from camera pixels, DeepRacer style, reading top to bottom (CleanRL layout).

`train()` is the whole algorithm, each step a few lines calling its owner: setup (the run
directory `trainer.checkpoint.RunDir`, the `Learner`, the `RunState` to start from, the
`trainer.logbook.Logbook`, simulator processes `trainer.workers`), then per iteration:
rollout of `num_episodes_between_training` whole episodes played inside the simulator
processes with a NumPy copy of the policy (`trainer.episodes`, `trainer.actor`; the
weights travel once per iteration, episodes come back whole); advantages with GAE;
`num_epochs` passes of minibatch updates; evaluation trials from the start line
(`trainer.evaluate`); logging; an atomic checkpoint (`RunDir.save_iteration`). It stops
at the time budget or at DeepRacer's termination conditions (`term_cond_max_episodes`,
`term_cond_avg_score`).

SAC runs through the same `train()`: `trainer.algorithms` picks the learner from
`model_metadata.json`'s `training_algorithm`, and only its `learn` step differs
(`trainer.sac`: replay buffer and gradient steps instead of GAE and epochs).

The pieces tested on their own: `gae` (masking at episode ends: a terminated step never
bootstraps, a truncated one bootstraps from the value of its real final observation, not
from the next episode's first frame), `ppo_loss`, and the distribution helpers.

Settings fixed as in DeepRacer (compat reference 4.3): clip 0.2, GAE lambda 0.95, Adam
epsilon 1e-5; each tower's gradient clipped to a norm of 0.5 (CleanRL's default, per
tower because the policy and value towers share no layer); advantages
normalised per minibatch; value loss MSE (0.5 * squared error) or Huber (delta 1).
Discrete actions: categorical sampling in training, or e-greedy, whose mixture
(1 - e) * softmax + e / n is both what the actor samples and what the loss scores;
argmax in evaluation.
Continuous: a diagonal Gaussian around the tanh mean with a state-independent log-std
(initial std 0.6, clipped to [-20, 3] as Coach), samples clipped to [-1, 1] before the
environment rescales them to the metadata's ranges.

Randomness: one `numpy.random.Generator` (seeded from `TrainConfig.seed`) drives minibatch
shuffling; training episode k is `EpisodeItem.training(seed, k)` (its reset seed, its
round-robin start `k * 0.05` of the lap, its own sampling generator), so an episode is the
same whichever process plays it, and a resumed run replays exactly what an uninterrupted
one would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from sim2real.privileged import STATE_SIZE
from trainer.actor import LOG_STD_RANGE, ActorSpec
from trainer.algorithms import check_algorithm, make_learner
from trainer.checkpoint import RunDir
from trainer.config import (
    ADAM_EPSILON,
    CLIP_EPSILON,
    GAE_LAMBDA,
    LR_ANNEAL_FLOOR,
    Hyperparameters,
    TrainConfig,
)
from trainer.episodes import ROUND_ROBIN_ADVANCE, Episode, EpisodeItem
from trainer.errors import CheckpointError, TrainConfigError
from trainer.evaluate import env_kwargs_for, evaluate_in_training
from trainer.logbook import Logbook
from trainer.networks import TOPOLOGIES, build_networks
from trainer.progress import ProgressDisplay
from trainer.trackset import training_tracks
from trainer.workers import EnvPool, LocalPool, make_env, make_pool
from vehicle.metadata import ModelMetadata
from vehicle.observation import OBS_SHAPE

if TYPE_CHECKING:
    from trainer.sac import SACLearner

Pool = EnvPool | LocalPool
MAX_GRAD_NORM = 0.5
"""Gradient-norm clip, applied to the policy tower and to the value tower separately."""
VALUE_COEF = 0.5
"""Weight of the value loss in the total loss (the towers are separate, so this only
scales the value tower's gradient)."""
IMITATION_BUDGET_SHARE = 0.5
"""The share of `--minutes` the imitation warm start's DAgger rounds may use."""
INITIAL_LOG_STD = math.log(0.6)
"""Continuous action spaces: initial log standard deviation in [-1, 1] action units."""


# ---------------------------------------------------------------------------------------
# The small, separately tested functions
# ---------------------------------------------------------------------------------------


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    episode_end: np.ndarray,
    gamma: float,
    lam: float = GAE_LAMBDA,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over a time-ordered stream of steps.

    Arrays have shape (T,) or (T, N) (time first). `next_values[t]` is V of the
    observation that followed step t *in the same episode* (for a truncated last step,
    V(final observation); it is ignored where `terminated[t]`). `episode_end[t]` marks the
    last step of an episode (terminated or truncated): the lambda-chain is cut there, so
    steps never borrow advantage from the next episode an autoreset started.
    Returns (advantages, returns = advantages + values).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    next_values = np.asarray(next_values, dtype=np.float64)
    not_term = 1.0 - np.asarray(terminated, dtype=np.float64)
    not_end = 1.0 - np.asarray(episode_end, dtype=np.float64)
    adv = np.zeros_like(rewards)
    last = np.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + gamma * not_term[t] * next_values[t] - values[t]
        last = delta + gamma * lam * not_end[t] * last
        adv[t] = last
    return adv.astype(np.float32), (adv + values).astype(np.float32)


def ppo_loss(
    new_logp: tf.Tensor,
    old_logp: tf.Tensor,
    advantages: tf.Tensor,
    entropy: tf.Tensor,
    value_pred: tf.Tensor,
    returns: tf.Tensor,
    beta_entropy: float,
    loss_type: str = "mean squared error",
    clip: float = CLIP_EPSILON,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Clipped-surrogate PPO loss: policy loss + VALUE_COEF * value loss - beta * entropy.

    Returns (total loss, stats) with stats `policy_loss`, `value_loss`, `entropy`,
    `approx_kl` (the low-variance estimator mean((r - 1) - log r)) and `clip_fraction`.
    """
    log_ratio = new_logp - old_logp
    ratio = tf.exp(log_ratio)
    surrogate = tf.minimum(
        ratio * advantages, tf.clip_by_value(ratio, 1.0 - clip, 1.0 + clip) * advantages
    )
    policy_loss = -tf.reduce_mean(surrogate)
    error = value_pred - returns
    if loss_type == "huber":
        abs_err = tf.abs(error)
        value_loss = tf.reduce_mean(tf.where(abs_err <= 1.0, 0.5 * tf.square(error), abs_err - 0.5))
    else:
        value_loss = 0.5 * tf.reduce_mean(tf.square(error))
    mean_entropy = tf.reduce_mean(entropy)
    total = policy_loss + VALUE_COEF * value_loss - beta_entropy * mean_entropy
    stats = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": mean_entropy,
        "approx_kl": tf.reduce_mean((ratio - 1.0) - log_ratio),
        "clip_fraction": tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip, tf.float32)),
    }
    return total, stats


def categorical_logp_entropy(
    logits: tf.Tensor, actions: tf.Tensor, epsilon: tf.Tensor | float = 0.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Log-probability of integer `actions` under the sampling distribution and the
    entropy of the softmax of `logits`. With e-greedy `epsilon` > 0 the actions were drawn
    from (1 - epsilon) * softmax + epsilon / n (`trainer.actor.mixture_probs`), and that
    mixture is what is scored, so behaviour and learner agree on the same weights."""
    logp_all = tf.nn.log_softmax(logits)
    logp_soft = tf.gather(logp_all, tf.cast(actions, tf.int32), batch_dims=1)
    n = tf.cast(tf.shape(logits)[-1], logits.dtype)
    epsilon = tf.cast(epsilon, logits.dtype)
    mixture = tf.math.log((1.0 - epsilon) * tf.exp(logp_soft) + epsilon / n)
    logp = tf.where(epsilon > 0.0, mixture, logp_soft)
    entropy = -tf.reduce_sum(tf.exp(logp_all) * logp_all, axis=-1)
    return logp, entropy


def anchor_divergence(anchor_logits: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean KL(anchor || policy) of two categorical heads over a batch."""
    anchor_logp = tf.nn.log_softmax(anchor_logits)
    logp = tf.nn.log_softmax(logits)
    return tf.reduce_mean(tf.reduce_sum(tf.exp(anchor_logp) * (anchor_logp - logp), axis=-1))


def gaussian_anchor_divergence(
    anchor_mean: tf.Tensor, mean: tf.Tensor, log_std: tf.Tensor
) -> tf.Tensor:
    """Mean KL(anchor || policy) of two diagonal Gaussians with the policy's standard
    deviation, (mu_anchor - mu)^2 / (2 sigma^2) summed over the action dimensions. The
    deviation is held fixed here: the term pulls the mean back, it does not widen the std."""
    var = tf.exp(2.0 * tf.stop_gradient(tf.clip_by_value(log_std, *LOG_STD_RANGE)))
    return tf.reduce_mean(tf.reduce_sum(tf.square(anchor_mean - mean) / (2.0 * var), axis=-1))


def gaussian_logp_entropy(
    mean: tf.Tensor, log_std: tf.Tensor, actions: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Diagonal Gaussian log-density of `actions` and its entropy (per sample)."""
    log_std = tf.clip_by_value(log_std, *LOG_STD_RANGE)
    z = (actions - mean) * tf.exp(-log_std)
    logp = tf.reduce_sum(-0.5 * tf.square(z) - log_std - 0.5 * math.log(2 * math.pi), axis=-1)
    entropy = tf.reduce_sum(log_std + 0.5 * math.log(2 * math.pi * math.e)) * tf.ones_like(logp)
    return logp, entropy


# ---------------------------------------------------------------------------------------
# The learner: networks, optimizer, batched inference and the update step
# ---------------------------------------------------------------------------------------


class Learner:
    """Policy and value towers, the Gaussian log-std, Adam, and compiled calls."""

    resume_note: str | None = None
    """What `--resume` does not restore (SAC's replay buffer); PPO restores everything."""

    def __init__(
        self, metadata: ModelMetadata, hp: Hyperparameters, seed: int = 0, critic: str = "camera"
    ):
        self.metadata = metadata
        self.hp = hp
        self.critic = critic
        """What the value network sees: "camera" frames or the privileged "state"."""
        self.discrete = metadata.action_space.kind == "discrete"
        self.n_actions = metadata.action_space.n
        self.nets = build_networks(metadata, seed, critic)
        self.log_std = keras.Variable(
            np.full((2,), INITIAL_LOG_STD, np.float32), name="log_std", trainable=True
        )
        self.variables = (
            self.nets.policy_logits.trainable_variables + self.nets.value.trainable_variables
        )
        if not self.discrete:
            self.variables = [*self.variables, self.log_std]
        self.policy_variables = list(self.nets.policy_logits.trainable_variables)
        if not self.discrete:
            self.policy_variables.append(self.log_std)
        self.value_variables = list(self.nets.value.trainable_variables)
        self.optimizer = keras.optimizers.Adam(learning_rate=hp.lr, epsilon=ADAM_EPSILON)
        self.optimizer.build(self.variables)
        spec = [
            tf.TensorSpec((None, STATE_SIZE), tf.float32)
            if critic == "state"
            else tf.TensorSpec((None, *OBS_SHAPE), tf.uint8)
        ]
        self._value = tf.function(
            lambda obs: self.nets.value(obs, training=False), input_signature=spec
        )
        self.anchor: keras.Model | None = None
        """A frozen copy of the warm-start policy (`set_anchor`), or None."""
        self._train_step = tf.function(self._train_step_impl)

    # -- inference -------------------------------------------------------------------
    def values(self, obs: np.ndarray, batch: int = 256) -> np.ndarray:
        """State values for a batch of any size of what the critic sees (uint8 frames, or
        float32 privileged states), computed in chunks."""
        if len(obs) == 0:
            return np.zeros((0,), np.float32)
        parts = [
            self._value(tf.constant(obs[i : i + batch])).numpy() for i in range(0, len(obs), batch)
        ]
        return np.concatenate(parts).astype(np.float32)

    def actor_spec(self, *, epsilon: float = 0.0, greedy: bool = False) -> ActorSpec:
        """The current policy for the simulator processes (`trainer.actor`)."""
        return ActorSpec(
            topology=TOPOLOGIES[self.metadata.neural_network],
            weights=[np.asarray(w) for w in self.nets.policy_logits.get_weights()],
            discrete=self.discrete,
            log_std=None if self.discrete else np.asarray(self.log_std.numpy()),
            epsilon=epsilon,
            greedy=greedy,
            record_obs=not greedy,
        )

    # -- update ----------------------------------------------------------------------
    def _policy_terms(self, obs, actions, epsilon, training: bool):
        """Log-probabilities of `actions` under the current policy (the e-greedy mixture
        when `epsilon` > 0) and the policy's entropy: what the loss scores."""
        return self._scored(self.nets.policy_logits(obs, training=training), actions, epsilon)

    def _scored(self, out, actions, epsilon):
        if self.discrete:
            return categorical_logp_entropy(out, actions, epsilon)
        return gaussian_logp_entropy(out, self.log_std, actions)

    def set_anchor(self) -> None:
        """Remember the present policy (a warm start) as the anchor that
        `update(anchor_kl=...)` keeps the policy near."""
        if self.anchor is None:
            self.anchor = build_networks(self.metadata, 0).policy_logits
        self.anchor.set_weights(self.nets.policy_logits.get_weights())

    def log_prob(self, obs: np.ndarray, actions: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
        """The learner's log-probabilities of `actions` on `obs` (for checks against the
        actor's behaviour log-probabilities)."""
        acts = actions if self.discrete else actions.astype(np.float32)
        logp, _ = self._policy_terms(
            tf.constant(obs), tf.constant(acts), tf.constant(epsilon, tf.float32), False
        )
        return np.asarray(logp)

    def _train_step_impl(
        self, obs, critic_in, actions, old_logp, advantages, returns, epsilon, policy, anchor_kl
    ):
        adv = (advantages - tf.reduce_mean(advantages)) / (tf.math.reduce_std(advantages) + 1e-8)
        with tf.GradientTape() as tape:
            out = self.nets.policy_logits(obs, training=True)
            new_logp, entropy = self._scored(out, actions, epsilon)
            value_pred = self.nets.value(critic_in, training=True)
            loss, stats = ppo_loss(
                new_logp,
                old_logp,
                adv,
                entropy,
                value_pred,
                returns,
                self.hp.beta_entropy,
                self.hp.loss_type,
            )
            if self.anchor is not None:
                # KL(anchor || policy) on the batch's frames: what the warm start was sure
                # of stays likely while the advantages are still noise.
                anchor_out = self.anchor(obs, training=False)
                if self.discrete:
                    kl = anchor_divergence(anchor_out, out)
                else:
                    kl = gaussian_anchor_divergence(anchor_out, out, self.log_std)
                loss = loss + anchor_kl * kl
                stats["anchor_kl"] = kl
        grads = tape.gradient(loss, [*self.policy_variables, *self.value_variables])
        n_policy = len(self.policy_variables)
        policy_grads, value_grads = grads[:n_policy], grads[n_policy:]
        # Each tower's gradient is clipped on its own: the towers share no layer, and one
        # global norm would let a large value error shrink the policy's step.
        policy_grads, stats["policy_grad_norm"] = tf.clip_by_global_norm(
            policy_grads, MAX_GRAD_NORM
        )
        value_grads, stats["value_grad_norm"] = tf.clip_by_global_norm(value_grads, MAX_GRAD_NORM)
        # During a value warm-up the policy's gradient is zero (Adam then leaves it be).
        keep = tf.cast(policy, tf.float32)
        policy_grads = [g * keep for g in policy_grads]
        self.optimizer.apply_gradients(
            zip(
                [*policy_grads, *value_grads],
                [*self.policy_variables, *self.value_variables],
                strict=True,
            )
        )
        stats["loss"] = loss
        return stats

    def learn(
        self,
        episodes: list[Episode],
        rng: np.random.Generator,
        *,
        epsilon: float = 0.0,
        policy: bool = True,
        anchor_kl: float = 0.0,
    ) -> dict[str, float]:
        """One iteration's learning: GAE advantages over `episodes` (`make_batch`), then
        `update` (what `train` asks of any learner; SAC's is `trainer.sac.SACLearner.learn`)."""
        batch = make_batch(episodes, self, self.hp.discount_factor, epsilon)
        return self.update(batch, rng, policy=policy, anchor_kl=anchor_kl)

    def update(
        self,
        batch: Batch,
        rng: np.random.Generator,
        *,
        policy: bool = True,
        anchor_kl: float = 0.0,
    ) -> dict[str, float]:
        """`num_epochs` passes of shuffled minibatches over `batch`; mean stats. With
        `policy` False only the value function learns (a value warm-up); `anchor_kl`
        weighs the KL term toward the anchor (`set_anchor`), when one is set."""
        n = len(batch.rewards)
        size = min(self.hp.batch_size, n)
        sums: dict[str, float] = {}
        count = 0
        actions = batch.actions if self.discrete else batch.actions.astype(np.float32)
        for _ in range(self.hp.num_epochs):
            order = rng.permutation(n)
            # Whole minibatches only (one compiled shape); the few samples left over
            # differ every epoch.
            for start in range(0, n - size + 1, size):
                idx = np.sort(order[start : start + size])
                stats = self._train_step(
                    tf.constant(batch.obs[idx]),
                    tf.constant(batch.critic_in[idx]),
                    tf.constant(actions[idx]),
                    tf.constant(batch.logp[idx]),
                    tf.constant(batch.advantages[idx]),
                    tf.constant(batch.returns[idx]),
                    tf.constant(batch.epsilon, tf.float32),
                    tf.constant(policy),
                    tf.constant(anchor_kl, tf.float32),
                )
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
        return {k: v / max(count, 1) for k, v in sums.items()}

    # -- state for checkpoints ---------------------------------------------------------
    def weights(self) -> dict[str, list[np.ndarray]]:
        """Network weights (policy, value, log_std, and the anchor when set) as numpy
        arrays."""
        out = {
            "policy": [w.copy() for w in self.nets.policy_logits.get_weights()],
            "value": [w.copy() for w in self.nets.value.get_weights()],
            "log_std": [self.log_std.numpy().copy()],
        }
        if self.anchor is not None:
            out["anchor"] = [w.copy() for w in self.anchor.get_weights()]
        return out

    def set_weights(self, weights: dict[str, list[np.ndarray]]) -> None:
        self.nets.policy_logits.set_weights(weights["policy"])
        self.nets.value.set_weights(weights["value"])
        self.log_std.assign(weights["log_std"][0])
        if "anchor" in weights:
            current = self.nets.policy_logits.get_weights()
            self.nets.policy_logits.set_weights(weights["anchor"])
            self.set_anchor()
            self.nets.policy_logits.set_weights(current)

    def optimizer_state(self) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in self.optimizer.variables]

    def set_optimizer_state(self, arrays: list[np.ndarray]) -> None:
        for var, value in zip(self.optimizer.variables, arrays, strict=True):
            var.assign(value)


# ---------------------------------------------------------------------------------------
# Rollouts: whole episodes played inside the simulator processes (trainer.episodes)
# ---------------------------------------------------------------------------------------


@dataclass
class Batch:
    """An iteration's experience, flattened in episode order, with advantages."""

    obs: np.ndarray
    critic_in: np.ndarray
    """What the value network saw for each step: `obs` itself, or the privileged states."""
    actions: np.ndarray
    logp: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    epsilon: float = 0.0
    """The e-greedy rate the actions were sampled with (the learner scores the same
    mixture, so the first update's probability ratio is 1)."""


class DeadlineReached(Exception):
    """The time budget ran out in the middle of a rollout (the partial one is dropped)."""


def rollout(
    pool: Pool,
    learner: Learner | SACLearner,
    *,
    n_episodes: int,
    first_episode: int,
    seed: int,
    epsilon: float = 0.0,
    deadline: float | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[Episode]:
    """Play training episodes first_episode... (`EpisodeItem.training`) with the current
    policy in the simulator processes (`pool.play_many`); sorted by number. Raises
    `DeadlineReached` when the budget ends before all `n_episodes` are played."""
    spec = learner.actor_spec(epsilon=epsilon)
    items = [
        EpisodeItem.training(seed, k) for k in range(first_episode, first_episode + n_episodes)
    ]
    played: list[Episode] = []

    def on_done(episode: Episode) -> bool:
        """Report progress; once past the deadline, start no further episode."""
        played.append(episode)
        if on_step is not None:
            on_step(sum(len(e.rewards) for e in played), len(played))
        return deadline is None or time.time() <= deadline

    episodes = pool.play_many(spec, items, on_done, deadline=deadline)
    if len(episodes) < n_episodes:
        raise DeadlineReached
    return episodes


def make_batch(episodes: list[Episode], learner: Learner, gamma: float, epsilon: float) -> Batch:
    """Flatten episodes, compute values (one batched pass) and GAE advantages."""
    obs = np.concatenate([np.stack(e.obs) for e in episodes])
    critic_in = obs if learner.critic == "camera" else critic_states(episodes)
    values = learner.values(critic_in)
    truncated = [e for e in episodes if e.truncated]
    final_value: dict[int, float] = {}
    if truncated:
        if learner.critic == "camera":
            final_in = np.stack([np.asarray(e.final_obs) for e in truncated])
        else:
            final_in = np.stack([np.asarray(e.infos[-1]["state"], np.float32) for e in truncated])
        finals = learner.values(final_in)
        final_value = {e.index: float(v) for e, v in zip(truncated, finals, strict=True)}
    next_values = np.zeros_like(values)
    terminated = np.zeros(len(values), bool)
    ends = np.zeros(len(values), bool)
    pos = 0
    for e in episodes:
        n = len(e.rewards)
        next_values[pos : pos + n - 1] = values[pos + 1 : pos + n]
        next_values[pos + n - 1] = final_value.get(e.index, 0.0)
        terminated[pos + n - 1] = e.terminated
        ends[pos + n - 1] = True
        pos += n
    rewards = np.concatenate([np.asarray(e.rewards, np.float32) for e in episodes])
    adv, ret = gae(rewards, values, next_values, terminated, ends, gamma)
    actions = np.concatenate([np.asarray(e.actions) for e in episodes])
    logp = np.concatenate([np.asarray(e.logp, np.float32) for e in episodes])
    return Batch(obs, critic_in, actions, logp, rewards, values, adv, ret, epsilon)


def critic_states(episodes: list[Episode]) -> np.ndarray:
    """The privileged state (`info["state"]`) of every step an action was chosen on, in
    episode order: the reset's info goes with the first frame, each step's with the next."""
    try:
        rows = [
            np.asarray(e.infos[t]["state"], np.float32) for e in episodes for t in range(len(e.obs))
        ]
    except KeyError as exc:
        raise TrainConfigError(
            "--critic state needs the simulator's privileged state in info['state'] "
            "(openracer/Race-v0 gives it); this environment does not: use --critic camera"
        ) from exc
    return np.stack(rows)


def epsilon_at(hp: Hyperparameters, env_steps: int) -> float:
    """e-greedy exploration rate after `env_steps` steps (0 for categorical)."""
    if hp.exploration_type != "e-greedy":
        return 0.0
    frac = min(env_steps / hp.epsilon_steps, 1.0)
    return 1.0 + frac * (hp.e_greedy_value - 1.0)


# ---------------------------------------------------------------------------------------
# The run's state between iterations, and what an iteration reports
# ---------------------------------------------------------------------------------------


@dataclass
class RunState:
    """Where a run is: counters, the checkpoint index and the shuffling generator's
    state; saved with every checkpoint in `resume.npz`, so `--resume` continues exactly."""

    iteration: int = 0
    episodes: int = 0
    env_steps: int = 0
    elapsed_s: float = 0.0
    index: dict[str, Any] = field(
        default_factory=lambda: {"last": None, "best": None, "best_score": None, "kept": []}
    )
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "episodes": self.episodes,
            "env_steps": self.env_steps,
            "elapsed_s": self.elapsed_s,
            "rng": rng.bit_generator.state,
            "index": self.index,
            "metrics_count": len(self.metrics),
            "round_robin_next_start": (self.episodes * ROUND_ROBIN_ADVANCE) % 1.0,
        }


def start_state(
    run: RunDir, config: TrainConfig, learner: Any, rng: np.random.Generator
) -> RunState:
    """A fresh run's state; a resumed run's, with the learner and generator restored and
    the directory rolled back to its last complete iteration; or a clone's, with the
    other run's best weights (same network and action count, DeepRacer's rule)."""
    state = RunState()
    if config.resume:
        weights, opt_state, saved = run.load_resume()
        learner.set_weights(weights)
        learner.set_optimizer_state(opt_state)
        rng.bit_generator.state = saved["rng"]
        state = RunState(
            saved["iteration"], saved["episodes"], saved["env_steps"], saved["elapsed_s"]
        )
        state.index = saved["index"]
        run.roll_back_to(saved)
        state.metrics = run.load_metrics()
    elif config.clone:
        source = RunDir(config.clone)
        theirs, ours = source.metadata(), learner.metadata
        if (theirs.neural_network, theirs.action_space.kind, theirs.action_space.n) != (
            ours.neural_network,
            ours.action_space.kind,
            ours.action_space.n,
        ):
            raise CheckpointError(
                f"--clone {config.clone}: its network {theirs.neural_network} with "
                f"{theirs.action_space.n} {theirs.action_space.kind} actions does not match "
                f"{ours.neural_network} with {ours.action_space.n}; clone with the "
                "same network and number of actions (DeepRacer's rule)"
            )
        if theirs.training_algorithm != ours.training_algorithm:
            raise CheckpointError(
                f"--clone {config.clone}: it was trained with {theirs.training_algorithm}, "
                f"this run's model_metadata.json says {ours.training_algorithm}; clone with "
                "the same training_algorithm"
            )
        weights, info = source.load_checkpoint("best")
        learner.set_weights(weights)
        state.index["cloned_from"] = {"run": str(source.path), "iteration": info["iteration"]}
    return state


def warm_start(
    config: TrainConfig,
    env_kwargs: dict[str, Any],
    learner: Learner,
    rng: np.random.Generator,
    state: RunState,
    logbook: Logbook,
    display: ProgressDisplay,
    deadline: float = math.inf,
) -> None:
    """The optional imitation warm start (off by default; recorded in index.json):
    behaviour cloning from the pure-pursuit expert, then optional DAgger rounds, as many
    as fit before `deadline` (time.time())."""
    from sim2real.pure_pursuit import PurePursuitConfig
    from trainer.expert_data import collect_expert
    from trainer.imitation import behaviour_clone

    expert = PurePursuitConfig(
        line=config.expert,
        racing_speed_fraction=config.expert_speed_fraction,
        # The racing expert looks further ahead: at racing speeds a short lookahead weaves
        # (trainer/EXPERIMENTS.md, 2026-12-05).
        **({"lookahead_m": 0.6, "lookahead_per_mps": 0.25} if config.expert == "racing" else {}),
    )
    display.message(
        f"imitation warm start: behaviour cloning from {config.imitation_episodes} "
        f"pure-pursuit expert episodes on the {config.expert} line"
        + (f", then {config.dagger_rounds} DAgger rounds" if config.dagger_rounds else "")
        + " (not pure PPO)"
    )
    space = learner.metadata.action_space
    args = (config.env_id, env_kwargs, space, config.imitation_episodes)
    procs = config.workers
    on_ray = config.ray is not None
    data = collect_expert(
        *args,
        config.seed,
        config.max_episode_steps,
        expert=expert,
        processes=procs,
        on_ray=on_ray,
    )
    obs, actions = data.obs, data.actions
    bc = behaviour_clone(learner, obs, actions, rng)
    summary: dict[str, Any] = {"episodes": config.imitation_episodes, "expert": config.expert}
    summary.update(bc)
    logbook.tensorboard.scalars(0, {f"imitation/{k}": v for k, v in bc.items()})
    display.message(
        f"imitation: {int(bc['samples'])} expert frames, action accuracy "
        f"{bc['accuracy']:.2f}, loss {bc['loss']:.3f}"
    )
    rounds = []
    for r in range(1, config.dagger_rounds + 1):
        if time.time() >= deadline:
            display.message(
                f"DAgger: {r - 1} of {config.dagger_rounds} rounds in the imitation's share of "
                "the time budget; going on to PPO"
            )
            break
        beta = 0.5**r
        seed = config.seed + 1000 * r
        student = learner.actor_spec(greedy=True)
        data = collect_expert(
            *args,
            seed,
            config.max_episode_steps,
            expert=expert,
            student=student,
            beta=beta,
            processes=procs,
            on_ray=on_ray,
        )
        obs = np.concatenate([obs, data.obs])
        actions = np.concatenate([actions, data.actions])
        bc = behaviour_clone(learner, obs, actions, rng)
        lap = float(np.mean(data.lap_times_s)) if data.lap_times_s else float("nan")
        rounds.append({"beta": beta, "laps": data.laps, "mean_lap_s": lap, **bc})
        logbook.tensorboard.scalars(r, {f"dagger/{k}": v for k, v in rounds[-1].items()})
        display.message(
            f"DAgger round {r}/{config.dagger_rounds} (expert share {beta:.2f}): "
            f"{data.laps}/{data.episodes} laps, mean lap {lap:.2f} s; refit on "
            f"{int(bc['samples'])} frames, accuracy {bc['accuracy']:.2f}"
        )
    if rounds:
        summary["dagger"] = rounds
    if not learner.discrete:
        # Explore around the imitation as widely as the expert's actions spread around it,
        # not with the default 0.6: that much noise at racing speed crashes every episode.
        spread = np.array([bc["residual_std_steer"], bc["residual_std_speed"]])
        learner.log_std.assign(np.log(np.clip(spread, 0.05, 0.6)).astype(np.float32))
        summary["log_std"] = [round(float(x), 4) for x in learner.log_std.numpy()]
        display.message(f"imitation: policy standard deviation set to {np.round(spread, 3)}")
    state.index["imitation"] = summary


def learning_rate(config: TrainConfig, hp: Hyperparameters, env_steps: int) -> float:
    """PPO's learning rate after `env_steps` steps: `hp.lr`, or with `lr_anneal_steps`
    linearly down to `LR_ANNEAL_FLOOR` x `hp.lr` over that many steps, then held."""
    if config.lr_anneal_steps <= 0:
        return hp.lr
    done = min(env_steps / config.lr_anneal_steps, 1.0)
    return hp.lr * (1.0 - (1.0 - LR_ANNEAL_FLOOR) * done)


def anchor_weight(config: TrainConfig, state: RunState) -> float:
    """The KL weight toward the warm start this iteration: `config.anchor_kl`, fading
    linearly to 0 over `config.anchor_iterations` (counted after the value warm-up)."""
    if config.anchor_kl <= 0 or config.anchor_iterations <= 0:
        return 0.0
    done = max(state.iteration - config.value_warmup_iterations, 0)
    return config.anchor_kl * max(0.0, 1.0 - done / config.anchor_iterations)


def stop_reason(
    config: TrainConfig,
    hp: Hyperparameters,
    state: RunState,
    history: list[dict[str, Any]],
    budget_end: float,
) -> str:
    """Why the run stops before the next iteration (DeepRacer's conditions plus the time
    budget and --max-iterations), or "" to go on."""
    if config.max_iterations and state.iteration >= config.max_iterations:
        return f"reached --max-iterations {config.max_iterations}"
    if state.episodes >= hp.term_cond_max_episodes:
        return f"reached term_cond_max_episodes {hp.term_cond_max_episodes}"
    if history and history[-1]["mean_reward"] >= hp.term_cond_avg_score:
        return f"mean reward reached term_cond_avg_score {hp.term_cond_avg_score}"
    if time.time() >= budget_end and state.iteration > 0:
        # Not before the first iteration: every run saves at least one checkpoint.
        return f"time budget of {config.minutes:g} min used"
    return ""


def iteration_stats(
    state: RunState,
    episodes: list[Episode],
    evaluation: dict[str, Any],
    losses: dict[str, float],
    *,
    epsilon: float,
    rollout_s: float,
    update_s: float,
) -> dict[str, Any]:
    """The figures of the iteration just finished (display, TensorBoard, progress.json)."""
    steps = sum(len(e.rewards) for e in episodes)
    return {
        "iteration": state.iteration,
        "episodes": state.episodes,
        "env_steps": state.env_steps,
        "elapsed_s": state.elapsed_s,
        "mean_reward": float(np.mean([sum(e.rewards) for e in episodes])),
        "mean_progress": float(np.mean([e.progress for e in episodes])),
        "lap_rate": float(np.mean([e.status == "lap_complete" for e in episodes])),
        "mean_episode_steps": steps / len(episodes),
        "env_steps_per_s": steps / max(rollout_s, 1e-9),
        "rollout_s": rollout_s,
        "update_s": update_s,
        "epsilon": epsilon,
        **losses,
        "eval_progress": evaluation.get("progress"),
        "eval_laps": evaluation.get("laps_completed"),
        "eval_lap_s": evaluation.get("mean_lap_s"),
    }


@dataclass
class TrainResult:
    """What `train` returns."""

    iterations: int
    episodes: int
    env_steps: int
    elapsed_s: float
    stop_reason: str
    best: int | None
    best_eval: dict[str, Any] | None
    history: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------
# The training run, top to bottom
# ---------------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    hp: Hyperparameters,
    metadata: ModelMetadata,
    *,
    display: ProgressDisplay | None = None,
    on_checkpoint: Callable[[dict[str, Any]], bool] | None = None,
) -> TrainResult:
    """Train (or resume, or clone-and-train) the run `config.out` until a stop condition.

    `on_checkpoint(info) -> bool`, if given, is called after every saved checkpoint with
    the iteration, checkpoint path, evaluation figures and elapsed time; returning True
    stops the run (the learning benchmark uses it).
    """
    # -- setup: run directory, learner, state, logs, simulator processes ----------------
    session_start = time.time()
    set_tf_threads(config.tf_threads)
    check_algorithm(config, hp, metadata)
    run, env_kwargs, reward_check_s = open_run(config, hp, metadata)
    learner = make_learner(config, hp, metadata)  # PPO's Learner, or SAC's (trainer.sac)
    rng = np.random.default_rng(config.seed)
    state = start_state(run, config, learner, rng)
    display = display or ProgressDisplay(str(run.path), config.minutes * 60.0, quiet=True)
    if config.resume and learner.resume_note:
        display.message(learner.resume_note)
    slow = slow_reward_warning(config.reward or "(default)", reward_check_s)
    if slow:
        display.message(slow)
    logbook = Logbook(run, metadata, state.metrics)
    joined_here = False
    if config.ray is not None:
        from trainer.ray_connection import connect, connected

        joined_here = not connected()
        cluster = connect(config.ray, config.workers)  # before the imitation: it runs there too
    ppo = learner if isinstance(learner, Learner) else None  # SAC: no warm start, no anchor
    if ppo and config.imitation_episodes and not config.resume:
        # The imitation may take at most half the budget: the rest is PPO's, and the
        # run must save a checkpoint however slow the machine.
        share = session_start + IMITATION_BUDGET_SHARE * config.minutes * 60.0
        warm_start(config, env_kwargs, ppo, rng, state, logbook, display, share)
    if ppo and config.anchor_kl > 0 and not config.resume:
        ppo.set_anchor()  # the warm start (imitation or --clone) the KL term keeps near
    budget_end = session_start + config.minutes * 60.0 - state.elapsed_s
    prior_elapsed = state.elapsed_s
    history: list[dict[str, Any]] = []
    pool = make_pool(
        config.env_id,
        env_kwargs,
        config.workers,
        1,
        config.max_episode_steps,
        ray=config.ray,
        on_event=display.message,
    )
    if config.ray is not None:
        display.message(
            f"Ray: {config.workers} simulator workers on {cluster}; the learner runs "
            f"here, on {learner_device()}"
        )
    try:
        while not (reason := stop_reason(config, hp, state, history, budget_end)):
            # -- rollout ---------------------------------------------------------------
            t0 = time.time()
            n_eps = min(
                hp.num_episodes_between_training, hp.term_cond_max_episodes - state.episodes
            )
            epsilon = epsilon_at(hp, state.env_steps)

            def on_step(steps: int, done: int, it: int = state.iteration, n: int = n_eps) -> None:
                display.rollout(it, steps, done, n)

            try:
                episodes = rollout(
                    pool,
                    learner,
                    n_episodes=n_eps,
                    first_episode=state.episodes,
                    seed=config.seed,
                    epsilon=epsilon,
                    deadline=budget_end,
                    on_step=on_step,
                )
            except DeadlineReached:
                reason = f"time budget of {config.minutes:g} min used (mid-iteration)"
                reason += stopped_note(pool)
                break
            t1 = time.time()

            # -- learn: GAE and num_epochs passes (SAC: replay buffer, gradient steps) ------
            warming_up = state.iteration < config.value_warmup_iterations
            if config.lr_anneal_steps and isinstance(learner, Learner):  # SAC: refused
                learner.optimizer.learning_rate.assign(learning_rate(config, hp, state.env_steps))
            losses = learner.learn(
                episodes,
                rng,
                epsilon=epsilon,
                policy=not warming_up,
                anchor_kl=anchor_weight(config, state),
            )
            t2 = time.time()

            # -- evaluation from the start line (DeepRacer: between iterations) ------------
            trials, evaluation = evaluate_in_training(
                pool,
                learner.actor_spec(greedy=True),
                config.eval_episodes,
                config.seed,
                metadata.control_rate_hz,
                deadline=budget_end + EVALUATION_GRACE_S,
            )
            if len(trials) < config.eval_episodes:
                reason = f"time budget of {config.minutes:g} min used (mid-evaluation)"
                reason += stopped_note(pool)
                break

            # -- log: simtrace, TrainingMetrics.json, TensorBoard --------------------------
            state.iteration += 1
            state.episodes += len(episodes)
            state.env_steps += sum(len(e.rewards) for e in episodes)
            state.elapsed_s = prior_elapsed + time.time() - session_start
            stats = iteration_stats(
                state,
                episodes,
                evaluation,
                losses,
                epsilon=epsilon_at(hp, state.env_steps),
                rollout_s=t1 - t0,
                update_s=t2 - t1,
            )
            stats["cpu_pct"], stats["memory_mb"] = display.usage()
            if config.lr_anneal_steps and isinstance(learner, Learner):
                stats["learning_rate"] = float(learner.optimizer.learning_rate)
            if config.ray is not None:
                stats["replayed_episodes"] = pool.replayed
            if not slow:
                slow = slow_reward_warning(config.reward or "(default)", *reward_cost(episodes))
                if slow:
                    display.message(slow)
            frames = [o for e in episodes for o in e.obs]
            logbook.write_iteration(state.iteration, episodes, trials, stats, np.stack(frames))

            # -- checkpoint: atomic; the best by evaluation progress, then lap time --------
            path = run.save_iteration(
                learner.weights(),
                learner.optimizer_state(),
                state.to_json(rng),
                evaluation,
                config.keep_checkpoints,
            )
            stats["best"] = state.index["best"]
            run.save_progress(stats)
            history.append(stats)
            display.iteration(stats)
            if on_checkpoint is not None and on_checkpoint(
                {"iteration": state.iteration, "path": str(path), "evaluation": evaluation, **stats}
            ):
                reason = "stopped by the caller"
                break
    except Exception as exc:
        run.mark_failed(exc, state.iteration)
        raise
    finally:
        pool.close()
        logbook.close()
        if joined_here:
            from trainer.ray_connection import disconnect

            disconnect()
    best = state.index["best"]
    return TrainResult(
        iterations=state.iteration,
        episodes=state.episodes,
        env_steps=state.env_steps,
        elapsed_s=prior_elapsed + time.time() - session_start,
        stop_reason=reason,
        best=best,
        best_eval=run.load_checkpoint(best)[1].get("evaluation") if best is not None else None,
        history=history,
    )


def learner_device() -> str:
    """Where TensorFlow runs the learner: its first GPU, or the CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    return f"{gpus[0].name} ({len(gpus)} GPUs seen)" if gpus else "the CPU (TensorFlow sees no GPU)"


def set_tf_threads(threads: int) -> None:
    """TensorFlow's thread pools: `threads` for one op, one op at a time."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already ran something in this process; keep its thread pools


def open_run(
    config: TrainConfig, hp: Hyperparameters, metadata: ModelMetadata
) -> tuple[RunDir, dict[str, Any], float | None]:
    """The run directory (created for a new run), the environment's arguments and the
    reward function's cost per call in its check (None without one). A bad reward file or
    track fails here, clearly, before anything is written; a resumed run uses its own copy
    of the reward file. The reward function is checked once, here, on a fresh copy in a
    fresh interpreter (`sim2real.reward_check`); the simulator processes load an untouched
    module and do not check it again."""
    run = RunDir(config.out)
    tracks = training_tracks(config.track, config.generated, config.seed)
    env_track = tracks if len(tracks) > 1 else tracks[0]
    if config.resume:
        reward_file = str(run.reward_file) if run.reward_file.exists() else None
    else:
        reward_file = config.reward
    reward = {}
    if reward_file is not None:
        # Messages name the user's file, not the run's copy the simulator loads.
        reward = {
            "reward_time_limit_s": config.reward_time_limit_s,
            "reward_source": config.reward or reward_file,
        }
    kwargs = env_kwargs_for(env_track, metadata, config.randomize, reward_file)
    env = make_env(config.env_id, {**kwargs, **reward})
    check_s = getattr(getattr(env.unwrapped, "reward_fn", None), "check_s_per_call", None)
    env.close()
    if not config.resume:
        run.create(config, hp, metadata)
        reward_file = str(run.reward_file) if config.reward else None
    kwargs = env_kwargs_for(env_track, metadata, config.randomize, reward_file)
    if reward:
        kwargs.update(reward, validate_reward=False)
    return run, kwargs, check_s


def slow_reward_warning(
    source: str, per_call_s: float | None, step_s: float | None = None
) -> str | None:
    """A warning when the reward function takes most of a simulator step: with the
    measured cost per call, against the step's (a check's cost alone: against
    `SLOW_REWARD_S`). None when it does not."""
    if per_call_s is None:
        return None
    if step_s is not None:
        if step_s <= 0 or per_call_s < 0.5 * step_s:
            return None
        share = f"{100 * per_call_s / step_s:.0f} % of the {1000 * step_s:.1f} ms a step takes"
    elif per_call_s >= SLOW_REWARD_S:
        share = (
            f"over {SLOW_REWARD_S * 1000:g} ms, several times a whole simulator step "
            "(about 1 ms without it)"
        )
    else:
        return None
    return (
        f"warning: the reward function {source} takes {1000 * per_call_s:.1f} ms per call, "
        f"{share}: it is what makes training slow. Move work out of reward_function "
        "(precompute at module level; no file or network access per call)"
    )


def stopped_note(pool: Any) -> str:
    """'; stopped ...' when the pool killed processes still busy at its deadline, with a
    word on hangs when one had been on its episode for more than `HUNG_S`."""
    killed = getattr(pool, "killed", [])
    if not killed:
        return ""
    text = "; stopped " + ", ".join(
        f"simulator worker {w} (episode {i}, {busy_s:.0f} s on it)" for w, i, busy_s in killed
    )
    if max(busy_s for *_, busy_s in killed) > HUNG_S:
        text += (
            ": it looks hung, as a reward function that blocks where its time limit cannot "
            "reach (a C extension, or code that swallows BaseException) would be"
        )
    return text


HUNG_S = 30.0
"""A simulator process this long on one episode at the deadline is called hung."""


EVALUATION_GRACE_S = 60.0
"""How long past the budget the last iteration's evaluation may run (a few seconds
normally); a simulator process still playing then is hung, and is killed."""


def reward_cost(episodes: list[Episode]) -> tuple[float | None, float | None]:
    """Mean wall time of one reward call and of one step in `episodes` (None, None when
    the environment does not count its reward calls)."""
    steps = sum(len(e.rewards) for e in episodes)
    reward_s = sum(e.reward_s for e in episodes)
    if not steps or reward_s <= 0.0:
        return None, None
    return reward_s / steps, sum(e.step_s for e in episodes) / steps


SLOW_REWARD_S = 0.01
"""A reward call this slow, measured in the check, is warned about before training (the
simulator steps in about 0.3-1 ms; README, Measured)."""
