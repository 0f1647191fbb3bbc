"""Bad user reward functions are caught before a run starts, with file, line and params."""

from __future__ import annotations

import sys
import textwrap
import time

import gymnasium as gym
import pytest

import sim2real  # noqa: F401
from sim2real.errors import RewardFunctionError
from sim2real.reward import centerline_reward, load_reward_function, module_name

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


# Hostile and careless files (issue 20): name -> (file text, fragments of the message).
# Each is fed to the environment as a user would (`gym.make(..., reward_function=path)`,
# checked in a fresh interpreter) with a 0.5 s per-call limit; add a row for a new probe.
HOSTILE = {
    "exit_in_call": (
        """
        import sys
        def reward_function(params):
            sys.exit(3)
        """,
        ["line 4 called sys.exit(3) (SystemExit)", "must not end the process"],
    ),
    "exit_on_import": (
        """
        raise SystemExit(0)
        def reward_function(params):
            return 1.0
        """,
        ["line 2: importing the file called sys.exit(0) (SystemExit)"],
    ),
    "interrupt_in_call": (
        """
        def reward_function(params):
            raise KeyboardInterrupt
        """,
        ["line 3 raised KeyboardInterrupt"],
    ),
    "endless_loop": (
        """
        def reward_function(params):
            while True:
                pass
        """,
        ["ran longer than the 0.5 s time limit", "--reward-time-limit-s"],
    ),
    "endless_loop_on_import": (
        """
        while True:
            pass
        """,
        ["importing the file ran longer than the 0.5 s time limit"],
    ),
    "no_parameter": (
        """
        def reward_function():
            return 1.0
        """,
        [
            "line 2: reward_function() cannot be called with one argument",
            "def reward_function(params):",
        ],
    ),
    "two_parameters": (
        """
        def reward_function(params, extra):
            return 1.0
        """,
        ["reward_function(params, extra) cannot be called with one argument"],
    ),
    "returns_bool": (
        """
        def reward_function(params):
            return params["all_wheels_on_track"]
        """,
        ["line 3 returned", "which is a bool, not a number"],
    ),
    "kills_its_process": (
        """
        import os
        def reward_function(params):
            os._exit(3)
        """,
        ["fresh Python process ended with exit code 3"],
    ),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_reward_files_are_named_errors(tmp_path, name):
    code, fragments = HOSTILE[name]
    path = tmp_path / f"{name}.py"
    path.write_text("\n" + textwrap.dedent(code).lstrip("\n"))
    with pytest.raises(RewardFunctionError) as info:
        gym.make("openracer/Race-v0", reward_function=str(path), reward_time_limit_s=0.5)
    msg = str(info.value)
    assert str(path) in msg
    for fragment in fragments:
        assert fragment in msg, msg
    assert "sim2real/reward" not in msg
    assert info.value.exit_code == 2


@pytest.mark.timeout(60)
def test_a_hang_the_limit_cannot_stop_ends_the_check(tmp_path, monkeypatch):
    from sim2real import reward_check

    path = tmp_path / "swallow.py"
    path.write_text(
        "import time\n"
        "def reward_function(params):\n"
        "    while True:\n"
        "        try:\n"
        "            time.sleep(10)\n"
        "        except BaseException:\n"
        "            pass\n"
    )
    monkeypatch.setattr(reward_check, "STARTUP_S", 3.0)
    rf = load_reward_function(str(path), time_limit_s=0.2)
    start = time.monotonic()
    with pytest.raises(RewardFunctionError, match="the check did not finish in"):
        reward_check.check(rf, [{"steps": 2}])
    assert time.monotonic() - start < 10


def test_a_bad_value_is_found_with_one_call(tmp_path):
    """The function appends to a file on every call; one bad return is one line."""
    log = tmp_path / "calls.txt"
    path = tmp_path / "side_effect.py"
    path.write_text(
        "def reward_function(params):\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        "        f.write('call\\n')\n"
        "    return None\n"
    )
    with pytest.raises(RewardFunctionError, match=r"line 4 returned None"):
        gym.make("openracer/Race-v0", reward_function=str(path))
    assert log.read_text() == "call\n"


def test_module_that_refers_to_itself_loads(tmp_path):
    """Issue 16 bug 1: state kept on `sys.modules[__name__]`, as community files do."""
    path = tmp_path / "self_ref.py"
    path.write_text(
        "import sys\n"
        "_me = sys.modules[__name__]\n"
        "_me.calls = 0\n"
        "def reward_function(params):\n"
        "    me = sys.modules[__name__]\n"
        "    me.calls += 1\n"
        "    return float(me.calls)\n"
    )
    env = gym.make("openracer/Race-v0", reward_function=str(path))
    env.reset(seed=0)
    _, r1, *_ = env.step(5)
    _, r2, *_ = env.step(5)
    assert (r1, r2) == (1.0, 2.0)  # the check's calls happened elsewhere
    assert module_name(str(path)) in sys.modules
    assert module_name(str(path)) == module_name(str(path.resolve()))


def test_training_module_is_untouched_and_first_call_is_steps_2(tmp_path):
    """Issue 16 bug 2: the check runs on a fresh copy in a fresh interpreter; the env's
    module has never been called, and its first call is DeepRacer's (steps 2)."""
    path = tmp_path / "stateful.py"
    path.write_text(
        "seen = []\n"
        "def reward_function(params):\n"
        "    seen.append(params['steps'])\n"
        "    if len(seen) == 1 and params['steps'] == 1:\n"
        "        return 'first call had steps 1'\n"
        "    return 1.0\n"
    )
    env = gym.make("openracer/Race-v0", reward_function=str(path)).unwrapped
    module = sys.modules[module_name(str(path))]
    assert module.seen == []
    env.reset(seed=0)
    env.step(5)
    assert module.seen == [2]


def test_errors_name_the_users_file_not_the_copy(tmp_path):
    user = tmp_path / "mine.py"
    user.write_text("def reward_function(params):\n    return 1.0 / (params['steps'] - 3)\n")
    copy = tmp_path / "run" / "reward_function.py"
    copy.parent.mkdir()
    copy.write_bytes(user.read_bytes())
    env = gym.make(
        "openracer/Race-v0",
        reward_function=str(copy),
        reward_source=str(user),
        validate_reward=False,
    ).unwrapped
    env.reset(seed=0)
    with pytest.raises(RewardFunctionError) as info:
        env.step(5)  # steps 2
        env.step(5)  # steps 3: division by zero
    msg = str(info.value)
    assert f"reward function {user} line 2 raised ZeroDivisionError" in msg
    assert "run/reward_function.py" not in msg
