"""Widgets of the calibrator: the screen tabs, the link status line, a pulse gauge, the
speed-curve plot and small tables. They take data down (`update`-style methods) and hold
no calibration logic; the screens decide.

Drawing is plain text sized for 80x24 and cheap to repaint over a slow SSH link.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from calibration.actuator import ActuatorStatus
from vehicle.pulses import SpeedCurve

TABS = (
    ("steering", "1 Steering"),
    ("throttle", "2 Throttle"),
    ("speed", "3 Speed"),
    ("battery", "4 Battery"),
    ("camera", "5 Camera"),
    ("review", "6 Review"),
)
"""Screen names in order, with the label (and the key that opens each)."""


class TabBar(Static):
    """The row of screen names; the current one highlighted, `*` when unsaved changes."""

    def __init__(self, current: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.current = current
        self.unsaved = 0

    def set_unsaved(self, count: int) -> None:
        self.unsaved = count
        self.update(self._text())

    def on_mount(self) -> None:
        self.update(self._text())

    def _text(self) -> Text:
        text = Text()
        for name, label in TABS:
            style = "bold reverse" if name == self.current else ""
            text.append(f" {label} ", style=style)
        if self.unsaved:
            text.append(f"  *{self.unsaved} unsaved", style="bold yellow")
        return text


def status_text(status: ActuatorStatus | None) -> Text:
    """One line: link state, battery, the pulses last sent, motion."""
    text = Text()
    if status is None:
        return Text("link: connecting...", style="yellow")
    if status.link_state == "ok":
        text.append("link ok", style="bold green")
    else:
        text.append(f"LINK {status.link_state.upper()}", style="bold white on red")
    volts = "--.-- V" if status.battery_v is None else f"{status.battery_v:5.2f} V"
    text.append(f"  batt {volts}")
    text.append(f"  steer {status.steer_us} us  thr {status.throttle_us} us ")
    if status.run_remaining_s is not None:
        text.append(f" RUN {status.run_remaining_s:4.1f}s ", style="bold black on yellow")
    elif status.moving:
        text.append(" MOTOR ON ", style="bold black on yellow")
    else:
        text.append(" neutral ", style="green")
    if status.faults:
        text.append("  faults: " + ",".join(status.faults), style="bold red")
    return text


class StatusLine(Static):
    """The link status line at the bottom of every screen."""

    def show(self, status: ActuatorStatus | None) -> None:
        self.update(status_text(status))


def gauge_text(width: int, lo_us: int, hi_us: int, marks: dict[str, int], cursor_us: int) -> Text:
    """A horizontal scale from `lo_us` to `hi_us` with one-letter marks and a cursor `^`."""
    width = max(20, width)
    span = max(1, hi_us - lo_us)

    def col(us: int) -> int:
        return max(0, min(width - 1, round((us - lo_us) * (width - 1) / span)))

    line = ["-"] * width
    for letter, us in marks.items():
        line[col(us)] = letter
    cursor = [" "] * width
    cursor[col(cursor_us)] = "^"
    text = Text("".join(line), style="cyan")
    text.append("\n" + "".join(cursor), style="bold yellow")
    text.append(f"\n{lo_us} us".ljust(width - 7) + f"{hi_us} us", style="dim")
    return text


class PulseGauge(Static):
    """Where the pulse is, relative to the set ends and centre."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._data: tuple[int, int, dict[str, int], int] | None = None

    def show(self, lo_us: int, hi_us: int, marks: dict[str, int], cursor_us: int) -> None:
        self._data = (lo_us, hi_us, marks, cursor_us)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self._data is not None:
            self.update(gauge_text(self.size.width or 60, *self._data))


def curve_text(
    fit: SpeedCurve | None, measured: list[tuple[float, float]], width: int, height: int
) -> Text:
    """An ASCII plot of the fitted speed curve (`.`) and the measured runs (`o`)."""
    if fit is None:
        return Text("no runs yet: press g to run the first test", style="dim")
    width, height = max(20, width - 8), max(4, height - 2)
    top = max([fit.top_speed_mps] + [s for _, s in measured]) * 1.1 or 1.0
    grid = [[" "] * width for _ in range(height)]

    def put(c: float, s: float, ch: str) -> None:
        x = round(c * (width - 1))
        y = height - 1 - round(s / top * (height - 1))
        if 0 <= x < width and 0 <= y < height:
            grid[y][x] = ch

    for i in range(width):
        c = i / (width - 1)
        put(c, fit.speed_mps(c), ".")
    for c, s in measured:
        put(c, s, "o")
    text = Text()
    for row, cells in enumerate(grid):
        label = f"{top * (height - 1 - row) / (height - 1):4.1f} |" if row % 2 == 0 else "     |"
        text.append(label, style="dim")
        text.append("".join(cells) + "\n", style="cyan")
    text.append("     +" + "-" * width + "\n", style="dim")
    text.append("      0" + " " * (width - 13) + "command 1", style="dim")
    return text


class CurvePlot(Static):
    """The speed curve: fitted line and measured runs."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._data: tuple[SpeedCurve | None, list[tuple[float, float]]] = (None, [])

    def show(self, fit: SpeedCurve | None, measured: list[tuple[float, float]]) -> None:
        self._data = (fit, measured)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        fit, measured = self._data
        self.update(curve_text(fit, measured, self.size.width or 60, self.size.height or 10))
