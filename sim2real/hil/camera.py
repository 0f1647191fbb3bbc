"""The simulator's camera on the simulated car (a `vehicle.camera.Camera` for the real drive
loop): each frame, the pulse widths the firmware outputs move the car one control period
through the servo/ESC physics and the world's dynamics, the laps are counted
(`sim2real.laps.LapTracker`), and the world is rendered.

Real time: a thread steps the world at the control rate and `read` hands out the newest
frame. Lock-step (`fast`): `read` waits until the firmware has taken every byte the host
sent, then steps the world once, as fast as the drive loop goes.

`StartLineCamera` is the still view from the start line for `racer calibrate --sim`'s
preview (the simulated car does not move through the world while calibrating).

Laptop-only (hardware-in-the-loop).
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from sim2real.hil.board import SimulatedFirmware
from sim2real.laps import LapTracker
from sim2real.params import LAP_COMPLETE, OFF_TRACK
from vehicle.camera import Camera, Frame
from vehicle.errors import CameraEnded, CameraStalled

if TYPE_CHECKING:
    from sim2real.hil.session import HILConfig
    from sim2real.world import World


class SimCamera(Camera):
    """The simulator's camera on the simulated car (see the module docstring)."""

    name = "sim"

    def __init__(
        self,
        world: World,
        sim: SimulatedFirmware,
        config: HILConfig,
        on_event: Any = None,
    ) -> None:
        self.world = world
        self.sim = sim
        self.config = config
        self.rate_hz = world.config.rate_hz
        self.dt_s = 1.0 / self.rate_hz
        self.sim_time_s = 0.0
        self.laps = LapTracker()
        """Progress, lap times and off-tracks, in simulated seconds."""
        self.laps.reset(world.position().ndist, world.pose[:2], 0.0)
        self.index = 0
        self.done_reason: str | None = None
        self.on_event = on_event
        """Called with (kind, info dict) on 'lap', 'off_track' and every 'progress' step."""
        self.host_bytes_sent: Any = None
        """Callable: bytes the host link has written (lock-step synchronisation)."""
        self.clock: list[float] | None = None
        """The firmware's simulated clock (lock-step mode), advanced every step."""
        self.cut_s: float | None = None
        """time.monotonic() when the serial line was closed (fault injection)."""
        self.trace: list[tuple[float, float, float, float]] = []
        """(sim time, x, y, speed) per frame."""
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._delivered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        world.render()  # builds the renderer now, not during the first armed frame
        if not config.fast:
            self._thread = threading.Thread(target=self._realtime_loop, daemon=True)
            self._thread.start()

    # the world, one control period
    def _step(self) -> Frame:
        board = self.sim.board
        phys = self.sim.physics
        steer_us = board.steer_pin.duty_ns / 1000.0
        throttle_us = board.throttle_pin.duty_ns / 1000.0
        steer_deg = phys.steer_target_deg(steer_us)
        speed = phys.speed_target_mps(throttle_us)
        phys.set_pulses(steer_us, throttle_us)
        phys.advance(self.dt_s)  # battery drain, odometer
        self.world.dynamics.advance(math.radians(steer_deg), speed, self.dt_s)
        self.sim_time_s += self.dt_s
        if self.clock is not None:
            self.clock[0] = self.sim_time_s
            # a firmware iteration that read the old time must not stamp the next command
            # with it: wait until every running iteration has seen the new time
            self.sim.wait_polls(1)
        cut_at = self.config.cut_cable_at_s
        if cut_at is not None and self.cut_s is None and self.sim_time_s >= cut_at:
            self.cut_s = self.sim.cut_cable()
        laps = self.laps
        pos = self.world.position()
        status = laps.update(
            pos.ndist, self.world.pose[:2], self.world.wheels_on_road(), self.sim_time_s
        )
        if status == LAP_COMPLETE:
            laps.next_lap()
            self._event("lap", lap=laps.laps_completed, lap_time_s=round(laps.lap_times_s[-1], 3))
            if laps.laps_completed >= self.config.laps:
                self.done_reason = f"{laps.laps_completed} laps complete"
        elif status == OFF_TRACK:
            # as DeepRacer's evaluation: put the car back on the centre line, clock running
            self.world.place_on_centerline(pos.ndist)
            laps.put_back(self.world.pose[:2])
            self._event("off_track", count=laps.off_track, progress=laps.progress.progress)
        if laps.current_lap_s > self.config.lap_time_limit_s:
            self.done_reason = (
                f"lap time limit {self.config.lap_time_limit_s:g} s reached "
                f"(progress {laps.progress.progress:.0f} %)"
            )
        self._event(
            "progress",
            laps=laps.laps_completed,
            progress=laps.progress.progress,
            sim_time_s=self.sim_time_s,
        )
        s = self.world.dynamics.state
        self.trace.append((round(self.sim_time_s, 3), s.x_m, s.y_m, s.speed_mps))
        image = self.world.render()
        self.index += 1
        return Frame(image, time.monotonic(), self.index, "gray")

    def _event(self, kind: str, **info: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, info)

    def _realtime_loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set() and self.done_reason is None:
            next_t += self.dt_s
            frame = self._step()
            with self._cond:
                self._latest = frame
                self._cond.notify_all()
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()
        with self._cond:
            self._cond.notify_all()

    def read(self, timeout_s: float = 0.5) -> Frame:
        if self.config.fast:
            if self.done_reason is not None:
                raise CameraEnded(f"simulation: {self.done_reason}")
            # lock-step: the firmware has taken everything the host sent before the world
            # moves on (a cut cable: nothing more arrives, the world goes on)
            sent = self.host_bytes_sent() if self.host_bytes_sent is not None else None
            if not self.sim.settle(sent, timeout_s=10.0) and not self.sim.port_device.closed:
                raise CameraStalled("simulation: the firmware did not take the host's frames")
            return self._step()
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self.done_reason is not None:
                    raise CameraEnded(f"simulation: {self.done_reason}")
                if self._latest is not None and self._latest.index > self._delivered:
                    self._delivered = self._latest.index
                    return self._latest
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CameraStalled("simulation: no frame in time")
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


class StartLineCamera:
    """The simulator's camera looking down the track from the start line: a real picture
    to try the calibrator's rotation, flips and model view on a laptop. `read()` returns
    the (H, W) gray frame; the world is built on first use (about 2 s), on the caller's
    thread."""

    def __init__(self, track: str = "reinvent_like") -> None:
        self.track = track
        self.world: World | None = None

    def read(self, timeout_s: float = 0.5) -> np.ndarray:
        if self.world is None:
            from sim2real.world import World
            from tracks.catalogue import resolve

            self.world = World(resolve(self.track), rng=np.random.default_rng(0))
            self.world.place_on_centerline(0.0)
        return self.world.render()
