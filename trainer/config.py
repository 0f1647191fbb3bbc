"""Training configuration: DeepRacer's `hyperparameters.json` and openracer's `TrainConfig`.

`Hyperparameters` holds exactly DeepRacer's keys with the simapp's defaults (compat
reference section 3.3), so a DeepRacer or DRfC `hyperparameters.json` loads unchanged and
a file written here loads in DeepRacer tools. Unknown keys and out-of-range values are
`TrainConfigError`s naming the file, the key, the value and the accepted range.

`TrainConfig` is everything else a run needs (tracks, reward file, time budget, number of
simulator workers...). Both are frozen dataclasses with a docstring under every field;
`field_help(cls)` reads those docstrings so the command line (`racer train --help`) is
generated from the dataclass and help text never drifts from the code.

Fixed by DeepRacer and therefore not configurable: PPO clip 0.2, GAE lambda 0.95, Adam
epsilon 1e-5 (compat reference section 4.3).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import math
import re
import textwrap
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from trainer.errors import TrainConfigError
from vehicle.files import read_json

SCHEMA_VERSION = 1
"""Version of the `config.json` written into each run directory."""

CLIP_EPSILON = 0.2
"""PPO ratio clip, fixed as in DeepRacer."""
GAE_LAMBDA = 0.95
"""GAE lambda, fixed as in DeepRacer."""
ADAM_EPSILON = 1e-5
"""Adam epsilon, as DeepRacer's Coach configuration."""
LR_ANNEAL_FLOOR = 0.1
"""With `lr_anneal_steps`, the share of `lr` the anneal ends at and holds."""

LOSS_TYPES = ("mean squared error", "huber")
EXPLORATION_TYPES = ("categorical", "e-greedy", "additive_noise")
RANDOMIZE_PRESETS = ("none", "light", "standard", "heavy")
CRITICS = ("camera", "state")


@dataclass(frozen=True)
class Hyperparameters:
    """DeepRacer `hyperparameters.json`: same keys, same defaults as the simapp."""

    batch_size: int = 64
    """Gradient-descent minibatch size (DeepRacer offers 32, 64, 128, 256, 512)."""
    beta_entropy: float = 0.01
    """Entropy bonus coefficient of the PPO loss."""
    discount_factor: float = 0.999
    """Discount gamma per step (at 15 Hz, 0.999 looks about 1000 steps = 67 s ahead)."""
    e_greedy_value: float = 0.05
    """Final epsilon when exploration_type is 'e-greedy'."""
    epsilon_steps: int = 10000
    """Steps over which epsilon decays linearly from 1.0 to e_greedy_value ('e-greedy')."""
    exploration_type: str = "categorical"
    """'categorical' (sample the softmax in training; continuous PPO samples its Gaussian),
    'e-greedy' (discrete only) or 'additive_noise' (SAC's setting; SAC explores through its
    policy's entropy)."""
    loss_type: str = "mean squared error"
    """Value loss: 'mean squared error' or 'huber'."""
    lr: float = 0.0003
    """Adam learning rate."""
    num_episodes_between_training: int = 20
    """Episodes collected (all simulator workers together) per policy iteration."""
    num_epochs: int = 10
    """Optimisation passes over each iteration's experience (PPO; SAC's gradient steps
    follow the new environment steps, `TrainConfig.sac_updates_per_step`)."""
    stack_size: int = 1
    """Frame stack; DeepRacer hard-wires 1 frame, and so does openracer."""
    term_cond_avg_score: float = 100000.0
    """Stop once the mean training reward of an iteration reaches this score."""
    term_cond_max_episodes: int = 100000
    """Stop after this many training episodes."""
    sac_alpha: float = 0.2
    """SAC's entropy temperature alpha, fixed during training as in DeepRacer (unused by
    PPO)."""

    def to_json(self) -> dict[str, Any]:
        """The dict to write as `hyperparameters.json` (DeepRacer's keys only)."""
        return dataclasses.asdict(self)


# key -> (kind, low, high); kind "int" | "float"; bounds inclusive.
_RANGES: dict[str, tuple[str, float, float]] = {
    "batch_size": ("int", 1, 8192),
    "beta_entropy": ("float", 0.0, 1.0),
    "discount_factor": ("float", 0.0, 1.0),
    "e_greedy_value": ("float", 0.0, 1.0),
    "epsilon_steps": ("int", 1, 10**9),
    "lr": ("float", 1e-8, 1e-2),
    "num_episodes_between_training": ("int", 1, 1000),
    "num_epochs": ("int", 1, 100),
    "stack_size": ("int", 1, 1),
    "term_cond_avg_score": ("float", 0.0, 1e12),
    "term_cond_max_episodes": ("int", 1, 10**12),
    "sac_alpha": ("float", 0.0, 100.0),
}


def parse_hyperparameters(data: Any, source: str = "hyperparameters") -> Hyperparameters:
    """Validate a dict read from `hyperparameters.json`; missing keys take simapp defaults.

    DeepRacer tools sometimes write numbers as strings ("64"); those are accepted.
    """
    if not isinstance(data, dict):
        raise TrainConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(Hyperparameters)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TrainConfigError(
            f"{source}: unknown key(s) {unknown}; DeepRacer's hyperparameter keys are "
            f"{sorted(known)}"
        )
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key == "exploration_type":
            text = str(raw).strip().lower()
            if text not in EXPLORATION_TYPES:
                raise TrainConfigError(
                    f"{source}: exploration_type {raw!r} is not one of {list(EXPLORATION_TYPES)}"
                )
            values[key] = text
            continue
        if key == "loss_type":
            text = str(raw).strip().lower()
            if text not in LOSS_TYPES:
                raise TrainConfigError(
                    f"{source}: loss_type {raw!r} is not one of {list(LOSS_TYPES)}"
                )
            values[key] = text
            continue
        kind, low, high = _RANGES[key]
        values[key] = _checked_number(raw, key, kind, low, high, source)
    if values.get("discount_factor", 0.999) <= 0.0:
        raise TrainConfigError(f"{source}: discount_factor must be above 0 (DeepRacer uses 0.999)")
    return Hyperparameters(**values)


def load_hyperparameters(path: str | Path) -> Hyperparameters:
    """Read and validate a DeepRacer `hyperparameters.json`."""
    return parse_hyperparameters(
        read_json(path, what="hyperparameters", error=TrainConfigError), source=str(path)
    )


def _checked_number(raw: Any, key: str, kind: str, low: float, high: float, source: str) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TrainConfigError(f"{source}: {key} {raw!r} is not a number")
    try:
        value = float(raw)
    except ValueError as exc:
        raise TrainConfigError(f"{source}: {key} {raw!r} is not a number") from exc
    if not math.isfinite(value):
        raise TrainConfigError(f"{source}: {key} {raw!r} is not finite")
    if kind == "int":
        if value != int(value):
            raise TrainConfigError(f"{source}: {key} {raw!r} must be a whole number")
        value = int(value)
    if not low <= value <= high:
        raise TrainConfigError(
            f"{source}: {key} {raw!r} is outside the accepted range {low:g}..{high:g}"
        )
    return value


@dataclass(frozen=True)
class TrainConfig:
    """Everything one `racer train` run needs besides the DeepRacer files."""

    out: str = "runs/run"
    """Run directory: checkpoints, logs, TensorBoard, simtrace CSVs."""
    track: tuple[str, ...] = ("reinvent_like",)
    """Training track(s): catalogue names or .npy paths; several are drawn per episode."""
    generated: int = 0
    """Also train on this many procedurally generated tracks (0 = none)."""
    recipe: str | None = None
    """A ready-made recipe (trainer/recipes): first_lap or fast_laps. It sets the reward,
    metadata, hyperparameters and training options; flags given beside it win."""
    reward: str | None = None
    """Reward file defining reward_function(params); default: the simulator's default."""
    metadata: str | None = None
    """model_metadata.json (action space, network); default: the console default."""
    hyperparameters: str | None = None
    """DeepRacer hyperparameters.json; default: the simapp defaults."""
    minutes: float = 15.0
    """Wall-clock training budget in minutes (total across resumes)."""
    randomize: str = "standard"
    """Domain-randomization preset: none, light, standard or heavy."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint."""
    clone: str | None = None
    """Start from another run's best weights (new reward, track or hyperparameters allowed)."""
    seed: int = 0
    """Seed of every random choice (sampling, shuffling, start positions, randomization)."""
    workers: int = 2
    """Simulator processes, each playing whole episodes with a NumPy copy of the policy."""
    ray: str | None = None
    """Run the simulator workers as Ray actors on a cluster: HOST:PORT of its head, or auto
    (the cluster this machine joined, else a local single-machine Ray); --ray alone means
    auto. Each worker takes 1 CPU of the cluster; the learner stays here. Needs the ray
    extra on this machine and every node."""
    max_episode_steps: int = 1500
    """Truncate an episode after this many steps (1500 = 100 s at 15 Hz)."""
    eval_episodes: int = 5
    """Evaluation episodes from the start line after each iteration (DeepRacer: 5)."""
    max_iterations: int = 0
    """Stop after this many iterations (0 = no limit; the time budget still applies)."""
    keep_checkpoints: int = 5
    """How many recent checkpoints to keep besides the best one."""
    imitation_episodes: int = 0
    """Behaviour-cloning warm start from the pure-pursuit expert: expert episodes (0 = off)."""
    expert: str = "centre"
    """The imitation expert's line: "centre" (the centre line at moderate speed) or "racing"
    (the track's racing line at `expert_speed_fraction` of its limit speed profile)."""
    expert_speed_fraction: float = 0.9
    """For `expert` "racing": the share of the racing line's limit speed it drives at."""
    dagger_rounds: int = 0
    """DAgger rounds after behaviour cloning: each plays `imitation_episodes` episodes with
    the student driving (the expert taking over with a probability that halves each round),
    labels every frame with the expert's action, and refits on all frames so far."""
    value_warmup_iterations: int = 0
    """First iterations that fit only the value function, the policy held still (a warm
    start's policy is good and its value function knows nothing yet)."""
    critic: str = "camera"
    """What PPO's value function sees: "camera" (the frames, as DeepRacer's critic) or
    "state" (the simulator's privileged state, `sim2real.privileged`: an asymmetric
    actor-critic). The exported policy sees the camera either way."""
    anchor_kl: float = 0.0
    """Weight of a KL term that keeps the policy near its warm start (imitation or
    --clone), fading to 0 over `anchor_iterations` (0 = off)."""
    anchor_iterations: int = 30
    """Iterations over which the `anchor_kl` weight fades to 0, after the value warm-up."""
    lr_anneal_steps: int = 0
    """PPO: anneal the learning rate linearly from `lr` to `LR_ANNEAL_FLOOR` x `lr` over
    this many env steps, then hold it (0 = a constant `lr`, DeepRacer's behaviour)."""
    replay_frames: int = 50000
    """SAC: replay buffer size in camera frames, about one per transition (19.2 kB each:
    50000 = 0.96 GB); not saved with checkpoints, so --resume refills it."""
    sac_updates_per_step: float = 1.0
    """SAC: gradient steps per new environment step, taken after each iteration's episodes."""
    tf_threads: int = 2
    """TensorFlow intra-op threads for the learner."""
    reward_time_limit_s: float = 5.0
    """Time limit of one reward_function call (and of the reward file's import), in
    seconds; a call that overruns stops the run with an error naming the line (DeepRacer's
    reward check allows 5 s)."""
    env_id: str = "openracer/Race-v0"
    """Gymnasium environment id (tests register a small fake)."""

    def __post_init__(self) -> None:
        _check_config(self)

    def to_json(self) -> dict[str, Any]:
        """The dict stored as `config.json` in the run directory."""
        out = dataclasses.asdict(self)
        out["track"] = list(self.track)
        out["schema_version"] = SCHEMA_VERSION
        return out


def _check_config(c: TrainConfig) -> None:
    if not c.track and c.generated <= 0:
        raise TrainConfigError("no training track: give --track NAME (repeatable) or --generated N")
    if c.generated < 0 or c.generated > 10000:
        raise TrainConfigError(f"--generated {c.generated} must be 0-10000")
    if not 0 < c.minutes <= 7 * 24 * 60:
        raise TrainConfigError(f"--minutes {c.minutes} must be above 0 and at most a week (10080)")
    if c.randomize not in RANDOMIZE_PRESETS:
        raise TrainConfigError(
            f"--randomize {c.randomize!r} is not one of {list(RANDOMIZE_PRESETS)}"
        )
    if c.expert not in ("centre", "racing"):
        raise TrainConfigError(f"--expert {c.expert!r} is not 'centre' or 'racing'")
    if not 0.1 <= c.expert_speed_fraction <= 1.2:
        raise TrainConfigError(
            f"--expert-speed-fraction {c.expert_speed_fraction} must be from 0.1 to 1.2"
        )
    if c.critic not in CRITICS:
        raise TrainConfigError(f"--critic {c.critic!r} is not one of {list(CRITICS)}")
    if c.dagger_rounds and not c.imitation_episodes:
        raise TrainConfigError("--dagger-rounds needs --imitation-episodes N (episodes per round)")
    if not 0.0 < c.reward_time_limit_s <= 600.0:
        raise TrainConfigError(
            f"--reward-time-limit-s {c.reward_time_limit_s} must be above 0 and at most 600"
        )
    if not 0.0 <= c.anchor_kl <= 1000.0:
        raise TrainConfigError(f"--anchor-kl {c.anchor_kl} must be a number from 0 to 1000")
    if not 0.0 < c.sac_updates_per_step <= 64.0:
        raise TrainConfigError(
            f"--sac-updates-per-step {c.sac_updates_per_step} must be above 0 and at most 64"
        )
    if c.resume and c.clone:
        raise TrainConfigError(
            "--resume and --clone exclude each other: resume continues a run, "
            "clone starts a new run from another run's weights"
        )
    for name, low, high in (
        ("workers", 1, 64),
        ("max_episode_steps", 10, 1_000_000),
        ("eval_episodes", 0, 1000),
        ("max_iterations", 0, 10**9),
        ("keep_checkpoints", 1, 1000),
        ("imitation_episodes", 0, 100000),
        ("dagger_rounds", 0, 1000),
        ("value_warmup_iterations", 0, 1000),
        ("anchor_iterations", 0, 100000),
        ("lr_anneal_steps", 0, 10**10),
        ("tf_threads", 1, 256),
        ("replay_frames", 1000, 10_000_000),
    ):
        value = getattr(c, name)
        if not low <= value <= high:
            raise TrainConfigError(
                f"--{name.replace('_', '-')} {value} is outside the accepted range {low}..{high}"
            )
    if not c.out:
        raise TrainConfigError("--out must name a run directory")
    if c.ray is not None and not _RAY_ADDRESS.fullmatch(c.ray):
        raise TrainConfigError(
            f"--ray {c.ray!r} is not a Ray address: give auto, or HOST:PORT of the cluster's "
            "head (e.g. 10.0.0.5:6379, the address `ray start --head` prints)"
        )


_RAY_ADDRESS = re.compile(r"auto|(ray://)?[A-Za-z0-9][A-Za-z0-9.\-]*:\d{1,5}")
"""What --ray accepts: auto, HOST:PORT, or ray://HOST:PORT (Ray Client)."""


RETIRED_CONFIG_KEYS = ("envs_per_worker",)
"""Keys older runs wrote that no longer mean anything (each simulator process now plays
one episode at a time); dropped when such a run is resumed."""


def load_train_config(path: str | Path) -> TrainConfig:
    """A `TrainConfig` from a JSON file: the `train.json` `racer new` writes, or a run's
    `config.json` (see `config_from_json`)."""
    return config_from_json(
        read_json(path, what="training config", error=TrainConfigError), str(path)
    )


def config_from_json(data: Any, source: str) -> TrainConfig:
    """Rebuild a `TrainConfig` from a run's `config.json` (unknown keys are errors)."""
    if not isinstance(data, dict):
        raise TrainConfigError(f"{source}: expected a JSON object")
    data = dict(data)
    version = data.pop("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise TrainConfigError(
            f"{source}: schema_version {version} is not {SCHEMA_VERSION}; this run was written "
            "by another openracer version"
        )
    for key in RETIRED_CONFIG_KEYS:
        data.pop(key, None)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TrainConfigError(f"{source}: unknown key(s) {unknown}")
    hints = typing.get_type_hints(TrainConfig)
    for key, value in data.items():
        data[key] = _typed(source, key, value, hints[key])
    return TrainConfig(**data)


def _typed(source: str, key: str, value: Any, hint: Any) -> Any:
    """`value` of config key `key` checked against its field type (JSON has no tuples:
    `track` is a list of names, or one name)."""
    if hint == tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        expected = 'a track name or a list of them, e.g. ["reinvent_like"]'
    elif hint is bool:
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "a whole number, e.g. 2 (no quotes)"
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
        expected = "a finite number, e.g. 15 (no quotes)"
    elif hint == str | None:
        if value is None or isinstance(value, str):
            return value
        expected = "a string in quotes, or null"
    else:  # str
        if isinstance(value, str):
            return value
        expected = 'a string in quotes, e.g. "runs/r1"'
    raise TrainConfigError(f"{source}: {key!r} is {json.dumps(value)}; it must be {expected}")


@cache
def field_help(cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it in the dataclass body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    out: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            out[node.target.id] = " ".join(nxt.value.value.split())
    return out


def replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of `config` with `changes` applied (validated again)."""
    return dataclasses.replace(config, **changes)


__all__ = [
    "ADAM_EPSILON",
    "CLIP_EPSILON",
    "GAE_LAMBDA",
    "LR_ANNEAL_FLOOR",
    "Hyperparameters",
    "TrainConfig",
    "config_from_json",
    "field",
    "field_help",
    "load_hyperparameters",
    "parse_hyperparameters",
]
