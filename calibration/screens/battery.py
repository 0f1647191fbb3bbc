"""Battery: the live drive-battery voltage and the table of top speed against voltage
that the drive loop uses to keep speeds true as the battery runs down."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from rich.table import Table
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from calibration.actuator import ActuatorStatus
from calibration.errors import CalibrationValueError
from calibration.model import BatteryPoint
from calibration.screens.base import NumberPrompt, TaskScreen


class BatteryScreen(TaskScreen):
    """Record (voltage now, top speed) points."""

    NAME = "battery"
    BINDINGS = [
        Binding("r", "record", "record point"),
        Binding("d", "delete", "delete nearest"),
    ]

    def compose_body(self) -> Iterable[Widget]:
        yield Static(
            "Battery compensation: top speed at full command against battery voltage.\n"
            "Run the speed test at command 1.00 on a full and on a tired battery and record\n"
            "a point each time (r); the prompt offers the speed curve's top speed.",
            classes="intro",
        )
        yield Static(id="battery-now")
        yield Static(id="battery-table")

    def _volts(self) -> float | None:
        status = self.calibrator.status
        return None if status is None or status.link_state != "ok" else status.battery_v

    def action_record(self) -> None:
        volts = self._volts()
        if volts is None:
            self.say("no battery voltage from the car yet: check the link", error=True)
            return
        fit = self.draft.speed.fit()
        offer = None if fit is None else round(fit.speed_mps(1.0), 2)

        def got(top: float | None) -> None:
            if top is None:
                return
            try:
                battery = self.draft.battery.with_point(BatteryPoint(round(volts, 2), top))
            except CalibrationValueError as exc:
                self.say(str(exc), error=True)
                return
            self.set_draft(replace(self.draft, battery=battery))
            self.say(f"recorded {top:g} m/s at {volts:.2f} V")

        self.app.push_screen(
            NumberPrompt(
                f"Top speed at full command now ({volts:.2f} V), m/s",
                low=0.05,
                high=20.0,
                value=offer,
                unit="m/s",
            ),
            got,
        )

    def action_delete(self) -> None:
        points = self.draft.battery.points
        volts = self._volts()
        if not points:
            self.say("no points to delete", error=True)
            return
        ref = points[-1].battery_v if volts is None else volts
        nearest = min(points, key=lambda p: abs(p.battery_v - ref))
        kept = tuple(p for p in points if p is not nearest)
        self.set_draft(replace(self.draft, battery=replace(self.draft.battery, points=kept)))
        self.say(f"deleted the point at {nearest.battery_v:.2f} V")

    def show_status(self, status: ActuatorStatus | None) -> None:
        super().show_status(status)
        volts = self._volts()
        fit = self.draft.battery.fit()
        text = "battery now  " + (
            "[red]--.-- V (no telemetry)[/]" if volts is None else f"[bold yellow]{volts:5.2f} V[/]"
        )
        if fit is not None and volts is not None:
            text += f"   expected top speed {fit.top_speed_mps(volts):.2f} m/s"
        self.query_one("#battery-now", Static).update(text)

    def show_draft(self) -> None:
        super().show_draft()
        table = Table("battery", "top speed", box=None, padding=(0, 2))
        for p in self.draft.battery.points:
            table.add_row(f"{p.battery_v:.2f} V", f"{p.top_speed_mps:.2f} m/s")
        if not self.draft.battery.points:
            table.add_row("[dim]no points[/]", "")
        self.query_one("#battery-table", Static).update(table)
        self.show_status(self.calibrator.status)
