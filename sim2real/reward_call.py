"""Running user reward code under guard: the per-call time limit, `SystemExit` and
`KeyboardInterrupt` caught, and the line of the user's file a failure or a return came from.

The time limit is `SIGALRM` from `signal.setitimer`, armed around each call (two system
calls, about a microsecond); it interrupts Python loops and blocking sleeps. Signals reach
only the main thread, so elsewhere the call runs unguarded (the simulator processes and
`racer train` call from their main threads). What the alarm cannot stop (a C extension
that never returns, or user code that swallows `BaseException`), the simulator pool's
deadline does: it kills the process.

Finding a line never calls the user's function again: a failure's line comes from its
traceback; a bad return value's line from the `return` instructions of the function's
code (narrowed by the constants they return), or exactly, where every call is recorded
anyway (`ReturnRecorder`, used by the fresh-interpreter check).
"""

from __future__ import annotations

import dis
import math
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any

DEFAULT_TIME_LIMIT_S = 5.0
"""Per-call limit. DeepRacer's reward-function validator gives each test 5 s
(`TIMEOUT_SEC = 5` in deepracer-simapp docker/files/ml-code/reward_func_validator/constants.py,
joined in test_reward_function.py); a normal function takes microseconds."""

MAX_TIME_LIMIT_S = 600.0
"""The longest per-call limit accepted (a call that long is a hang, not a reward)."""


class CallOverrun(BaseException):
    """Raised inside user code by the alarm. A `BaseException`, so the user's
    `except Exception:` does not swallow it."""


@contextmanager
def time_limit(limit_s: float) -> Iterator[None]:
    """Raise `CallOverrun` in this thread after `limit_s` seconds (main thread only;
    0 or a worker thread: no limit)."""
    if (
        limit_s <= 0
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise CallOverrun

    # An alarm armed by someone else (a test timeout, say) is put back afterwards, less
    # the time spent here; it fires at most `limit_s` late.
    outer_s, outer_interval_s = signal.getitimer(signal.ITIMER_REAL)
    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_s > 0:
            left_s = max(outer_s - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left_s, outer_interval_s)


STOPS = (SystemExit, KeyboardInterrupt, CallOverrun)
"""What user code may raise that must not end the process: each becomes a named error."""


def stop_reason(exc: BaseException, limit_s: float) -> tuple[str, str]:
    """(what happened, the fix) for one of `STOPS`."""
    if isinstance(exc, CallOverrun):
        return (
            f"ran longer than the {limit_s:g} s time limit",
            "look for a loop that never ends or slow work done on every call (precompute it "
            "at module level); a slow but correct function needs --reward-time-limit-s",
        )
    if isinstance(exc, SystemExit):
        what = f"called sys.exit({exc.code!r})" if exc.code is not None else "called sys.exit()"
        return (
            f"{what} (SystemExit)",
            "reward code must not end the process: remove the exit (DeepRacer fails the job)",
        )
    return (
        "raised KeyboardInterrupt",
        "reward code must not stop the run: remove the raise (or, if you pressed Ctrl-C, "
        "run again)",
    )


def failure_line(exc: BaseException, filename: str | None) -> int | None:
    """The last line of `filename` in the traceback of `exc` (None when it never ran there)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if filename and f.filename == filename]
    return mine[-1].lineno if mine else None


def return_lines(fn: Callable[..., Any], value: Any) -> list[int]:
    """Lines of the `return`s in `fn` that could have returned `value`: every return
    instruction, less those returning a constant other than `value`. No call is made."""
    code = getattr(fn, "__code__", None)
    if not isinstance(code, CodeType):
        return []
    lines: list[int] = []
    previous: dis.Instruction | None = None
    for ins in dis.get_instructions(code):
        if ins.opname in ("RETURN_VALUE", "RETURN_CONST"):
            const = ins if ins.opname == "RETURN_CONST" else previous
            if const is not None and const.opname in ("LOAD_CONST", "RETURN_CONST"):
                if not _same(const.argval, value):
                    previous = ins
                    continue
            line = ins.positions.lineno if ins.positions else None
            if line is not None and line not in lines:
                lines.append(line)
        previous = ins
    return lines


def _same(const: Any, value: Any) -> bool:
    if type(const) is not type(value):
        return False
    if isinstance(const, float) and math.isnan(const):
        return math.isnan(value)
    try:
        return bool(const == value)
    except Exception:
        return False


def where(lines: list[int]) -> str:
    """' line 4', ' line 4 or 6', or '' (for messages)."""
    if not lines:
        return ""
    text = ", ".join(map(str, lines[:-1]))
    return f" line {text} or {lines[-1]}" if text else f" line {lines[-1]}"


class ReturnRecorder:
    """Calls a function under `sys.setprofile` and keeps the line of the `return` it took:
    exact, for callers that can afford a profiler on every call (the fresh check)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.code = getattr(fn, "__code__", None)
        self.line: int | None = None

    def __call__(self, *args: Any) -> Any:
        self.line = None

        def prof(frame: FrameType, event: str, arg: Any) -> None:
            if event == "return" and frame.f_code is self.code:
                self.line = frame.f_lineno

        old = sys.getprofile()
        sys.setprofile(prof)
        try:
            return self.fn(*args)
        finally:
            sys.setprofile(old)
