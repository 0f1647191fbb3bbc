"""Steering: nudge the servo live with the arrow keys, set centre and both ends, enter
the wheel angle measured at each end."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from rich.table import Table
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from calibration.errors import CalibrationValueError
from calibration.model import ANGLE_MAX_DEG, SteeringCalibration
from calibration.screens.base import NumberPrompt, TaskScreen
from calibration.widgets import PulseGauge


class SteeringScreen(TaskScreen):
    """Centre, full left, full right and the angles; the servo follows the cursor."""

    NAME = "steering"
    BINDINGS = [
        Binding("left", "nudge(-1)", "±1us", key_display="←→"),
        Binding("right", "nudge(1)", "+1us", show=False),
        Binding("shift+left,left_square_bracket", "nudge(-10)", "±10us", key_display="[]"),
        Binding("shift+right,right_square_bracket", "nudge(10)", "+10us", show=False),
        Binding("c", "set_point('centre')", "centre"),
        Binding("l", "set_point('left')", "left"),
        Binding("r", "set_point('right')", "right"),
        Binding("a", "angles", "angles"),
        Binding("home", "to_centre", "go centre", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pulse_us = 0
        self.points: dict[str, int] = {}
        self.pending = False

    def compose_body(self) -> Iterable[Widget]:
        yield Static(
            "Steering servo. Left/Right nudge 1 us, [ ] 10 us; the wheels follow.\n"
            "Steer to each end and press l / r, straight ahead c; a: measured angles.",
            classes="intro",
        )
        yield Static(id="steer-table")
        yield PulseGauge(id="steer-gauge")

    def on_mount(self) -> None:
        self._load_points()
        self.pulse_us = self.points["centre"]

    def _load_points(self) -> None:
        s = self.draft.steering
        self.points = {"left": s.left_us, "centre": s.mid_us, "right": s.right_us}
        self.pending = False

    def on_screen_resume(self) -> None:
        if not self.pending:
            self._load_points()
        super().on_screen_resume()
        self.calibrator.actuator.steer(self.pulse_us)

    # ---- actions --------------------------------------------------------------------

    def action_nudge(self, delta_us: int) -> None:
        self.pulse_us = max(500, min(2500, self.pulse_us + delta_us))
        self.calibrator.actuator.steer(self.pulse_us)
        self.show_draft()

    def action_to_centre(self) -> None:
        self.pulse_us = self.points["centre"]
        self.calibrator.actuator.steer(self.pulse_us)
        self.show_draft()

    def action_set_point(self, which: str) -> None:
        self.points[which] = self.pulse_us
        s = self.draft.steering
        try:
            new = SteeringCalibration.from_ends(
                left_us=self.points["left"],
                centre_us=self.points["centre"],
                right_us=self.points["right"],
                left_deg=s.left_deg,
                right_deg=s.right_deg,
            )
        except CalibrationValueError as exc:
            self.pending = True
            self.show_draft()
            self.say(f"{which} set to {self.pulse_us} us, not applied yet: {exc}", error=True)
            return
        self.pending = False
        self.set_draft(replace(self.draft, steering=new))
        self.say(f"{which} set to {self.pulse_us} us")

    def action_angles(self) -> None:
        s = self.draft.steering

        def got_right(value: float | None) -> None:
            if value is not None:
                self._set_angle("right_deg", value)

        def got_left(value: float | None) -> None:
            if value is None:
                return
            self._set_angle("left_deg", value)
            self.app.push_screen(
                NumberPrompt(
                    "Wheel angle at full RIGHT, degrees from straight ahead",
                    low=1,
                    high=ANGLE_MAX_DEG,
                    value=s.right_deg,
                    unit="deg",
                ),
                got_right,
            )

        self.app.push_screen(
            NumberPrompt(
                "Wheel angle at full LEFT, degrees from straight ahead",
                low=1,
                high=ANGLE_MAX_DEG,
                value=s.left_deg,
                unit="deg",
            ),
            got_left,
        )

    def _set_angle(self, field: str, value: float) -> None:
        try:
            s = self.draft.steering
            left, right = (value, s.right_deg) if field == "left_deg" else (s.left_deg, value)
            steering = replace(s, left_deg=left, right_deg=right)
        except CalibrationValueError as exc:
            self.say(str(exc), error=True)
            return
        self.set_draft(replace(self.draft, steering=steering))
        self.say(f"{field.replace('_deg', '')} angle {value:g} deg")

    # ---- drawing --------------------------------------------------------------------

    def show_draft(self) -> None:
        super().show_draft()
        s = self.draft.steering
        table = Table.grid(padding=(0, 2))
        table.add_column(width=12)
        table.add_column(justify="right", width=8)
        table.add_column(width=26)
        table.add_row("pulse now", f"[bold yellow]{self.pulse_us} us[/]", "")

        def deg(v: float | None) -> str:
            return "angle not measured" if v is None else f"angle {v:.1f} deg"

        table.add_row("full left", f"{self.points['left']} us", deg(s.left_deg))
        table.add_row("centre", f"{self.points['centre']} us", "")
        table.add_row("full right", f"{self.points['right']} us", deg(s.right_deg))
        side = "longer" if s.polarity == 1 else "shorter"
        note = "  (pending: not yet consistent)" if self.pending else ""
        table.add_row("polarity", f"{s.polarity:+d}", f"left = {side} pulse{note}")
        self.query_one("#steer-table", Static).update(table)
        lo = min(self.points.values()) - 100
        hi = max(self.points.values()) + 100
        lo, hi = min(lo, self.pulse_us), max(hi, self.pulse_us)
        marks = {"L": self.points["left"], "C": self.points["centre"], "R": self.points["right"]}
        self.query_one(PulseGauge).show(lo, hi, marks, self.pulse_us)
