"""Shared pieces of the calibrator tests: a fake camera and an app factory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.actuator import ActuatorConfig
from calibration.app import CalibratorApp
from calibration.store import CalibrationStore
from tests.calibration.fakes import FakeLink


class StillCamera:
    """A camera that always returns the same synthetic 640x480 BGR frame (a track-like
    picture: dark floor, white side lines, a yellow centre line)."""

    def __init__(self) -> None:
        img = np.full((480, 640, 3), 60, np.uint8)
        img[:160] = (200, 170, 140)  # sky / wall
        for x0, x1 in ((120, 150), (490, 520)):
            img[160:, x0:x1] = 255
        img[160:, 310:330] = (0, 220, 255)
        self.frame = img
        self.reads = 0
        self.controls: dict[str, object] = {}

    def read(self) -> np.ndarray:
        self.reads += 1
        return self.frame

    def set_controls(self, **controls: object) -> None:
        self.controls = controls


def make_app(path: Path, link: FakeLink | None = None, **kwargs: object) -> CalibratorApp:
    return CalibratorApp(
        link or FakeLink(),
        CalibrationStore(path),
        camera=kwargs.pop("camera", StillCamera()),
        actuator_config=kwargs.pop("actuator_config", ActuatorConfig(period_s=0.02)),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def link() -> FakeLink:
    return FakeLink()


def run_async(fn):  # type: ignore[no-untyped-def]
    """Run an async test function with asyncio (no async pytest plugin is installed)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def until(pilot, condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Pause until `condition()` holds (the app runs threads, so "idle" is not enough)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s: {condition}")
        await pilot.pause(0.02)


async def goto(pilot, key: str, screen_type: type) -> None:  # type: ignore[no-untyped-def]
    """Press a screen key and wait until that screen shows."""
    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, screen_type))


async def hold_key(pilot, key: str, seconds: float, interval_s: float = 0.04, until=None) -> None:  # type: ignore[no-untyped-def]
    """A key held down: the terminal's auto-repeat sends it every `interval_s`, whether or
    not the app is idle (Pilot's `press` waits for idle between keys, which a busy app
    with a simulated board in the same process may never be). With `until`, held until
    that condition holds (released then), failing if it has not after `seconds`: what a
    key does takes longer on a loaded machine, so the test waits on the effect, not a
    fixed time."""
    import asyncio
    import time

    from textual import events

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if until is not None and until():
            return
        pilot.app.post_message(events.Key(key, key if len(key) == 1 else None))
        await asyncio.sleep(interval_s)
    if until is not None and not until():
        raise AssertionError(f"{key!r} held {seconds} s and still not: {until}")
