"""The actuator: what the calibrator tells the car's servo and ESC, sent at a steady rate
over the link, with a deadman on the throttle so the car never keeps moving by itself.

Terminals do not report key releases, so "the motor runs only while a key is held" is a
deadman: every key press or auto-repeat calls `hold()`, which extends a short window
(`deadman_s`, 250 ms by default, longer than the ~30-50 ms auto-repeat interval of a
terminal and shorter than a human reaction); when no repeat arrives inside it, the next
tick sends neutral. The guided speed test uses `run_for()`, a timed run that ends by
itself. `stop()` (space), `neutral()` (leaving a screen), `shutdown()` (quitting) and any
link error all go to neutral at once; the firmware's own watchdog is the second line when
the host dies.

No Textual here: the app runs `loop()` in a thread worker with a `post` callback that only
posts messages. Everything the UI thread calls is guarded by one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from vehicle.pulses import PULSE_MAX_US, PULSE_MIN_US, ChannelCalibration, PulseCalibration


class CarLink(Protocol):
    """The part of `vehicle.link.Link` the calibrator uses (a fake in tests)."""

    def arm(self, limits: PulseCalibration) -> None:
        """Allow motion within `limits`; the firmware clamps to them and falls back to
        their mid (neutral) on its own watchdog."""

    def disarm(self) -> None:
        """Neutral and no further motion until armed again."""

    def command(self, steer_us: int, throttle_us: int) -> None:
        """Set both pulse widths; raises the link's error if the car is unreachable."""

    def neutral(self) -> None:
        """Steering centred and throttle neutral, at once."""

    def close(self) -> None:
        """Release the port."""


@dataclass(frozen=True)
class ActuatorConfig:
    """Timing of the calibrator's command stream."""

    period_s: float = 0.02
    """Interval between commands sent to the car (50 Hz, the servo frame rate)."""
    deadman_s: float = 0.25
    """How long one key press keeps the motor running without a repeat."""
    max_run_s: float = 10.0
    """Longest timed run the speed test may ask for."""


@dataclass(frozen=True)
class ActuatorStatus:
    """A snapshot of what the car was last told and what it reported back."""

    link_state: str
    """"ok", "lost" or "closed" (plus the link's own detail when it has one)."""
    steer_us: int
    """Steering pulse width last sent."""
    throttle_us: int
    """Throttle pulse width last sent."""
    neutral_us: int
    """The throttle neutral in force (what "stopped" means)."""
    battery_v: float | None = None
    """Drive battery voltage from telemetry, volts (None before the first report)."""
    faults: tuple[str, ...] = ()
    """Fault flags the firmware reports."""
    commands_sent: int = 0
    """Commands that reached the link since start."""
    run_remaining_s: float | None = None
    """Seconds left of a timed run, None when none is running."""
    run_id: int = 0
    """Number of the latest timed run (`run_for` returns it); with `run_remaining_s`
    None and this id, that run is over."""
    dropouts: int = 0
    """Times the firmware fell back to neutral on its own (failsafe) and was re-armed."""
    error: str | None = None
    """The last link error, if the link is lost."""

    @property
    def moving(self) -> bool:
        """Whether the motor is being driven (throttle away from neutral)."""
        return self.throttle_us != self.neutral_us


TelemetryReader = Callable[[Any], tuple[float | None, tuple[str, ...]]]
"""Reads (battery_v, fault names) from a link; see `read_telemetry`."""


def read_telemetry(link: Any) -> tuple[float | None, tuple[str, ...]]:
    """(battery volts, fault names) from a `vehicle.link.Link`-like object; raises the
    link's error when the link is dead (a dead link must not look like "no data")."""
    telem = getattr(link, "telemetry", None)
    if callable(telem):
        telem = telem()
    if telem is None:
        return None, ()
    mv = getattr(telem, "battery_mv", None)
    battery_v = getattr(telem, "battery_v", None)
    if battery_v is None and mv is not None:
        battery_v = mv / 1000.0
    faults = getattr(telem, "fault_names", None) or getattr(telem, "faults", ()) or ()
    if isinstance(faults, int):
        faults = (f"0x{faults:02x}",) if faults else ()
    names = tuple(str(f) for f in faults)
    if getattr(telem, "state", None) == "failsafe" and "failsafe" not in names:
        names += ("failsafe",)
    return battery_v, names


def firmware_dropped_out(link: Any, armed_at_s: float) -> bool:
    """Whether the firmware reports, in telemetry newer than our last arm, that it is no
    longer armed (its 100 ms failsafe tripped because this host stalled, or it rebooted)."""
    latest = getattr(link, "latest_telemetry", None)
    telem = latest() if callable(latest) else None
    if telem is None or getattr(telem, "received_s", 0.0) <= armed_at_s:
        return False
    return getattr(telem, "state", "armed") in ("failsafe", "disarmed")


def calibration_limits(steer_mid_us: int, throttle_neutral_us: int) -> PulseCalibration:
    """Arm limits while calibrating: the full legal pulse range, so the ends can be found,
    with the draft's centre and neutral as the firmware's fallback."""
    return PulseCalibration(
        ChannelCalibration(PULSE_MIN_US, steer_mid_us, PULSE_MAX_US, 1),
        ChannelCalibration(PULSE_MIN_US, throttle_neutral_us, PULSE_MAX_US, 1),
    )


@dataclass
class _State:
    steer_us: int
    steer_mid_us: int
    neutral_us: int
    hold_us: int | None = None
    hold_until: float = 0.0
    run_until: float = 0.0
    run_s: float | None = None
    """A timed run's length while it waits for its first command; its clock starts then."""
    run_id: int = 0
    dropouts: int = 0
    rearm: bool = True
    sent: int = 0
    lost: str | None = None
    closed: bool = False


class Actuator:
    """Owns the link for the calibrator. UI thread: `steer`, `hold`, `run_for`, `stop`,
    `neutral`, `set_neutral`; worker thread: `loop` (or `tick` in tests)."""

    def __init__(
        self,
        link: CarLink,
        pulses: PulseCalibration,
        *,
        config: ActuatorConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        telemetry: TelemetryReader = read_telemetry,
    ) -> None:
        self.link = link
        self.config = config or ActuatorConfig()
        self._clock = clock
        self._telemetry = telemetry
        self._lock = threading.Lock()
        self._io = threading.Lock()  # one exchange with the link at a time
        self._s = _State(
            steer_us=pulses.steering.mid_us,
            steer_mid_us=pulses.steering.mid_us,
            neutral_us=pulses.throttle.mid_us,
        )
        self._battery_v: float | None = None
        self._faults: tuple[str, ...] = ()
        self._armed_at_s = 0.0

    # ---- UI thread ------------------------------------------------------------------

    def set_neutral(self, steer_mid_us: int, throttle_neutral_us: int) -> None:
        """What centred and stopped mean (the draft calibration's mid pulses)."""
        with self._lock:
            s = self._s
            if (s.steer_mid_us, s.neutral_us) != (steer_mid_us, throttle_neutral_us):
                s.steer_mid_us, s.neutral_us = steer_mid_us, throttle_neutral_us
                s.rearm = True

    def steer(self, steer_us: int) -> None:
        """Move the steering servo to `steer_us` (clamped to the legal range)."""
        with self._lock:
            self._s.steer_us = max(PULSE_MIN_US, min(PULSE_MAX_US, int(steer_us)))

    def hold(self, throttle_us: int) -> None:
        """Drive the ESC at `throttle_us` for one deadman window from now."""
        with self._lock:
            s = self._s
            s.hold_us = max(PULSE_MIN_US, min(PULSE_MAX_US, int(throttle_us)))
            s.hold_until = self._clock() + self.config.deadman_s
            s.run_until, s.run_s = 0.0, None

    def run_for(self, throttle_us: int, duration_s: float) -> int:
        """Drive the ESC at `throttle_us` for `duration_s` (the speed test), then neutral.
        Returns the run's id (see `ActuatorStatus.run_id`). The run's `duration_s` counts
        from the tick that sends its first command, not from this call: on a machine that
        holds the worker thread back, a run timed from the request would be cut short (or
        never sent) while the speed test records the full duration."""
        duration_s = min(float(duration_s), self.config.max_run_s)
        with self._lock:
            s = self._s
            s.hold_us = max(PULSE_MIN_US, min(PULSE_MAX_US, int(throttle_us)))
            s.run_s, s.run_until = duration_s, 0.0
            s.hold_until = 0.0
            s.run_id += 1
            return s.run_id

    def stop(self) -> None:
        """Throttle to neutral now, cancelling any hold or timed run; steering stays."""
        with self._lock:
            self._stop_locked()

    def neutral(self) -> None:
        """Throttle to neutral and steering to centre (leaving a screen)."""
        with self._lock:
            self._stop_locked()
            self._s.steer_us = self._s.steer_mid_us

    def _stop_locked(self) -> None:
        s = self._s
        s.hold_us, s.hold_until, s.run_until, s.run_s = None, 0.0, 0.0, None

    # ---- worker thread --------------------------------------------------------------

    def outputs(self) -> tuple[int, int, float | None, int]:
        """(steer_us, throttle_us, run seconds left, run id) the next tick will send."""
        with self._lock:
            s = self._s
            now = self._clock()
            throttle = s.neutral_us
            remaining = None
            if s.hold_us is not None and s.lost is None:
                if s.run_s is not None:  # a timed run's first command: its clock starts
                    s.run_until, s.run_s = now + s.run_s, None
                if now < s.run_until:
                    throttle, remaining = s.hold_us, s.run_until - now
                elif now < s.hold_until:
                    throttle = s.hold_us
                else:
                    s.hold_us = None
            elif s.run_s is not None:
                remaining = s.run_s  # waiting for the link to come back: not started, not over
            return s.steer_us, throttle, remaining, s.run_id

    def tick(self) -> ActuatorStatus:
        """Send one command (arming first when needed) and read telemetry; after
        `shutdown` nothing more is sent."""
        with self._io:
            return self._tick()

    def _tick(self) -> ActuatorStatus:
        steer_us, throttle_us, remaining, run_id = self.outputs()
        if self._s.closed:
            return ActuatorStatus("closed", steer_us, self._s.neutral_us, self._s.neutral_us)
        error = None
        try:
            with self._lock:
                rearm, self._s.rearm = self._s.rearm, False
                limits = calibration_limits(self._s.steer_mid_us, self._s.neutral_us)
            if rearm:
                self.link.arm(limits)
                self._armed_at_s = time.monotonic()
            elif firmware_dropped_out(self.link, self._armed_at_s):
                # the firmware fell back to neutral on its own: stop any hold so the motor
                # does not start again by itself, and arm again (at neutral) next tick
                with self._lock:
                    self._stop_locked()
                    self._s.rearm = True
                    self._s.dropouts += 1
                throttle_us = self._s.neutral_us
            self.link.command(steer_us, throttle_us)
            battery_v, self._faults = self._telemetry(self.link)
            self._battery_v = None if battery_v is None else round(battery_v, 2)
            with self._lock:
                self._s.sent += 1
                self._s.lost = None
        except Exception as exc:  # any link failure: stop and report, never raise
            error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._stop_locked()
                self._s.lost = error
                self._s.rearm = True
            try:
                self.link.neutral()
            except Exception:
                pass
            throttle_us = self._s.neutral_us
        with self._lock:
            s = self._s
            return ActuatorStatus(
                link_state="closed" if s.closed else ("lost" if s.lost else "ok"),
                steer_us=steer_us,
                throttle_us=throttle_us,
                neutral_us=s.neutral_us,
                battery_v=self._battery_v,
                faults=self._faults,
                commands_sent=s.sent,
                run_remaining_s=None if remaining is None else round(remaining, 1),
                run_id=run_id,
                dropouts=s.dropouts,
                error=error or s.lost,
            )

    def loop(
        self,
        post: Callable[[ActuatorStatus], None],
        stop_event: threading.Event,
    ) -> None:
        """Tick at `period_s` until `stop_event` is set, posting a status whenever what it
        shows changes (not every tick: a quiet link costs no redraws over SSH); neutral
        and disarmed at the end, however the loop ends."""
        next_t = self._clock()
        last: ActuatorStatus | None = None
        try:
            while not stop_event.is_set():
                status = self.tick()
                shown = replace(status, commands_sent=0)
                if shown != last:
                    post(status)
                    last = shown
                next_t += self.config.period_s
                delay = next_t - self._clock()
                if delay < -self.config.period_s:
                    next_t = self._clock()  # fell behind: do not burst to catch up
                stop_event.wait(max(0.0, delay))
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Neutral, disarm; safe to call more than once and from any thread."""
        with self._lock:
            self._stop_locked()
            if self._s.closed:
                return
            self._s.closed = True
        with self._io:  # after any tick in flight, so nothing re-arms behind our back
            for call in (self.link.neutral, self.link.disarm):
                try:
                    call()
                except Exception:
                    pass
