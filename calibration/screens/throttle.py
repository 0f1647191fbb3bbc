"""Throttle: find the ESC's neutral and both ends. The motor turns only after a
wheels-off-the-ground confirmation and only while `w` is held (a deadman, see
`calibration.actuator`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from rich.table import Table
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from calibration.errors import CalibrationValueError
from calibration.model import ThrottleCalibration
from calibration.screens.base import ConfirmScreen, TaskScreen
from calibration.widgets import PulseGauge

LIFT_QUESTION = (
    "Lift the car so the driven wheels are OFF THE GROUND.\n"
    "The motor turns while you hold w and stops when you let go."
)


class ThrottleScreen(TaskScreen):
    """Neutral, full forward, full reverse; hold w to run the motor at the target."""

    NAME = "throttle"
    BINDINGS = [
        Binding("left", "nudge(-1)", "±1us", key_display="←→"),
        Binding("right", "nudge(1)", "+1us", show=False),
        Binding("shift+left,left_square_bracket", "nudge(-10)", "±10us", key_display="[]"),
        Binding("shift+right,right_square_bracket", "nudge(10)", "+10us", show=False),
        Binding("w", "hold", "hold: run"),
        Binding("n", "set_point('neutral')", "neutral"),
        Binding("f", "set_point('forward')", "fwd"),
        Binding("b", "set_point('reverse')", "rev"),
        Binding("home", "to_neutral", "go neutral", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.target_us = 0
        self.points: dict[str, int] = {}
        self.pending = False
        self.lifted = False
        self.asking = False

    def compose_body(self) -> Iterable[Widget]:
        yield Static(
            "ESC. Left/Right move the target 1 us, [ ] 10 us; HOLD w to run the motor at\n"
            "the target, wheels off the ground. n / f / b: set neutral, forward, reverse.",
            classes="intro",
        )
        yield Static(id="throttle-table")
        yield PulseGauge(id="throttle-gauge")

    def on_mount(self) -> None:
        self._load_points()
        self.target_us = self.points["neutral"]

    def _load_points(self) -> None:
        t = self.draft.throttle
        self.points = {
            "forward": t.forward_max_us,
            "neutral": t.neutral_us,
            "reverse": t.reverse_max_us,
        }
        self.pending = False

    def on_screen_resume(self) -> None:
        if not self.pending:
            self._load_points()
        super().on_screen_resume()

    def on_screen_suspend(self) -> None:
        super().on_screen_suspend()
        if not self.asking:
            self.lifted = False  # leaving the screen: ask again next time

    # ---- actions --------------------------------------------------------------------

    def action_nudge(self, delta_us: int) -> None:
        self.target_us = max(500, min(2500, self.target_us + delta_us))
        self.show_draft()

    def action_to_neutral(self) -> None:
        self.target_us = self.points["neutral"]
        self.show_draft()

    def action_hold(self) -> None:
        if not self.lifted:
            self._ask_lift()
            return
        status = self.calibrator.status
        if status is None or status.link_state != "ok":
            self.say("the link is down: the motor cannot run", error=True)
            return
        self.calibrator.actuator.hold(self.target_us)

    def _ask_lift(self) -> None:
        if self.asking:
            return
        self.asking = True

        def answered(yes: bool | None) -> None:
            self.asking = False
            self.lifted = bool(yes)
            self.say(
                "wheels off the ground confirmed: hold w to run"
                if self.lifted
                else "not confirmed: the motor stays off",
                error=not self.lifted,
            )

        self.app.push_screen(ConfirmScreen(LIFT_QUESTION), answered)

    def action_set_point(self, which: str) -> None:
        self.points[which] = self.target_us
        try:
            new = ThrottleCalibration.from_ends(
                forward_us=self.points["forward"],
                neutral_us=self.points["neutral"],
                reverse_us=self.points["reverse"],
            )
        except CalibrationValueError as exc:
            self.pending = True
            self.show_draft()
            self.say(f"{which} set to {self.target_us} us, not applied yet: {exc}", error=True)
            return
        self.pending = False
        self.set_draft(replace(self.draft, throttle=new))
        self.say(f"{which} set to {self.target_us} us")

    # ---- drawing --------------------------------------------------------------------

    def show_draft(self) -> None:
        super().show_draft()
        t = self.draft.throttle
        table = Table.grid(padding=(0, 2))
        table.add_column(width=12)
        table.add_column(justify="right", width=8)
        table.add_column(width=34)
        lift = "[green]wheels up: confirmed[/]" if self.lifted else "[red]w asks: wheels up?[/]"
        table.add_row("target", f"[bold yellow]{self.target_us} us[/]", lift)
        table.add_row("forward max", f"{self.points['forward']} us", "")
        table.add_row("neutral", f"{self.points['neutral']} us", "")
        table.add_row("reverse max", f"{self.points['reverse']} us", "")
        side = "longer" if t.polarity == 1 else "shorter"
        note = "  (pending: not yet consistent)" if self.pending else ""
        table.add_row("polarity", f"{t.polarity:+d}", f"forward = {side} pulse{note}")
        self.query_one("#throttle-table", Static).update(table)
        values = list(self.points.values()) + [self.target_us]
        marks = {
            "F": self.points["forward"],
            "N": self.points["neutral"],
            "R": self.points["reverse"],
        }
        self.query_one(PulseGauge).show(min(values) - 50, max(values) + 50, marks, self.target_us)
