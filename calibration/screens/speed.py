"""Speed: the guided test. Run forward at a command for a set time, measure the distance
with a tape, enter it, repeat at other commands; the fitted curve is what the drive loop
uses in absolute (m/s) mode."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from rich.table import Table
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from calibration.actuator import ActuatorStatus
from calibration.errors import CalibrationValueError
from calibration.model import SpeedMeasurements, SpeedPoint
from calibration.screens.base import ConfirmScreen, NumberPrompt, TaskScreen
from calibration.widgets import CurvePlot

RUN_QUESTION = (
    "Car ON THE FLOOR, pointing along a clear straight with room to stop?\n"
    "It will drive by itself for the set time; space stops it."
)


class SpeedScreen(TaskScreen):
    """Pick command and duration, run, enter the distance; repeat."""

    NAME = "speed"
    BINDINGS = [
        Binding("up", "command(0.05)", "command", key_display="↑↓"),
        Binding("down", "command(-0.05)", "cmd-", show=False),
        Binding("right", "duration(0.5)", "time", key_display="←→"),
        Binding("left", "duration(-0.5)", "time-", show=False),
        Binding("g", "go", "go"),
        Binding("d", "delete", "delete run"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.command = 0.40
        self.duration_s = 2.0
        self.running: tuple[float, float, int] | None = None  # command, duration, run id
        self.aborted = False
        self.run_battery_v: float | None = None
        self.odometer_start_m: float | None = None
        self.dropouts_at_start = 0

    def compose_body(self) -> Iterable[Widget]:
        yield Static(
            "Speed test. Up/Down: command, Left/Right: run time, g: run, then enter the\n"
            "distance from a tape. d deletes the run at the selected command.",
            classes="intro",
        )
        yield Static(id="speed-setup")
        with Horizontal(id="speed-row"):
            yield Static(id="speed-runs")
            yield CurvePlot(id="speed-plot")

    # ---- actions --------------------------------------------------------------------

    def action_command(self, delta: float) -> None:
        if self.running is None:
            self.command = round(min(1.0, max(0.05, self.command + delta)), 2)
            self.show_draft()

    def action_duration(self, delta: float) -> None:
        if self.running is None:
            self.duration_s = min(6.0, max(0.5, self.duration_s + delta))
            self.show_draft()

    def action_go(self) -> None:
        if self.running is not None:
            return
        status = self.calibrator.status
        if status is None or status.link_state != "ok":
            self.say("the link is down: cannot run", error=True)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                self.say("run cancelled")
                return
            pulse = self.draft.throttle.pulse_us(self.command)
            self.aborted = False
            now = self.calibrator.status or status
            self.run_battery_v = now.battery_v
            self.dropouts_at_start = now.dropouts
            odo = self.calibrator.odometer
            self.odometer_start_m = None if odo is None else odo()
            run_id = self.calibrator.actuator.run_for(pulse, self.duration_s)
            self.running = (self.command, self.duration_s, run_id)
            self.say(
                f"running at command {self.command:.2f} ({pulse} us) for {self.duration_s:g} s"
            )

        self.app.push_screen(ConfirmScreen(RUN_QUESTION), answered)

    def action_delete(self) -> None:
        speed = self.draft.speed
        if not any(p.command == self.command for p in speed.points):
            self.say(f"no run at command {self.command:.2f}", error=True)
            return
        self.set_draft(replace(self.draft, speed=speed.without(self.command)))
        self.say(f"deleted the run at command {self.command:.2f}")

    def on_stop_pressed(self) -> None:
        if self.running is not None:
            self.aborted = True

    def on_screen_suspend(self) -> None:
        if self.running is not None:
            self.aborted = True
        super().on_screen_suspend()

    def show_status(self, status: ActuatorStatus | None) -> None:
        super().show_status(status)
        if self.running is None or status is None:
            return
        command, duration, run_id = self.running
        if status.run_id < run_id:
            return  # a status from before the run started
        if status.run_remaining_s is not None and not self.aborted:
            return
        self.running = None
        if self.aborted or status.link_state != "ok":
            self.say("run stopped early: not recorded; press g to run again", error=True)
            return
        if status.dropouts > self.dropouts_at_start:
            # The car fell back to neutral mid-run (commands stopped for 100 ms: this
            # machine stalled), so it covered less ground than the command drives.
            self.say(
                "run interrupted: the car fell back to neutral (commands paused for over "
                "100 ms); not recorded; press g to run again",
                error=True,
            )
            return
        self._ask_distance(command, duration)

    def _ask_distance(self, command: float, duration: float) -> None:
        odo = self.calibrator.odometer
        offer = None
        if odo is not None and self.odometer_start_m is not None:
            offer = round(odo() - self.odometer_start_m, 2) or None

        def got(distance: float | None) -> None:
            if distance is None:
                self.say("distance not entered: run not recorded")
                return
            self._record(SpeedPoint(command, duration, distance))

        self.app.push_screen(
            NumberPrompt(
                f"Distance covered at command {command:.2f} in {duration:g} s (tape), metres",
                low=0.01,
                high=100.0,
                value=offer,
                unit="m",
            ),
            got,
        )

    def _record(self, point: SpeedPoint) -> None:
        speed = self.draft.speed
        try:
            if not speed.points and self.run_battery_v is not None:
                speed = SpeedMeasurements((), reference_battery_v=round(self.run_battery_v, 2))
            speed = speed.with_point(point)
        except CalibrationValueError as exc:
            self.say(str(exc), error=True)
            return
        self.set_draft(replace(self.draft, speed=speed))
        self.say(f"recorded {point.speed_mps:.2f} m/s at command {point.command:.2f}")

    # ---- drawing --------------------------------------------------------------------

    def show_draft(self) -> None:
        super().show_draft()
        speed = self.draft.speed
        pulse = self.draft.throttle.pulse_us(self.command)
        self.query_one("#speed-setup", Static).update(
            f"command [bold yellow]{self.command:.2f}[/] ({pulse} us)   "
            f"run time [bold yellow]{self.duration_s:.1f} s[/]   "
            f"reference battery {speed.reference_battery_v:.2f} V"
        )
        table = Table("cmd", "time", "dist", "m/s", box=None, padding=(0, 1))
        for p in speed.points:
            mark = "[bold]" if p.command == self.command else ""
            table.add_row(
                f"{mark}{p.command:.2f}",
                f"{p.duration_s:.1f}s",
                f"{p.distance_m:.2f}m",
                f"{p.speed_mps:.2f}",
            )
        fit = speed.fit()
        if fit is not None:
            table.add_row("", "", "top", f"{fit.top_speed_mps:.2f}")
        self.query_one("#speed-runs", Static).update(table)
        self.query_one(CurvePlot).show(fit, [(p.command, p.speed_mps) for p in speed.points])
