"""Parity between a float Keras policy and its TFLite conversion, measured on simulator
frames under the run's domain randomization (never random noise).

- `simulator_frames` plays the simulator (`openracer/Race-v0` with the run's tracks and
  randomization, round-robin starts) with the policy itself, sampling its actions and
  taking a random action a fraction of the time so the frames also cover the states just
  off the policy's own line. Every `stride`-th frame is kept so consecutive, near-identical
  frames do not dominate. Different seeds give disjoint episodes: the representative set
  for int8 calibration and the held-out set for parity never share an episode.
- `compare` scores TFLite outputs against Keras outputs: discrete spaces by argmax
  agreement and the probability error; continuous spaces by the largest absolute
  difference of the [-1, 1] action means, a frame agreeing when both differences are
  within a tolerance: `CONTINUOUS_TOLERANCE` in [-1, 1] units, or, with the action space
  (`continuous_tolerance`), what the car would do: steering within `STEER_TOLERANCE_DEG`
  and speed within `SPEED_TOLERANCE_FRACTION` of the top speed after the action mapping.
- `judge_laps` is parity judged by driving: the float model, the quantized one and a
  float32 TFLite control drive the same seeded laps (see its docstring for the rule).
- `keras_policy_fn` / `tflite_policy_fn` turn either model into the greedy batch
  `policy_fn` that `trainer.evaluate.evaluate` (the `racer eval` path) drives laps with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vehicle.metadata import ModelMetadata
from vehicle.observation import OBS_SHAPE

DECISIVE_MARGIN = 0.01
"""Discrete: a frame is decisive when the float model's two best probabilities differ by at
least this much; agreement on decisive frames tells a broken conversion (disagrees on
clear choices) from an undecided policy (near-ties that any rounding flips)."""
CONTINUOUS_TOLERANCE = 0.05
"""Continuous spaces without an action space: a frame agrees when both action means differ
by at most this much (in DeepRacer's [-1, 1] units: 0.05 is 2.5 % of the steering or speed
range)."""
STEER_TOLERANCE_DEG = 1.5
"""Continuous spaces, on-policy agreement: steering commands agree within this many degrees
(2.5 % of a +-30 degree range)."""
SPEED_TOLERANCE_FRACTION = 0.02
"""Continuous spaces, on-policy agreement: speed commands agree within this fraction of the
space's top speed (0.08 m/s at 4 m/s; the same 2 % the lap times are held to)."""
MIN_ON_POLICY_AGREEMENT = 0.995
"""int8 export: the least agreement on the frames the two models visit in their laps."""
LAP_TIME_TOLERANCE = 0.02
"""int8 export: the largest relative difference of the mean lap time from the float model's."""


def continuous_tolerance(space: Any) -> tuple[float, float]:
    """[-1, 1]-unit tolerances (steering, speed) that map to `STEER_TOLERANCE_DEG` and
    `SPEED_TOLERANCE_FRACTION` of the top speed through `space.decode`."""
    lo, hi = space.steer_range_deg
    steer = 2.0 * STEER_TOLERANCE_DEG / (hi - lo) if hi > lo else float("inf")
    lo, hi = space.speed_range_mps
    speed = 2.0 * SPEED_TOLERANCE_FRACTION * hi / (hi - lo) if hi > lo else float("inf")
    return steer, speed


@dataclass(frozen=True)
class ParityReport:
    """How closely the TFLite model reproduces the float model on held-out frames."""

    frames: int
    """Held-out simulator frames compared."""
    kind: str
    """'discrete' or 'continuous'."""
    agreement: float
    """Fraction of frames on which both models choose the same action (discrete: argmax;
    continuous: every mean within CONTINUOUS_TOLERANCE)."""
    disagreements: int
    """Frames on which they differ."""
    max_abs_error: float
    """Largest absolute output difference (probabilities, or action means)."""
    mean_abs_error: float
    """Mean absolute output difference."""
    chosen_prob_error: float | None
    """Discrete: mean absolute difference of the probability of the float model's action."""
    float_margin_at_disagreement: float | None
    """Discrete: median gap between the float model's two best probabilities on the frames
    where the models disagree (small = near-ties, not a broken conversion)."""
    decisive_fraction: float | None = None
    """Discrete: fraction of frames whose float top-2 gap is at least DECISIVE_MARGIN."""
    decisive_agreement: float | None = None
    """Discrete: agreement on those decisive frames only."""
    tolerance: tuple[float, float] | None = None
    """Continuous: the (steering, speed) tolerances in [-1, 1] units a frame agreed within."""

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "kind": self.kind,
            "agreement": self.agreement,
            "disagreements": self.disagreements,
            "max_abs_error": self.max_abs_error,
            "mean_abs_error": self.mean_abs_error,
            "chosen_prob_error": self.chosen_prob_error,
            "float_margin_at_disagreement": self.float_margin_at_disagreement,
            "decisive_margin": DECISIVE_MARGIN if self.kind == "discrete" else None,
            "decisive_fraction": self.decisive_fraction,
            "decisive_agreement": self.decisive_agreement,
            "continuous_tolerance": None if self.tolerance is None else list(self.tolerance),
        }


def compare(
    reference: np.ndarray,
    candidate: np.ndarray,
    kind: str,
    tolerance: tuple[float, float] = (CONTINUOUS_TOLERANCE, CONTINUOUS_TOLERANCE),
) -> ParityReport:
    """Score `candidate` outputs (N, k) against `reference` outputs (N, k); continuous
    frames agree when steering and speed differ by at most `tolerance` ([-1, 1] units)."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim != 2 or len(ref) == 0:
        raise ValueError(f"output shapes {ref.shape} and {cand.shape} cannot be compared")
    diff = np.abs(ref - cand)
    chosen_err = margin = decisive_frac = decisive_agree = None
    if kind == "discrete":
        ref_a, cand_a = ref.argmax(1), cand.argmax(1)
        same = ref_a == cand_a
        chosen_err = float(np.mean(diff[np.arange(len(ref)), ref_a]))
        top2 = np.sort(ref, axis=1)[:, -2:]
        gaps = top2[:, 1] - top2[:, 0] if ref.shape[1] > 1 else np.ones(len(ref))
        if not same.all():
            margin = float(np.median(gaps[~same]))
        decisive = gaps >= DECISIVE_MARGIN
        decisive_frac = float(np.mean(decisive))
        decisive_agree = float(np.mean(same[decisive])) if decisive.any() else None
    else:
        same = (diff[:, 0] <= tolerance[0]) & (diff[:, 1] <= tolerance[1])
    return ParityReport(
        frames=len(ref),
        kind=kind,
        agreement=float(np.mean(same)),
        disagreements=int(np.sum(~same)),
        max_abs_error=float(diff.max()),
        mean_abs_error=float(diff.mean()),
        chosen_prob_error=chosen_err,
        float_margin_at_disagreement=margin,
        decisive_fraction=decisive_frac,
        decisive_agreement=decisive_agree,
        tolerance=None if kind == "discrete" else (float(tolerance[0]), float(tolerance[1])),
    )


def judge_laps(
    reference: Any, candidate: Any, control: Any, tolerance: float = LAP_TIME_TOLERANCE
) -> dict[str, Any]:
    """Lap parity of `candidate` (the quantized model) with `reference` (the float model),
    three `trainer.evaluate.EvalReport`s of the same seeded laps; `control` is the float32
    TFLite conversion of the same network, which computes what the float model computes to
    about 1e-7.

    A lap whose outcome the float model and its control do not share (one finishes, the
    other does not) is decided by rounding noise at a knife edge, not by the model: such
    laps are `undetermined` and left out. On the others the candidate must complete at
    least as many laps as the float model, and over the laps both complete, its mean lap
    time must be within `tolerance` of the float model's. The counts over all laps are
    kept beside (`strict_passed` applies the same rule to every lap)."""
    ref, cand, ctl = (tuple(r.laps) for r in (reference, candidate, control))
    if not len(ref) == len(cand) == len(ctl) or not ref:
        raise ValueError(
            f"lap reports of {len(ref)}, {len(cand)}, {len(ctl)} laps cannot be judged"
        )
    undetermined = [i for i in range(len(ref)) if ref[i].completed != ctl[i].completed]
    kept = [i for i in range(len(ref)) if i not in undetermined]

    def rule(
        idx: list[int],
    ) -> tuple[int, int, int, float | None, float | None, float | None, bool]:
        ref_laps = sum(ref[i].completed for i in idx)
        cand_laps = sum(cand[i].completed for i in idx)
        both = [i for i in idx if ref[i].completed and cand[i].completed]
        ref_mean = float(np.mean([ref[i].lap_time_s for i in both])) if both else None
        cand_mean = float(np.mean([cand[i].lap_time_s for i in both])) if both else None
        diff = None if ref_mean is None or cand_mean is None else cand_mean / ref_mean - 1.0
        ok = cand_laps >= ref_laps and (diff is None or abs(diff) <= tolerance)
        return ref_laps, cand_laps, len(both), ref_mean, cand_mean, diff, ok

    ref_laps, cand_laps, paired, ref_mean, cand_mean, diff, passed = rule(kept)
    all_ref, all_cand, _, _, _, all_diff, strict = rule(list(range(len(ref))))
    return {
        "laps": len(ref),
        "undetermined": undetermined,
        "float_laps": ref_laps,
        "tflite_laps": cand_laps,
        "paired_laps": paired,
        "float_mean_lap_s": ref_mean,
        "tflite_mean_lap_s": cand_mean,
        "lap_time_diff": diff,
        "lap_time_tolerance": tolerance,
        "passed": passed,
        "float_laps_all": all_ref,
        "tflite_laps_all": all_cand,
        "control_laps_all": sum(lap.completed for lap in ctl),
        "lap_time_diff_all": all_diff,
        "strict_passed": strict,
    }


def keras_forward(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled batch forward pass of a Keras policy (uint8 batch -> float32 outputs)."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def forward(batch: np.ndarray) -> np.ndarray:
        return np.asarray(fn(tf.convert_to_tensor(batch, dtype=tf.uint8)))

    return forward


def keras_outputs(model: Any, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """Outputs of a Keras policy on (N, 120, 160, 1) uint8 frames."""
    forward = keras_forward(model)
    return np.concatenate([forward(frames[i : i + batch]) for i in range(0, len(frames), batch)])


def tflite_outputs(policy: Any, frames: np.ndarray) -> np.ndarray:
    """Outputs of a `vehicle.inference.Policy` (the car's interpreter), one frame at a time
    as on the car."""
    return np.stack([policy.infer(f) for f in frames])


def greedy(outputs: np.ndarray, kind: str) -> np.ndarray:
    """Deterministic actions from a batch of outputs: argmax, or the clipped mean."""
    if kind == "discrete":
        return np.argmax(outputs, axis=1)
    return np.clip(outputs[:, :2], -1.0, 1.0)


def keras_policy_fn(model: Any, kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """The float model as a greedy batch policy for `trainer.evaluate.evaluate`."""
    forward = keras_forward(model)
    return lambda batch: greedy(forward(batch), kind)


def tflite_policy_fn(policy: Any, kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """The TFLite model, run by the car's interpreter, as a greedy batch policy."""
    return lambda batch: greedy(tflite_outputs(policy, batch), kind)


def simulator_frames(
    model: Any,
    metadata: ModelMetadata,
    env_kwargs: dict[str, Any],
    n_frames: int,
    *,
    seed: int,
    explore: float = 0.25,
    stride: int = 3,
    num_envs: int = 4,
    max_episode_steps: int = 600,
    env_id: str = "openracer/Race-v0",
    on_progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """`n_frames` observations (N, 120, 160, 1) uint8 from the simulator driven by `model`
    (see the module docstring). Same seed, same frames."""
    from trainer.workers import LocalPool

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9A817]))
    forward = keras_forward(model)
    space = metadata.action_space
    out = np.empty((n_frames, *OBS_SHAPE), dtype=np.uint8)
    kept = 0
    step = 0
    episode = 0

    def episode_seed() -> int:
        nonlocal episode
        episode += 1
        return int(np.random.SeedSequence([seed, episode, 0xF8A3E]).generate_state(1)[0])

    with LocalPool(env_id, env_kwargs, num_envs, max_episode_steps) as pool:
        obs = {
            slot: o
            for slot, (o, _info) in pool.reset_many(
                [(s, episode_seed(), None) for s in range(num_envs)]
            ).items()
        }
        while kept < n_frames:
            slots = sorted(obs)
            batch = np.stack([obs[s] for s in slots])
            if step % stride == 0:
                take = min(len(batch), n_frames - kept)
                out[kept : kept + take] = batch[:take]
                kept += take
                if on_progress is not None:
                    on_progress(take)
            step += 1
            outputs = forward(batch)
            actions: dict[int, Any] = {}
            for j, slot in enumerate(slots):
                if rng.random() < explore:
                    if space.kind == "discrete":
                        actions[slot] = int(rng.integers(space.n))
                    else:
                        actions[slot] = rng.uniform(-1.0, 1.0, 2).astype(np.float32)
                elif space.kind == "discrete":
                    p = np.clip(outputs[j].astype(np.float64), 0.0, None)
                    p = p / p.sum() if p.sum() > 0 else np.full(space.n, 1.0 / space.n)
                    actions[slot] = int(rng.choice(space.n, p=p))
                else:
                    mean = outputs[j][:2]
                    actions[slot] = np.clip(mean + rng.normal(0.0, 0.2, 2), -1, 1).astype(
                        np.float32
                    )
            results = pool.step_many(actions)
            done = []
            for slot, (next_obs, _r, terminated, truncated, _info) in results.items():
                if terminated or truncated:
                    done.append(slot)
                else:
                    obs[slot] = next_obs
            if done:
                for slot, (o, _info) in pool.reset_many(
                    [(s, episode_seed(), None) for s in done]
                ).items():
                    obs[slot] = o
    return out
