"""A small stand-in for `openracer/Race-v0` with the same interface: 120x160x1 uint8 camera
images, DeepRacer action spaces from metadata, `info["params"]`/`info["episode_status"]`,
`reset(options={"start_progress": f})`. The "track" is a straight-ish corridor: the image
shows the road as a bright band whose position encodes the car's lateral offset and
heading, so a policy can learn to steer from pixels in a few hundred steps.

Registered as `FakeRace-v0`; use it as `env_id="tests.trainer.fake_env:FakeRace-v0"`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim2real.reward import load_reward_function
from vehicle.metadata import ModelMetadata, parse_metadata

CONTROL_HZ = 15.0


class FakeRace(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        track="fake",
        action_space=None,
        randomize="none",
        reward_function=None,
        lap_steps: int = 60,
        training: bool = True,
        reward_time_limit_s: float = 5.0,
        reward_source: str | None = None,
        validate_reward: bool = True,
    ):
        md = parse_metadata(action_space) if isinstance(action_space, dict) else ModelMetadata()
        self.space = md.action_space
        self.lap_steps = lap_steps
        self.observation_space = spaces.Box(0, 255, (120, 160, 1), np.uint8)
        if self.space.kind == "discrete":
            self.action_space = spaces.Discrete(self.space.n)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.reward_fn = None
        if reward_function is not None:  # loaded and guarded as the real env does
            self.reward_fn = load_reward_function(
                reward_function, time_limit_s=reward_time_limit_s, source=reward_source
            )
        self._cols = np.arange(160)[None, :]
        self._rows = np.arange(120)[:, None]

    def _obs(self) -> np.ndarray:
        # Road centre per image row: shifted by the offset, tilted by the heading error.
        centre = 80 - 45 * self.d - 30 * self.h * (119 - self._rows) / 119
        img = np.where(np.abs(self._cols - centre) < 25, 200, 40).astype(np.uint8)
        return img[:, :, None]

    def _params(self) -> dict:
        return {
            "x": float(self.progress / 10),
            "y": float(self.d),
            "heading": float(np.degrees(self.h)),
            "progress": float(min(self.progress - self.start, 100.0)),
            "steps": float(self.steps),
            "distance_from_center": float(abs(self.d) * 0.5),
            "all_wheels_on_track": bool(abs(self.d) < 0.8),
            "track_length": 10.0,
            "closest_waypoints": [0, 1],
            "waypoints": [(0.0, 0.0), (1.0, 0.0)],
            "speed": float(self.speed),
            "steering_angle": float(self.steer),
            "sim_time": float(self.steps / CONTROL_HZ),
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        self.start = 100.0 * float(options.get("start_progress", 0.0))
        self.progress = self.start
        self.d = float(self.np_random.uniform(-0.3, 0.3))
        self.h = float(self.np_random.uniform(-0.2, 0.2))
        self.steps, self.speed, self.steer = 1, 0.0, 0.0
        return self._obs(), {"params": self._params(), "episode_status": "prepare"}

    def step(self, action):
        self.steer, self.speed = self.space.decode(action)
        self.steps += 1
        self.h += self.steer / 30.0 * 0.25 + float(self.np_random.normal(0, 0.03))
        self.h = float(np.clip(self.h, -1.0, 1.0))
        self.d += self.h * 0.25
        self.progress += 100.0 / self.lap_steps * (self.speed / 0.8)
        params = self._params()
        status = "in_progress"
        terminated = False
        if params["progress"] >= 100.0:
            status, terminated = "lap_complete", True
        elif abs(self.d) > 1.0:
            status, terminated = "off_track", True
        params["is_offtrack"] = status == "off_track"
        reward = self.reward_fn(dict(params)) if self.reward_fn else float(1.0 - abs(self.d))
        info = {"params": params, "episode_status": status}
        return self._obs(), reward, terminated, False, info


gym.register("FakeRace-v0", entry_point=FakeRace)
