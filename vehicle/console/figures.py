"""The `racer drive` console's figures: what the world knows about laps (`LapTimes`),
the rolling loop rate, latency percentiles and last action aggregated on the drive thread
(`LiveStats` -> `StatsSnapshot`), the camera tee that keeps the newest frame for the view,
and the figures grid the drive screen shows (`figures_text`). Runs on the car: numpy and
rich only.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class LapTimes:
    """What the world knows about laps (the simulator does; a real track may not)."""

    current_s: float
    """Time into the current lap."""
    last_s: float | None = None
    """The last complete lap."""
    best_s: float | None = None
    """The best complete lap."""
    laps: int = 0
    """Complete laps."""


@dataclass(frozen=True)
class StatsSnapshot:
    """Figures for the screen."""

    frames: int = 0
    rate_hz: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    misses: int = 0
    faults: int = 0
    battery_v: float | None = None
    link_state: str = "-"
    firmware_state: str = "-"
    steer_deg: float | None = None
    speed_mps: float | None = None
    steer_us: int | None = None
    throttle_us: int | None = None


class LiveStats:
    """Rolling loop rate and latency percentiles over the last `window` frames, plus the
    last action and telemetry; thread-safe (fed by the drive thread, read by the UI)."""

    def __init__(self, window: int = 150) -> None:
        self._lock = threading.Lock()
        self._times: deque[float] = deque(maxlen=window)
        self._lat: deque[float] = deque(maxlen=window)
        self._snap = StatsSnapshot()
        self.events: deque[str] = deque(maxlen=50)

    def add(self, st: Any) -> None:
        """Take one `vehicle.drive.FrameStatus`."""
        self.add_rows([(st.frame, st.t_s, st.loop_ms, st.deadline_miss, st.event)], st)

    def add_rows(
        self, rows: list[tuple[int, float, float | None, bool, str | None]], st: Any
    ) -> None:
        """Take iterations as (frame, t_s, loop_ms, deadline_miss, event) rows (a batch
        from the loop process, `vehicle.console.loop_process.FigureBatch`) and `st`, the
        newest `vehicle.drive.FrameStatus`."""
        with self._lock:
            misses = faults = 0
            for _frame, t_s, loop_ms, miss, event in rows:
                self._times.append(t_s)
                if loop_ms is not None:
                    self._lat.append(loop_ms)
                misses += int(miss)
                faults += int(event is not None)
            snap = self._snap
            rate = None
            if len(self._times) >= 2 and self._times[-1] > self._times[0]:
                rate = (len(self._times) - 1) / (self._times[-1] - self._times[0])
            lat = sorted(self._lat)
            tel = st.telemetry
            self._snap = StatsSnapshot(
                frames=st.frame,
                rate_hz=rate,
                p50_ms=_pct(lat, 50),
                p99_ms=_pct(lat, 99),
                misses=snap.misses + misses,
                faults=snap.faults + faults,
                battery_v=None if tel is None else tel.battery_v,
                link_state=st.link_state,
                firmware_state="-" if tel is None else tel.state,
                steer_deg=st.steer_deg,
                speed_mps=st.speed_mps,
                steer_us=st.steer_us,
                throttle_us=st.throttle_us,
            )

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return self._snap


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return float(np.percentile(sorted_values, q))


class TeeCamera:
    """Wraps the drive's camera and keeps the newest frame for the console's view."""

    def __init__(self, camera: Any) -> None:
        self._camera = camera
        self.last: Any = None

    def read(self, timeout_s: float = 0.5) -> Any:
        frame = self._camera.read(timeout_s=timeout_s)
        self.last = frame
        return frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self._camera, name)


def figures_text(app: Any, stats: StatsSnapshot, laps: LapTimes | None) -> Table:
    """The live figures as a two-column grid."""

    def num(v: float | None, fmt: str, unit: str) -> str:
        return "-" if v is None else f"{v:{fmt}} {unit}"

    t = Table.grid(padding=(0, 1))
    t.add_column(style="dim", width=9)
    t.add_column()
    state_style = {"RUNNING": "bold black on green", "E-STOP": "bold white on red"}.get(
        app.state, "bold"
    )
    t.add_row("state", Text(f" {app.state} ", style=state_style))
    t.add_row("max speed", Text(f"{app.max_speed * 100:.0f} %", style="bold yellow"))
    t.add_row(
        "loop",
        f"{num(stats.rate_hz, '.1f', 'Hz')}  frames {stats.frames}  miss {stats.misses}",
    )
    t.add_row(
        "latency", f"p50 {num(stats.p50_ms, '.2f', 'ms')}  p99 {num(stats.p99_ms, '.2f', 'ms')}"
    )
    t.add_row("battery", num(stats.battery_v, ".2f", "V"))
    link_style = "green" if stats.link_state == "up" else "bold red"
    t.add_row("link", Text(f"{stats.link_state} / {stats.firmware_state}", style=link_style))
    if stats.steer_deg is None:
        action = (
            "neutral"
            if stats.steer_us is None
            else f"neutral {stats.steer_us}/{stats.throttle_us} us"
        )
    else:
        action = (
            f"{stats.steer_deg:+.1f} deg {stats.speed_mps:.2f} m/s "
            f"{stats.steer_us}/{stats.throttle_us} us"
        )
    t.add_row("action", action)
    if laps is None:
        t.add_row("lap", Text("not known on this track", style="dim"))
    else:
        parts = [f"{laps.current_s:.1f} s"]
        if laps.last_s is not None:
            parts.append(f"last {laps.last_s:.1f}")
        if laps.best_s is not None:
            parts.append(f"best {laps.best_s:.1f}")
        parts.append(f"({laps.laps} laps)")
        t.add_row("lap", "  ".join(parts))
    t.add_row("faults", str(stats.faults))
    return t
