"""The privileged state an asymmetric critic sees (`sim2real.privileged`): every step's
`info["state"]` describes the car against the track as DeepRacer's params do, and shows
what domain randomization hid from the camera."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import sim2real  # noqa: F401
from sim2real.privileged import STATE_FEATURES, STATE_SIZE

F = {name: i for i, name in enumerate(STATE_FEATURES)}
STRAIGHT_SLOW = 4
"""Action 4 of the default action space: steering 0, 0.4 m/s."""


def _env(**kwargs):
    return gym.make("openracer/Race-v0", track="reinvent_like", disable_env_checker=True, **kwargs)


def test_reset_on_the_centre_line_facing_along_it():
    env = _env()
    _, info = env.reset(seed=0)
    state = info["state"]
    assert state.shape == (STATE_SIZE,) and state.dtype == np.float32
    assert abs(state[F["offset"]]) < 0.05
    assert state[F["heading_error_cos"]] > 0.99 and state[F["speed"]] == 0.0
    assert state[F["grip"]] == 1.0 and state[F["speed_gain"]] == 1.0


@pytest.mark.parametrize("lateral", [0.25, -0.25])
def test_offset_sign_and_size_match_deepracer_params(lateral):
    env = _env()
    env.reset(seed=0)
    w = env.unwrapped.world
    x, y, th = w.centerline_pose(0.3)
    # `lateral` metres to the left of the centre line (negative: right); the reference
    # point sits 0.14 m ahead of the origin, on the same side.
    w.place(x - math.sin(th) * lateral, y + math.cos(th) * lateral, th)
    _, _, _, _, info = env.step(STRAIGHT_SLOW)
    params, state = info["params"], info["state"]
    half = params["track_width"] / 2
    assert params["is_left_of_center"] == (lateral > 0)
    assert state[F["offset"]] == pytest.approx(
        math.copysign(params["distance_from_center"], lateral) / half, abs=0.02
    )


def test_the_road_ahead_turns_the_way_the_centre_line_does():
    env = _env()
    env.reset(seed=0)
    w = env.unwrapped.world
    g = w.geometry
    # the lap fraction where the centre line turns left hardest within the next metre
    arcs = np.linspace(0, g.length_m, 400, endpoint=False)
    turn = [(g.heading_at(np.array([a + 1.0]))[0] - g.heading_at(np.array([a]))[0]) for a in arcs]
    turn = [(t + math.pi) % (2 * math.pi) - math.pi for t in turn]
    k = int(np.argmax(np.abs(turn)))
    w.place(*w.centerline_pose(arcs[k] / g.length_m))
    _, _, _, _, info = env.step(STRAIGHT_SLOW)
    assert np.sign(info["state"][F["turn_1m"]]) == np.sign(turn[k])
    assert abs(info["state"][F["turn_1m"]]) > 0.05


def test_randomized_physics_shows_in_the_state():
    env = _env(randomize="standard")
    seen = set()
    for seed in range(6):
        _, info = env.reset(seed=seed)
        seen.add(tuple(np.round(info["state"][[F["grip"], F["speed_gain"]]], 4)))
    assert len(seen) > 1
