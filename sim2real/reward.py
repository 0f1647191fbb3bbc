"""User reward functions: loading them from a `.py` file (DeepRacer's `reward_function(params)`)
or taking a callable, and calling them safely during a run.

A file is imported as an ordinary module, registered in `sys.modules` under a stable name
(`module_name`), as DeepRacer imports it, with its code named after the user's file even
when the run loads its own copy, so every message points at the line the user wrote.

DeepRacer fails a job whose reward function raises, or returns something that is not a
finite number within [-1e5, 1e5] (deepracer-compat 1.1). Here that is found before
training starts by `sim2real.reward_check` (sample params from the real track, on a fresh
copy of the module in a fresh interpreter) and reported as one `RewardFunctionError`
naming the file, the line and the offending params. The same checks run on every live
call, under the per-call time limit of `sim2real.reward_call`; `sys.exit`,
`KeyboardInterrupt` and an overrun become the same error. A bool is refused too: it is
almost always a comparison returned by mistake.

`centerline_reward` is the default: a reward for staying near the centre line, written for
openracer (not copied from DeepRacer's examples).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import math
import numbers
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sim2real.errors import RewardFunctionError
from sim2real.reward_call import (
    DEFAULT_TIME_LIMIT_S,
    STOPS,
    ReturnRecorder,
    failure_line,
    return_lines,
    stop_reason,
    time_limit,
    where,
)

REWARD_LIMIT = 1e5
"""DeepRacer rejects rewards outside [-1e5, 1e5]."""


def centerline_reward(params: dict[str, Any]) -> float:
    """Default reward: 1 on the centre line falling linearly to 0.05 at the border, 1e-3
    with any wheel off the road."""
    if not params["all_wheels_on_track"] or params["is_offtrack"]:
        return 1e-3
    half = 0.5 * params["track_width"]
    ratio = min(params["distance_from_center"] / half, 1.0) if half > 0 else 1.0
    return float(1.0 - 0.95 * ratio)


def copy_params(params: dict[str, Any]) -> dict[str, Any]:
    """A copy the reward function may mutate freely (DeepRacer hands out a deep copy).

    Lists of immutable items (the waypoints' tuples, numbers, bools) are copied one level;
    lists of lists one level deeper; anything else goes through `copy.deepcopy`. About a
    hundred times faster than `deepcopy` on params with a hundred waypoints.
    """
    out = dict(params)
    for key, value in out.items():
        kind = type(value)
        if kind is list:
            first = type(value[0]) if value else int
            if first is list:
                out[key] = [list(v) for v in value]
            elif first in _IMMUTABLE and set(map(type, value)) == {first}:
                out[key] = value.copy()
            else:
                out[key] = copy.deepcopy(value)
        elif kind not in _IMMUTABLE:
            out[key] = copy.deepcopy(value)
    return out


_IMMUTABLE = frozenset({int, float, bool, str, tuple, type(None)})


def _describe(value: Any) -> str:
    if isinstance(value, list) and len(value) > 6:
        return f"[{len(value)} items]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def describe_params(params: dict[str, Any]) -> str:
    """A one-line summary of params for error messages (long lists shortened)."""
    return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in params.items()) + "}"


class RewardFunction:
    """A checked reward function: calls the user's function on a copy of params under the
    per-call time limit and returns a float, or raises `RewardFunctionError` naming the
    user's file, the line and the params. Counts its calls and the seconds they took."""

    def __init__(
        self,
        fn: Callable[[dict[str, Any]], Any],
        source: str,
        *,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        path: Path | None = None,
    ) -> None:
        self.fn = fn
        self.source = source
        """The file the function came from (the user's, not a run's copy), or the
        callable's qualified name."""
        self.path = path
        """The file actually loaded (a run's copy, say), for a fresh check; None: a callable."""
        self.time_limit_s = float(time_limit_s)
        self.calls = 0
        self.seconds = 0.0
        """Calls made and their total wall time (the slow-reward warning)."""
        self.check_s_per_call: float | None = None
        """Median cost of one call in the fresh check, when one ran."""
        self._recorder: ReturnRecorder | None = None
        code = getattr(fn, "__code__", None)
        self._filename = code.co_filename if code is not None else None

    def record_returns(self) -> None:
        """Find a bad value's line exactly, with a profiler on every call (the check)."""
        self._recorder = ReturnRecorder(self.fn)

    def __call__(self, params: dict[str, Any]) -> float:
        fn = self._recorder or self.fn
        start = time.perf_counter()
        try:
            with time_limit(self.time_limit_s):
                value = fn(copy_params(params))
        except STOPS as exc:
            what, fix = stop_reason(exc, self.time_limit_s)
            line = where([n] if (n := failure_line(exc, self._filename)) else [])
            raise RewardFunctionError(
                f"reward function {self.source}{line} {what}; {fix}; "
                f"params were {describe_params(params)}"
            ) from None
        except Exception as exc:
            line = where([n] if (n := failure_line(exc, self._filename)) else [])
            raise RewardFunctionError(
                f"reward function {self.source}{line} raised {type(exc).__name__}: {exc}; "
                f"params were {describe_params(params)}"
            ) from exc
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - start
        problem = _check_value(value)
        if problem:
            if self._recorder is not None and self._recorder.line is not None:
                lines = [self._recorder.line]
            else:
                lines = return_lines(self.fn, value)
            raise RewardFunctionError(
                f"reward function {self.source}{where(lines)} returned {value!r}, {problem}; "
                f"params were {describe_params(params)}"
            )
        return float(value)

    def validate(self, samples: Iterable[dict[str, Any]]) -> int:
        """Call the function on every sample; the first misbehaviour raises. Returns the
        count and sets `check_s_per_call`. This calls *this* function object: for a file,
        `sim2real.reward_check.check` does it on a fresh copy instead."""
        costs = []
        for params in samples:
            before = self.seconds
            self(params)
            costs.append(self.seconds - before)
        if costs:
            self.check_s_per_call = sorted(costs)[len(costs) // 2]
        return len(costs)


def _check_value(value: Any) -> str:
    if isinstance(value, bool):
        return (
            f"which is a bool, not a number; return a float (e.g. {float(value)}): a bool "
            "usually means a comparison was returned by mistake"
        )
    if value is None:
        return "which is a NoneType, not a number: some path through the function ends without a return"
    if isinstance(value, str | bytes) or not isinstance(value, numbers.Real):
        return f"which is a {type(value).__name__}, not a number; return a float"
    v = float(value)
    if not math.isfinite(v):
        return "which is not finite; guard divisions and logarithms"
    if abs(v) > REWARD_LIMIT:
        return f"which is outside DeepRacer's [-{REWARD_LIMIT:g}, {REWARD_LIMIT:g}]; scale it down"
    return ""


def load_reward_function(
    spec: Any, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S, source: str | None = None
) -> RewardFunction:
    """A callable, a `RewardFunction`, a path to a `.py` file defining
    `reward_function(params)`, or None (the default centre-line reward). `source` is the
    file to name in messages when `spec` is a copy of it (a run's `reward_function.py`);
    `time_limit_s` limits each call (and the file's import)."""
    if spec is None:
        return RewardFunction(
            centerline_reward, "openracer default (centerline_reward)", time_limit_s=time_limit_s
        )
    if isinstance(spec, RewardFunction):
        return spec
    if callable(spec):
        name = getattr(spec, "__qualname__", type(spec).__name__)
        try:
            where_ = f"{inspect.getsourcefile(spec)}:{name}"
        except TypeError:
            where_ = name
        return RewardFunction(spec, where_, time_limit_s=time_limit_s)
    if isinstance(spec, str | Path):
        return _load_file(Path(spec), source or str(spec), time_limit_s)
    raise RewardFunctionError(
        f"reward_function {spec!r} is neither a callable nor a path to a .py file"
    )


def module_name(source: str) -> str:
    """The `sys.modules` name a reward file is imported under: stable for one user file
    (the same in every process and every run), distinct between files."""
    digest = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:12]
    return f"openracer_reward_{digest}"


def _load_file(path: Path, source: str, time_limit_s: float) -> RewardFunction:
    """Import `path` as an ordinary module, as DeepRacer does: registered in `sys.modules`
    while it executes (so `sys.modules[__name__]` works) and after. Its code is compiled
    under the name `source`, so tracebacks and messages point at the user's file even when
    `path` is a run's copy of it."""
    if not path.is_file():
        raise RewardFunctionError(
            f"{source}: no such reward function file; pass the path of a .py file that "
            "defines reward_function(params)"
        )
    if path.suffix != ".py":
        raise RewardFunctionError(f"{source}: a reward function file must end in .py")
    try:
        text = path.read_bytes()
        code = compile(text, source, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise RewardFunctionError(
            f"{source} line {exc.lineno}: syntax error: {exc.msg}; fix the file"
        ) from exc
    except (OSError, ValueError) as exc:
        raise RewardFunctionError(f"{source}: cannot be read as Python source ({exc})") from exc
    name = module_name(source)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise RewardFunctionError(f"{source}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    module.__file__ = source
    sys.modules[name] = module
    try:
        with time_limit(time_limit_s):
            exec(code, module.__dict__)
    except STOPS as exc:
        sys.modules.pop(name, None)
        what, fix = stop_reason(exc, time_limit_s)
        line = where([n] if (n := failure_line(exc, source)) else [])
        raise RewardFunctionError(f"{source}{line}: importing the file {what}; {fix}") from None
    except Exception as exc:
        sys.modules.pop(name, None)
        line = where([n] if (n := failure_line(exc, source)) else [])
        raise RewardFunctionError(
            f"{source}{line}: importing the file raised {type(exc).__name__}: {exc}"
            + _missing_module_fix(exc)
        ) from exc
    fn = getattr(module, "reward_function", None)
    if fn is None or not callable(fn):
        raise RewardFunctionError(
            f"{source}: defines no function named reward_function; DeepRacer calls "
            "reward_function(params)"
        )
    _check_signature(fn, source)
    return RewardFunction(fn, source, time_limit_s=time_limit_s, path=path)


_SIMULATOR_ONLY = {"rospy", "rospkg", "rclpy", "markov", "rl_coach"}
"""Modules that exist only inside DeepRacer's simulator container (ROS, the simapp)."""


def _missing_module_fix(exc: Exception) -> str:
    """The fix for a reward file importing a module this Python does not have."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return ""
    top = exc.name.split(".")[0]
    if top in _SIMULATOR_ONLY:
        return (
            f"; {top} exists only inside DeepRacer's simulator container (ROS), which "
            "openracer does not run: remove the import (a reward function gets what it needs "
            "through params)"
        )
    if top in ("scipy", "shapely"):
        return "; install it with `pip install 'openracer[train]'`"
    return f"; install {top} into this Python environment or remove the import"


def _check_signature(fn: Callable[..., Any], source: str) -> None:
    """DeepRacer calls `reward_function(params)`: one positional argument must be accepted."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind({})
    except TypeError:
        code = getattr(fn, "__code__", None)
        line = f" line {code.co_firstlineno}" if code is not None else ""
        raise RewardFunctionError(
            f"{source}{line}: reward_function{signature} cannot be called with one argument; "
            "DeepRacer calls reward_function(params): define it as "
            "def reward_function(params):"
        ) from None
