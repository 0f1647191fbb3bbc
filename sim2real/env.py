"""The Gymnasium environment `openracer/Race-v0`: a DeepRacer-style time trial from pixels.

    env = gymnasium.make("openracer/Race-v0", track="reinvent_base",
                         reward_function="my_reward.py", randomize="standard")

Constructor keyword arguments:

- `track`: a catalogue name, a `.npy` route path, a `tracks.track.Track`, or a list/tuple of
  those (one drawn per episode with the env's generator) or an iterator/generator of them
  (the next one taken per episode). Default `"reinvent_like"` (`racer tracks` lists names).
- `reward_function`: a callable `f(params) -> float`, a path to a `.py` file defining
  `reward_function(params)`, or None for `sim2real.reward.centerline_reward`. It is
  validated on sample params from the real track before the env is returned.
- `action_space`: a `model_metadata.json` path, its dict (or just its `action_space` value:
  the discrete list or the continuous ranges), a `vehicle.metadata.ActionSpace`, or None
  for the DeepRacer console default (10 discrete actions). Discrete -> `Discrete(n)`;
  continuous -> `Box(-1, 1, (2,))` rescaled to the ranges as DeepRacer does.
- `randomize`: `"none"`, `"light"`, `"standard"`, `"heavy"`, a dict
  `{"preset": ..., knob: value}` or a `RandomizationConfig` (see `sim2real.randomization`).
- `training` (True): round-robin starts advancing `round_robin_advance` (0.05 = 5 % of the
  lap) per episode; False is evaluation: every episode starts at `start_progress`.
- `start_progress` (0.0): lap fraction of the first start.
- `reverse_direction` (False): drive the track the other way (`params["is_reversed"]`).
- `rate_hz` (15): steps per second of simulated time.
- `max_steps` (10000): steps after which an episode is truncated (DeepRacer caps at 100000).
- `observation`: `"gray"` (Box(0, 255, (120, 160, 1), uint8), default) or `"rgb"` (120x160x3).
- `world`: a `sim2real.world.WorldConfig` (dynamics, camera, battery, base texture style,
  scene lighting).
- `simtrace_dir`: a model folder; every step is then logged as DeepRacer simtrace CSV in
  the DRfC single-worker layout (`training-simtrace/<iteration>-iteration.csv`, or an
  `evaluation-<stamp>/evaluation-simtrace/` folder when `training=False`). Set the
  iteration with `set_simtrace_iteration(i)` (through `envs.call(...)` for vector envs)
  and, when resuming a run, the next episode number with `set_simtrace_episode(n)`.
- `worker_index` (0), `num_workers` (1): this env's episode numbers in the simtrace are
  `local_episode * num_workers + worker_index`, so parallel workers never collide.
- `validate_reward` (True): check the reward function on sample params in the constructor
  (`sim2real.reward_check`: a file is checked on a fresh copy in a fresh interpreter, so the
  module this env calls is untouched and its first call has steps = 2, as in DeepRacer).
- `reward_time_limit_s` (5.0): time limit of one reward call (and of the file's import);
  see `sim2real.reward_call`.
- `reward_source`: the file to name in reward messages when `reward_function` is a copy
  of it (a run's `reward_function.py`).
- `render_mode`: None or `"rgb_array"` (320x240 colour first-person view).

Episode semantics (deepracer-compat 1.3-1.4): `reset` performs DeepRacer's prepare step
(steps = 1, reward 0, status `prepare`) and returns its params in `info["params"]`; each
`step` is one frame. `terminated` on `lap_complete`, `off_track` (no wheel centre on the
road), `reversed` (15 steps of falling progress) or `immobilized`; `truncated` at
`max_steps`. `info["episode_status"]` carries DeepRacer's status string. `reward_fn.calls` and
`reward_fn.seconds` count the reward calls and their wall time. `info["state"]` is the
privileged state an asymmetric critic may see (`sim2real.privileged`), never the policy.
`reset(options={"pose": {"x": m, "y": m, "heading_deg": deg}})` places the car model's
origin (params x, y lie 0.14 m ahead of it); `options={"start_progress": f}` spawns on
the centre line at lap fraction f.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from pathlib import Path
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim2real import params as P
from sim2real import reward_check
from sim2real.camera import CameraConfig
from sim2real.effects import FrameEffects, albumentations_pipeline
from sim2real.errors import ActionError, SimConfigError
from sim2real.laps import LapTracker
from sim2real.lookup import TrackPosition
from sim2real.privileged import privileged_state
from sim2real.randomization import (
    RandomizationConfig,
    draw_battery,
    draw_camera,
    draw_dynamics,
    draw_style,
    resolve_randomization,
)
from sim2real.reward import RewardFunction, load_reward_function
from sim2real.reward_call import DEFAULT_TIME_LIMIT_S, MAX_TIME_LIMIT_S
from sim2real.simtrace import SimtraceWriter, format_row
from sim2real.tracksource import TrackSource
from sim2real.world import World, WorldConfig
from tracks.track import Track
from vehicle.errors import MetadataError
from vehicle.metadata import (
    ActionSpace,
    console_default_action_space,
    load_metadata,
    parse_metadata,
)
from vehicle.observation import CONTROL_RATE_HZ, OBS_SHAPE, preprocess

ENV_ID = "openracer/Race-v0"
DEFAULT_TRACK = "reinvent_like"


def resolve_action_space(spec: Any) -> ActionSpace:
    """A model_metadata.json path or dict, an ActionSpace, or None (console default)."""
    if spec is None:
        return console_default_action_space()
    if isinstance(spec, ActionSpace):
        return spec
    if isinstance(spec, list):  # just the discrete list of model_metadata.json
        return parse_metadata({"action_space": spec}).action_space
    if isinstance(spec, dict):
        if "action_space" not in spec:  # just the continuous ranges
            spec = {"action_space": spec, "action_space_type": "continuous"}
        return parse_metadata(spec).action_space
    if isinstance(spec, str | Path):
        return load_metadata(spec).action_space
    raise MetadataError(
        f"action_space {spec!r}: expected a model_metadata.json path or dict, or an ActionSpace"
    )


class RaceEnv(gym.Env):
    """DeepRacer-style racing from a simulated camera (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(CONTROL_RATE_HZ)}

    def __init__(
        self,
        track: Any = DEFAULT_TRACK,
        reward_function: Any = None,
        action_space: Any = None,
        randomize: Any = "none",
        *,
        training: bool = True,
        round_robin_advance: float = 0.05,
        start_progress: float = 0.0,
        reverse_direction: bool = False,
        rate_hz: float = CONTROL_RATE_HZ,
        max_steps: int = 10_000,
        observation: str = "gray",
        world: WorldConfig | None = None,
        simtrace_dir: str | Path | None = None,
        worker_index: int = 0,
        num_workers: int = 1,
        validate_reward: bool = True,
        reward_time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        reward_source: str | None = None,
        render_mode: str | None = None,
    ) -> None:
        if observation not in ("gray", "rgb"):
            raise SimConfigError(f"observation {observation!r} is not 'gray' or 'rgb'")
        if render_mode not in (None, "rgb_array"):
            raise SimConfigError(f"render_mode {render_mode!r} is not None or 'rgb_array'")
        if not 0 <= worker_index < num_workers:
            raise SimConfigError(f"worker_index {worker_index} must be in [0, {num_workers})")
        if max_steps < 2:
            raise SimConfigError(f"max_steps {max_steps} must be at least 2")
        self.render_mode = render_mode
        self.training = training
        self.round_robin_advance = float(round_robin_advance)
        self.start_progress = float(start_progress)
        self.reverse_direction = bool(reverse_direction)
        self.max_steps = int(max_steps)
        self.observation_kind = observation
        self.worker_index = worker_index
        self.num_workers = num_workers
        base = world or WorldConfig()
        if rate_hz != base.rate_hz:
            base = dataclasses.replace(base, rate_hz=rate_hz)
        self.base_world = base
        self.randomization: RandomizationConfig = resolve_randomization(randomize)
        self.action_def = resolve_action_space(action_space)
        if not 0 < reward_time_limit_s <= MAX_TIME_LIMIT_S:
            raise SimConfigError(
                f"reward_time_limit_s {reward_time_limit_s} must be above 0 and at most "
                f"{MAX_TIME_LIMIT_S:g}"
            )
        self.reward_fn: RewardFunction = load_reward_function(
            reward_function, time_limit_s=reward_time_limit_s, source=reward_source
        )
        self.tracks = TrackSource(track)

        self._discrete: list[tuple[float, float]] | None = None
        if self.action_def.kind == "discrete":
            self._discrete = [(a.steer_deg, a.speed_mps) for a in self.action_def.actions]
            self.action_space = spaces.Discrete(self.action_def.n)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        shape = OBS_SHAPE if observation == "gray" else (OBS_SHAPE[0], OBS_SHAPE[1], 3)
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.metadata = {**self.metadata, "render_fps": int(round(base.rate_hz))}

        self._worlds: dict[int, tuple[Track, World]] = {}
        self._pipeline = albumentations_pipeline(self.randomization)
        self._texture_pool: dict[int, list[Any]] = {}
        self._camera_pool: list[CameraConfig] = []
        self._episode_index = -1
        self._trace_offset = 0
        self._episode_ready = False
        self.simtrace: SimtraceWriter | None = None
        if simtrace_dir is not None:
            self.simtrace = SimtraceWriter(
                simtrace_dir, phase="training" if training else "evaluation"
            )
        self.laps = LapTracker()
        """Progress, lap completion and lap times of the current episode."""
        self.world = self._world_for(self.tracks.first())
        self._frame_shape = (base.camera.height_px, base.camera.width_px) + (
            (3,) if observation == "rgb" else ()
        )
        self.effects = FrameEffects(
            np.random.default_rng(0), RandomizationConfig(), self._frame_shape, None
        )
        if validate_reward and reward_function is not None:
            reward_check.check(self.reward_fn, self.sample_params())

    @property
    def progress(self) -> P.EpisodeProgress:
        """DeepRacer's progress and termination counters of the current episode."""
        return self.laps.progress

    # -- worlds and tracks ------------------------------------------------------------
    def _world_for(self, track: Track) -> World:
        """The (cached) world of a track, driven in reverse when asked."""
        hit = self._worlds.get(id(track))
        if hit is not None and hit[0] is track:
            return hit[1]
        if len(self._worlds) >= 8:
            self._worlds.pop(next(iter(self._worlds)))
            self._texture_pool.clear()
        world = World(track.reversed() if self.reverse_direction else track, self.base_world)
        self._worlds[id(track)] = (track, world)
        return world

    # -- params -----------------------------------------------------------------------
    def _params(
        self,
        steer_deg: float,
        speed_mps: float,
        wheels: list[bool],
        off_track: bool,
        pos: TrackPosition | None = None,
    ) -> dict[str, Any]:
        return self.world.params(
            self.progress,
            steer_deg,
            speed_mps,
            is_reversed=self.reverse_direction,
            position=pos,
            wheels=wheels,
            off_track=off_track,
        )

    def sample_params(self) -> list[dict[str, Any]]:
        """Params from the real track at spread-out poses (centre, near borders, off track,
        backwards) with the action space's extreme commands: the reward-function check."""
        w = self.world
        saved = w.pose
        out = []
        actions = (
            [(a.steer_deg, a.speed_mps) for a in self.action_def.actions]
            if self.action_def.kind == "discrete"
            else [
                (self.action_def.steer_range_deg[0], self.action_def.speed_range_mps[0]),
                (self.action_def.steer_range_deg[1], self.action_def.speed_range_mps[1]),
            ]
        )
        n = 0
        for nd in np.linspace(0.0, 1.0, 9, endpoint=False):
            x, y, th = w.centerline_pose(float(nd))
            width = w.position().track_width_m if n else 0.76
            for lateral in (0.0, 0.35, -0.35, 0.8):
                for backwards in (False, True):
                    h = th + (math.pi if backwards else 0.0)
                    ox = x - math.sin(th) * lateral * width
                    oy = y + math.cos(th) * lateral * width
                    w.place(ox, oy, h)
                    self.progress.reset(w.lookup.position(ox, oy).ndist)
                    self.progress.update(w.position().ndist, None)
                    self.progress.steps = 2 + n % 40  # DeepRacer's first call: steps 2
                    wheels = w.wheels_on_road()
                    steer, speed = actions[n % len(actions)]
                    out.append(self._params(steer, speed, wheels, not any(wheels)))
                    n += 1
        w.place(*saved)
        self.progress.reset(0.0)
        return out

    # -- gymnasium API ----------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        if self.simtrace is not None:
            self.simtrace.flush()
        if seed is not None:
            # Same seed, same episode: forget pools and the round-robin position.
            self._texture_pool.clear()
            self._camera_pool.clear()
            self._episode_index = -1
        self._episode_index += 1
        options = dict(options or {})
        unknown = sorted(set(options) - {"pose", "start_progress"})
        if unknown:
            raise SimConfigError(
                f"reset options {unknown} are unknown; use 'pose' or 'start_progress'"
            )
        track = self.tracks.draw(rng)
        self.world = w = self._world_for(track)
        self._draw_randomization(rng, track)

        if "pose" in options:
            pose = options["pose"]
            try:
                x, y, hd = float(pose["x"]), float(pose["y"]), float(pose["heading_deg"])
            except (KeyError, TypeError, ValueError) as exc:
                raise SimConfigError(
                    f"reset option pose {pose!r} needs numbers x, y (m) and heading_deg"
                ) from exc
            w.place(x, y, math.radians(hd))
            start_ndist = w.lookup.position(x, y).ndist
        else:
            if "start_progress" in options:
                start = float(options["start_progress"])
            elif self.training:
                start = self.start_progress + self._episode_index * self.round_robin_advance
            else:
                start = self.start_progress
            start_ndist = start % 1.0 if w.track.closed else min(max(start, 0.0), 1.0)
            w.place_on_centerline(start_ndist)
        s = w.dynamics.state
        self.laps.reset(start_ndist, (s.x_m, s.y_m), s.time_s)
        self._local_episode = self._episode_index
        # DeepRacer's prepare step: params of the starting pose, reward 0.
        pos = w.position()
        self.laps.prepare(pos.ndist)
        wheels = w.wheels_on_road()
        params = self._params(0.0, 0.0, wheels, False, pos)
        self._episode_ready = True
        self._trace(params, "-1", 0.0, False, P.PREPARE)
        info = {"params": params, "episode_status": P.PREPARE, "state": self._state(pos)}
        return self._observe(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._episode_ready:
            raise SimConfigError("step() called before reset() or after the episode ended")
        if self._discrete is not None:
            try:
                index = operator.index(action)
            except TypeError:
                arr = np.asarray(action)
                index = int(arr) if arr.size == 1 and np.issubdtype(arr.dtype, np.integer) else -1
            if not 0 <= index < len(self._discrete):
                raise ActionError(
                    f"action {action!r} is not in the action space {self.action_space}; "
                    "the policy and model_metadata.json disagree"
                )
            steer, speed = self._discrete[index]
            label = str(index)
        else:
            vec = np.asarray(action, dtype=np.float64).reshape(-1)
            if vec.shape != (2,) or not np.all(np.isfinite(vec)):
                raise ActionError(
                    f"action {action!r} is not two finite numbers in [-1, 1] (steering, speed)"
                )
            steer, speed = self.action_def.decode(vec)
            label = f"[{steer:.2f} {speed:.2f}]"
        w = self.world
        w.step(steer, speed)
        s = w.dynamics.state
        pos = w.position()
        wheels = w.wheels_on_road()
        status = self.laps.update(pos.ndist, (s.x_m, s.y_m), wheels, s.time_s)
        params = self._params(steer, speed, wheels, status == P.OFF_TRACK, pos)
        reward = self.reward_fn(params)
        terminated = status != P.IN_PROGRESS
        truncated = not terminated and self.progress.steps >= self.max_steps
        if terminated or truncated:
            self._episode_ready = False
        self._trace(params, label, reward, terminated or truncated, status)
        info = {"params": params, "episode_status": status, "state": self._state(pos)}
        return self._observe(), reward, terminated, truncated, info

    def _state(self, pos: TrackPosition) -> np.ndarray:
        """The privileged state for an asymmetric critic (`sim2real.privileged`)."""
        return privileged_state(self.world, pos, self.progress)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        big = self.world.camera.resized(320, 240)
        return cv2.cvtColor(self.world.render(color=True, camera=big), cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self.simtrace is not None:
            self.simtrace.flush()
        super().close()

    def continue_lap(self) -> None:
        """After `lap_complete`, keep the episode going for another lap from the current
        pose (continuous evaluation, videos of several laps); progress restarts at 0."""
        if self.progress.status(self.world.wheels_on_road()) != P.LAP_COMPLETE:
            raise SimConfigError("continue_lap() is only allowed right after lap_complete")
        self.laps.next_lap()  # as the simapp: same start line, previous progress 0
        self._episode_ready = True

    # -- trainer hooks ----------------------------------------------------------------
    def set_simtrace_iteration(self, iteration: int) -> None:
        """Send further simtrace rows to `<iteration>-iteration.csv`."""
        if self.simtrace is not None:
            self.simtrace.set_iteration(iteration)

    def set_simtrace_episode(self, next_local_episode: int) -> None:
        """Number the next episode's simtrace rows as if `next_local_episode` episodes had
        run in this worker (resuming a run); the round-robin start is not affected."""
        self._trace_offset = int(next_local_episode) - (self._episode_index + 1)

    # -- internals --------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        color = self.observation_kind == "rgb"
        frame = self.world.render(color=color)
        frame = self.effects.apply(frame, self.np_random)
        if color:
            if frame.shape[:2] != OBS_SHAPE[:2]:
                frame = cv2.resize(frame, OBS_SHAPE[1::-1], interpolation=cv2.INTER_AREA)
            return self.base_world.lighting.apply(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        return self.base_world.lighting.apply(preprocess(frame))

    def _draw_randomization(self, rng: np.random.Generator, track: Track) -> None:
        cfg = self.randomization
        w = self.world
        base = self.base_world
        if not cfg.enabled:
            return
        pool = self._texture_pool.setdefault(id(track), [])
        if len(pool) < cfg.texture_pool_size or rng.random() < cfg.new_texture_prob:
            style = draw_style(rng, base.style, cfg)
            w.scene.repaint(style, rng)
            snap = (
                w.scene.atlas_bgr.copy(),
                w.scene.atlas_gray.copy(),
                w.scene.floor_bgr,
                w.scene.floor_gray,
            )
            if len(pool) < cfg.texture_pool_size:
                pool.append(snap)
            else:
                pool[int(rng.integers(len(pool)))] = snap
        else:
            snap = pool[int(rng.integers(len(pool)))]
            np.copyto(w.scene.atlas_bgr, snap[0])
            np.copyto(w.scene.atlas_gray, snap[1])
            w.scene.floor_bgr, w.scene.floor_gray = snap[2], snap[3]
        if len(self._camera_pool) < cfg.camera_pool_size:
            cam = draw_camera(rng, base.camera, cfg)
            self._camera_pool.append(cam)
        else:
            cam = self._camera_pool[int(rng.integers(len(self._camera_pool)))]
        w.set_camera(cam)
        w.set_physics(draw_dynamics(rng, base.dynamics, cfg), draw_battery(rng, base.battery, cfg))
        self.effects = FrameEffects(rng, cfg, self._frame_shape, self._pipeline)

    def _trace(
        self, params: dict[str, Any], action: str, reward: float, done: bool, status: str
    ) -> None:
        if self.simtrace is None:
            return
        self.simtrace.add(
            format_row(
                episode=(self._local_episode + self._trace_offset) * self.num_workers
                + self.worker_index,
                steps=params["steps"],
                x=params["x"],
                y=params["y"],
                yaw_deg=params["heading"],
                steer_deg=params["steering_angle"],
                throttle_mps=params["speed"],
                action=action,
                reward=reward,
                done=done,
                all_wheels_on_track=params["all_wheels_on_track"],
                progress=params["progress"],
                closest_waypoint=P.closest_waypoint(params),
                track_len_m=params["track_length"],
                tstamp_s=params["sim_time"],
                episode_status=status,
            )
        )
        if done:
            self.simtrace.flush()
