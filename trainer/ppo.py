"""Clipped PPO from camera pixels, DeepRacer style, reading top to bottom (CleanRL layout).

`train()` is the whole algorithm: setup (networks, optimizer, run directory, simulator
workers), then per iteration: rollout of `num_episodes_between_training` whole episodes,
played inside the simulator processes with a NumPy copy of the policy (`trainer.actor`;
the weights travel once per iteration, episodes come back whole); advantages
with GAE; `num_epochs` passes of minibatch updates; evaluation episodes from the start
line; logging; an atomic checkpoint. It stops at the time budget or at DeepRacer's
termination conditions (`term_cond_max_episodes`, `term_cond_avg_score`).

The pieces tested on their own: `gae` (masking at episode ends: a terminated step never
bootstraps, a truncated one bootstraps from the value of its real final observation, not
from the next episode's first frame), `ppo_loss`, and the distribution helpers.

Settings fixed as in DeepRacer (compat reference 4.3): clip 0.2, GAE lambda 0.95, Adam
epsilon 1e-5; gradients clipped to a global norm of 0.5 (CleanRL's default); advantages
normalised per minibatch; value loss MSE (0.5 * squared error) or Huber (delta 1).
Discrete actions: categorical sampling in training (or e-greedy), argmax in evaluation.
Continuous: a diagonal Gaussian around the tanh mean with a state-independent log-std
(initial std 0.6, clipped to [-20, 3] as Coach), samples clipped to [-1, 1] before the
environment rescales them to the metadata's ranges.

Randomness: one `numpy.random.Generator` (seeded from `TrainConfig.seed`) drives minibatch
shuffling; environment episode k is reset with seed `episode_seed(seed, k)` and start
position `k * 0.05` of the lap (DeepRacer's round robin) and samples its actions from a
generator seeded with `sampling_seed(seed, k)`, so an episode is the same whichever
process plays it, and a resumed run replays exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from trainer.actor import LOG_STD_RANGE, ActorSpec, Episode, EpisodeItem, sampling_seed
from trainer.config import ADAM_EPSILON, CLIP_EPSILON, GAE_LAMBDA, Hyperparameters
from trainer.networks import TOPOLOGIES, build_networks
from vehicle.metadata import ModelMetadata
from vehicle.observation import OBS_SHAPE

ROUND_ROBIN_ADVANCE = 0.05
"""DeepRacer's ROUND_ROBIN_ADVANCE_DIST: each training episode starts 5 % further on."""
MAX_GRAD_NORM = 0.5
"""Global gradient-norm clip."""
VALUE_COEF = 0.5
"""Weight of the value loss in the total loss (the towers are separate, so this only
scales the value tower's gradient)."""
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


def categorical_logp_entropy(logits: tf.Tensor, actions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Log-probability of integer `actions` and the entropy of the softmax of `logits`."""
    logp_all = tf.nn.log_softmax(logits)
    logp = tf.gather(logp_all, tf.cast(actions, tf.int32), batch_dims=1)
    entropy = -tf.reduce_sum(tf.exp(logp_all) * logp_all, axis=-1)
    return logp, entropy


def gaussian_logp_entropy(
    mean: tf.Tensor, log_std: tf.Tensor, actions: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Diagonal Gaussian log-density of `actions` and its entropy (per sample)."""
    log_std = tf.clip_by_value(log_std, *LOG_STD_RANGE)
    z = (actions - mean) * tf.exp(-log_std)
    logp = tf.reduce_sum(-0.5 * tf.square(z) - log_std - 0.5 * math.log(2 * math.pi), axis=-1)
    entropy = tf.reduce_sum(log_std + 0.5 * math.log(2 * math.pi * math.e)) * tf.ones_like(logp)
    return logp, entropy


def episode_seed(seed: int, episode: int) -> int:
    """The environment seed of training episode number `episode` of a run seeded `seed`."""
    return int(np.random.SeedSequence([seed, episode, 0x5EED]).generate_state(1)[0])


def eval_seed(seed: int, trial: int) -> int:
    """The environment seed of evaluation trial `trial`: the same every iteration, so
    checkpoints are compared on identical conditions."""
    return int(np.random.SeedSequence([seed, trial, 0xE7A1]).generate_state(1)[0])


# ---------------------------------------------------------------------------------------
# The learner: networks, optimizer, batched inference and the update step
# ---------------------------------------------------------------------------------------


class Learner:
    """Policy and value towers, the Gaussian log-std, Adam, and compiled calls."""

    def __init__(self, metadata: ModelMetadata, hp: Hyperparameters, seed: int = 0):
        self.metadata = metadata
        self.hp = hp
        self.discrete = metadata.action_space.kind == "discrete"
        self.n_actions = metadata.action_space.n
        self.nets = build_networks(metadata, seed)
        self.log_std = keras.Variable(
            np.full((2,), INITIAL_LOG_STD, np.float32), name="log_std", trainable=True
        )
        self.variables = (
            self.nets.policy_logits.trainable_variables + self.nets.value.trainable_variables
        )
        if not self.discrete:
            self.variables = [*self.variables, self.log_std]
        self.optimizer = keras.optimizers.Adam(
            learning_rate=hp.lr, epsilon=ADAM_EPSILON, global_clipnorm=MAX_GRAD_NORM
        )
        self.optimizer.build(self.variables)
        spec = [tf.TensorSpec((None, *OBS_SHAPE), tf.uint8)]
        self._value = tf.function(
            lambda obs: self.nets.value(obs, training=False), input_signature=spec
        )
        self._train_step = tf.function(self._train_step_impl)

    # -- inference -------------------------------------------------------------------
    def values(self, obs: np.ndarray, batch: int = 256) -> np.ndarray:
        """State values for a uint8 batch of any size, computed in chunks."""
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
    def _train_step_impl(self, obs, actions, old_logp, advantages, returns):
        adv = (advantages - tf.reduce_mean(advantages)) / (tf.math.reduce_std(advantages) + 1e-8)
        with tf.GradientTape() as tape:
            out = self.nets.policy_logits(obs, training=True)
            if self.discrete:
                new_logp, entropy = categorical_logp_entropy(out, actions)
            else:
                new_logp, entropy = gaussian_logp_entropy(out, self.log_std, actions)
            value_pred = self.nets.value(obs, training=True)
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
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
        stats["loss"] = loss
        return stats

    def update(self, batch: Batch, rng: np.random.Generator) -> dict[str, float]:
        """`num_epochs` passes of shuffled minibatches over `batch`; mean stats."""
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
                    tf.constant(actions[idx]),
                    tf.constant(batch.logp[idx]),
                    tf.constant(batch.advantages[idx]),
                    tf.constant(batch.returns[idx]),
                )
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
        return {k: v / max(count, 1) for k, v in sums.items()}

    # -- state for checkpoints ---------------------------------------------------------
    def weights(self) -> dict[str, list[np.ndarray]]:
        """Network weights (policy, value, log_std) as numpy arrays."""
        return {
            "policy": [w.copy() for w in self.nets.policy_logits.get_weights()],
            "value": [w.copy() for w in self.nets.value.get_weights()],
            "log_std": [self.log_std.numpy().copy()],
        }

    def set_weights(self, weights: dict[str, list[np.ndarray]]) -> None:
        self.nets.policy_logits.set_weights(weights["policy"])
        self.nets.value.set_weights(weights["value"])
        self.log_std.assign(weights["log_std"][0])

    def optimizer_state(self) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in self.optimizer.variables]

    def set_optimizer_state(self, arrays: list[np.ndarray]) -> None:
        for var, value in zip(self.optimizer.variables, arrays, strict=True):
            var.assign(value)


# ---------------------------------------------------------------------------------------
# Rollouts: whole episodes played inside the simulator processes (trainer.actor)
# ---------------------------------------------------------------------------------------


@dataclass
class Batch:
    """An iteration's experience, flattened in episode order, with advantages."""

    obs: np.ndarray
    actions: np.ndarray
    logp: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray


class DeadlineReached(Exception):
    """The time budget ran out in the middle of a rollout (the partial one is dropped)."""


def rollout(
    pool: Any,
    learner: Learner,
    *,
    n_episodes: int,
    first_episode: int,
    seed: int,
    epsilon: float = 0.0,
    deadline: float | None = None,
    on_step: Any = None,
) -> list[Episode]:
    """Play `n_episodes` whole episodes (numbers first_episode...) with the current policy.

    Episode k resets with seed `episode_seed(seed, k)`, starts `k * 0.05` of the lap on
    (DeepRacer's round robin) and samples its actions from a generator seeded with
    `sampling_seed(seed, k)`; the simulator processes play them (`pool.play_many`).
    Episodes come back sorted by number.
    """
    spec = learner.actor_spec(epsilon=epsilon)
    items = [
        EpisodeItem(
            index=k,
            seed=episode_seed(seed, k),
            start_progress=(k * ROUND_ROBIN_ADVANCE) % 1.0,
            rng_seed=sampling_seed(seed, k),
        )
        for k in range(first_episode, first_episode + n_episodes)
    ]
    played: list[Episode] = []

    def on_done(episode: Episode) -> bool:
        """Report progress; once past the deadline, start no further episode."""
        played.append(episode)
        if on_step is not None:
            on_step(sum(len(e.rewards) for e in played), len(played))
        return deadline is None or time.time() <= deadline

    episodes = pool.play_many(spec, items, on_done)
    if len(episodes) < n_episodes:
        raise DeadlineReached
    return episodes


def make_batch(episodes: list[Episode], learner: Learner, gamma: float) -> Batch:
    """Flatten episodes, compute values (one batched pass) and GAE advantages."""
    obs = np.concatenate([np.stack(e.obs) for e in episodes])
    values = learner.values(obs)
    truncated = [e for e in episodes if e.truncated]
    final_value: dict[int, float] = {}
    if truncated:
        finals = learner.values(np.stack([np.asarray(e.final_obs) for e in truncated]))
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
    return Batch(obs, actions, logp, rewards, values, adv, ret)


def epsilon_at(hp: Hyperparameters, env_steps: int) -> float:
    """e-greedy exploration rate after `env_steps` steps (0 for categorical)."""
    if hp.exploration_type != "e-greedy":
        return 0.0
    frac = min(env_steps / hp.epsilon_steps, 1.0)
    return 1.0 + frac * (hp.e_greedy_value - 1.0)


# ---------------------------------------------------------------------------------------
# The training run, top to bottom
# ---------------------------------------------------------------------------------------


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


def train(
    config: Any,
    hp: Hyperparameters,
    metadata: ModelMetadata,
    *,
    display: Any = None,
    on_checkpoint: Any = None,
) -> TrainResult:
    """Train (or resume, or clone-and-train) the run `config.out` until a stop condition.

    `on_checkpoint(info) -> bool`, if given, is called after every saved checkpoint with
    the iteration, checkpoint path, evaluation figures and elapsed time; returning True
    stops the run (the learning benchmark uses it).
    """
    from trainer.checkpoint import RunDir
    from trainer.errors import CheckpointError
    from trainer.evaluate import env_kwargs_for, lap_result, play_trials
    from trainer.logbook import (
        TensorBoard,
        episode_rows,
        metric_entry,
        write_metrics,
        write_simtrace,
    )
    from trainer.progress import ProgressDisplay
    from trainer.trackset import training_tracks
    from trainer.workers import make_env, make_pool
    from vehicle.files import atomic_write_json

    # -- setup -----------------------------------------------------------------------
    session_start = time.time()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(config.tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already ran something in this process; keep its thread pools
    run = RunDir(config.out)
    track_list = training_tracks(config.track, config.generated, config.seed)
    env_track = track_list if len(track_list) > 1 else track_list[0]
    if config.resume:
        reward_file = str(run.reward_file) if run.reward_file.exists() else None
    else:
        reward_file = config.reward
    kwargs = env_kwargs_for(env_track, metadata, config.randomize, reward_file)
    make_env(config.env_id, kwargs).close()  # a bad reward or track fails here, clearly
    if not config.resume:
        run.create(config, hp, metadata)
        reward_file = str(run.reward_file) if config.reward else None
    kwargs = env_kwargs_for(env_track, metadata, config.randomize, reward_file)
    learner = Learner(metadata, hp, seed=config.seed)
    rng = np.random.default_rng(config.seed)
    discrete = metadata.action_space.kind == "discrete"
    iteration = episodes = env_steps = 0
    prior_elapsed = 0.0
    index: dict[str, Any] = {"last": None, "best": None, "best_score": None, "kept": []}
    metrics: list[dict[str, Any]] = []
    if config.resume:
        weights, opt_state, state = run.load_resume()
        learner.set_weights(weights)
        learner.set_optimizer_state(opt_state)
        rng.bit_generator.state = state["rng"]
        iteration, episodes, env_steps = state["iteration"], state["episodes"], state["env_steps"]
        prior_elapsed, index = state["elapsed_s"], state["index"]
        run.roll_back_to(state)
        if run.metrics.exists():
            metrics = json.loads(run.metrics.read_text(encoding="utf-8"))["metrics"]
    elif config.clone:
        source = RunDir(config.clone)
        theirs = source.metadata()
        if (theirs.neural_network, theirs.action_space.kind, theirs.action_space.n) != (
            metadata.neural_network,
            metadata.action_space.kind,
            metadata.action_space.n,
        ):
            raise CheckpointError(
                f"--clone {config.clone}: its network {theirs.neural_network} with "
                f"{theirs.action_space.n} {theirs.action_space.kind} actions does not match "
                f"{metadata.neural_network} with {metadata.action_space.n}; clone with the "
                "same network and number of actions (DeepRacer's rule)"
            )
        weights, info = source.load_checkpoint("best")
        learner.set_weights(weights)
        index["cloned_from"] = {"run": str(source.path), "iteration": info["iteration"]}
    history: list[dict[str, Any]] = []
    display = display or ProgressDisplay(str(run.path), config.minutes * 60.0, quiet=True)
    tensorboard = TensorBoard(run.tensorboard)
    budget_end = session_start + config.minutes * 60.0 - prior_elapsed
    stop_reason = ""
    if config.imitation_episodes and not config.resume:
        # Optional warm start, off by default and recorded in the run (index.json).
        from trainer.imitation import behaviour_clone, collect_expert

        display.message(
            f"imitation warm start: behaviour cloning from {config.imitation_episodes} "
            "pure-pursuit expert episodes (not pure PPO)"
        )
        obs_e, act_e = collect_expert(
            config.env_id,
            kwargs,
            metadata.action_space,
            config.imitation_episodes,
            config.seed,
            config.max_episode_steps,
        )
        bc = behaviour_clone(learner, obs_e, act_e, rng)
        index["imitation"] = {"episodes": config.imitation_episodes, **bc}
        tensorboard.scalars(0, {f"imitation/{k}": v for k, v in bc.items()})
        display.message(
            f"imitation: {int(bc['samples'])} expert frames, action accuracy "
            f"{bc['accuracy']:.2f}, loss {bc['loss']:.3f}"
        )
    # Evaluation trials run on the same simulator slots: every reset names its start
    # (the start line for evaluation), so one pool serves both phases.
    pool = make_pool(config.env_id, kwargs, config.workers, 1, config.max_episode_steps)
    try:
        while True:
            # -- stop conditions (DeepRacer's, plus the time budget) -----------------------
            if config.max_iterations and iteration >= config.max_iterations:
                stop_reason = f"reached --max-iterations {config.max_iterations}"
            elif episodes >= hp.term_cond_max_episodes:
                stop_reason = f"reached term_cond_max_episodes {hp.term_cond_max_episodes}"
            elif history and history[-1]["mean_reward"] >= hp.term_cond_avg_score:
                stop_reason = f"mean reward reached term_cond_avg_score {hp.term_cond_avg_score}"
            elif time.time() >= budget_end:
                stop_reason = f"time budget of {config.minutes:g} min used"
            if stop_reason:
                break

            # -- rollout ---------------------------------------------------------------
            t0 = time.time()
            n_eps = min(hp.num_episodes_between_training, hp.term_cond_max_episodes - episodes)
            try:
                eps = rollout(
                    pool,
                    learner,
                    n_episodes=n_eps,
                    first_episode=episodes,
                    seed=config.seed,
                    epsilon=epsilon_at(hp, env_steps),
                    deadline=budget_end,
                    on_step=lambda s, d, it=iteration, n=n_eps: display.rollout(it, s, d, n),
                )
            except DeadlineReached:
                stop_reason = f"time budget of {config.minutes:g} min used (mid-iteration)"
                break
            t_rollout = time.time() - t0

            # -- advantages and update ---------------------------------------------------
            batch = make_batch(eps, learner, hp.discount_factor)
            t1 = time.time()
            losses = learner.update(batch, rng)
            t_update = time.time() - t1
            steps_now = len(batch.rewards)

            # -- evaluation from the start line (DeepRacer: between iterations) -----------
            evaluation: dict[str, Any] = {}
            eval_trials: list[Any] = []
            if config.eval_episodes:
                eval_trials = play_trials(
                    pool, learner.actor_spec(greedy=True), config.eval_episodes, config.seed
                )
                laps = [lap_result(t, metadata.control_rate_hz, 0.0) for t in eval_trials]
                done_times = [lap.lap_time_s for lap in laps if lap.completed]
                evaluation = {
                    "progress": float(np.mean([lap.completion_pct for lap in laps])),
                    "laps_completed": sum(lap.completed for lap in laps),
                    "trials": len(laps),
                    "mean_lap_s": float(np.mean(done_times)) if done_times else None,
                }

            # -- logs: simtrace, TrainingMetrics.json, TensorBoard -----------------------
            wall = time.time()
            rows = []
            for k, e in enumerate(eps):
                rows += episode_rows(
                    e.index, e.infos, e.actions, e.rewards, e.status, metadata, discrete
                )
                metrics.append(
                    metric_entry(
                        episode=e.index,
                        trial=k + 1,
                        phase="training",
                        reward=sum(e.rewards),
                        progress=e.progress,
                        status=e.status,
                        start_s=e.wall_start,
                        end_s=e.wall_end,
                    )
                )
            for k, t in enumerate(eval_trials):
                lap = lap_result(t, metadata.control_rate_hz, 0.0)
                metrics.append(
                    metric_entry(
                        episode=episodes + n_eps,
                        trial=k + 1,
                        phase="evaluation",
                        reward=sum(t.rewards),
                        progress=lap.completion_pct,
                        status=t.status,
                        start_s=t1 + t_update,
                        end_s=wall,
                    )
                )
            write_simtrace(run.simtrace / f"{iteration}-iteration.csv", rows)
            write_metrics(run.metrics, metrics)
            iteration += 1
            episodes += len(eps)
            env_steps += steps_now
            elapsed = prior_elapsed + time.time() - session_start
            stats = {
                "iteration": iteration,
                "episodes": episodes,
                "env_steps": env_steps,
                "elapsed_s": elapsed,
                "mean_reward": float(np.mean([sum(e.rewards) for e in eps])),
                "mean_progress": float(np.mean([e.progress for e in eps])),
                "lap_rate": float(np.mean([e.status == "lap_complete" for e in eps])),
                "mean_episode_steps": steps_now / len(eps),
                "env_steps_per_s": steps_now / max(t_rollout, 1e-9),
                "rollout_s": t_rollout,
                "update_s": t_update,
                "epsilon": epsilon_at(hp, env_steps),
                **losses,
                "eval_progress": evaluation.get("progress"),
                "eval_laps": evaluation.get("laps_completed"),
                "eval_lap_s": evaluation.get("mean_lap_s"),
            }
            if hasattr(display, "usage"):
                stats["cpu_pct"], stats["memory_mb"] = display.usage()
            tensorboard.scalars(
                iteration, {k: v for k, v in stats.items() if isinstance(v, int | float)}
            )
            tensorboard.images(
                iteration, "observations", batch.obs[:: max(len(batch.obs) // 4, 1)][:4]
            )
            tensorboard.flush()

            # -- checkpoint (atomic; best by evaluation progress, then lap time) ---------
            score = None
            if evaluation:
                score = [evaluation["progress"], -(evaluation["mean_lap_s"] or 1e9)]
            is_best = score is not None and (
                index["best_score"] is None or score > index["best_score"]
            )
            info = {
                "elapsed_s": elapsed,
                "episodes": episodes,
                "env_steps": env_steps,
                "evaluation": evaluation,
            }
            path = run.save_checkpoint(iteration, learner.weights(), info)
            recent = [k for k in index["kept"] if k != index["best"]][
                -(config.keep_checkpoints - 1) :
            ]
            index["last"] = iteration
            if is_best:
                index["best"], index["best_score"] = iteration, score
            index["kept"] = sorted(
                {*recent, iteration, *([index["best"]] if index["best"] else [])}
            )
            state = {
                "iteration": iteration,
                "episodes": episodes,
                "env_steps": env_steps,
                "elapsed_s": elapsed,
                "rng": rng.bit_generator.state,
                "index": index,
                "metrics_count": len(metrics),
                "round_robin_next_start": (episodes * ROUND_ROBIN_ADVANCE) % 1.0,
            }
            run.save_resume(learner.weights(), learner.optimizer_state(), state)
            run.prune(index["kept"])
            stats["best"] = index["best"]
            history.append(stats)
            atomic_write_json(run.path / "progress.json", stats)
            display.iteration(stats)
            if on_checkpoint is not None and on_checkpoint(
                {"iteration": iteration, "path": str(path), "evaluation": evaluation, **stats}
            ):
                stop_reason = "stopped by the caller"
                break
    finally:
        pool.close()
        tensorboard.close()
    best_eval = None
    if index["best"] is not None:
        best_eval = run.load_checkpoint(index["best"])[1].get("evaluation")
    return TrainResult(
        iterations=iteration,
        episodes=episodes,
        env_steps=env_steps,
        elapsed_s=prior_elapsed + time.time() - session_start,
        stop_reason=stop_reason,
        best=index["best"],
        best_eval=best_eval,
        history=history,
    )
