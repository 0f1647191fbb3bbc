"""Snapshot tests of every calibrator screen at 80x24 and 120x40 (pytest-textual-snapshot).

Deterministic: a fake link with fixed telemetry, a still camera, a fixed (never written)
file path, no clocks on screen. Update with `pytest tests/calibration/test_snapshots.py
--snapshot-update` after a deliberate change, and look at the SVGs in the report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from calibration.model import (
    BatteryMeasurements,
    BatteryPoint,
    Calibration,
    SpeedMeasurements,
    SpeedPoint,
    SteeringCalibration,
    make_channel,
)
from tests.calibration.conftest import make_app
from tests.pilot import until

pytestmark = pytest.mark.slow  # each snapshot starts the app

FILE = Path("/nonexistent/openracer/calibration.json")
"""Shown on the review screen; never written (nothing is saved in these tests)."""

EDITED = replace(
    Calibration(),
    steering=SteeringCalibration(make_channel("s", 1190, 1462, 1735, 1), 28.0, 26.5),
    speed=SpeedMeasurements(
        (SpeedPoint(0.3, 2.0, 1.1), SpeedPoint(0.5, 2.0, 3.0), SpeedPoint(0.8, 2.0, 5.2)),
        reference_battery_v=7.6,
    ),
    battery=BatteryMeasurements((BatteryPoint(7.2, 2.5), BatteryPoint(8.2, 2.9))),
)

SCREENS = ["steering", "throttle", "speed", "battery", "camera", "review"]
KEYS = {name: str(i + 1) for i, name in enumerate(SCREENS)}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("screen", SCREENS)
def test_screen_snapshot(snap_compare, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = make_app(FILE)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, lambda: app.status is not None and app.screen_stack)
        app.set_draft(EDITED)
        await pilot.press(KEYS[screen])
        await until(pilot, lambda: getattr(app.screen, "NAME", "") == screen)
        if screen == "camera":
            view = app.screen.query_one("#camera-model")
            await until(pilot, lambda: view.frame is not None)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
