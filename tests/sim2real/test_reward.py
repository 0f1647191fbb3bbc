"""Bad user reward functions are caught before a run starts, with file, line and params."""

from __future__ import annotations

import textwrap

import gymnasium as gym
import pytest

import sim2real  # noqa: F401
from sim2real.errors import RewardFunctionError
from sim2real.reward import centerline_reward, load_reward_function

BAD = {
    "raises": (
        """
        def reward_function(params):
            speed = params["speed"]
            return 1.0 / (speed - speed)
        """,
        "line 4",
        "ZeroDivisionError",
    ),
    "missing_key": (
        """
        def reward_function(params):
            return params["no_such_key"]
        """,
        "line 3",
        "KeyError",
    ),
    "returns_none": (
        """
        def reward_function(params):
            if params["all_wheels_on_track"]:
                return 1.0
        """,
        "line 3",  # the `if` the function fell through
        "ends without a return",
    ),
    "returns_string": (
        """
        def reward_function(params):
            return "1.0"
        """,
        "line 3",
        "not a number",
    ),
    "returns_nan": (
        """
        import math
        def reward_function(params):
            if params["distance_from_center"] > 0.05:
                return math.nan
            return 1.0
        """,
        "line 5",
        "not finite",
    ),
    "returns_inf": (
        """
        def reward_function(params):
            return float("inf")
        """,
        "line 3",
        "not finite",
    ),
    "too_large": (
        """
        def reward_function(params):
            return 1e6 * params["progress"] + 1e6
        """,
        "line 3",
        "outside DeepRacer's",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_reward_functions_fail_at_construction(tmp_path, name):
    code, line, what = BAD[name]
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(code))
    with pytest.raises(RewardFunctionError) as info:
        gym.make("openracer/Race-v0", reward_function=str(path))
    msg = str(info.value)
    assert str(path) in msg
    assert line in msg
    assert what in msg
    assert "params were {" in msg and "'progress'" in msg
    assert info.value.exit_code == 2


def test_syntax_error_and_missing_function(tmp_path):
    bad = tmp_path / "syntax.py"
    bad.write_text("def reward_function(params)\n    return 1.0\n")
    with pytest.raises(RewardFunctionError, match=r"syntax.py line 1: syntax error"):
        load_reward_function(str(bad))
    empty = tmp_path / "empty.py"
    empty.write_text("def reward(params):\n    return 1.0\n")
    with pytest.raises(RewardFunctionError, match="no function named reward_function"):
        load_reward_function(str(empty))
    with pytest.raises(RewardFunctionError, match="no such reward function file"):
        load_reward_function(str(tmp_path / "absent.py"))


def test_good_file_and_callable_and_default(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(
        "def reward_function(params):\n"
        "    params['waypoints'].clear()  # mutating the copy must not hurt the env\n"
        "    return float(params['all_wheels_on_track'])\n"
    )
    env = gym.make("openracer/Race-v0", reward_function=str(good))
    env.reset(seed=0)
    _, r, *_, info = env.step(5)
    assert r == 1.0 and len(info["params"]["waypoints"]) > 10
    env2 = gym.make("openracer/Race-v0", reward_function=lambda p: p["progress"] / 100.0)
    env2.reset(seed=0)
    _, r2, *_ = env2.step(5)
    assert 0.0 < r2 < 0.1
    assert (
        centerline_reward(
            {
                "all_wheels_on_track": True,
                "is_offtrack": False,
                "track_width": 1.0,
                "distance_from_center": 0.0,
            }
        )
        == 1.0
    )


def test_live_misbehaviour_is_reported_too(tmp_path):
    path = tmp_path / "late.py"
    path.write_text(
        "def reward_function(params):\n"
        "    if params['steps'] > 1000:\n"
        "        return float('nan')\n"
        "    return 1.0\n"
    )
    env = gym.make("openracer/Race-v0", reward_function=str(path), max_steps=5000).unwrapped
    env.reset(seed=0)
    env.progress.steps = 1000
    with pytest.raises(RewardFunctionError, match=r"late.py line 3 returned nan"):
        env.step(4)
