"""DeepRacer `model_metadata.json`: the action space and the model's input contract.

Shared by the car and training (training imports it from here). Parses the file exactly as
DeepRacer's simapp does (compat reference section 3.1: keys, defaults, lower-cased action
space type) and keeps openracer's own fields beside DeepRacer's, so a file written here
still loads in DeepRacer tools and a DeepRacer file loads here unchanged.

Action decoding:
- discrete: the action index selects a (steering_angle, speed) entry;
- continuous: the network acts in [-1, 1]^2 (steering first, then speed), clipped to that
  box, then rescaled linearly to [low, high] of each range, as DeepRacer does.
Steering is in degrees, positive = left; speed in m/s (commanded, not measured).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vehicle.errors import MetadataError, MetadataWarning
from vehicle.files import read_json
from vehicle.observation import CONTROL_RATE_HZ, OBS_SHAPE, PREPROCESSING_VERSION

MAX_STEER_DEG = 30.0
"""DeepRacer's simulator clips steering to +-30 degrees."""
MIN_SPEED_MPS = 0.1
"""DeepRacer's simulator clips speed to [0.1, 4.0] m/s. A file may declare faster actions
(DeepRacer's simulator accepts them and drives them at 4.0 m/s; so does openracer's, with a
warning); the console and `racer new` offer at most 4.0 m/s."""
MAX_SPEED_MPS = 4.0
NEURAL_NETWORKS = (
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "DEEP_CONVOLUTIONAL_NETWORK",
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP",
    "OPENRACER_FAST",
    "OPENRACER_LOWRES",
)
CAMERA_SENSORS = ("FRONT_FACING_CAMERA", "STEREO_CAMERAS", "LEFT_CAMERA", "observation")
LIDAR_SENSORS = ("LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")
_KNOWN_KEYS = {
    "action_space",
    "action_space_type",
    "training_algorithm",
    "neural_network",
    "sensor",
    "version",
    "lidar_config",
    "openracer",
}


@dataclass(frozen=True)
class DiscreteAction:
    """One entry of a discrete action space."""

    steer_deg: float
    """Commanded steering angle, degrees, positive = left."""
    speed_mps: float
    """Commanded speed, m/s."""


@dataclass(frozen=True)
class ActionSpace:
    """A DeepRacer action space, discrete (a list of actions) or continuous (two ranges)."""

    kind: str
    """'discrete' or 'continuous'."""
    actions: tuple[DiscreteAction, ...] = ()
    """The discrete actions in index order (empty for continuous)."""
    steer_range_deg: tuple[float, float] = (-MAX_STEER_DEG, MAX_STEER_DEG)
    """Continuous: (low, high) steering in degrees."""
    speed_range_mps: tuple[float, float] = (0.5, 1.0)
    """Continuous: (low, high) speed in m/s."""

    @property
    def n(self) -> int:
        """Number of discrete actions, or 2 (steering, speed) for continuous."""
        return len(self.actions) if self.kind == "discrete" else 2

    @property
    def max_steer_deg(self) -> float:
        """Largest |steering| in the space: the car's relative-steering scale (DeepRacer)."""
        if self.kind == "discrete":
            return max(abs(a.steer_deg) for a in self.actions) or 1.0
        return max(abs(self.steer_range_deg[0]), abs(self.steer_range_deg[1])) or 1.0

    @property
    def max_speed_mps(self) -> float:
        """Largest speed in the space: the top of the car's throttle curve (DeepRacer)."""
        if self.kind == "discrete":
            return max(a.speed_mps for a in self.actions)
        return self.speed_range_mps[1]

    def decode(self, action: Any) -> tuple[float, float]:
        """Policy output -> (steer_deg, speed_mps).

        Discrete: an integer index. Continuous: two numbers in [-1, 1] (clipped), steering
        first, rescaled linearly to the ranges.
        """
        if self.kind == "discrete":
            index = int(np.asarray(action).reshape(()))
            if not 0 <= index < len(self.actions):
                raise MetadataError(
                    f"action index {index} is outside the discrete action space of "
                    f"{len(self.actions)} actions; the model and model_metadata.json disagree"
                )
            a = self.actions[index]
            return a.steer_deg, a.speed_mps
        vec = np.asarray(action, dtype=np.float64).reshape(-1)
        if vec.shape != (2,) or not np.all(np.isfinite(vec)):
            raise MetadataError(
                f"continuous action {vec.tolist()} is not two finite numbers (steering, speed)"
            )
        u = np.clip(vec, -1.0, 1.0)
        lo, hi = self.steer_range_deg
        steer = lo + (u[0] + 1.0) * 0.5 * (hi - lo)
        lo, hi = self.speed_range_mps
        speed = lo + (u[1] + 1.0) * 0.5 * (hi - lo)
        return float(steer), float(speed)

    def to_json(self) -> Any:
        """The `action_space` value as DeepRacer writes it."""
        if self.kind == "discrete":
            return [
                {"steering_angle": a.steer_deg, "speed": a.speed_mps, "index": i}
                for i, a in enumerate(self.actions)
            ]
        return {
            "steering_angle": {"low": self.steer_range_deg[0], "high": self.steer_range_deg[1]},
            "speed": {"low": self.speed_range_mps[0], "high": self.speed_range_mps[1]},
        }


def console_default_action_space() -> ActionSpace:
    """DeepRacer console default: steering {-30,-15,0,15,30} x speed {0.4, 0.8} (10 actions)."""
    return discrete_grid(max_steer_deg=30.0, steer_levels=5, max_speed_mps=0.8, speed_levels=2)


def discrete_grid(
    *, max_steer_deg: float, steer_levels: int, max_speed_mps: float, speed_levels: int
) -> ActionSpace:
    """The console's action-space builder: `steer_levels` angles evenly from -max to +max
    (odd counts include 0) times `speed_levels` speeds evenly up to max_speed_mps."""
    if steer_levels < 1 or speed_levels < 1:
        raise MetadataError(
            f"steering levels {steer_levels} / speed levels {speed_levels} must be >= 1"
        )
    steers = (
        [0.0] if steer_levels == 1 else np.linspace(-max_steer_deg, max_steer_deg, steer_levels)
    )
    speeds = [max_speed_mps * (k + 1) / speed_levels for k in range(speed_levels)]
    actions = tuple(
        DiscreteAction(round(float(s), 4), round(float(v), 4)) for s in steers for v in speeds
    )
    space = ActionSpace(kind="discrete", actions=actions)
    _validate_space(space, "action space grid")
    return space


@dataclass(frozen=True)
class ModelMetadata:
    """The parsed `model_metadata.json`: DeepRacer's keys plus openracer's input contract."""

    action_space: ActionSpace = field(default_factory=console_default_action_space)
    """What the policy's outputs mean."""
    training_algorithm: str = "clipped_ppo"
    """'clipped_ppo' or 'sac' (continuous action spaces only; trainer/sac.py)."""
    neural_network: str = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    """DeepRacer network topology name (or OPENRACER_FAST, OPENRACER_LOWRES)."""
    sensor: tuple[str, ...] = ("FRONT_FACING_CAMERA",)
    """Sensors; openracer supports one front-facing camera."""
    version: str = "5"
    """DeepRacer simapp physics version string."""
    control_rate_hz: float = CONTROL_RATE_HZ
    """Steps per second the model was trained at; the car refuses another rate unless told."""
    input_shape: tuple[int, int, int] = OBS_SHAPE
    """Observation shape (height, width, channels), uint8 0-255."""
    preprocessing_version: int = PREPROCESSING_VERSION
    """Version of `vehicle.observation.preprocess` the model was trained with."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further openracer fields (quantization parameters, provenance), kept as written."""

    def with_extra(self, **fields: Any) -> ModelMetadata:
        """A copy with `fields` added to `extra` (e.g. an exported model's quantization)."""
        return replace(self, extra={**self.extra, **fields})

    def to_json(self) -> dict[str, Any]:
        """The dict to write as `model_metadata.json` (DeepRacer keys + an `openracer` key)."""
        openracer = dict(self.extra)
        openracer.update(
            {
                "control_rate_hz": self.control_rate_hz,
                "input_shape": list(self.input_shape),
                "input_dtype": "uint8",
                "preprocessing_version": self.preprocessing_version,
            }
        )
        return {
            "action_space": self.action_space.to_json(),
            "action_space_type": self.action_space.kind,
            "training_algorithm": self.training_algorithm,
            "neural_network": self.neural_network,
            "sensor": list(self.sensor),
            "version": self.version,
            "openracer": openracer,
        }


def load_metadata(path: str | Path) -> ModelMetadata:
    """Read and validate a `model_metadata.json` file."""
    data = read_json(path, what="model metadata", error=MetadataError)
    return parse_metadata(data, source=str(path))


def parse_metadata(data: Any, source: str = "model_metadata") -> ModelMetadata:
    """Validate a dict read from `model_metadata.json` (DeepRacer defaults for missing keys)."""
    if not isinstance(data, dict):
        raise MetadataError(f"{source}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        # DeepRacer's simapp reads the keys it knows and ignores the rest (console exports
        # carry e.g. `preprocess_type`, `regional_parameters`); so does openracer, aloud.
        warnings.warn(
            f"{source}: ignoring {', '.join(unknown)}: key(s) DeepRacer's simulator does not "
            "read either; remove them to silence this warning",
            MetadataWarning,
            stacklevel=1,
        )
    if "action_space" not in data:
        raise MetadataError(f"{source}: 'action_space' is required (a list or a range object)")
    kind = str(data.get("action_space_type", "discrete")).strip().lower()
    if kind not in ("discrete", "continuous"):
        raise MetadataError(
            f"{source}: action_space_type {data['action_space_type']!r} is not "
            "'discrete' or 'continuous'"
        )
    space = _parse_action_space(data["action_space"], kind, source)
    algo = str(data.get("training_algorithm", "clipped_ppo")).strip().lower()
    if algo not in ("clipped_ppo", "sac"):
        raise MetadataError(f"{source}: training_algorithm {algo!r} is not 'clipped_ppo' or 'sac'")
    if algo == "sac" and kind != "continuous":
        raise MetadataError(
            f"{source}: training_algorithm 'sac' needs a continuous action space, not "
            f"{kind!r} (DeepRacer trains SAC on continuous actions only): set "
            '"action_space_type": "continuous" with steering_angle and speed ranges, or '
            '"training_algorithm": "clipped_ppo"'
        )
    network = str(data.get("neural_network", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW")).strip()
    if network not in NEURAL_NETWORKS:
        raise MetadataError(
            f"{source}: neural_network {network!r} is not one of {list(NEURAL_NETWORKS)}"
        )
    sensor_raw = data.get("sensor", ["FRONT_FACING_CAMERA"])
    if isinstance(sensor_raw, str):
        sensor_raw = [sensor_raw]
    if not isinstance(sensor_raw, list) or not all(isinstance(s, str) for s in sensor_raw):
        raise MetadataError(f"{source}: sensor {sensor_raw!r} must be a list of sensor names")
    cameras = [s for s in sensor_raw if s in CAMERA_SENSORS]
    others = [s for s in sensor_raw if s not in CAMERA_SENSORS]
    bad = [s for s in others if s not in LIDAR_SENSORS]
    if bad or len(cameras) != 1:
        raise MetadataError(
            f"{source}: sensor {sensor_raw!r} must hold exactly one camera among "
            f"{list(CAMERA_SENSORS)} (and optionally one of {list(LIDAR_SENSORS)})"
        )
    if others or cameras[0] == "STEREO_CAMERAS":
        raise MetadataError(
            f"{source}: sensor {sensor_raw!r}: openracer models use one front-facing camera; "
            "use ['FRONT_FACING_CAMERA']"
        )
    own = data.get("openracer", {}) or {}
    if not isinstance(own, dict):
        raise MetadataError(f"{source}: 'openracer' must be an object, got {own!r}")
    own = dict(own)
    rate = own.pop("control_rate_hz", CONTROL_RATE_HZ)
    if not isinstance(rate, int | float) or not 1.0 <= float(rate) <= 120.0:
        raise MetadataError(f"{source}: openracer.control_rate_hz {rate!r} must be 1-120 Hz")
    shape = tuple(own.pop("input_shape", OBS_SHAPE))
    if shape != OBS_SHAPE:
        raise MetadataError(
            f"{source}: openracer.input_shape {list(shape)} differs from {list(OBS_SHAPE)}, "
            "the only observation the car produces"
        )
    own.pop("input_dtype", None)
    prep = own.pop("preprocessing_version", PREPROCESSING_VERSION)
    return ModelMetadata(
        action_space=space,
        training_algorithm=algo,
        neural_network=network,
        sensor=tuple(sensor_raw),
        version=str(data.get("version", "5")),
        control_rate_hz=float(rate),
        input_shape=OBS_SHAPE,
        preprocessing_version=int(prep),
        extra=own,
    )


def _number(value: Any, what: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MetadataError(f"{source}: {what} {value!r} is not a number")
    try:
        out = float(value)
    except ValueError as exc:
        raise MetadataError(f"{source}: {what} {value!r} is not a number") from exc
    if not math.isfinite(out):
        raise MetadataError(f"{source}: {what} {value!r} is not finite")
    return out


def _parse_action_space(raw: Any, kind: str, source: str) -> ActionSpace:
    if kind == "discrete":
        if isinstance(raw, dict) and {"steering_angle", "speed"} <= set(raw):
            raise MetadataError(
                f"{source}: action_space holds continuous ranges ({{low, high}} per key) but "
                'action_space_type is "discrete" (the default when it is missing); add '
                '"action_space_type": "continuous"'
            )
        if not isinstance(raw, list) or not raw:
            raise MetadataError(
                f"{source}: a discrete action_space must be a non-empty list of "
                '{"steering_angle": deg, "speed": m/s} objects'
            )
        actions = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict) or "steering_angle" not in entry or "speed" not in entry:
                raise MetadataError(
                    f"{source}: action_space[{i}] = {entry!r} needs 'steering_angle' and 'speed'"
                )
            steer = _number(entry["steering_angle"], f"action_space[{i}].steering_angle", source)
            speed = _number(entry["speed"], f"action_space[{i}].speed", source)
            actions.append(DiscreteAction(steer, speed))
        space = ActionSpace(kind="discrete", actions=tuple(actions))
    else:
        if not isinstance(raw, dict) or "steering_angle" not in raw or "speed" not in raw:
            raise MetadataError(
                f"{source}: a continuous action_space must be "
                '{"steering_angle": {"low", "high"}, "speed": {"low", "high"}}'
            )
        rng = []
        for key in ("steering_angle", "speed"):
            part = raw[key]
            if not isinstance(part, dict) or "low" not in part or "high" not in part:
                raise MetadataError(f"{source}: action_space.{key} = {part!r} needs low and high")
            low = _number(part["low"], f"action_space.{key}.low", source)
            high = _number(part["high"], f"action_space.{key}.high", source)
            if not low < high:
                raise MetadataError(
                    f"{source}: action_space.{key} low {low} must be below high {high}"
                )
            rng.append((low, high))
        space = ActionSpace(kind="continuous", steer_range_deg=rng[0], speed_range_mps=rng[1])
    _validate_space(space, source, strict=False)
    return space


def _validate_space(space: ActionSpace, source: str, *, strict: bool = True) -> None:
    """Steering within +-30 degrees, speeds from 0.1 m/s; `strict` (an action space being
    made, as the console does) also caps speeds at 4 m/s, while a file (strict=False) may
    declare faster ones, which DeepRacer's simulator clips: accepted with a warning."""
    if space.kind == "discrete":
        steers = [a.steer_deg for a in space.actions]
        speeds = [a.speed_mps for a in space.actions]
    else:
        steers = list(space.steer_range_deg)
        speeds = list(space.speed_range_mps)
    for s in steers:
        if abs(s) > MAX_STEER_DEG + 1e-9:
            raise MetadataError(
                f"{source}: steering_angle {s} is beyond +-{MAX_STEER_DEG:g} degrees, the "
                "DeepRacer limit; use an angle within it"
            )
    for v in speeds:
        if not MIN_SPEED_MPS - 1e-9 <= v <= (MAX_SPEED_MPS + 1e-9 if strict else math.inf):
            raise MetadataError(
                f"{source}: speed {v} m/s is outside DeepRacer's {MIN_SPEED_MPS}-{MAX_SPEED_MPS} "
                "m/s; use a speed within it"
            )
    fast = sorted({v for v in speeds if v > MAX_SPEED_MPS + 1e-9})
    if fast:
        where = "speed" if space.kind == "discrete" else "speed.high"
        warnings.warn(
            f"{source}: action_space {where} {', '.join(f'{v:g}' for v in fast)} m/s is above "
            f"DeepRacer's {MAX_SPEED_MPS:g} m/s: the simulator drives it at "
            f"{MAX_SPEED_MPS:g} m/s (as DeepRacer's does) and the car maps the declared speed "
            f"through its calibration; use speeds up to {MAX_SPEED_MPS:g} m/s to silence this warning",
            MetadataWarning,
            stacklevel=1,
        )
