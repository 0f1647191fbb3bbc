"""The count bar of the `racer` commands that work through a list (race entries, sweep
conditions, export stages): `label description ━━━━ 3/24 0:00:05` on the terminal."""

from __future__ import annotations

from typing import Any


def count_bar(console: Any = None, label: str = "", **options: Any) -> Any:
    """A `rich.progress.Progress` with the description (after a bold `label`), the bar,
    done/total and the elapsed time; `options` go to `Progress` (transient, disable)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prefix = f"[bold]{label}[/bold] " if label else ""
    return Progress(
        TextColumn(prefix + "{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        **options,
    )
