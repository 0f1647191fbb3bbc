"""The `racer new` wizard: choose a track, action space, reward, hyperparameters,
randomization and time budget, and write a model folder `racer train` takes as is.

`ModelChoices` holds every answer (a frozen dataclass, one docstring per field; the
command line flags of `racer new` map one to one onto it). `ask()` fills the choices not
given on the command line with plain terminal prompts (rich.prompt, each with its
default), so the wizard works over SSH and in any terminal, and `--yes` takes every
default without asking. `write_model_folder()` writes:

    NAME/model_metadata.json   DeepRacer action space + network (vehicle/metadata.py)
    NAME/hyperparameters.json  DeepRacer keys and defaults (trainer/config.py)
    NAME/reward_function.py    from the reward gallery, tuned to the action space
    NAME/train.json            openracer's training config (TrainConfig) for `racer train`
    NAME/track.png             the track seen from above
    NAME/README.md             what was chosen and the next command

Files are written atomically; an existing non-empty folder is refused unless --force.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tools.analysis.errors import AnalysisError
from vehicle.files import atomic_write_json, atomic_write_text
from vehicle.metadata import NEURAL_NETWORKS

RANDOMIZE_PRESETS = ("none", "light", "standard", "heavy")
"""Domain-randomization presets of `racer train --randomize` (trainer/config.py)."""
NETWORKS = NEURAL_NETWORKS
"""The networks `racer new` offers: every topology `model_metadata.json` accepts."""
DEFAULT_TRACK = "reinvent_like"
"""The wizard's default track (the catalogue's re:Invent 2018 look-alike)."""


class WizardError(AnalysisError):
    """A wizard answer or flag cannot be used (names the value and the fix)."""


@dataclass(frozen=True)
class ModelChoices:
    """Everything the wizard asks; each field is also a `racer new` flag."""

    name: str
    """Model folder to create (a path; its last part is the model's name)."""
    track: str = DEFAULT_TRACK
    """Track: a catalogue name or a DeepRacer .npy route file."""
    action_space: str = "discrete"
    """'discrete' (the console's grid of steering x speed) or 'continuous' (two ranges)."""
    steering_levels: int = 5
    """Discrete: steering angles from -max to +max (odd counts include straight ahead)."""
    max_steer_deg: float = 30.0
    """Largest steering angle, degrees (DeepRacer allows up to 30)."""
    speed_levels: int = 2
    """Discrete: speeds evenly spaced up to the maximum."""
    max_speed_mps: float = 0.8
    """Largest speed, m/s (DeepRacer allows 0.1-4)."""
    min_speed_mps: float = 0.5
    """Continuous: lowest speed, m/s."""
    reward: str = "centerline"
    """Reward function: a gallery name (see `racer new --list-rewards`) or a .py file."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """Overrides of DeepRacer's default hyperparameters (key -> value)."""
    network: str = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    """Network topology (DeepRacer's names, or OPENRACER_FAST / OPENRACER_LOWRES)."""
    randomize: str = "standard"
    """Domain-randomization preset: none, light, standard or heavy."""
    minutes: float = 15.0
    """Training time budget, wall-clock minutes."""


# ---------------------------------------------------------------- validation and outputs


def action_space_of(c: ModelChoices):
    """The `vehicle.metadata.ActionSpace` the choices describe (validated there)."""
    from vehicle.errors import MetadataError
    from vehicle.metadata import discrete_grid, parse_metadata

    try:
        if c.action_space == "discrete":
            return discrete_grid(
                max_steer_deg=c.max_steer_deg,
                steer_levels=c.steering_levels,
                max_speed_mps=c.max_speed_mps,
                speed_levels=c.speed_levels,
            )
        if c.action_space != "continuous":
            raise WizardError(f"action space {c.action_space!r} is not 'discrete' or 'continuous'")
        if not c.min_speed_mps < c.max_speed_mps:
            raise WizardError(
                f"--min-speed {c.min_speed_mps} must be below --max-speed {c.max_speed_mps}"
            )
        steer = abs(c.max_steer_deg)
        ranges = {
            "steering_angle": {"low": -steer, "high": steer},
            "speed": {"low": c.min_speed_mps, "high": c.max_speed_mps},
        }
        data = {"action_space": ranges, "action_space_type": "continuous"}
        return parse_metadata(data, source="racer new").action_space
    except MetadataError as exc:
        raise WizardError(str(exc)) from exc


def hyperparameters_of(c: ModelChoices):
    """DeepRacer hyperparameters with the wizard's overrides (validated by the trainer)."""
    from trainer.config import parse_hyperparameters
    from trainer.errors import ConfigError

    try:
        return parse_hyperparameters(dict(c.hyperparameters), source="racer new --hyper")
    except ConfigError as exc:
        raise WizardError(str(exc)) from exc


def reward_source_of(c: ModelChoices, top_speed_mps: float) -> str:
    """The reward file's text: a gallery example tuned to the action space, or a file."""
    from trainer import reward_gallery

    path = Path(c.reward).expanduser()
    if c.reward.endswith(".py"):
        if not path.is_file():
            raise WizardError(f"reward file {path} does not exist; give a gallery name or a .py")
        text = path.read_text(encoding="utf-8")
        if "def reward_function" not in text:
            raise WizardError(f"{path}: defines no reward_function(params)")
        return text
    try:
        example = reward_gallery.get(c.reward)
    except KeyError as exc:
        raise WizardError(str(exc.args[0])) from exc
    tuned: dict[str, Any] = {}
    if "TARGET_SPEED_MPS" in example.constants:
        tuned["TARGET_SPEED_MPS"] = round(float(top_speed_mps), 3)
    return reward_gallery.render(example.name, **tuned)


def load_track(spec: str):
    """(name, tracks.track.Track) for a catalogue name or a .npy route file."""
    from tracks.errors import TrackError

    path = Path(spec).expanduser()
    try:
        if spec.endswith(".npy") or path.is_file():
            from tracks.track import load_npy

            return path.stem, load_npy(path)
        from tracks import catalogue  # type: ignore[attr-defined]

        return spec, catalogue.resolve(spec)
    except ImportError as exc:
        raise WizardError(
            f"track {spec!r}: the track catalogue is not installed; give a .npy route file"
        ) from exc
    except TrackError as exc:
        raise WizardError(str(exc)) from exc


def track_names() -> list[str]:
    """Catalogue track names (empty when the catalogue is unavailable)."""
    try:
        from tracks import catalogue  # type: ignore[attr-defined]
    except ImportError:
        return []
    return list(catalogue.names())


def validate(c: ModelChoices) -> None:
    """Raise WizardError for any choice that cannot be trained."""
    if c.randomize not in RANDOMIZE_PRESETS:
        raise WizardError(f"--randomize {c.randomize!r} is not one of {list(RANDOMIZE_PRESETS)}")
    if c.network not in NETWORKS:
        raise WizardError(f"--network {c.network!r} is not one of {list(NETWORKS)}")
    if not 0 < c.minutes <= 7 * 24 * 60:
        raise WizardError(f"--minutes {c.minutes} must be above 0 and at most 10080 (a week)")
    if not Path(c.name).name or Path(c.name).name.startswith("-"):
        raise WizardError(f"model name {c.name!r} is not a usable folder name")
    action_space_of(c)
    hyperparameters_of(c)


# ---------------------------------------------------------------- pictures


def track_picture(track, path: Path, title: str) -> Path:
    """Write the track seen from above (tracks.render: road, borders, start line, driving
    direction, and the racing line coloured by speed when it can be computed) as PNG."""
    from tracks.render import render, save_png

    line = None
    try:
        from tracks import racing_line  # type: ignore[attr-defined]

        line = racing_line.compute(track)
    except Exception:  # the racing line is a nicety on the picture; the track is the point
        line = None
    info = f"{title}  {track.length_m:.2f} m"
    try:
        image = render(track, racing_line=line, max_size_px=900, info=info)
    except Exception:
        image = render(track, max_size_px=900, info=info)
    return save_png(image, path)


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


# ---------------------------------------------------------------- writing


def train_command(folder: Path, c: ModelChoices) -> list[str]:
    """The exact `racer train` command for the folder (flags of the training spec)."""
    run = folder / "run"
    track = (
        str(folder / "track.npy")
        if c.track.endswith(".npy") or Path(c.track).is_file()
        else c.track
    )
    return [
        "racer",
        "train",
        "--track",
        track,
        "--reward",
        str(folder / "reward_function.py"),
        "--metadata",
        str(folder / "model_metadata.json"),
        "--hyperparameters",
        str(folder / "hyperparameters.json"),
        "--minutes",
        f"{c.minutes:g}",
        "--randomize",
        c.randomize,
        "--out",
        str(run),
    ]


def write_model_folder(c: ModelChoices, force: bool = False) -> dict[str, Any]:
    """Create the model folder; returns what was written and the next command."""
    from vehicle.metadata import ModelMetadata

    validate(c)
    folder = Path(c.name).expanduser()
    if folder.exists() and any(folder.iterdir()) and not force:
        raise WizardError(
            f"{folder} already exists and is not empty; choose another name or pass --force"
        )
    track_name, track = load_track(c.track)
    space = action_space_of(c)
    hyper = hyperparameters_of(c)
    metadata = ModelMetadata(action_space=space, neural_network=c.network)
    reward = reward_source_of(c, space.max_speed_mps)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    atomic_write_json(folder / "model_metadata.json", metadata.to_json())
    atomic_write_json(folder / "hyperparameters.json", hyper.to_json())
    atomic_write_text(folder / "reward_function.py", reward)
    written += ["model_metadata.json", "hyperparameters.json", "reward_function.py"]
    if c.track.endswith(".npy") or Path(c.track).is_file():
        from tracks.track import save_npy

        save_npy(track, folder / "track.npy")
        written.append("track.npy")
    command = train_command(folder, c)
    config = _train_config(folder, c, command)
    atomic_write_json(folder / "train.json", config)
    written.append("train.json")
    track_picture(track, folder / "track.png", track_name)
    written.append("track.png")
    text = shlex.join(command)
    atomic_write_text(folder / "README.md", _readme(folder, c, track_name, space, text))
    written.append("README.md")
    return {
        "folder": str(folder),
        "files": written,
        "track": track_name,
        "track_length_m": round(float(track.length_m), 3),
        "actions": space.n if space.kind == "discrete" else "continuous",
        "reward": c.reward,
        "command": text,
    }


def _train_config(folder: Path, c: ModelChoices, command: list[str]) -> dict[str, Any]:
    """openracer's training config (TrainConfig's JSON), or the same keys if the trainer
    package cannot build one here."""
    values: dict[str, Any] = {
        "out": str(folder / "run"),
        "track": [command[command.index("--track") + 1]],
        "reward": str(folder / "reward_function.py"),
        "metadata": str(folder / "model_metadata.json"),
        "hyperparameters": str(folder / "hyperparameters.json"),
        "minutes": float(c.minutes),
        "randomize": c.randomize,
    }
    try:
        from trainer.config import TrainConfig
    except ImportError:
        return values
    cfg = TrainConfig(**{**values, "track": tuple(values["track"])})
    return cfg.to_json()


def _readme(folder: Path, c: ModelChoices, track_name: str, space, command: str) -> str:
    if space.kind == "discrete":
        acts = "\n".join(
            f"| {i} | {a.steer_deg:g} | {a.speed_mps:g} |" for i, a in enumerate(space.actions)
        )
        action_text = (
            f"Discrete, {space.n} actions ({c.steering_levels} steering levels up to "
            f"{c.max_steer_deg:g} deg, {c.speed_levels} speeds up to {c.max_speed_mps:g} m/s):\n\n"
            f"| index | steering (deg) | speed (m/s) |\n|---|---|---|\n{acts}\n"
        )
    else:
        action_text = (
            f"Continuous: steering {space.steer_range_deg[0]:g}..{space.steer_range_deg[1]:g} "
            f"deg, speed {space.speed_range_mps[0]:g}..{space.speed_range_mps[1]:g} m/s.\n"
        )
    hyper = ", ".join(f"{k}={v}" for k, v in sorted(c.hyperparameters.items())) or "defaults"
    return (
        f"# {folder.name}\n\nMade by `racer new`.\n\n"
        f"- Track: `{track_name}` (see track.png)\n"
        f"- Reward: `{c.reward}` (reward_function.py)\n"
        f"- Network: {c.network}\n"
        f"- Hyperparameters: DeepRacer {hyper} (hyperparameters.json)\n"
        f"- Randomization: {c.randomize}; time budget {c.minutes:g} min\n\n"
        f"## Action space\n\n{action_text}\n"
        f"## Next\n\n```\n{command}\n```\n\n"
        f"Then `racer analyze {folder / 'run'}` for the training report.\n"
    )


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
    if "track" not in given:
        names = track_names()
        if names:
            table = Table("track", "length (m)", "width (m)", title="Tracks")
            for n in names:
                try:
                    _, t = load_track(n)
                    table.add_row(n, f"{t.length_m:.2f}", f"{float(np.median(t.widths_m)):.2f}")
                except WizardError:
                    continue
            console.print(table)
        default = c.track if (c.track in names or not names) else names[0]
        while True:
            answer = Prompt.ask("Track (name or .npy file)", default=default, console=console)
            try:
                name, t = load_track(answer)
                break
            except WizardError as exc:
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
    if space.kind == "discrete":
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
            except WizardError as exc:
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
                except WizardError as exc:
                    console.print(f"[red]{exc}[/red]")
            if raw != str(getattr(defaults, key)):
                overrides[key] = _typed(raw)
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


def _typed(raw: str) -> Any:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw
