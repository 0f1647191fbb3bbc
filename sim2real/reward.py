"""User reward functions: loading them from a `.py` file (DeepRacer's `reward_function(params)`)
or taking a callable, checking them before a run starts, and calling them safely during one.

DeepRacer fails a job whose reward function raises, or returns something that is not a
finite number within [-1e5, 1e5] (deepracer-compat 1.1). Here that is found before
training starts, by calling the function on sample params from the real track, and
reported as one `RewardFunctionError` naming the file, the line and the offending params.
The same checks run on every live call.

`centerline_reward` is the default: a reward for staying near the centre line, written for
openracer (not copied from DeepRacer's examples).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import math
import numbers
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from sim2real.errors import RewardFunctionError

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
    """A checked reward function: calls the user's function on a deep copy of params and
    returns a float, or raises `RewardFunctionError` naming file, line and params."""

    def __init__(self, fn: Callable[[dict[str, Any]], Any], source: str) -> None:
        self.fn = fn
        self.source = source
        """The file the function came from, or the callable's qualified name."""
        code = getattr(fn, "__code__", None)
        self._filename = code.co_filename if code is not None else None

    def __call__(self, params: dict[str, Any]) -> float:
        try:
            value = self.fn(copy_params(params))
        except Exception as exc:
            where = self._where_raised(exc)
            raise RewardFunctionError(
                f"reward function {self.source}{where} raised {type(exc).__name__}: {exc}; "
                f"params were {describe_params(params)}"
            ) from exc
        problem = _check_value(value)
        if problem:
            line = self._return_line(params)
            where = f" line {line}" if line else ""
            raise RewardFunctionError(
                f"reward function {self.source}{where} returned {value!r}, {problem}; "
                f"params were {describe_params(params)}"
            )
        return float(value)

    def _where_raised(self, exc: BaseException) -> str:
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [f for f in frames if self._filename and f.filename == self._filename]
        chosen = mine or list(frames[-1:])
        return f" line {chosen[-1].lineno}" if chosen else ""

    def _return_line(self, params: dict[str, Any]) -> int | None:
        """Re-run the function under a profiler to find the line of the `return` it took."""
        code = getattr(self.fn, "__code__", None)
        if code is None:
            return None
        line: list[int] = []

        def prof(frame: FrameType, event: str, arg: Any) -> None:
            if event == "return" and frame.f_code is code:
                line.append(frame.f_lineno)

        old = sys.getprofile()
        sys.setprofile(prof)
        try:
            self.fn(copy_params(params))
        except Exception:
            return None
        finally:
            sys.setprofile(old)
        return line[-1] if line else None

    def validate(self, samples: Iterable[dict[str, Any]]) -> int:
        """Call the function on every sample; the first misbehaviour raises. Returns the count."""
        n = 0
        for params in samples:
            self(params)
            n += 1
        return n


def _check_value(value: Any) -> str:
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


def load_reward_function(spec: Any) -> RewardFunction:
    """A callable, a `RewardFunction`, a path to a `.py` file defining
    `reward_function(params)`, or None (the default centre-line reward)."""
    if spec is None:
        return RewardFunction(centerline_reward, "openracer default (centerline_reward)")
    if isinstance(spec, RewardFunction):
        return spec
    if callable(spec):
        name = getattr(spec, "__qualname__", type(spec).__name__)
        try:
            where = f"{inspect.getsourcefile(spec)}:{name}"
        except TypeError:
            where = name
        return RewardFunction(spec, where)
    if isinstance(spec, str | Path):
        return _load_file(Path(spec))
    raise RewardFunctionError(
        f"reward_function {spec!r} is neither a callable nor a path to a .py file"
    )


def _load_file(path: Path) -> RewardFunction:
    if not path.is_file():
        raise RewardFunctionError(
            f"{path}: no such reward function file; pass the path of a .py file that defines "
            "reward_function(params)"
        )
    if path.suffix != ".py":
        raise RewardFunctionError(f"{path}: a reward function file must end in .py")
    module_name = f"openracer_reward_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RewardFunctionError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise RewardFunctionError(
            f"{path} line {exc.lineno}: syntax error: {exc.msg}; fix the file"
        ) from exc
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        line = f" line {frames[-1].lineno}" if frames else ""
        raise RewardFunctionError(
            f"{path}{line}: importing the file raised {type(exc).__name__}: {exc}"
        ) from exc
    fn = getattr(module, "reward_function", None)
    if fn is None or not callable(fn):
        raise RewardFunctionError(
            f"{path}: defines no function named reward_function; DeepRacer calls "
            "reward_function(params)"
        )
    return RewardFunction(fn, str(path))
