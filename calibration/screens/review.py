"""Review and save: every field that differs from the saved file, then an atomic save
that keeps the previous file as a backup."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from calibration.errors import CalibrationError
from calibration.model import diff
from calibration.screens.base import ConfirmScreen, TaskScreen


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return f"{len(value)} point(s)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class ReviewScreen(TaskScreen):
    """What changed against the saved file; s saves, u undoes all changes."""

    NAME = "review"
    BINDINGS = [
        Binding("s", "save", "save"),
        Binding("u", "undo", "undo all"),
    ]

    def compose_body(self) -> Iterable[Widget]:
        yield Static(id="review-file")
        yield Static(id="review-changes")

    def show_draft(self) -> None:
        super().show_draft()
        app = self.calibrator
        state = "saved" if app.store.exists() else "not saved yet (factory defaults)"
        self.query_one("#review-file", Static).update(
            f"file [bold]{app.store.path}[/]\n{state}; s: save, u: undo all changes"
        )
        changes = diff(app.saved, app.draft)
        if not changes:
            self.query_one("#review-changes", Static).update(
                "[green]no changes against the saved file[/]"
            )
            return
        table = Table("field", "saved", "new", box=None, padding=(0, 2), header_style="bold")
        for c in changes:
            table.add_row(c.path, _fmt(c.old), f"[bold yellow]{_fmt(c.new)}[/]")
        self.query_one("#review-changes", Static).update(table)

    def action_save(self) -> None:
        app = self.calibrator
        try:
            app.save()
        except CalibrationError as exc:
            self.say(str(exc), error=True)
            return
        note = f"; previous kept at {app.store.backup.name}" if app.store.backup.exists() else ""
        self.say(f"saved {app.store.path.name}{note}")
        self.show_draft()

    def action_undo(self) -> None:
        app = self.calibrator
        if app.draft == app.saved:
            self.say("nothing to undo")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                app.set_draft(app.saved)
                self.say("all changes undone")

        self.app.push_screen(ConfirmScreen("Undo every change since the last save?"), answered)
