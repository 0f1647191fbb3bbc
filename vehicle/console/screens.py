"""The `racer drive` console's screens: the drive screen (head line, camera view,
figures, log tail) and the model picker over the car's store. They hold widgets only; the
app (`vehicle.console.DriveConsole`) owns the state and fills them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from vehicle.console.terminal_view import FrameView

if TYPE_CHECKING:
    from vehicle.console.app import DriveConsole


class DriveScreen(Screen[None]):
    """The main screen: model, figures, camera, log tail."""

    def compose(self) -> ComposeResult:
        yield Static(id="drive-head")
        with Horizontal(id="drive-row"):
            yield FrameView("camera", id="drive-camera")
            yield Static(id="drive-figures")
        yield Static(id="drive-log")
        yield Footer()

    def on_screen_resume(self) -> None:
        self.app.refresh_all()  # type: ignore[attr-defined]


class ModelsScreen(Screen[None]):
    """Pick the model to drive from the car's store."""

    BINDINGS = [
        Binding("enter", "choose", "choose", priority=True),
        Binding("escape,d", "back", "back"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="models-head")
        yield DataTable(id="models-table", cursor_type="row")
        yield Static(id="models-note")
        yield Footer()

    def on_mount(self) -> None:
        app: DriveConsole = self.app  # type: ignore[assignment]
        table = self.query_one(DataTable)
        table.add_columns("", "model", "actions", "max speed", "rate", "status")
        store = app.parts.store
        head = self.query_one("#models-head", Static)
        if store is None:
            if app.parts.store_error is not None:
                head.update(Text(f"{app.parts.store_error}", style="bold red"))
            else:
                head.update("no model store in this install: install one with `racer flash`")
            return
        head.update(f"models in {store.root}  (Enter: choose, Esc: back)")
        try:
            self.models = store.list()
        except Exception as exc:
            self.query_one("#models-note", Static).update(Text(str(exc), style="bold red"))
            self.models = []
        for m in self.models:
            mark = "*" if m.is_active else ("<" if m.is_previous else "")
            meta = m.metadata
            if meta is None:
                row = (mark, m.name, "-", "-", "-", m.problem or "unreadable")
            else:
                space = meta.action_space
                row = (
                    mark,
                    m.name,
                    f"{space.kind} {space.n if space.kind == 'discrete' else ''}".strip(),
                    f"{space.max_speed_mps:g} m/s",
                    f"{meta.control_rate_hz:g} Hz",
                    m.problem or ("active" if m.is_active else "ok"),
                )
            table.add_row(*row, key=m.name)
        if not self.models:
            self.query_one("#models-note", Static).update(
                "the store is empty: `racer flash BUNDLE --car ...` or `racer models install`"
            )
        else:
            self.query_one("#models-note", Static).update("* active   < previous (rollback)")

    def action_choose(self) -> None:
        app: DriveConsole = self.app  # type: ignore[assignment]
        if not getattr(self, "models", None):
            return
        row = self.query_one(DataTable).cursor_row
        app.choose(self.models[row])
        self.app.pop_screen()

    def action_back(self) -> None:
        self.app.pop_screen()
