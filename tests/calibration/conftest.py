"""Shared pieces of the calibrator tests: a fake camera and an app factory (the Pilot
helpers are in tests/pilot.py)."""

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
