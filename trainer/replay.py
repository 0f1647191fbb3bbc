"""SAC's replay buffer: whole episodes' transitions over one ring of uint8 frames.

A transition (s, a, r, s', done) shares its frames with its neighbours: an episode of n
steps stores n + 1 frames (every observation an action was chosen on, then the final
observation) and n transitions pointing into them, so the buffer holds about one 19.2 kB
frame per transition (120x160x1 uint8), not two. `capacity` frames cost `capacity` *
19.2 kB: 50 000 frames are 0.96 GB.

Frames are written in order, so when the ring wraps the transitions whose first frame was
overwritten are always the oldest ones: the valid transitions are a contiguous run of the
transition ring, and sampling draws uniformly from it.

`done` is true only where an episode *terminated* (off track, lap complete, reversed...);
a truncated last step (the time limit) bootstraps from its real final observation.

NumPy only; the replay buffer is not saved with checkpoints (0.5-1 GB per save):
`--resume` starts with an empty one that refills from the next episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.episodes import Episode
from trainer.errors import TrainConfigError
from vehicle.observation import OBS_SHAPE


@dataclass
class Sample:
    """A minibatch of transitions."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray
    """1.0 where the episode terminated at this step (no bootstrap), else 0.0."""


class ReplayBuffer:
    """Transitions of whole episodes over a ring of `capacity` frames (module docstring)."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...] = OBS_SHAPE):
        if capacity < 2:
            raise TrainConfigError(f"--replay-frames {capacity} must be at least 2")
        self.capacity = capacity
        self.frames = np.zeros((capacity, *obs_shape), np.uint8)
        self.obs_id = np.zeros(capacity, np.int64)
        """Global frame number of each transition's observation (s' is the next frame)."""
        self.actions = np.zeros((capacity, 2), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.frames_written = 0
        self.transitions_written = 0
        self.first_valid = 0
        """Global number of the oldest transition whose frames are still in the ring."""

    def __len__(self) -> int:
        return self.transitions_written - self.first_valid

    def add_episode(self, episode: Episode) -> None:
        """Store a training episode (its observations, actions, rewards, how it ended)."""
        n = len(episode.rewards)
        if n == 0:
            return
        if episode.final_obs is None or len(episode.obs) != n:
            raise ValueError(f"episode {episode.index}: needs every observation and the final one")
        if n + 1 > self.capacity:
            raise TrainConfigError(
                f"--replay-frames {self.capacity} cannot hold one episode of {n} steps; "
                "raise it above --max-episode-steps"
            )
        first = self.frames_written
        frames = [*episode.obs, episode.final_obs]
        slots = (first + np.arange(n + 1)) % self.capacity
        self.frames[slots] = np.asarray(frames, np.uint8).reshape(n + 1, *self.frames.shape[1:])
        self.frames_written += n + 1
        t = (self.transitions_written + np.arange(n)) % self.capacity
        self.obs_id[t] = first + np.arange(n)
        self.actions[t] = np.asarray(episode.actions, np.float32).reshape(n, 2)
        self.rewards[t] = np.asarray(episode.rewards, np.float32)
        self.done[t] = 0.0
        if episode.terminated:
            self.done[t[-1]] = 1.0
        self.transitions_written += n
        # Drop the oldest transitions whose observation frame was just overwritten (their
        # next frame is newer, so checking the first frame is enough).
        oldest_frame = self.frames_written - self.capacity
        self.first_valid = max(self.first_valid, self.transitions_written - self.capacity)
        while (
            self.first_valid < self.transitions_written
            and self.obs_id[self.first_valid % self.capacity] < oldest_frame
        ):
            self.first_valid += 1

    def sample(self, batch: int, rng: np.random.Generator) -> Sample:
        """`batch` transitions drawn uniformly (with replacement) from the valid ones."""
        if len(self) == 0:
            raise ValueError("sampling an empty replay buffer")
        picks = rng.integers(self.first_valid, self.transitions_written, size=batch)
        t = picks % self.capacity
        ids = self.obs_id[t]
        return Sample(
            obs=self.frames[ids % self.capacity],
            actions=self.actions[t],
            rewards=self.rewards[t],
            next_obs=self.frames[(ids + 1) % self.capacity],
            done=self.done[t],
        )
