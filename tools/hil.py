"""Hardware-in-the-loop simulation: the whole car on a laptop.

The real drive loop (`vehicle.drive`) and the real serial link (`vehicle.link`) talk over
a pseudo-terminal to the real firmware code (`vehicle/firmware`, under CPython on the
simulated board of `vehicle.simboard`), whose pulse widths move the simulated car through
the physical model of servo, ESC and battery; the simulator (`sim2real.World`) renders
the camera frames the drive loop reads. Real time by default; `fast` runs the world in
lock-step with the loop, as fast as the loop goes.

    report = run_hil(HILConfig(track="reinvent_like", laps=2, fast=True), policy)

or, to run the drive yourself (the `racer drive --sim` console does, in its worker):

    with hil_drive(config, policy, on_frame=show) as session:
        session.drive.run()          # session.laps(): the simulator's lap timer

The simulated car is calibrated the way `racer calibrate` would calibrate it
(`sim_calibration`): steering centre and end points from the servo's geometry, the speed
curve and battery compensation measured on the physical model, so the absolute mapping
reproduces the model's commanded m/s, as in training.

Also `start_simulated_car()` for `racer calibrate --sim`: the firmware on a pty with the
physics running in real time.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vehicle.camera import Camera, Frame
from vehicle.drive import Drive, DriveConfig, mapping_for
from vehicle.errors import CameraEnded
from vehicle.inference import Policy
from vehicle.link import Link, LinkConfig
from vehicle.pulses import (
    AbsoluteMapping,
    BatteryCompensation,
    ChannelCalibration,
    PulseCalibration,
    SpeedCurve,
)
from vehicle.runlog import RunLog
from vehicle.simboard import CarPhysics, PhysicsConfig, SimulatedFirmware


def start_simulated_car(physics: PhysicsConfig | None = None) -> SimulatedFirmware:
    """The firmware on a simulated board, physics in real time; `.port` is the pty path
    to open like /dev/ttyACM0 (`racer calibrate --sim`). Call `.stop()` when done."""
    return SimulatedFirmware.start(CarPhysics(physics), realtime_physics=True)


def sim_calibration(
    physics: PhysicsConfig | None = None,
) -> tuple[PulseCalibration, AbsoluteMapping]:
    """What a careful `racer calibrate` session finds on the simulated car: the servo
    centre and +-31 deg end points, the ESC's neutral and ends, and the speed curve and
    battery compensation measured on the physical model."""
    p = physics or PhysicsConfig()
    lock_deg = min(31.0, p.servo_limit_deg)
    steer = ChannelCalibration(
        int(round(p.servo_center_us - lock_deg * p.servo_us_per_deg)),
        int(round(p.servo_center_us)),
        int(round(p.servo_center_us + lock_deg * p.servo_us_per_deg)),
        1,
    )
    span = p.esc_neutral_us - p.esc_full_forward_us
    throttle = ChannelCalibration(
        int(round(p.esc_full_forward_us)),
        int(round(p.esc_neutral_us)),
        int(round(p.esc_neutral_us + span)),
        -1,
    )
    cal = PulseCalibration(steer, throttle)
    car = CarPhysics(p)
    # steady-state speed per throttle command at the nominal voltage
    points = []
    for c in np.linspace(0.1, 1.0, 10):
        pulse = throttle.pulse_us(float(c))
        v = car.speed_target_mps(pulse) * p.nominal_v / car.battery_v()
        points.append((round(float(c), 3), round(v, 4)))
    top = points[-1][1]
    battery = BatteryCompensation(
        tuple((v, round(top * v / p.nominal_v, 4)) for v in (6.8, 7.4, 7.9, 8.4))
    )
    mapping = AbsoluteMapping(SpeedCurve(tuple(points), p.nominal_v), lock_deg, battery)
    return cal, mapping


@dataclass(frozen=True)
class HILConfig:
    """One hardware-in-the-loop run."""

    track: str = "reinvent_like"
    """Track name (catalogue) or .npy path."""
    laps: int = 1
    """Laps to complete before stopping."""
    fast: bool = False
    """Lock-step, as fast as possible (else real time)."""
    max_speed_fraction: float = 1.0
    """The drive loop's max-speed fraction."""
    mapping: str = "absolute"
    """'absolute' (the simulated car's measured speed curve) or 'deepracer'."""
    lap_time_limit_s: float = 120.0
    """Give up when a lap takes longer than this (simulated seconds)."""
    start_ndist: float = 0.0
    """Where on the lap the car starts (fraction)."""
    seed: int = 0
    """Seed of the world (textures) and the ADC noise."""
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    """The simulated servo, ESC, motor and battery."""
    log_dir: Path | None = None
    """Write a run log here (None: none)."""
    save_frame_every: int = 0
    """Save every n-th frame into the run log."""
    cut_cable_at_s: float | None = None
    """Fault injection: close the serial line at this simulated time (None: never); use
    real time to measure the firmware's failsafe (in lock-step its clock stops with the
    simulation)."""


class SimCamera(Camera):
    """The simulator's camera on the simulated car: each frame, the pulse widths the
    firmware outputs move the car one control period, then the world is rendered."""

    name = "sim"

    def __init__(
        self,
        world: Any,
        sim: SimulatedFirmware,
        config: HILConfig,
        on_event: Any = None,
    ) -> None:
        from sim2real.params import EpisodeProgress

        self.world = world
        self.sim = sim
        self.config = config
        self.rate_hz = world.config.rate_hz
        self.dt_s = 1.0 / self.rate_hz
        self.sim_time_s = 0.0
        self.progress = EpisodeProgress()
        self.progress.reset(world.position().ndist)
        self.lap_start_s = 0.0
        self.lap_times_s: list[float] = []
        self.off_track = 0
        self.index = 0
        self.done_reason: str | None = None
        self.on_event = on_event
        self.host_bytes_sent: Any = None
        """Callable: bytes the host link has written (lock-step synchronisation)."""
        self.clock: list[float] | None = None
        """The firmware's simulated clock (lock-step mode), advanced every step."""
        """Called with (kind, info dict) on 'lap', 'off_track' and every 'progress' step."""
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
        from sim2real.params import LAP_COMPLETE, OFF_TRACK

        board = self.sim.board
        phys = self.sim.physics
        steer_us = board.steer_pin.duty_ns / 1000.0
        throttle_us = board.throttle_pin.duty_ns / 1000.0
        steer_deg = phys.steer_target_deg(steer_us)
        speed = phys.speed_target_mps(throttle_us)
        phys.set_pulses(steer_us, throttle_us)
        phys.advance(self.dt_s)  # battery drain, odometer
        x0, y0, _ = self.world.pose
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
        x1, y1, _ = self.world.pose
        pos = self.world.position()
        self.progress.update(pos.ndist, math.hypot(x1 - x0, y1 - y0))
        status = self.progress.status(self.world.wheels_on_road())
        if status == LAP_COMPLETE:
            self.lap_times_s.append(round(self.sim_time_s - self.lap_start_s, 3))
            self.lap_start_s = self.sim_time_s
            self._event("lap", lap=len(self.lap_times_s), lap_time_s=self.lap_times_s[-1])
            self.progress.next_lap()
            if len(self.lap_times_s) >= self.config.laps:
                self.done_reason = f"{len(self.lap_times_s)} laps complete"
        elif status == OFF_TRACK:
            # as DeepRacer's evaluation: put the car back on the centre line, clock running
            self.off_track += 1
            keep = self.progress.progress
            self.world.place_on_centerline(pos.ndist)
            self.progress.progress = keep
            self._event("off_track", count=self.off_track, progress=keep)
        if self.sim_time_s - self.lap_start_s > self.config.lap_time_limit_s:
            self.done_reason = (
                f"lap time limit {self.config.lap_time_limit_s:g} s reached "
                f"(progress {self.progress.progress:.0f} %)"
            )
        self._event(
            "progress",
            laps=len(self.lap_times_s),
            progress=self.progress.progress,
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
                from vehicle.errors import CameraStalled

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
                    from vehicle.errors import CameraStalled

                    raise CameraStalled("simulation: no frame in time")
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


@dataclass(frozen=True)
class LapInfo:
    """Where the simulated car is in its laps (simulated seconds)."""

    lap_times_s: tuple[float, ...]
    """Complete laps, in order."""
    current_s: float
    """Time into the current lap."""
    off_track: int
    """Times the car left the track (and was put back on the centre line)."""

    @property
    def laps_completed(self) -> int:
        return len(self.lap_times_s)


class HILSession:
    """One hardware-in-the-loop drive, open: `.drive` is a ready `vehicle.drive.Drive`
    (not yet run) over the simulated car; `.laps()` reads the simulator's lap timer
    (from any thread); `.report(summary)` the run's figures. Built by `hil_drive`."""

    def __init__(
        self,
        config: HILConfig,
        policy: Policy,
        drive: Drive,
        camera: SimCamera,
        sim: SimulatedFirmware,
        link: Link,
        t0_s: float,
    ) -> None:
        self.config = config
        self.policy = policy
        self.drive = drive
        self.camera = camera
        self.sim = sim
        self.link = link
        self.t0_s = t0_s
        """When the session started opening the car (monotonic clock, for `report`)."""

    def laps(self) -> LapInfo:
        cam = self.camera
        return LapInfo(
            tuple(cam.lap_times_s), max(0.0, cam.sim_time_s - cam.lap_start_s), cam.off_track
        )

    def failsafe_delay_ms(self) -> float | None:
        """After a cable cut: ms from the firmware's last received byte to its neutral
        throttle pulse (None when the cable was not cut)."""
        return _failsafe_delay_ms(self.sim) if self.camera.cut_s is not None else None

    def report(self, summary: dict[str, Any], failsafe_ms: float | None = None) -> dict[str, Any]:
        """The run's report from the drive's summary (wall time: until this call)."""
        config, camera, sim = self.config, self.camera, self.sim
        completed = len(camera.lap_times_s)
        return {
            "track": config.track,
            "model": self.policy.describe().get("path"),
            "backend": self.policy.backend,
            "mapping": config.mapping,
            "fast": config.fast,
            "laps": config.laps,
            "laps_completed": completed,
            "lap_times_s": camera.lap_times_s,
            "off_track": camera.off_track,
            "sim_time_s": round(camera.sim_time_s, 3),
            "wall_time_s": round(time.monotonic() - self.t0_s, 3),
            "frames": summary["frames"],
            "loop_p50_ms": summary["loop_p50_ms"],
            "loop_p99_ms": summary["loop_p99_ms"],
            "infer_p50_ms": summary["infer_p50_ms"],
            "deadline_misses": summary["deadline_misses"],
            "stale_frames": summary["stale_frames"],
            "link_errors": summary["link_errors"],
            "link_frames_bad": self.link.stats.frames_bad,
            "firmware_frames_bad": sim.controller.parser.bad if sim.controller else None,
            "firmware_failsafes": summary["firmware_failsafes"],
            "stop_reason": summary["stop_reason"],
            "ok": bool(summary["ok"]) and completed >= config.laps,
            "battery_v_end": round(sim.physics.battery_v(), 3),
            "cable_cut": camera.cut_s is not None,
            "failsafe_after_last_frame_ms": failsafe_ms,
        }


@contextmanager
def hil_drive(
    config: HILConfig,
    policy: Policy,
    *,
    on_frame: Any = None,
    on_event: Any = None,
    line_faults: Any = None,
) -> Iterator[HILSession]:
    """Open the whole simulated car (world, firmware on a pty, link) and build the drive
    loop over it without running it; everything is closed when the block exits.
    `on_frame(FrameStatus)` sees every loop iteration, `on_event(kind, info)` every lap,
    off-track and simulation step (from the simulation's thread in real-time mode).
    The drive handles SIGINT/SIGTERM only when built on the main thread."""
    from sim2real.world import World, WorldConfig
    from tracks.catalogue import resolve

    track = resolve(config.track)
    world = World(
        track,
        WorldConfig(rate_hz=policy.metadata.control_rate_hz),
        rng=np.random.default_rng(config.seed),
    )
    world.place_on_centerline(config.start_ndist)
    calibration, absolute = sim_calibration(config.physics)
    mapping = mapping_for(policy, config.mapping, absolute)
    # Lock-step (fast): the firmware's clock is the simulated time, so its failsafe
    # judges the command stream in simulated time and a laptop that stalls for a moment
    # (other programs, the GIL) is not a silent host. Real time: the wall clock.
    sim_clock: list[float] = [0.0]
    sim = SimulatedFirmware.start(
        CarPhysics(config.physics, seed=config.seed),
        line_faults,
        clock=(lambda: sim_clock[0]) if config.fast else None,
    )
    # The firmware, the link threads and the loop share one interpreter here (on the car
    # the firmware has its own chip): switch threads every 0.5 ms instead of 5 ms so a
    # busy thread does not hold the loop up for a whole switch interval.
    switch = sys.getswitchinterval()
    camera: SimCamera | None = None
    link: Link | None = None
    try:
        camera = SimCamera(world, sim, config, on_event)
        camera.clock = sim_clock
        runlog = None
        if config.log_dir is not None:
            runlog = RunLog(
                config.log_dir,
                {
                    "source": "racer drive --sim",
                    "track": config.track,
                    "model": policy.describe(),
                    "rate_hz": policy.metadata.control_rate_hz,
                    "calibration": calibration.to_dict(),
                    "mapping": config.mapping,
                    "fast": config.fast,
                },
                frame_every=config.save_frame_every,
            )
        # the link's liveness is judged on the wall clock: in lock-step mode allow a
        # stalled laptop a couple of seconds (the firmware's failsafe runs on simulated
        # time there)
        link = Link(LinkConfig(port=sim.port, timeout_s=2.0 if config.fast else 0.3))
        camera.host_bytes_sent = lambda: link.stats.bytes_sent  # type: ignore[union-attr]
        t0 = time.monotonic()
        sys.setswitchinterval(0.0005)
        link.open()
        drive = Drive(
            camera,
            policy,
            link,
            calibration,
            mapping,
            DriveConfig(
                max_speed_fraction=config.max_speed_fraction,
                handle_signals=threading.current_thread() is threading.main_thread(),
                # lock-step: frames are fresh by construction; wall-clock staleness would
                # only measure how fast this laptop simulates
                stale_periods=1e9 if config.fast else 2.0,
                paced=not config.fast,
            ),
            runlog=runlog,
            on_frame=on_frame,
        )
        yield HILSession(config, policy, drive, camera, sim, link, t0)
    finally:
        sys.setswitchinterval(switch)
        if camera is not None:
            camera.close()
        if link is not None:
            link.close()
        sim.stop()


def run_hil(
    config: HILConfig,
    policy: Policy,
    *,
    on_frame: Any = None,
    on_event: Any = None,
    line_faults: Any = None,
) -> dict[str, Any]:
    """Drive `policy` around the simulated track through the whole car stack; returns
    the report (laps, lap times, off-tracks, latency, deadline misses, link errors).
    `on_frame(FrameStatus)` sees every loop iteration, `on_event(kind, info)` every lap,
    off-track and simulation step (from the simulation's thread in real-time mode)."""
    with hil_drive(
        config, policy, on_frame=on_frame, on_event=on_event, line_faults=line_faults
    ) as session:
        summary = session.drive.run().summary()
        failsafe_ms = session.failsafe_delay_ms()
    return session.report(summary, failsafe_ms)


def _failsafe_delay_ms(sim: SimulatedFirmware, wait_s: float = 1.0) -> float | None:
    """After the line was closed: ms from the last byte the firmware received to its
    neutral throttle pulse (waits for the failsafe to fire)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        ctrl = sim.controller
        if ctrl is not None and ctrl.state != 1:  # no longer ARMED
            break
        time.sleep(0.005)
    last_rx = sim.port_device.last_rx_s
    neutral = sim.controller.t_mid if sim.controller is not None else None
    for t, which, us in sim.board.pulse_log:
        if which == "throttle" and us == neutral and t >= last_rx:
            return round((t - last_rx) * 1000, 2)
    return None
