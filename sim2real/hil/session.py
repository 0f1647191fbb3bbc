"""Hardware-in-the-loop: the whole car on a laptop, one drive at a time.

The real drive loop (`vehicle.drive`) and the real serial link (`vehicle.link`) talk over
a pseudo-terminal to the real firmware code (`vehicle/firmware`, under CPython on the
simulated board of `sim2real.hil.board`), whose pulse widths move the simulated car through
the physical model of servo, ESC and battery (`sim2real.hil.physics`); the simulator
(`sim2real.world.World`) renders the camera frames the drive loop reads
(`sim2real.hil.camera`) and times the laps (`sim2real.laps`). Real time by default; `fast`
runs the world in lock-step with the loop, as fast as the loop goes.

    report = run_hil(HILConfig(track="reinvent_like", laps=2, fast=True), policy)

or, to run the drive yourself (the `racer drive --sim` console does, in its worker):

    with hil_drive(config, policy, on_frame=show) as session:
        session.drive.run()          # session.laps(): the simulator's lap timer

The simulated car is calibrated the way `racer calibrate` would calibrate it
(`sim2real.hil.physics.sim_calibration`), so the absolute mapping reproduces the model's
commanded m/s, as in training.

Laptop-only; imports neither TensorFlow nor albumentations.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.hil.board import SimulatedFirmware
from sim2real.hil.camera import SimCamera
from sim2real.hil.line import LineFaults
from sim2real.hil.physics import CarPhysics, PhysicsConfig, sim_calibration
from sim2real.laps import LapInfo
from sim2real.world import World, WorldConfig
from tracks.catalogue import resolve
from vehicle.drive import Drive, DriveConfig, mapping_for
from vehicle.inference import Policy
from vehicle.link import Link, LinkConfig
from vehicle.runlog import RunLog


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
        """The simulator's lap timer (simulated seconds)."""
        return self.camera.laps.info()

    def failsafe_delay_ms(self) -> float | None:
        """After a cable cut: ms from the firmware's last received byte to its neutral
        throttle pulse (None when the cable was not cut)."""
        return _failsafe_delay_ms(self.sim) if self.camera.cut_s is not None else None

    def report(self, summary: dict[str, Any], failsafe_ms: float | None = None) -> dict[str, Any]:
        """The run's report from the drive's summary (wall time: until this call)."""
        config, camera, sim = self.config, self.camera, self.sim
        laps = camera.laps.info()
        completed = laps.laps_completed
        return {
            "track": config.track,
            "model": self.policy.describe().get("path"),
            "backend": self.policy.backend,
            "mapping": config.mapping,
            "fast": config.fast,
            "laps": config.laps,
            "laps_completed": completed,
            "lap_times_s": list(laps.lap_times_s),
            "off_track": laps.off_track,
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
            "rearms": summary["rearms"],
            "rearm_failures": summary["rearm_failures"],
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
    line_faults: LineFaults | None = None,
) -> Iterator[HILSession]:
    """Open the whole simulated car (world, firmware on a pty, link) and build the drive
    loop over it without running it; everything is closed when the block exits.
    `on_frame(FrameStatus)` sees every loop iteration, `on_event(kind, info)` every lap,
    off-track and simulation step (from the simulation's thread in real-time mode).
    The drive handles SIGINT/SIGTERM only when built on the main thread."""
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
        # The link judges the firmware's silence and answers on the wall clock. On the car
        # the firmware has its own chip and 0.3 s of silence means it is gone; here it is a
        # thread of this process, and a laptop busy with other work (a training run, the
        # GIL) can hold it back that long while it is fine. So allow 2 s in both modes: a
        # cut cable is still seen at once (the port fails), and the firmware's own
        # failsafe (its clock: simulated time in lock-step, the wall clock in real time)
        # still stops the car after 100 ms without commands.
        link = Link(LinkConfig(port=sim.port, timeout_s=2.0, ack_timeout_s=2.0))
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
    line_faults: LineFaults | None = None,
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
