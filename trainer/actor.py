"""The acting half of PPO: the policy network in NumPy and whole episodes played with it,
inside the simulator processes.

Why here and not in the learner: stepping the policy in TensorFlow for every simulator
step means a pipe round trip and a TensorFlow call per step, with the simulators idle
while the learner thinks and the learner idle while they step. A simulator process that
holds a NumPy copy of the policy plays a whole episode on its own, so both cores
simulate and act at once and only finished episodes cross the pipe. The learner sends
the weights once per iteration.

- `forward(topology, weights, obs)`: the Keras tower of `trainer.networks` (same
  topology tuples, "valid" padding, ReLU after every layer, uint8 scaled by 1/255)
  followed by the policy head, for a uint8 batch (B, H, W, C). Agrees with Keras to
  float32 rounding (tested per topology). It is `compile_layers` (the weights laid out
  as matrices, once per policy) then `run_layers` (every step).
- `ActorSpec`: what a process needs to act (topology, weights, action-space kind,
  log-std, epsilon, greedy or sampling).
- `act(spec, out, rng)`: actions and their log-probabilities from the head outputs,
  the same rules as the learner's (categorical or e-greedy; diagonal Gaussian).
- `play_episode(env, spec, item, max_steps)`: one episode from a reset with the given
  seed and start, with the sampling generator seeded from the episode number, so the
  episode is the same whichever process plays it and in whatever order.

NumPy only: no TensorFlow, so the simulator processes start quickly and stay small.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LOG_STD_RANGE = (-20.0, 3.0)
"""Clip of the log standard deviation (Coach's PPO head); trainer.ppo uses the same."""


# ---------------------------------------------------------------------------------------
# The network in NumPy
# ---------------------------------------------------------------------------------------


Layer = tuple[str, tuple[int, int], int, np.ndarray | None, np.ndarray | None]
"""(kind, window, stride, matrix, bias): one step of `run_layers`. A convolution's kernel
(kh, kw, cin, cout) is stored as the (cin * kh * kw, cout) matrix its windows multiply."""


def compile_layers(
    topology: tuple[tuple[str, int, int, int], ...], weights: list[np.ndarray]
) -> list[Layer]:
    """The tower of `topology` plus the policy head as `Layer`s, with the weights laid out
    for `run_layers` once (not at every step). `weights` is Keras'
    `policy_logits.get_weights()` order: kernel and bias of every conv/pos/dense layer of
    the tower, then of the head."""
    layers: list[Layer] = []
    i = 0
    for kind, _size, kernel, stride in topology:
        if kind == "pool":
            layers.append(("pool", (kernel, kernel), stride, None, None))
            continue
        w, bias = weights[i], weights[i + 1]
        i += 2
        if kind in ("conv", "pos"):
            kh, kw, cin, cout = w.shape
            matrix = w.transpose(2, 0, 1, 3).reshape(cin * kh * kw, cout)
            layers.append(("conv", (kh, kw), stride, matrix, bias))
        else:
            layers.append(("dense", (0, 0), 0, w, bias))
    layers.append(("head", (0, 0), 0, weights[i], weights[i + 1]))
    return layers


def run_layers(layers: list[Layer], obs: np.ndarray) -> np.ndarray:
    """The policy head's pre-activation output for uint8 `obs` (B, H, W, C): "valid"
    padding, ReLU after every tower layer, pixels scaled by 1/255 as the Keras model
    does."""
    x = np.asarray(obs, dtype=np.float32) * np.float32(1.0 / 255.0)
    for kind, (kh, kw), stride, matrix, bias in layers:
        if kind == "pool":
            x = _avg_pool(x, kh, stride)
            continue
        assert matrix is not None and bias is not None
        if kind == "conv":
            if (kh, kw, stride) != (1, 1, 1):
                win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
                # win: (B, Ho, Wo, cin, kh, kw), the matrix's row order
                b, ho, wo = win.shape[:3]
                x = (win.reshape(b * ho * wo, -1) @ matrix).reshape(b, ho, wo, -1)
            else:
                x = x @ matrix
        else:
            if x.ndim > 2:
                x = x.reshape(len(x), -1)
            x = x @ matrix
        x = x + bias
        if kind != "head":
            x = np.maximum(x, 0.0, dtype=np.float32)
    return x.astype(np.float32)


def _avg_pool(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    if size == stride and x.shape[1] % size == 0 and x.shape[2] % size == 0:
        b, h, w, c = x.shape
        return x.reshape(b, h // size, size, w // size, size, c).mean(axis=(2, 4), dtype=np.float32)
    win = sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return win.mean(axis=(-2, -1), dtype=np.float32)


def forward(
    topology: tuple[tuple[str, int, int, int], ...], weights: list[np.ndarray], obs: np.ndarray
) -> np.ndarray:
    """The policy head's pre-activation output for uint8 `obs`: the logits of a discrete
    space; for a continuous one `ActorSpec.head` applies the tanh."""
    return run_layers(compile_layers(topology, weights), obs)


# ---------------------------------------------------------------------------------------
# Acting
# ---------------------------------------------------------------------------------------


@dataclass
class ActorSpec:
    """Everything a simulator process needs to act with the current policy."""

    topology: tuple[tuple[str, int, int, int], ...]
    weights: list[np.ndarray]
    discrete: bool
    log_std: np.ndarray | None = None
    """Continuous spaces: the state-independent log standard deviation (2,)."""
    epsilon: float = 0.0
    """Discrete spaces: e-greedy exploration rate (0: categorical sampling)."""
    greedy: bool = False
    """Evaluation: argmax (discrete) or the mean (continuous), no sampling."""
    record_obs: bool = True
    """Keep every observation (training needs them; evaluation does not)."""

    @cached_property
    def layers(self) -> list[Layer]:
        """The weights laid out for `run_layers`, once per policy (in the process that acts)."""
        return compile_layers(self.topology, self.weights)

    def head(self, obs: np.ndarray) -> np.ndarray:
        out = run_layers(self.layers, obs)
        return out if self.discrete else np.tanh(out)


def act(
    spec: ActorSpec, out: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Actions and log-probabilities for head outputs `out` (B, n), as the learner samples.

    Discrete: categorical sampling from the softmax (or e-greedy when `spec.epsilon`);
    continuous: mean + std * N(0, 1), the log-probability of the unclipped sample.
    Greedy: argmax / the mean clipped to [-1, 1], log-probability 0.
    """
    if spec.greedy:
        actions = out.argmax(axis=1) if spec.discrete else np.clip(out, -1.0, 1.0)
        return actions, np.zeros(len(out), np.float32)
    if spec.discrete:
        z = out - out.max(axis=1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(axis=1, keepdims=True)
        u = rng.random(len(out))
        actions = np.minimum((probs.cumsum(axis=1) < u[:, None]).sum(axis=1), out.shape[1] - 1)
        if spec.epsilon > 0.0:
            explore = rng.random(len(out)) < spec.epsilon
            random_actions = rng.integers(0, out.shape[1], len(out))
            actions = np.where(explore, random_actions, actions)
        logp = np.log(np.maximum(probs[np.arange(len(out)), actions], 1e-12))
        return actions.astype(np.int64), logp.astype(np.float32)
    assert spec.log_std is not None, "continuous actor without log_std"
    log_std = np.clip(spec.log_std, *LOG_STD_RANGE)
    noise = rng.standard_normal(out.shape)
    actions = (out + np.exp(log_std) * noise).astype(np.float32)
    logp = np.sum(-0.5 * noise**2 - log_std - 0.5 * math.log(2 * math.pi), axis=1)
    return actions, logp.astype(np.float32)


def sampling_seed(seed: int, episode: int) -> list[int]:
    """Seed material of the action-sampling generator of training episode `episode`."""
    return [int(seed), int(episode), 0x5A]


@dataclass
class Episode:
    """One episode as played (training, or an evaluation trial)."""

    index: int
    """Run-wide episode number (drives the seed and the round-robin start), or the trial."""
    start_progress: float
    """Start position as a fraction of the lap."""
    obs: list[np.ndarray] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    logp: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    """Slimmed step infos (reset info first), for simtrace rows and metrics."""
    terminated: bool = False
    truncated: bool = False
    final_obs: np.ndarray | None = None
    wall_start: float = 0.0
    wall_end: float = 0.0

    @property
    def status(self) -> str:
        info = self.infos[-1] if self.infos else {}
        status = str(info.get("episode_status", ""))
        if self.truncated and status in ("", "in_progress", "prepare"):
            return "time_up"
        return status or ("lap_complete" if self.progress >= 100.0 else "unknown")

    @property
    def progress(self) -> float:
        params = (self.infos[-1] if self.infos else {}).get("params", {})
        return float(params.get("progress", 0.0))


@dataclass(frozen=True)
class EpisodeItem:
    """Which episode to play: its number, reset seed, start and sampling seed."""

    index: int
    seed: int
    start_progress: float
    rng_seed: list[int]


def play_episode(
    env: Any, spec: ActorSpec, item: EpisodeItem, max_steps: int, slim: Any = None
) -> Episode:
    """Play one episode of `env` with `spec` (see the module docstring).

    An episode longer than `max_steps` is truncated. `slim` reduces each step's info
    before it is kept (the worker's `slim_info`).
    """
    slim = slim or (lambda info: info)
    rng = np.random.default_rng(item.rng_seed)
    ep = Episode(index=item.index, start_progress=item.start_progress, wall_start=time.time())
    obs, info = env.reset(seed=item.seed, options={"start_progress": item.start_progress})
    obs = np.asarray(obs, dtype=np.uint8)
    ep.infos.append(slim(info))
    for step in range(1, max_steps + 1):
        if spec.record_obs:
            ep.obs.append(obs)
        actions, logp = act(spec, spec.head(obs[None]), rng)
        action = actions[0]
        env_action = action if spec.discrete else np.clip(action, -1.0, 1.0)
        obs, reward, terminated, truncated, info = env.step(env_action)
        obs = np.asarray(obs, dtype=np.uint8)
        ep.actions.append(action)
        ep.logp.append(float(logp[0]))
        ep.rewards.append(float(reward))
        ep.infos.append(slim(info))
        if step >= max_steps and not terminated:
            truncated = True
        if terminated or truncated:
            ep.terminated, ep.truncated = bool(terminated), bool(truncated and not terminated)
            ep.final_obs = obs
            break
    ep.wall_end = time.time()
    return ep
