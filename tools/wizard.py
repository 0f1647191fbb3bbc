"""The `racer new` wizard on the terminal: `ask()` fills the `ModelChoices` not given on
the command line with plain prompts (rich.prompt, each with its default), so the wizard
works over SSH and in any terminal, and `ascii_preview()` shows a track in half blocks.
What the choices mean and the folder they make live in `trainer/model_folder.py`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from trainer.errors import ModelFolderError
from trainer.model_folder import (
    RANDOMIZE_PRESETS,
    ModelChoices,
    action_space_of,
    hyperparameters_of,
    load_track,
    reward_source_of,
    track_names,
)


def ascii_preview(track, cols: int = 56, rows: int = 18) -> str:
    """The track as Unicode half blocks: road '█', inside and outside blank, start '▲'."""
    import cv2

    pts = np.vstack([track.outer, track.inner])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    h_px = rows * 2
    # terminal cells are about twice as tall as wide: one cell = 1 x 2 pixels
    scale = min((cols - 1) / span[0], (h_px - 1) / span[1])
    img = np.zeros((h_px, cols), np.uint8)

    def px(poly):
        p = (np.asarray(poly) - lo) * scale
        p[:, 1] = (h_px - 1) - p[:, 1]
        return np.round(p).astype(np.int32)

    cv2.fillPoly(img, [px(track.outer)], 1)
    cv2.fillPoly(img, [px(track.inner)], 0)
    cv2.polylines(img, [px(track.outer), px(track.inner)], bool(track.closed), 1)
    start = px(np.asarray(track.center)[:1])[0]
    lines = []
    for r in range(rows):
        top, bottom = img[2 * r], img[2 * r + 1]
        chars = []
        for x in range(cols):
            if r == start[1] // 2 and x == start[0]:
                chars.append("▲")
            else:
                chars.append(" ▄▀█"[int(top[x]) * 2 + int(bottom[x])])
        lines.append("".join(chars).rstrip())
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


# ---------------------------------------------------------------- prompting


def ask(c: ModelChoices, given: set[str], console) -> ModelChoices:
    """Prompt for every choice not in `given` (plain prompts with defaults)."""
    from rich.prompt import Confirm, FloatPrompt, IntPrompt, Prompt
    from rich.table import Table

    from trainer import reward_gallery

    def float_in(text, default, lo, hi):
        while True:
            v = FloatPrompt.ask(text, default=default, console=console)
            if lo <= v <= hi:
                return v
            console.print(f"[red]enter a value from {lo:g} to {hi:g}[/red]")

    def int_in(text, default, lo, hi):
        while True:
            v = IntPrompt.ask(text, default=default, console=console)
            if lo <= v <= hi:
                return v
            console.print(f"[red]enter a whole number from {lo} to {hi}[/red]")

    console.rule("[bold]racer new[/bold]: a new model")
    if "recipe" not in given:
        from trainer import recipes

        table = Table("recipe", "title", "what it does", title="Recipes")
        for name in recipes.names():
            r = recipes.get(name)
            table.add_row(name, r.title, r.summary)
        table.add_row("custom", "Choose each setting", "Action space, reward, hyperparameters.")
        console.print(table)
        answer = Prompt.ask(
            "Recipe", choices=[*recipes.names(), "custom"], default="custom", console=console
        )
        c = replace(c, recipe="" if answer == "custom" else answer)
    if c.recipe:
        # The recipe sets the action space, network, reward and hyperparameters.
        given = given | {
            "action_space",
            "max_steer_deg",
            "steering_levels",
            "min_speed_mps",
            "max_speed_mps",
            "speed_levels",
            "reward",
            "hyperparameters",
        }
    if "track" not in given:
        names = track_names()
        if names:
            table = Table("track", "length (m)", "width (m)", title="Tracks")
            for n in names:
                try:
                    _, t = load_track(n)
                    table.add_row(n, f"{t.length_m:.2f}", f"{float(np.median(t.widths_m)):.2f}")
                except ModelFolderError:
                    continue
            console.print(table)
        default = c.track if (c.track in names or not names) else names[0]
        while True:
            answer = Prompt.ask("Track (name or .npy file)", default=default, console=console)
            try:
                name, t = load_track(answer)
                break
            except ModelFolderError as exc:
                console.print(f"[red]{exc}[/red]")
        console.print(ascii_preview(t), highlight=False)
        console.print(f"{name}: {t.length_m:.2f} m")
        c = replace(c, track=answer)
    if "action_space" not in given:
        kind = Prompt.ask(
            "Action space",
            choices=["discrete", "continuous"],
            default=c.action_space,
            console=console,
        )
        c = replace(c, action_space=kind)
    if "max_steer_deg" not in given:
        c = replace(
            c, max_steer_deg=float_in("Maximum steering angle (deg)", c.max_steer_deg, 1, 30)
        )
    if c.action_space == "discrete" and "steering_levels" not in given:
        c = replace(
            c, steering_levels=int_in("Steering angle granularity", c.steering_levels, 1, 9)
        )
    if c.action_space == "continuous" and "min_speed_mps" not in given:
        c = replace(c, min_speed_mps=float_in("Minimum speed (m/s)", c.min_speed_mps, 0.1, 3.9))
    if "max_speed_mps" not in given:
        low = c.min_speed_mps + 0.05 if c.action_space == "continuous" else 0.1
        c = replace(c, max_speed_mps=float_in("Maximum speed (m/s)", c.max_speed_mps, low, 4.0))
    if c.action_space == "discrete" and "speed_levels" not in given:
        c = replace(c, speed_levels=int_in("Speed granularity", c.speed_levels, 1, 5))
    space = action_space_of(c)
    if space.kind == "discrete" and not c.recipe:
        table = Table("index", "steering (deg)", "speed (m/s)", title=f"{space.n} actions")
        for i, a in enumerate(space.actions):
            table.add_row(str(i), f"{a.steer_deg:g}", f"{a.speed_mps:g}")
        console.print(table)
    if "reward" not in given:
        table = Table("name", "reward function", "what it pays for", title="Reward gallery")
        for e in reward_gallery.GALLERY:
            table.add_row(e.name, e.title, e.summary)
        console.print(table)
        while True:
            answer = Prompt.ask(
                "Reward (gallery name or .py file)", default=c.reward, console=console
            )
            try:
                reward_source_of(replace(c, reward=answer), space.max_speed_mps)
                break
            except ModelFolderError as exc:
                console.print(f"[red]{exc}[/red]")
        c = replace(c, reward=answer)
    if "hyperparameters" not in given and not Confirm.ask(
        "Use DeepRacer's default hyperparameters?", default=True, console=console
    ):
        from trainer.config import Hyperparameters, field_help

        overrides: dict[str, Any] = {}
        defaults = Hyperparameters()
        helps = field_help(Hyperparameters)
        for key in (
            "batch_size",
            "lr",
            "discount_factor",
            "beta_entropy",
            "num_epochs",
            "num_episodes_between_training",
            "loss_type",
        ):
            console.print(f"[dim]{helps.get(key, '')}[/dim]")
            while True:
                raw = Prompt.ask(key, default=str(getattr(defaults, key)), console=console)
                try:
                    hyperparameters_of(replace(c, hyperparameters={**overrides, key: raw}))
                    break
                except ModelFolderError as exc:
                    console.print(f"[red]{exc}[/red]")
            if raw != str(getattr(defaults, key)):
                overrides[key] = typed_value(raw)
        c = replace(c, hyperparameters=overrides)
    if "randomize" not in given:
        c = replace(
            c,
            randomize=Prompt.ask(
                "Domain randomization",
                choices=list(RANDOMIZE_PRESETS),
                default=c.randomize,
                console=console,
            ),
        )
    if "minutes" not in given:
        c = replace(c, minutes=float_in("Training time budget (minutes)", c.minutes, 0.1, 10080))
    return c


def typed_value(raw: str) -> Any:
    """A typed answer: an int, else a float, else the text."""
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw
