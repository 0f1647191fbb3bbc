"""The drive loop: camera frame -> observation -> policy -> pulse widths -> serial link,
at the model's control rate, failing safe on every fault.

Runs on the car (and, unchanged, in the hardware-in-the-loop simulation). One iteration:

    capture     newest frame from the camera (waits at most `camera_timeout_s`)
    preprocess  frame -> (120, 160, 1) uint8, exactly as training
    infer       the TFLite policy -> (steer_deg, speed_mps)
    command     DeepRacer or absolute mapping x max-speed fraction -> pulse widths -> link

Safety: a stale frame (older than `stale_periods` frame periods), a camera stall or
error, an inference error, a link error, SIGINT/SIGTERM and the emergency stop all send
neutral *first*, then count, log and (for persistent faults) stop. A camera that ends (a
recording played out, a simulation that drove its laps) sends neutral and stops cleanly:
no fault event, `ok` stays true. The firmware's own
100 ms failsafe covers a host that dies outright. Before the first frame the loop refuses
to start when the model and the calibration disagree (`DriveError`).

Latency is measured from "frame available" (its capture timestamp) to "command written";
an iteration whose command is written more than one period after its frame became
available is a deadline miss.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vehicle.camera import Camera, Frame, frame_gray
from vehicle.errors import (
    CameraEnded,
    CameraError,
    CameraStalled,
    DriveError,
    LinkError,
    LinkTimeout,
    PulseError,
)
from vehicle.inference import Policy
from vehicle.link import Link, Telemetry
from vehicle.observation import PREPROCESSING_VERSION, preprocess
from vehicle.pulses import (
    AbsoluteMapping,
    ActionMapping,
    DeepRacerMapping,
    PulseCalibration,
    action_pulses,
)
from vehicle.runlog import RunLog

STAGES = ("capture", "preprocess", "infer", "command")


@dataclass(frozen=True)
class DriveConfig:
    """How the drive loop runs."""

    max_speed_fraction: float = 1.0
    """Scales the throttle (DeepRacer's max-speed slider / 100), 0-1."""
    stale_periods: float = 2.0
    """A frame older than this many control periods is stale: neutral, not acted on."""
    camera_timeout_s: float = 0.5
    """Longest wait for a frame before the camera counts as stalled (also capped at the
    stale limit, `stale_periods` control periods)."""
    max_consecutive_faults: int = 15
    """Stop after this many faulty iterations in a row (about 1 s at 15 Hz)."""
    rate_hz: float | None = None
    """Loop rate; None: the model's control rate."""
    allow_rate_mismatch: bool = False
    """Accept a camera slower than the model's control rate."""
    rearm_after_failsafe: bool = True
    """If the firmware reports FAILSAFE while the link is healthy (a burst of lost
    commands), arm it again explicitly and go on."""
    max_rearm_failures: int = 5
    """Re-arms in a row whose ACK never came (each already tried three times by the link)
    before the drive stops; while they fail the firmware holds neutral in FAILSAFE."""
    max_frames: int | None = None
    """Stop after this many iterations (None: until stopped)."""
    duration_s: float | None = None
    """Stop after this long (None: until stopped)."""
    save_frame_every: int = 0
    """Save every n-th camera frame into the run log (0: none)."""
    handle_signals: bool = True
    """Install SIGINT/SIGTERM handlers (only possible on the main thread)."""
    paced: bool = True
    """Hold the loop to the control rate; False runs as fast as the camera delivers
    (lock-step simulation)."""


@dataclass
class FrameStatus:
    """What one iteration did; passed to the `on_frame` callback (console, simulation)."""

    frame: int
    t_s: float
    steer_deg: float | None
    speed_mps: float | None
    steer_us: int
    throttle_us: int
    loop_ms: float | None
    stages_ms: dict[str, float]
    deadline_miss: bool
    event: str | None
    telemetry: Telemetry | None
    link_state: str


@dataclass
class DriveResult:
    """Summary of a drive."""

    frames: int = 0
    """Iterations run."""
    commands: int = 0
    """Iterations that sent a model command (not neutral)."""
    duration_s: float = 0.0
    deadline_misses: int = 0
    stale_frames: int = 0
    camera_stalls: int = 0
    inference_errors: int = 0
    link_errors: int = 0
    firmware_failsafes: int = 0
    """FAILSAFE states reported by the firmware during the run."""
    rearms: int = 0
    rearm_failures: int = 0
    """Re-arms whose ACK was lost on the line (tried again on the next FAILSAFE report)."""
    stop_reason: str = ""
    """Why the loop ended: 'max_frames', 'duration', 'stopped', 'signal SIGINT',
    'emergency stop', 'link lost: ...', 'camera: ...', 'inference: ...'."""
    ok: bool = True
    """False when the loop ended because of a fault."""
    loop_ms: list[float] = field(default_factory=list, repr=False)
    stages_ms: dict[str, list[float]] = field(
        default_factory=lambda: {s: [] for s in STAGES}, repr=False
    )

    def percentile(self, values: list[float], q: float) -> float | None:
        return round(float(np.percentile(values, q)), 3) if values else None

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("loop_ms", "stages_ms")}
        out["loop_p50_ms"] = self.percentile(self.loop_ms, 50)
        out["loop_p99_ms"] = self.percentile(self.loop_ms, 99)
        for s, vals in self.stages_ms.items():
            out[f"{s}_p50_ms"] = self.percentile(vals, 50)
            out[f"{s}_p99_ms"] = self.percentile(vals, 99)
        return out


def mapping_for(
    policy: Policy, mode: str = "deepracer", absolute: AbsoluteMapping | None = None
) -> ActionMapping:
    """The action mapping for a model: DeepRacer's relative one, or the calibrated
    absolute one (refusing an action space the car cannot drive)."""
    space = policy.metadata.action_space
    if mode == "deepracer":
        return DeepRacerMapping(space.max_steer_deg, space.max_speed_mps)
    if mode != "absolute":
        raise DriveError(f"mapping {mode!r} is not 'deepracer' or 'absolute'")
    if absolute is None:
        raise DriveError(
            "absolute mapping needs a measured speed curve and steering angles; run the "
            "speed test in `racer calibrate`, or drive with --mapping deepracer"
        )
    try:
        absolute.check(space.max_steer_deg, space.max_speed_mps)
    except PulseError as exc:
        raise DriveError(f"the model and the calibration disagree: {exc}") from exc
    return absolute


class Drive:
    """One drive: owns the loop; the camera, policy and link are opened by the caller."""

    def __init__(
        self,
        camera: Camera,
        policy: Policy,
        link: Link,
        calibration: PulseCalibration,
        mapping: ActionMapping,
        config: DriveConfig | None = None,
        *,
        runlog: RunLog | None = None,
        on_frame: Callable[[FrameStatus], None] | None = None,
    ) -> None:
        self.camera = camera
        self.policy = policy
        self.link = link
        self.calibration = calibration
        self.mapping = mapping
        self.config = config or DriveConfig()
        self.runlog = runlog
        self.on_frame = on_frame
        self.result = DriveResult()
        self.max_speed_fraction = self.config.max_speed_fraction
        """Adjustable while driving (console)."""
        self._stop = threading.Event()
        self._stop_reason = ""
        self._estop = False
        rate = self.config.rate_hz or policy.metadata.control_rate_hz
        self.period_s = 1.0 / rate
        self.check()

    # -- refusal to start --------------------------------------------------------------

    def check(self) -> None:
        """Refuse to start when the pieces disagree."""
        meta = self.policy.metadata
        if meta.preprocessing_version != PREPROCESSING_VERSION:
            raise DriveError(
                f"the model was trained with preprocessing version "
                f"{meta.preprocessing_version}, this car runs {PREPROCESSING_VERSION}; "
                "re-export the model with this openracer version"
            )
        if not 0.0 <= self.max_speed_fraction <= 1.0:
            raise DriveError(f"--max-speed {self.max_speed_fraction} must be within 0-1")
        if isinstance(self.mapping, AbsoluteMapping):
            try:
                self.mapping.check(meta.action_space.max_steer_deg, meta.action_space.max_speed_mps)
            except PulseError as exc:
                raise DriveError(f"the model and the calibration disagree: {exc}") from exc
        elif isinstance(self.mapping, DeepRacerMapping):
            space = meta.action_space
            if (
                abs(self.mapping.max_steer_deg - space.max_steer_deg) > 1e-6
                or abs(self.mapping.max_speed_mps - space.max_speed_mps) > 1e-6
            ):
                raise DriveError(
                    f"the DeepRacer mapping was built for max steer {self.mapping.max_steer_deg}"
                    f" deg / max speed {self.mapping.max_speed_mps} m/s but the model's action "
                    f"space has {space.max_steer_deg} / {space.max_speed_mps}; build it with "
                    "vehicle.drive.mapping_for(policy)"
                )
        rate = 1.0 / self.period_s
        cam_rate = getattr(self.camera, "rate_hz", rate)
        if cam_rate + 0.5 < rate and not self.config.allow_rate_mismatch:
            raise DriveError(
                f"the camera delivers {cam_rate:g} fps but the model runs at {rate:g} Hz; "
                "use a faster camera mode or pass --allow-rate-mismatch"
            )
        if abs(rate - meta.control_rate_hz) > 1e-6 and not self.config.allow_rate_mismatch:
            raise DriveError(
                f"loop rate {rate:g} Hz differs from the model's control rate "
                f"{meta.control_rate_hz:g} Hz; pass --allow-rate-mismatch to drive anyway"
            )

    # -- control from other threads --------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        """End the loop after sending neutral (any thread)."""
        if not self._stop_reason:
            self._stop_reason = reason
        self.link.neutral()
        self._stop.set()

    def emergency_stop(self, reason: str = "emergency stop") -> None:
        """Neutral now, disarm, end the loop (any thread); an iteration in flight sends
        neutral too."""
        self._estop = True
        self.link.neutral()
        self.stop(reason)

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> DriveResult:
        """Arm, drive until stopped or a persistent fault, neutral + disarm. Never leaves
        the car moving."""
        cfg = self.config
        res = self.result
        restore = self._install_signals() if cfg.handle_signals else None
        t_begin = time.monotonic()
        try:
            # the first invoke builds the interpreter's kernels (tens of ms): not while armed
            self.policy.infer(np.zeros(self.policy.metadata.input_shape, np.uint8))
            self.link.arm(self.calibration)
            self._loop(t_begin)
        except LinkError as exc:
            res.link_errors += 1
            self._stop_reason = self._stop_reason or f"link lost: {exc}"
            res.ok = False
        finally:
            self.link.neutral()
            try:
                self.link.disarm()
            except LinkError:
                pass
            if restore is not None:
                restore()
            res.duration_s = round(time.monotonic() - t_begin, 3)
            res.stop_reason = self._stop_reason or "stopped"
            if self.runlog is not None:
                self.runlog.close(res.summary())
        return res

    def _loop(self, t_begin: float) -> None:
        cfg = self.config
        res = self.result
        period = self.period_s
        neutral_s, neutral_t = self.calibration.neutral_us()
        faults_in_row = 0
        fault_reason = ""
        # a camera silent for the stale limit is stalled: neutral then, not later
        read_timeout = min(cfg.camera_timeout_s, cfg.stale_periods * period)
        next_due = time.monotonic()
        index = 0
        while not self._stop.is_set():
            if cfg.max_frames is not None and index >= cfg.max_frames:
                self._stop_reason = "max_frames"
                break
            if cfg.duration_s is not None and time.monotonic() - t_begin >= cfg.duration_s:
                self._stop_reason = "duration"
                break
            # pace at the control rate (a faster camera's extra frames are dropped)
            if cfg.paced:
                now = time.monotonic()
                if next_due > now:
                    time.sleep(next_due - now)
                next_due = max(next_due + period, time.monotonic() - period)
            index += 1
            res.frames = index
            stages: dict[str, float] = {}
            event: str | None = None
            steer_deg = speed_mps = None
            steer_us, throttle_us = neutral_s, neutral_t
            loop_ms: float | None = None
            frame: Frame | None = None
            t0 = time.perf_counter()
            try:
                frame = self.camera.read(timeout_s=read_timeout)
            except CameraStalled as exc:
                event = "camera_stall"
                res.camera_stalls += 1
                self.link.neutral()
                fault_reason = f"camera: {exc}"
            except CameraEnded as exc:
                # a recording or a simulation that ended: the run is over, nothing failed;
                # no frame was read, so this iteration is not counted or logged
                self.link.neutral()
                self._stop_reason = f"camera: {exc}"
                res.frames = index - 1
                break
            except CameraError as exc:
                event = "camera_error"
                self.link.neutral()
                self._stop_reason = f"camera: {exc}"
                res.ok = False
                self._emit(index, event, None, None, steer_us, throttle_us, None, stages, False)
                break
            t1 = time.perf_counter()
            stages["capture_ms"] = (t1 - t0) * 1000
            if frame is not None and frame.age_s() > cfg.stale_periods * period:
                event = "stale_frame"
                res.stale_frames += 1
                self.link.neutral()
                fault_reason = f"stale frame: {frame.age_s() * 1000:.0f} ms old"
                frame = None
            if frame is not None:
                try:
                    obs = preprocess(frame.image, color_order=_order(frame))
                    t2 = time.perf_counter()
                    stages["preprocess_ms"] = (t2 - t1) * 1000
                    steer_deg, speed_mps, _raw = self.policy.act(obs)
                    t3 = time.perf_counter()
                    stages["infer_ms"] = (t3 - t2) * 1000
                    tel = self._latest_telemetry()
                    battery_v = tel.battery_v if tel is not None else None
                    steer_us, throttle_us, _, _ = action_pulses(
                        self.mapping,
                        self.calibration,
                        steer_deg,
                        speed_mps,
                        max_speed_fraction=0.0 if self._estop else self.max_speed_fraction,
                        battery_v=battery_v,
                    )
                except LinkError:
                    raise
                except Exception as exc:  # inference or mapping: fail safe
                    event = "inference_error"
                    res.inference_errors += 1
                    self.link.neutral()
                    fault_reason = f"inference: {type(exc).__name__}: {exc}"
                    steer_deg = speed_mps = None
                    steer_us, throttle_us = neutral_s, neutral_t
                else:
                    self.link.command(steer_us, throttle_us)  # LinkError ends the run
                    t4 = time.perf_counter()
                    stages["command_ms"] = (t4 - t3) * 1000
                    loop_ms = (time.monotonic() - frame.timestamp_s) * 1000
                    res.commands += 1
                    res.loop_ms.append(loop_ms)
                    for s in STAGES:
                        res.stages_ms[s].append(stages[f"{s}_ms"])
            if event is None:
                faults_in_row = 0
            else:
                faults_in_row += 1
            miss = loop_ms is not None and loop_ms > period * 1000
            res.deadline_misses += int(miss)
            self._emit(
                index,
                event,
                steer_deg,
                speed_mps,
                steer_us,
                throttle_us,
                loop_ms,
                stages,
                miss,
                frame,
            )
            self._watch_firmware()
            if faults_in_row >= cfg.max_consecutive_faults:
                res.ok = False
                self._stop_reason = f"{fault_reason} ({faults_in_row} faulty frames in a row)"
                break

    # -- helpers ------------------------------------------------------------------------

    def _latest_telemetry(self) -> Telemetry | None:
        self.link.check()  # a dead link must not look like "no telemetry yet"
        return self.link.latest_telemetry()

    def _watch_firmware(self) -> None:
        tel = self.link.latest_telemetry()
        if tel is None or tel.state != "failsafe" or self._stop.is_set():
            return
        if tel.received_s < getattr(self, "_last_rearm_s", 0.0):
            return  # telemetry from before the last re-arm
        self.result.firmware_failsafes += 1
        self._last_rearm_s = time.monotonic()  # count each failsafe once
        if self.config.rearm_after_failsafe and not self._estop:
            self.link.check()
            try:
                self.link.arm(self.calibration)
            except LinkTimeout:
                # No ACK for ARM in three attempts, yet the link is alive (check() raises
                # if the firmware went silent): a noisy line lost the ARM frames or their
                # ACKs. The firmware holds neutral in FAILSAFE and keeps reporting it, so
                # the next report tries again, up to max_rearm_failures in a row.
                self.link.check()
                self.result.rearm_failures += 1
                self._rearm_failures_in_row = getattr(self, "_rearm_failures_in_row", 0) + 1
                if self._rearm_failures_in_row >= self.config.max_rearm_failures:
                    raise
                self._last_rearm_s = time.monotonic()
                return
            self._rearm_failures_in_row = 0
            self._last_rearm_s = time.monotonic()
            self.result.rearms += 1
        else:
            self.result.ok = False
            self.stop("firmware failsafe (re-arming disabled)")

    def _emit(
        self,
        index: int,
        event: str | None,
        steer_deg: float | None,
        speed_mps: float | None,
        steer_us: int,
        throttle_us: int,
        loop_ms: float | None,
        stages: dict[str, float],
        miss: bool,
        frame: Frame | None = None,
    ) -> None:
        tel = self.link.latest_telemetry()
        t_s = time.time()
        if self.runlog is not None:
            rec: dict[str, Any] = {
                "frame": index,
                "t_s": round(t_s, 6),
                "loop_ms": None if loop_ms is None else round(loop_ms, 3),
                "stages": {k.removesuffix("_ms"): round(v, 3) for k, v in stages.items()},
                "steer_deg": steer_deg,
                "speed_mps": speed_mps,
                "steer_us": steer_us,
                "throttle_us": throttle_us,
                "max_speed": self.max_speed_fraction,
                "deadline_miss": miss,
                "link_errors": self.result.link_errors,
                "link": self.link.state,
                "event": event,
            }
            if tel is not None:
                rec["battery_v"] = tel.battery_v
                rec["telemetry"] = tel.to_dict()
            if frame is not None and self.runlog.wants_frame(index):
                rec["frame_file"] = self.runlog.save_frame(
                    index, frame.timestamp_s, frame_gray(frame)
                )
            self.runlog.record(rec)
        if self.on_frame is not None:
            self.on_frame(
                FrameStatus(
                    index,
                    t_s,
                    steer_deg,
                    speed_mps,
                    steer_us,
                    throttle_us,
                    loop_ms,
                    stages,
                    miss,
                    event,
                    tel,
                    self.link.state,
                )
            )

    def _install_signals(self) -> Callable[[], None] | None:
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum: int, _frame: Any) -> None:
            self.link.neutral()  # first, before anything else
            self.stop(f"signal {signal.Signals(signum).name}")

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)

        return restore


def _order(frame: Frame) -> str:
    return "bgr" if frame.color_order == "gray" else frame.color_order


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
