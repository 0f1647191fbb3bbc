"""Helpers for tests that drive a Textual app through its `Pilot` (the calibrator, the
drive console): run an async test, wait on a condition, change screen, hold a key.

They wait on what the app shows or does, never a fixed time: the apps run threads and a
simulated board in the test process, so on a loaded machine things take longer, and a
timeout prints the screen to say why.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from tests.screen_text import screen_text

WAIT_S = 60.0
"""How long `until` waits by default: generous, as the machine running these may be
loaded; nothing here measures time."""


def run_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async test function with asyncio (no async pytest plugin is installed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def until(pilot: Any, condition: Callable[[], object], timeout_s: float = WAIT_S) -> None:
    """Pause until `condition()` holds (the app runs threads, so "idle" is not enough);
    after `timeout_s`, fail showing the screen (a drive that ended at once logs its stop
    reason there)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"condition not met within {timeout_s} s: {condition}; screen:\n"
                f"{screen_text(pilot.app)}"
            )
        await pilot.pause(0.02)


async def goto(pilot: Any, key: str, screen_type: type) -> None:
    """Press a screen key and wait until that screen shows."""
    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, screen_type))


async def hold_key(
    pilot: Any,
    key: str,
    seconds: float,
    interval_s: float = 0.04,
    until: Callable[[], object] | None = None,
) -> None:
    """A key held down: the terminal's auto-repeat sends it every `interval_s`, whether or
    not the app is idle (Pilot's `press` waits for idle between keys, which a busy app
    with a simulated board in the same process may never be). With `until`, held until
    that condition holds (released then), failing if it has not after `seconds`: what a
    key does takes longer on a loaded machine, so the test waits on the effect, not a
    fixed time."""
    from textual import events

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if until is not None and until():
            return
        pilot.app.post_message(events.Key(key, key if len(key) == 1 else None))
        await asyncio.sleep(interval_s)
    if until is not None and not until():
        raise AssertionError(f"{key!r} held {seconds} s and still not: {until}")
