"""What every calibrator screen shares: the frame (tabs, status line, footer), the link
to the app's draft calibration and actuator, and two small modal dialogs (yes/no and a
number prompt).

Leaving a screen (switching, or a dialog opening over it) sends the car to neutral.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Label, Static

from calibration.actuator import ActuatorStatus
from calibration.model import Calibration
from calibration.widgets import StatusLine, TabBar

if TYPE_CHECKING:
    from calibration.app import CalibratorApp


class TaskScreen(Screen[None]):
    """Base of the six task screens."""

    NAME: ClassVar[str] = ""
    """The screen's name in `calibration.widgets.TABS`."""

    def compose(self) -> ComposeResult:
        # kept as attributes: queries do not reach a screen while a dialog covers it
        self.tab_bar = TabBar(self.NAME, id="tabs")
        self.message = Static(id="message")
        self.status_line = StatusLine(id="status")
        yield self.tab_bar
        with Vertical(id="body"):
            yield from self.compose_body()
        yield self.message
        yield self.status_line
        if self.calibrator.readout is not None:
            self.readout_line = Static(id="readout")
            yield self.readout_line
        yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        """The task's own widgets."""
        return ()

    @property
    def calibrator(self) -> CalibratorApp:
        return self.app  # type: ignore[return-value]

    @property
    def draft(self) -> Calibration:
        return self.calibrator.draft

    def set_draft(self, cal: Calibration) -> None:
        self.calibrator.set_draft(cal)

    def say(self, message: str, *, error: bool = False) -> None:
        """The one-line message under the body (hints, errors)."""
        self.message.update(Text(message, style="bold red" if error else "italic"))

    # ---- data down from the app -----------------------------------------------------

    def on_screen_resume(self) -> None:
        self.show_draft()
        self.show_status(self.calibrator.status)

    def on_screen_suspend(self) -> None:
        self.calibrator.actuator.neutral()

    def show_status(self, status: ActuatorStatus | None) -> None:
        """Called for every status the link worker posts."""
        self.status_line.show(status)
        readout = self.calibrator.readout
        if readout is not None:
            self.readout_line.update(Text(readout(), style="italic magenta"))

    def show_draft(self) -> None:
        """Redraw from the app's draft calibration."""
        self.tab_bar.set_unsaved(self.calibrator.unsaved_count())

    def on_stop_pressed(self) -> None:
        """Space (STOP) was pressed; the actuator is already at neutral."""


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; only `y` says yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n", "answer(False)", "no"),
        Binding("escape", "answer(False)", "cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Label("y: yes    n or Esc: no", classes="hint")
        yield Footer()

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class NumberPrompt(ModalScreen[float | None]):
    """Ask for one number within [low, high]; Enter accepts, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(
        self, question: str, *, low: float, high: float, value: float | None = None, unit: str = ""
    ) -> None:
        super().__init__()
        self.question, self.low, self.high, self.unit = question, low, high, unit
        self.initial = "" if value is None else f"{value:g}"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Input(value=self.initial, type="number", id="number")
            yield Label(
                f"{self.low:g} to {self.high:g} {self.unit}; Enter: ok, Esc: cancel",
                id="prompt-hint",
                classes="hint",
            )
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = float(event.value)
        except ValueError:
            self._complain(f"{event.value!r} is not a number")
            return
        if not self.low <= value <= self.high:
            self._complain(f"{value:g} is outside {self.low:g}-{self.high:g} {self.unit}")
            return
        self.dismiss(value)

    def _complain(self, message: str) -> None:
        self.query_one("#prompt-hint", Label).update(Text(message, style="bold red"))

    def action_cancel(self) -> None:
        self.dismiss(None)
