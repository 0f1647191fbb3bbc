"""The guarded call: the time limit stops a hang, exits and interrupts become named errors,
return values are judged by one rule, and lines are found without calling again."""

from __future__ import annotations

import math
import signal
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim2real.errors import RewardFunctionError
from sim2real.reward import REWARD_LIMIT, RewardFunction
from sim2real.reward_call import CallOverrun, return_lines, time_limit, where

PARAMS = {"steps": 2, "progress": 1.0, "waypoints": [(0.0, 0.0), (1.0, 0.0)]}


@pytest.mark.timeout(20)
def test_time_limit_stops_an_endless_loop_and_disarms():
    start = time.monotonic()
    with pytest.raises(CallOverrun), time_limit(0.2):
        while True:
            pass
    assert time.monotonic() - start < 2.0
    with time_limit(0.05):
        pass
    time.sleep(0.1)  # an alarm left armed would fire here


@pytest.mark.timeout(20)
def test_an_outer_alarm_survives_the_limit():
    """pytest-timeout and the like arm SIGALRM too: it is put back, less the time used."""
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(time.monotonic()))
    try:
        start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with time_limit(0.2):
            time.sleep(0.1)
        assert 0.3 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.4
        time.sleep(1.0)
        assert len(fired) == 1 and 0.45 < fired[0] - start < 0.9
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def hang(params):
    while True:
        pass


def leave(params):
    raise SystemExit(3)


def interrupt(params):
    raise KeyboardInterrupt


def swallow_then_fail(params):
    try:
        raise ValueError("inner")
    except Exception:
        pass
    return 1.0


# name -> (function, time limit, fragments of the message)
STOPPED = {
    "endless loop": (hang, 0.2, ["ran longer than the 0.2 s time limit", "--reward-time-limit-s"]),
    "sys.exit": (leave, 5.0, ["called sys.exit(3) (SystemExit)", "must not end the process"]),
    "KeyboardInterrupt": (interrupt, 5.0, ["raised KeyboardInterrupt", "must not stop the run"]),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", sorted(STOPPED))
def test_stops_become_named_errors(name):
    fn, limit, fragments = STOPPED[name]
    rf = RewardFunction(fn, "user.py", time_limit_s=limit)
    with pytest.raises(RewardFunctionError) as info:
        rf(PARAMS)
    msg = str(info.value)
    assert msg.startswith("reward function user.py line ")
    for fragment in fragments:
        assert fragment in msg
    assert "params were {" in msg
    assert info.value.exit_code == 2
    assert rf.calls == 1 and rf.seconds >= 0.0


def test_a_swallowed_inner_exception_is_not_a_failure():
    assert RewardFunction(swallow_then_fail, "user.py")(PARAMS) == 1.0


def _judged(value):
    return RewardFunction(lambda p: value, "user.py")(PARAMS)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.booleans(),
        st.none(),
        st.text(max_size=5),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**7), max_value=10**7),
        st.lists(st.floats(), max_size=2),
    )
)
def test_return_values_follow_one_rule(value):
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and abs(value) <= REWARD_LIMIT
    )
    if ok:
        assert _judged(value) == float(value)
        return
    with pytest.raises(RewardFunctionError) as info:
        _judged(value)
    msg = str(info.value)
    if isinstance(value, bool):
        assert f"returned {value!r}, which is a bool, not a number" in msg
        assert "a comparison was returned by mistake" in msg


def several_returns(params):
    if params["steps"] > 10:
        return 2.0
    if params["progress"] > 50:
        return params["progress"] / 0.0 if False else float("nan")
    return 1.0


def test_return_lines_are_found_without_calling():
    calls = []

    def counted(params):
        calls.append(1)
        return float("nan")

    rf = RewardFunction(counted, "user.py")
    with pytest.raises(RewardFunctionError, match=r"user.py line \d+ returned nan"):
        rf(PARAMS)
    assert len(calls) == 1  # never called a second time to find the line
    first = several_returns.__code__.co_firstlineno
    # nan: not the constant returns 2.0 or 1.0
    assert return_lines(several_returns, float("nan")) == [first + 4]
    assert return_lines(several_returns, 1.0) == [first + 4, first + 5]
    assert where([3]) == " line 3" and where([3, 5, 7]) == " line 3, 5 or 7"
    assert where([]) == ""
