"""Parts for driving the console in tests: the real firmware on the simulated board over
a pty with the real `vehicle.link.Link`, a synthetic 15 fps camera, a scripted policy and a
model store stand-in. Only the camera and the network are fakes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.hil.board import SimulatedFirmware
from vehicle.camera import Frame
from vehicle.console.app import ConsoleParts, LapTimes
from vehicle.drive import Drive, DriveConfig, mapping_for
from vehicle.link import Link, LinkConfig
from vehicle.metadata import ModelMetadata
from vehicle.pulses import PulseCalibration


class SyntheticCamera:
    """15 fps frames of a fixed picture, each with a fresh capture timestamp."""

    rate_hz = 15.0

    def __init__(self) -> None:
        img = np.full((480, 640, 3), 70, np.uint8)
        img[:150] = (190, 160, 120)
        img[150:, 100:130] = 255
        img[150:, 510:540] = 255
        img[150:, 310:330] = (0, 220, 255)
        self.image = img
        self.index = 0
        self._next = time.monotonic()

    def read(self, timeout_s: float = 0.5) -> Frame:
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next = max(self._next + 1 / self.rate_hz, time.monotonic())
        self.index += 1
        return Frame(self.image, time.monotonic(), self.index, "bgr")

    def close(self) -> None:
        pass


class ScriptedPolicy:
    """Always steers 10 deg left at 0.8 m/s."""

    def __init__(self, metadata: ModelMetadata) -> None:
        self.metadata = metadata
        self.calls = 0

    def infer(self, obs: np.ndarray) -> np.ndarray:
        assert obs.shape == (120, 160, 1) and obs.dtype == np.uint8
        return np.zeros(2, np.float32)

    def act(self, obs: np.ndarray) -> tuple[float, float, Any]:
        assert obs.shape == (120, 160, 1)
        self.calls += 1
        return 10.0, 0.8, None


@dataclass
class FakeModel:
    name: str
    metadata: ModelMetadata | None = field(default_factory=ModelMetadata)
    is_active: bool = False
    is_previous: bool = False
    problem: str | None = None
    note: str | None = None


class FakeStore:
    root = Path("/var/lib/openracer/models")

    def __init__(self, models: list[FakeModel]) -> None:
        self.models = models

    def list(self) -> list[FakeModel]:
        return self.models

    def active(self) -> FakeModel:
        return next(m for m in self.models if m.is_active)


class Rig:
    """The simulated car plus the console parts; `close()` stops everything."""

    def __init__(self, *, laps: bool = True) -> None:
        self.sim = SimulatedFirmware.start(realtime_physics=True)
        # a generous link timeout: here the "firmware" shares a loaded CPU (and the GIL)
        # with the console under test, which a real motor controller does not
        self.link = Link(LinkConfig(port=self.sim.port, timeout_s=1.5, ack_timeout_s=2.0)).open()
        self.policies: list[ScriptedPolicy] = []
        self.store = FakeStore(
            [
                FakeModel("reinvent-v3", is_active=True),
                FakeModel("oval-fast", is_previous=True),
                FakeModel("broken", metadata=None, problem="model.tflite: sha256 mismatch"),
            ]
        )
        self._lap_start = None

        def load(model: FakeModel) -> ScriptedPolicy:
            p = ScriptedPolicy(model.metadata or ModelMetadata())
            self.policies.append(p)
            return p

        self.parts = ConsoleParts.from_pieces(
            camera=SyntheticCamera(),
            link=self.link,
            calibration=PulseCalibration(),
            config=DriveConfig(max_speed_fraction=0.6),
            load_policy=load,
            store=self.store,
            laps=(lambda: LapTimes(12.3, 14.1, 13.9, 3)) if laps else None,
            title="simulated board",
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        self.link.close()
        self.sim.stop()


@contextmanager
def open_rig_drive(port: str, store_model: str | None, on_frame: Any) -> Iterator[Drive]:
    """A `vehicle.console.loop_process.DriveRecipe` over the simulated board at `port`:
    opened in the loop process, with the synthetic camera and the scripted policy."""
    link = Link(LinkConfig(port=port, timeout_s=1.5)).open()
    try:
        policy = ScriptedPolicy(ModelMetadata())
        yield Drive(
            SyntheticCamera(),
            policy,  # type: ignore[arg-type]
            link,
            PulseCalibration(),
            mapping_for(policy),  # type: ignore[arg-type]
            DriveConfig(max_speed_fraction=0.6, handle_signals=False),
            on_frame=on_frame,
        )
    finally:
        link.close()
