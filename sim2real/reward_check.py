"""The check before a run: the user's reward function called on sample params, in a fresh
Python interpreter on a fresh copy of the module.

So the check leaves nothing behind: module-level state (histories, counters, a cached
start index) that the sample calls build up stays in the child process, and training gets
a module nobody has called, whose first call is DeepRacer's first (steps = 2: the prepare
step, steps = 1, is rewarded 0 without a call). An exit, an interrupt, `os._exit` or a
hang in the user's code ends the child, never this process: each is a
`RewardFunctionError` naming the user's file.

The child is `python -m sim2real.reward_check`: it reads one pickle (file, name for
messages, time limit, samples) on stdin and writes one JSON line on its original stdout;
the user's prints go to its stderr, which is shown only when the child dies.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from sim2real.errors import RewardFunctionError
from sim2real.reward import RewardFunction, load_reward_function

STARTUP_S = 60.0
"""Allowance for the child's start and import on a loaded machine, besides the limits."""


def check(reward: RewardFunction, samples: list[dict[str, Any]]) -> int:
    """Check `reward` on `samples` without touching it: in a fresh interpreter for a file,
    by calling it for a callable (which has no fresh copy). Sets `check_s_per_call`;
    returns the number of calls."""
    if reward.path is None:
        return reward.validate(samples)
    payload = pickle.dumps((str(reward.path), reward.source, reward.time_limit_s, samples))
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    # Every call and the import are limited in the child; this is the backstop for what the
    # alarm cannot stop.
    budget_s = STARTUP_S + reward.time_limit_s * (len(samples) + 1)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sim2real.reward_check"],
            input=payload,
            capture_output=True,
            timeout=budget_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RewardFunctionError(
            f"reward function {reward.source}: the check did not finish in {budget_s:g} s "
            f"although every call is limited to {reward.time_limit_s:g} s; something in the "
            "file blocks where the limit cannot interrupt it (a C extension, or an "
            "`except BaseException` that swallows the limit)"
        ) from exc
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RewardFunctionError(
            f"reward function {reward.source}: the check's fresh Python process ended with "
            f"exit code {done.returncode} before it answered (does the file call os._exit or "
            f"kill its process?)" + (f"; its last output: {' | '.join(tail)}" if tail else "")
        ) from None
    if "error" in answer:
        raise RewardFunctionError(answer["error"])
    reward.check_s_per_call = answer["s_per_call"]
    return int(answer["calls"])


def _child() -> None:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the user's prints, even from C, go to stderr
    sys.stdout = sys.stderr
    path, source, limit_s, samples = pickle.loads(sys.stdin.buffer.read())
    try:
        reward = load_reward_function(path, time_limit_s=limit_s, source=source)
        reward.record_returns()
        calls = reward.validate(samples)
        answer: dict[str, Any] = {"calls": calls, "s_per_call": reward.check_s_per_call}
    except RewardFunctionError as exc:
        answer = {"error": str(exc)}
    out.write(json.dumps(answer) + "\n")
    out.flush()
    os._exit(0)  # no atexit hooks or threads of the user's module can change the outcome


if __name__ == "__main__":
    _child()
