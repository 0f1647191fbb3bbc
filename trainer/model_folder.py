"""The model folder `racer new` writes and `racer train --config` reads: the choices
that make one, their validation, and the files.

`ModelChoices` holds every choice (a frozen dataclass, one docstring per field; the
command line flags of `racer new` map one to one onto it). `write_model_folder()` writes:

    NAME/model_metadata.json   DeepRacer action space + network (vehicle/metadata.py)
    NAME/hyperparameters.json  DeepRacer keys and defaults (trainer/config.py)
    NAME/reward_function.py    from the reward gallery, tuned to the action space
    NAME/train.json            openracer's training config (TrainConfig) for `racer train`
    NAME/track.png             the track seen from above
    NAME/README.md             what was chosen and the next command

Files are written atomically; an existing non-empty folder is refused unless `force`.
A choice that cannot be trained raises `ModelFolderError` naming the value and the fix.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import ModelFolderError
from vehicle.files import atomic_write_json, atomic_write_text
from vehicle.metadata import NEURAL_NETWORKS

RANDOMIZE_PRESETS = ("none", "light", "standard", "heavy")
"""Domain-randomization presets of `racer train --randomize` (trainer/config.py)."""
NETWORKS = NEURAL_NETWORKS
"""The networks `racer new` offers: every topology `model_metadata.json` accepts."""
DEFAULT_TRACK = "reinvent_like"
"""The wizard's default track (the catalogue's re:Invent 2018 look-alike)."""


@dataclass(frozen=True)
class ModelChoices:
    """Everything the wizard asks; each field is also a `racer new` flag."""

    name: str
    """Model folder to create (a path; its last part is the model's name)."""
    recipe: str = ""
    """A ready-made recipe (trainer/recipes: first_lap, fast_laps) that sets the action
    space, network, reward, hyperparameters and training options; "" chooses each one."""
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
    from vehicle.metadata import MAX_SPEED_MPS, MIN_SPEED_MPS, discrete_grid, parse_metadata

    try:
        if c.action_space == "discrete":
            return discrete_grid(
                max_steer_deg=c.max_steer_deg,
                steer_levels=c.steering_levels,
                max_speed_mps=c.max_speed_mps,
                speed_levels=c.speed_levels,
            )
        if c.action_space != "continuous":
            raise ModelFolderError(
                f"action space {c.action_space!r} is not 'discrete' or 'continuous'"
            )
        if not c.min_speed_mps < c.max_speed_mps:
            raise ModelFolderError(
                f"--min-speed {c.min_speed_mps} must be below --max-speed {c.max_speed_mps}"
            )
        steer = abs(c.max_steer_deg)
        ranges = {
            "steering_angle": {"low": -steer, "high": steer},
            "speed": {"low": c.min_speed_mps, "high": c.max_speed_mps},
        }
        if c.max_speed_mps > MAX_SPEED_MPS:  # as the console: a new model stays within 4 m/s
            raise ModelFolderError(
                f"--max-speed {c.max_speed_mps} m/s is outside DeepRacer's "
                f"{MIN_SPEED_MPS}-{MAX_SPEED_MPS} m/s; use a speed within it"
            )
        data = {"action_space": ranges, "action_space_type": "continuous"}
        return parse_metadata(data, source="racer new").action_space
    except MetadataError as exc:
        raise ModelFolderError(str(exc)) from exc


def hyperparameters_of(c: ModelChoices):
    """DeepRacer hyperparameters with the wizard's overrides (validated by the trainer)."""
    from trainer.config import parse_hyperparameters
    from trainer.errors import TrainConfigError

    try:
        return parse_hyperparameters(dict(c.hyperparameters), source="racer new --hyper")
    except TrainConfigError as exc:
        raise ModelFolderError(str(exc)) from exc


def reward_source_of(c: ModelChoices, top_speed_mps: float) -> str:
    """The reward file's text: a gallery example tuned to the action space, or a file."""
    from trainer import reward_gallery

    path = Path(c.reward).expanduser()
    if c.reward.endswith(".py"):
        if not path.is_file():
            raise ModelFolderError(
                f"reward file {path} does not exist; give a gallery name or a .py"
            )
        text = path.read_text(encoding="utf-8")
        return text
    try:
        example = reward_gallery.get(c.reward)
    except KeyError as exc:
        raise ModelFolderError(str(exc.args[0])) from exc
    tuned: dict[str, Any] = {}
    if "TARGET_SPEED_MPS" in example.constants:
        tuned["TARGET_SPEED_MPS"] = round(float(top_speed_mps), 3)
    return reward_gallery.render(example.name, **tuned)


def check_reward_file(path: Path, track: Any, space: Any) -> None:
    """Load and check a reward file as `racer train` does before a run: imported as a
    module, `reward_function(params)` called on sample params of the chosen track and
    action space in a fresh interpreter (`sim2real.reward_check`); a
    `sim2real.errors.RewardFunctionError` naming the file, the value and the fix if not."""
    from sim2real.env import RaceEnv

    env = RaceEnv(track=track, reward_function=str(path), action_space=space, randomize="none")
    env.close()


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
        raise ModelFolderError(
            f"track {spec!r}: the track catalogue is not installed; give a .npy route file"
        ) from exc
    except TrackError as exc:
        raise ModelFolderError(str(exc)) from exc


def track_names() -> list[str]:
    """Catalogue track names (empty when the catalogue is unavailable)."""
    try:
        from tracks import catalogue  # type: ignore[attr-defined]
    except ImportError:
        return []
    return list(catalogue.names())


def validate(c: ModelChoices) -> None:
    """Raise ModelFolderError for any choice that cannot be trained."""
    if c.recipe:
        _recipe(c)
    if c.randomize not in RANDOMIZE_PRESETS:
        raise ModelFolderError(
            f"--randomize {c.randomize!r} is not one of {list(RANDOMIZE_PRESETS)}"
        )
    if c.network not in NETWORKS:
        raise ModelFolderError(f"--network {c.network!r} is not one of {list(NETWORKS)}")
    if not 0 < c.minutes <= 7 * 24 * 60:
        raise ModelFolderError(f"--minutes {c.minutes} must be above 0 and at most 10080 (a week)")
    if not Path(c.name).name or Path(c.name).name.startswith("-"):
        raise ModelFolderError(f"model name {c.name!r} is not a usable folder name")
    action_space_of(c)
    hyperparameters_of(c)


def _recipe(c: ModelChoices):
    from trainer import recipes
    from trainer.errors import TrainConfigError

    try:
        return recipes.get(c.recipe)
    except TrainConfigError as exc:
        raise ModelFolderError(str(exc).replace("--recipe", "recipe")) from exc


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


# ---------------------------------------------------------------- writing


def train_command(folder: Path, c: ModelChoices) -> list[str]:
    """The exact `racer train` command for the folder (flags of the training spec)."""
    run = folder / "run"
    track = (
        str(folder / "track.npy")
        if c.track.endswith(".npy") or Path(c.track).is_file()
        else c.track
    )
    recipe = ["--recipe", c.recipe] if c.recipe else []
    return [
        "racer",
        "train",
        *recipe,
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
        raise ModelFolderError(
            f"{folder} already exists and is not empty; choose another name or pass --force"
        )
    track_name, track = load_track(c.track)
    if c.recipe:
        from trainer.config import load_hyperparameters
        from vehicle.metadata import load_metadata

        recipe = _recipe(c)
        metadata = load_metadata(recipe.metadata)
        space = metadata.action_space
        hyper = load_hyperparameters(recipe.hyperparameters)
        reward = recipe.reward.read_text(encoding="utf-8")
    else:
        space = action_space_of(c)
        hyper = hyperparameters_of(c)
        metadata = ModelMetadata(action_space=space, neural_network=c.network)
        reward = reward_source_of(c, space.max_speed_mps)
        if c.reward.endswith(".py"):
            check_reward_file(Path(c.reward).expanduser(), track, space)
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
    readme = _readme(folder, c, track_name, space, text, metadata.neural_network)
    atomic_write_text(folder / "README.md", readme)
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
    """openracer's training config (TrainConfig's JSON) for the folder."""
    from trainer.config import TrainConfig

    options = _recipe(c).train_options() if c.recipe else {}
    options.update(
        out=str(folder / "run"),
        track=(command[command.index("--track") + 1],),
        reward=str(folder / "reward_function.py"),
        metadata=str(folder / "model_metadata.json"),
        hyperparameters=str(folder / "hyperparameters.json"),
        minutes=float(c.minutes),
        randomize=c.randomize,
    )
    config = TrainConfig(**options)
    return config.to_json()


def _readme(
    folder: Path, c: ModelChoices, track_name: str, space, command: str, network: str
) -> str:
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
    hyper = "DeepRacer " + (
        ", ".join(f"{k}={v}" for k, v in sorted(c.hyperparameters.items())) or "defaults"
    )
    if c.recipe:
        recipe = _recipe(c)
        made = (
            f"Made by `racer new` from the recipe `{c.recipe}` ({recipe.title}): {recipe.summary}"
        )
        reward, hyper = f"the recipe's ({recipe.reward.stem})", "the recipe's"
    else:
        made, reward = "Made by `racer new`.", f"`{c.reward}`"
    return (
        f"# {folder.name}\n\n{made}\n\n"
        f"- Track: `{track_name}` (see track.png)\n"
        f"- Reward: {reward} (reward_function.py)\n"
        f"- Network: {network}\n"
        f"- Hyperparameters: {hyper} (hyperparameters.json)\n"
        f"- Randomization: {c.randomize}; time budget {c.minutes:g} min\n\n"
        f"## Action space\n\n{action_text}\n"
        f"## Next\n\n```\n{command}\n```\n\n"
        f"Then `racer analyze {folder / 'run'}` for the training report.\n"
    )
