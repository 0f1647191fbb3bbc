"""The acting half of PPO: the policy network in NumPy and the sampling rules, for the
simulator processes.

Why here and not in the learner: stepping the policy in TensorFlow for every simulator
step means a pipe round trip and a TensorFlow call per step, with the simulators idle
while the learner thinks and the learner idle while they step. A simulator process that
holds a NumPy copy of the policy plays a whole episode on its own
(`trainer.episodes.play_episode`), so both cores simulate and act at once and only
finished episodes cross the pipe. The learner sends the weights once per iteration.

- `forward(topology, weights, obs)`: the Keras tower of `trainer.networks` (same
  topology tuples, "valid" padding, ReLU after every layer, uint8 scaled by 1/255)
  followed by the policy head, for a uint8 batch (B, H, W, C). Agrees with Keras to
  float32 rounding (tested per topology). It is `compile_layers` (the weights laid out
  as matrices, once per policy) then `run_layers` (every step).
- `ActorSpec`: what a process needs to act (topology, weights, action-space kind,
  log-std, epsilon, greedy or sampling).
- `act(spec, out, rng)`: actions and their behaviour log-probabilities from the head
  outputs, the same distributions the learner scores (`trainer.ppo`): categorical, the
  e-greedy mixture, or a diagonal Gaussian; for SAC (`trainer.sac`, `ActorSpec.squashed`)
  the squashed Gaussian tanh(mean + std * N(0, 1)).

NumPy only: no TensorFlow, so the simulator processes start quickly and stay small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LOG_STD_RANGE = (-20.0, 3.0)
"""Clip of the log standard deviation (Coach's PPO head); trainer.ppo uses the same."""
SAC_LOG_STD_RANGE = (-20.0, 2.0)
"""Clip of SAC's state-dependent log standard deviation (Coach's SAC head); trainer.sac
uses the same."""


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
    squashed: bool = False
    """SAC's squashed Gaussian (`trainer.sac`): the head outputs the pre-tanh mean and the
    log standard deviation (B, 4), and an action is tanh(mean + std * N(0, 1))."""

    @cached_property
    def layers(self) -> list[Layer]:
        """The weights laid out for `run_layers`, once per policy (in the process that acts)."""
        return compile_layers(self.topology, self.weights)

    def head(self, obs: np.ndarray) -> np.ndarray:
        out = run_layers(self.layers, obs)
        return out if self.discrete or self.squashed else np.tanh(out)


def act(
    spec: ActorSpec, out: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Actions and behaviour log-probabilities for head outputs `out` (B, n).

    Discrete: a sample of the softmax; with `spec.epsilon` > 0, of the e-greedy mixture
    (1 - epsilon) * softmax + epsilon * uniform, whose log-probability is reported (the
    distribution the action was really drawn from, and the one the learner scores).
    Continuous: mean + std * N(0, 1), the log-probability of the unclipped sample.
    Squashed (SAC): tanh(mean + std * N(0, 1)) and its log-density, tanh's change of
    variables included (`squashed_logp`); greedy: tanh(mean).
    Greedy: argmax / the mean clipped to [-1, 1], log-probability 0.
    """
    if spec.squashed:
        return act_squashed(out, rng, greedy=spec.greedy)
    if spec.greedy:
        actions = out.argmax(axis=1) if spec.discrete else np.clip(out, -1.0, 1.0)
        return actions, np.zeros(len(out), np.float32)
    if spec.discrete:
        probs = mixture_probs(out, spec.epsilon)
        u = rng.random(len(out))
        actions = np.minimum((probs.cumsum(axis=1) < u[:, None]).sum(axis=1), out.shape[1] - 1)
        logp = np.log(np.maximum(probs[np.arange(len(out)), actions], 1e-12))
        return actions.astype(np.int64), logp.astype(np.float32)
    assert spec.log_std is not None, "continuous actor without log_std"
    log_std = np.clip(spec.log_std, *LOG_STD_RANGE)
    noise = rng.standard_normal(out.shape)
    actions = (out + np.exp(log_std) * noise).astype(np.float32)
    logp = np.sum(-0.5 * noise**2 - log_std - 0.5 * math.log(2 * math.pi), axis=1)
    return actions, logp.astype(np.float32)


def act_squashed(
    out: np.ndarray, rng: np.random.Generator, *, greedy: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """SAC's actions from head outputs (B, 4) = (pre-tanh mean, log-std): a sample of the
    squashed Gaussian and its log-density, or tanh(mean) with log-probability 0."""
    mean = out[:, :2]
    if greedy:
        return np.tanh(mean).astype(np.float32), np.zeros(len(out), np.float32)
    log_std = np.clip(out[:, 2:], *SAC_LOG_STD_RANGE)
    noise = rng.standard_normal(mean.shape)
    pre = mean + np.exp(log_std) * noise
    return np.tanh(pre).astype(np.float32), squashed_logp(pre, mean, log_std).astype(np.float32)


def squashed_logp(pre: np.ndarray, mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    """Log-density of tanh(`pre`) where `pre` ~ N(mean, exp(log_std)^2), per row: the
    Gaussian's log-density minus log |d tanh / d pre| = log(1 - tanh(pre)^2), written as
    2 (log 2 - pre - softplus(-2 pre)) so it stays finite where tanh saturates."""
    z = (pre - mean) * np.exp(-log_std)
    gauss = np.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)
    jacobian = 2.0 * (math.log(2.0) - pre - np.logaddexp(0.0, -2.0 * pre))
    return gauss - np.sum(jacobian, axis=-1)


def mixture_probs(logits: np.ndarray, epsilon: float) -> np.ndarray:
    """(1 - epsilon) * softmax(logits) + epsilon / n: the e-greedy sampling distribution
    (the plain softmax when epsilon is 0)."""
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    if epsilon > 0.0:
        probs = (1.0 - epsilon) * probs + epsilon / logits.shape[1]
    return probs
