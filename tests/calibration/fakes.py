"""A simulated link for calibrator tests: records every call, reports fixed telemetry,
and can be made to fail like a pulled cable."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from vehicle.pulses import PulseCalibration


class LinkDown(Exception):
    """What the fake raises once `fail` is set (stands in for the link's timeout)."""


@dataclass(frozen=True)
class FakeTelemetry:
    battery_mv: int
    faults: tuple[str, ...] = ()
    state: str = "armed"
    received_s: float = 0.0


class FakeLink:
    """Satisfies `calibration.actuator.CarLink`; thread-safe."""

    def __init__(self, battery_mv: int = 7600) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple] = []
        self.battery_mv = battery_mv
        self.fail = False
        self.closed = False
        self.failsafe_at_s: float | None = None
        """When set, telemetry from then on says the firmware fell back to neutral (its
        100 ms failsafe), until the next arm."""

    def _record(self, *call: object) -> None:
        with self._lock:
            if self.fail and call[0] in ("arm", "command"):
                raise LinkDown("no reply from the motor controller within 100 ms")
            self.calls.append(call)

    def arm(self, limits: PulseCalibration) -> None:
        self._record("arm", limits)
        self.failsafe_at_s = None

    def disarm(self) -> None:
        self._record("disarm")

    def command(self, steer_us: int, throttle_us: int) -> None:
        self._record("command", steer_us, throttle_us)

    def neutral(self) -> None:
        self._record("neutral")

    def close(self) -> None:
        self.closed = True

    def telemetry(self) -> FakeTelemetry:
        return FakeTelemetry(self.battery_mv)

    def latest_telemetry(self) -> FakeTelemetry:
        if self.failsafe_at_s is not None:
            return FakeTelemetry(self.battery_mv, state="failsafe", received_s=time.monotonic())
        return FakeTelemetry(self.battery_mv, received_s=time.monotonic())

    # ---- test helpers ----------------------------------------------------------------

    def commands(self) -> list[tuple[int, int]]:
        with self._lock:
            return [(c[1], c[2]) for c in self.calls if c[0] == "command"]

    def last_command(self) -> tuple[int, int] | None:
        cmds = self.commands()
        return cmds[-1] if cmds else None

    def names(self) -> list[str]:
        with self._lock:
            return [c[0] for c in self.calls]


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
