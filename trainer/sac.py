"""Soft actor-critic for continuous action spaces, as DeepRacer offers it
(`"training_algorithm": "sac"` in `model_metadata.json`).

`SACLearner` is what `trainer.ppo.train` drives when `trainer.algorithms` picks SAC: the
same run directory, rollouts (`num_episodes_between_training` whole episodes per
iteration, played in the simulator processes by the NumPy actor), evaluation, logs and
checkpoints as PPO; only `learn` differs. Per iteration it stores the new episodes in the
replay buffer (`trainer.replay`) and takes `ceil(sac_updates_per_step * new steps)`
gradient steps, each on a `batch_size` sample:

- actor: a squashed Gaussian. The camera tower of `trainer.networks` (the metadata's
  topology) feeds a 2-unit pre-tanh mean head (`pi_mean`) and a 2-unit log-std head
  (`pi_log_std`, clipped to [-20, 2] as Coach's SAC head); an action is
  tanh(mean + std * N(0, 1)) in DeepRacer's [-1, 1]^2 (steering first), which the
  environment rescales to the metadata's ranges.
- critics: twin Q networks, each its own camera tower, the action concatenated after it,
  then dense 256 -> 1; target copies updated by Polyak averaging (`TAU` per step).
- targets y = r + gamma (1 - terminated) (min Q_target(s', a') - alpha log pi(a'|s')),
  a' ~ pi(s'); a truncated step bootstraps from its real final observation.
- losses: each critic's MSE (0.5 * squared error) or Huber (`loss_type`) to y; the actor
  minimises alpha log pi(a|s) - min Q(s, a) with a ~ pi(s) reparameterised.
- the entropy temperature alpha is `sac_alpha`, fixed, as DeepRacer's Coach SAC has it.
- Adam per network, learning rate `lr`, epsilon 1e-5 (DeepRacer's setting); discount
  `discount_factor`; the simapp's defaults where a key is absent (`trainer.config`).

Where DeepRacer's Coach SAC differs: it also trains a state-value network whose target
copy is overwritten every `num_episodes_between_training` environment steps; this is the
twin-Q form with Polyak-averaged Q targets (Haarnoja et al. 2018b, CleanRL, Stable
Baselines3), which needs no value network.

Exported policy: the checkpoint's `policy` group is the tower plus the mean head, exactly
the weights of PPO's continuous `policy_logits` (`trainer.networks.build_networks`), whose
tanh output is SAC's deterministic action tanh(mean). So `racer eval`, `racer export`
(float and int8 TFLite), the bundle and `racer drive --sim` treat a SAC run as a PPO one.
The log-std head, critics and target critics are saved beside it (`sac_log_std`,
`sac_critic`, `sac_target`). The replay buffer is not saved: `--resume` starts with an
empty one that refills from the next iteration's episodes.

Randomness: replay sampling and the reparameterisation noise come from the run's
`numpy.random.Generator` (saved in every checkpoint), never from TensorFlow's global one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from trainer.actor import SAC_LOG_STD_RANGE, ActorSpec
from trainer.config import ADAM_EPSILON, Hyperparameters
from trainer.episodes import Episode
from trainer.networks import TOPOLOGIES, tower
from trainer.replay import ReplayBuffer
from vehicle.metadata import ModelMetadata
from vehicle.observation import OBS_SHAPE

TAU = 0.005
"""Polyak rate of the target critics per gradient step."""
CRITIC_UNITS = 256
"""Width of each Q network's dense layer after the camera tower and the action."""
RESUME_NOTE = (
    "SAC: the replay buffer is not saved with checkpoints; it refills from the next "
    "iteration's episodes (the networks, Adam state and counters are restored)"
)


# ---------------------------------------------------------------------------------------
# The small, separately tested functions
# ---------------------------------------------------------------------------------------


def squashed_sample(
    mean: tf.Tensor, log_std: tf.Tensor, noise: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """tanh(mean + std * noise) and its log-density under the squashed Gaussian, per
    row: the Gaussian's log-density minus log(1 - tanh(pre)^2), the latter written as
    2 (log 2 - pre - softplus(-2 pre)) so it stays finite where tanh saturates (the same
    formula as the NumPy actor's `trainer.actor.squashed_logp`)."""
    log_std = tf.clip_by_value(log_std, *SAC_LOG_STD_RANGE)
    pre = mean + tf.exp(log_std) * noise
    gauss = tf.reduce_sum(-0.5 * tf.square(noise) - log_std - 0.5 * math.log(2 * math.pi), -1)
    jacobian = 2.0 * (math.log(2.0) - pre - tf.nn.softplus(-2.0 * pre))
    return tf.tanh(pre), gauss - tf.reduce_sum(jacobian, -1)


def regression_loss(error: tf.Tensor, loss_type: str) -> tf.Tensor:
    """0.5 * mean squared error, or the Huber loss (delta 1) for `loss_type` 'huber'."""
    if loss_type == "huber":
        abs_err = tf.abs(error)
        return tf.reduce_mean(tf.where(abs_err <= 1.0, 0.5 * tf.square(error), abs_err - 0.5))
    return 0.5 * tf.reduce_mean(tf.square(error))


def polyak(target: list[tf.Variable], source: list[tf.Variable], tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, variable by variable."""
    for t, s in zip(target, source, strict=True):
        t.assign((1.0 - tau) * t + tau * s)


# ---------------------------------------------------------------------------------------
# The networks
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SACNetworks:
    """The models SAC trains."""

    actor: keras.Model
    """uint8 frames -> (pre-tanh mean (None, 2), log-std (None, 2))."""
    policy_mean: keras.Model
    """uint8 frames -> pre-tanh mean: the tower and mean head, laid out as PPO's
    continuous `policy_logits` (whose tanh is the exported deterministic action)."""
    log_std_head: layers.Dense
    critic: keras.Model
    """(uint8 frames, actions in [-1, 1]^2) -> (Q1 (None,), Q2 (None,))."""
    target: keras.Model
    """The critic's Polyak-averaged copy."""


def build_critic(name: str, seed: int, label: str) -> keras.Model:
    """Twin Q networks on topology `name`: a camera tower each, the action concatenated
    after it, dense `CRITIC_UNITS` (ReLU) -> 1."""
    obs = keras.Input(shape=OBS_SHAPE, dtype="uint8", name="observation")
    action = keras.Input(shape=(2,), dtype="float32", name="action")
    outs = []
    for k in (1, 2):
        feat = tower(name, obs, f"{label}{k}", seed + 1000 * k)
        x = layers.Concatenate(name=f"{label}{k}_with_action")([feat, action])
        x = layers.Dense(
            CRITIC_UNITS,
            activation="relu",
            kernel_initializer=keras.initializers.Orthogonal(gain=2**0.5, seed=seed + 300 + k),
            name=f"{label}{k}_hidden",
        )(x)
        q = layers.Dense(
            1,
            kernel_initializer=keras.initializers.Orthogonal(gain=1.0, seed=seed + 400 + k),
            name=f"{label}{k}_out",
        )(x)
        outs.append(layers.Reshape((), name=f"{label}{k}")(q))
    return keras.Model([obs, action], outs, name=label)


def build_sac_networks(metadata: ModelMetadata, seed: int = 0) -> SACNetworks:
    """Actor, twin critics and their targets for `metadata`'s network (continuous only)."""
    name = metadata.neural_network
    obs = keras.Input(shape=OBS_SHAPE, dtype="uint8", name="observation")
    features = tower(name, obs, "pi", seed)
    small = keras.initializers.Orthogonal(gain=0.01, seed=seed + 100)
    mean = layers.Dense(2, kernel_initializer=small, name="pi_mean")(features)
    log_std_head = layers.Dense(
        2,
        kernel_initializer=keras.initializers.Orthogonal(gain=0.01, seed=seed + 101),
        name="pi_log_std",
    )
    log_std = log_std_head(features)
    critic = build_critic(name, seed, "q")
    target = build_critic(name, seed, "q")
    target.set_weights(critic.get_weights())
    return SACNetworks(
        actor=keras.Model(obs, [mean, log_std], name="sac_actor"),
        policy_mean=keras.Model(obs, mean, name="policy_mean"),
        log_std_head=log_std_head,
        critic=critic,
        target=target,
    )


# ---------------------------------------------------------------------------------------
# The learner
# ---------------------------------------------------------------------------------------


class SACLearner:
    """Actor, twin critics and targets, two Adams, the replay buffer, the compiled step.

    It offers what `trainer.ppo.train` asks of a learner: `actor_spec`, `learn`,
    `weights`/`set_weights`, `optimizer_state`/`set_optimizer_state`, `resume_note`."""

    resume_note = RESUME_NOTE

    def __init__(
        self,
        metadata: ModelMetadata,
        hp: Hyperparameters,
        seed: int = 0,
        *,
        replay_frames: int = 50_000,
        updates_per_step: float = 1.0,
    ):
        self.metadata = metadata
        self.hp = hp
        self.discrete = False
        self.updates_per_step = updates_per_step
        self.nets = build_sac_networks(metadata, seed)
        self.replay = ReplayBuffer(replay_frames)
        self.actor_variables = list(self.nets.actor.trainable_variables)
        self.critic_variables = list(self.nets.critic.trainable_variables)
        self.actor_optimizer = keras.optimizers.Adam(learning_rate=hp.lr, epsilon=ADAM_EPSILON)
        self.critic_optimizer = keras.optimizers.Adam(learning_rate=hp.lr, epsilon=ADAM_EPSILON)
        self.actor_optimizer.build(self.actor_variables)
        self.critic_optimizer.build(self.critic_variables)
        self._train_step = tf.function(self._train_step_impl)

    # -- acting --------------------------------------------------------------------------
    def actor_spec(self, *, epsilon: float = 0.0, greedy: bool = False) -> ActorSpec:
        """The current policy for the simulator processes (`trainer.actor`). Training:
        the squashed Gaussian (head = mean and log-std). Greedy: tanh(mean), through the
        same path as a PPO continuous policy, i.e. what export computes. (`epsilon` is
        PPO's e-greedy rate; SAC explores through its own entropy.)"""
        topology = TOPOLOGIES[self.metadata.neural_network]
        policy = [np.asarray(w) for w in self.nets.policy_mean.get_weights()]
        if greedy:
            return ActorSpec(topology, policy, discrete=False, greedy=True, record_obs=False)
        kernel, bias = (np.asarray(w) for w in self.nets.log_std_head.get_weights())
        head = [np.concatenate([policy[-2], kernel], 1), np.concatenate([policy[-1], bias])]
        return ActorSpec(topology, [*policy[:-2], *head], discrete=False, squashed=True)

    # -- learning ------------------------------------------------------------------------
    def _train_step_impl(self, obs, actions, rewards, next_obs, done, next_noise, noise):
        alpha = self.hp.sac_alpha
        next_mean, next_log_std = self.nets.actor(next_obs, training=False)
        next_actions, next_logp = squashed_sample(next_mean, next_log_std, next_noise)
        t1, t2 = self.nets.target([next_obs, next_actions], training=False)
        soft_next = tf.minimum(t1, t2) - alpha * next_logp
        y = tf.stop_gradient(rewards + self.hp.discount_factor * (1.0 - done) * soft_next)
        with tf.GradientTape() as tape:
            q1, q2 = self.nets.critic([obs, actions], training=True)
            critic_loss = regression_loss(q1 - y, self.hp.loss_type) + regression_loss(
                q2 - y, self.hp.loss_type
            )
        grads = tape.gradient(critic_loss, self.critic_variables)
        self.critic_optimizer.apply_gradients(zip(grads, self.critic_variables, strict=True))
        with tf.GradientTape() as tape:
            mean, log_std = self.nets.actor(obs, training=True)
            new_actions, logp = squashed_sample(mean, log_std, noise)
            p1, p2 = self.nets.critic([obs, new_actions], training=False)
            actor_loss = tf.reduce_mean(alpha * logp - tf.minimum(p1, p2))
        grads = tape.gradient(actor_loss, self.actor_variables)
        self.actor_optimizer.apply_gradients(zip(grads, self.actor_variables, strict=True))
        polyak(self.nets.target.variables, self.nets.critic.variables, TAU)
        return {
            "policy_loss": actor_loss,
            "value_loss": critic_loss,
            "entropy": -tf.reduce_mean(logp),
            "q_mean": tf.reduce_mean(q1),
            "target_mean": tf.reduce_mean(y),
            "policy_std": tf.reduce_mean(tf.exp(tf.clip_by_value(log_std, *SAC_LOG_STD_RANGE))),
        }

    def train_on(self, batch: int, steps: int, rng: np.random.Generator) -> dict[str, float]:
        """`steps` gradient steps on replay samples of `batch`; mean stats."""
        sums: dict[str, float] = {}
        for _ in range(steps):
            s = self.replay.sample(batch, rng)
            noise = rng.standard_normal((2, batch, 2)).astype(np.float32)
            stats = self._train_step(
                tf.constant(s.obs),
                tf.constant(s.actions),
                tf.constant(s.rewards),
                tf.constant(s.next_obs),
                tf.constant(s.done),
                tf.constant(noise[0]),
                tf.constant(noise[1]),
            )
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        return {k: v / max(steps, 1) for k, v in sums.items()}

    def learn(
        self,
        episodes: list[Episode],
        rng: np.random.Generator,
        *,
        epsilon: float = 0.0,
        policy: bool = True,
        anchor_kl: float = 0.0,
    ) -> dict[str, float]:
        """One iteration's learning: store `episodes`, then ceil(`updates_per_step` *
        their steps) gradient steps once the buffer holds a batch. (`epsilon`, `policy`
        and `anchor_kl` are PPO's; `trainer.algorithms.check` refuses the options that
        set them for SAC.)"""
        for e in episodes:
            self.replay.add_episode(e)
        new_steps = sum(len(e.rewards) for e in episodes)
        steps = math.ceil(self.updates_per_step * new_steps)
        if len(self.replay) < self.hp.batch_size:
            steps = 0
        stats = self.train_on(self.hp.batch_size, steps, rng)
        return {**stats, "gradient_steps": float(steps), "replay_size": float(len(self.replay))}

    # -- state for checkpoints -------------------------------------------------------------
    def weights(self) -> dict[str, list[np.ndarray]]:
        """`policy` (tower + mean head: PPO's continuous layout, what export loads), then
        the log-std head, critics and target critics."""
        return {
            "policy": [w.copy() for w in self.nets.policy_mean.get_weights()],
            "sac_log_std": [w.copy() for w in self.nets.log_std_head.get_weights()],
            "sac_critic": [w.copy() for w in self.nets.critic.get_weights()],
            "sac_target": [w.copy() for w in self.nets.target.get_weights()],
        }

    def set_weights(self, weights: dict[str, list[np.ndarray]]) -> None:
        self.nets.policy_mean.set_weights(weights["policy"])
        self.nets.log_std_head.set_weights(weights["sac_log_std"])
        self.nets.critic.set_weights(weights["sac_critic"])
        self.nets.target.set_weights(weights["sac_target"])

    def optimizer_state(self) -> list[np.ndarray]:
        return [
            np.array(v.numpy())
            for opt in (self.actor_optimizer, self.critic_optimizer)
            for v in opt.variables
        ]

    def set_optimizer_state(self, arrays: list[np.ndarray]) -> None:
        variables = [*self.actor_optimizer.variables, *self.critic_optimizer.variables]
        for var, value in zip(variables, arrays, strict=True):
            var.assign(value)
