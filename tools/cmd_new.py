"""`racer new NAME`: a guided wizard that creates a model folder ready for `racer train`.

Offers the ready-made recipes first ("first lap fast", "fast laps"), or asks for a
track (shown as a picture), an action space (DeepRacer's console choices:
steering and speed granularity and maxima, or continuous ranges), a reward function
from the gallery, hyperparameters (DeepRacer's defaults), a randomization preset and a
time budget; writes model_metadata.json, hyperparameters.json, reward_function.py,
train.json, track.png and README.md into NAME, and prints the exact next command.

Every choice is also a flag; `--yes` takes the defaults for the rest without asking,
so scripts and tests can drive it:

  racer new my-model --track reinvent_like --steering-levels 5 --max-steer 30 \\
      --speed-levels 2 --max-speed 0.8 --reward centerline --randomize standard \\
      --minutes 15 --yes
"""

from __future__ import annotations

import argparse
import json
import sys

from tools import wizard
from tools.errors import WizardError
from trainer.model_folder import NETWORKS, RANDOMIZE_PRESETS, ModelChoices

# flag dest -> ModelChoices field
_FIELDS = {
    "recipe": "recipe",
    "track": "track",
    "action_space": "action_space",
    "steering_levels": "steering_levels",
    "max_steer": "max_steer_deg",
    "speed_levels": "speed_levels",
    "max_speed": "max_speed_mps",
    "min_speed": "min_speed_mps",
    "reward": "reward",
    "network": "network",
    "randomize": "randomize",
    "minutes": "minutes",
}


def build_parser() -> argparse.ArgumentParser:
    d = ModelChoices(name="x")
    p = argparse.ArgumentParser(
        prog="racer new",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", help="model folder to create")
    p.add_argument(
        "--recipe",
        help="a ready-made recipe: first_lap (first lap fast) or fast_laps (fast laps); it "
        "sets the action space, network, reward and hyperparameters (default: choose each)",
    )
    p.add_argument("--track", help=f"catalogue name or .npy route file (default {d.track})")
    p.add_argument("--action-space", choices=["discrete", "continuous"], help="default discrete")
    p.add_argument(
        "--steering-levels",
        type=int,
        help=f"discrete steering granularity (default {d.steering_levels})",
    )
    p.add_argument(
        "--max-steer", type=float, help=f"maximum steering angle, deg (default {d.max_steer_deg:g})"
    )
    p.add_argument(
        "--speed-levels", type=int, help=f"discrete speed granularity (default {d.speed_levels})"
    )
    p.add_argument(
        "--max-speed", type=float, help=f"maximum speed, m/s (default {d.max_speed_mps:g})"
    )
    p.add_argument(
        "--min-speed",
        type=float,
        help=f"continuous: minimum speed, m/s (default {d.min_speed_mps:g})",
    )
    p.add_argument("--reward", help=f"gallery name or .py file (default {d.reward})")
    p.add_argument(
        "--hyper",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a DeepRacer hyperparameter (repeatable), e.g. --hyper lr=0.0001",
    )
    p.add_argument("--network", choices=NETWORKS, help=f"default {d.network}")
    p.add_argument("--randomize", choices=RANDOMIZE_PRESETS, help=f"default {d.randomize}")
    p.add_argument("--minutes", type=float, help=f"training time budget (default {d.minutes:g})")
    p.add_argument("--yes", "-y", action="store_true", help="take defaults, ask nothing")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty folder")
    p.add_argument("--list-rewards", action="store_true", help="list the reward gallery and exit")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from rich.console import Console

    console = Console(stderr=args.json, highlight=False)
    if args.list_rewards:
        from trainer import reward_gallery

        for e in reward_gallery.GALLERY:
            console.print(f"[bold]{e.name:<20}[/bold] {e.title}: {e.summary}")
        return 0
    if not args.name:
        raise WizardError("give the model folder to create: racer new NAME")
    values: dict = {"name": args.name}
    given: set[str] = set()
    for dest, fld in _FIELDS.items():
        v = getattr(args, dest)
        if v is not None:
            values[fld] = v
            given.add(fld)
    if args.hyper:
        overrides = {}
        for item in args.hyper:
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise WizardError(f"--hyper {item!r} must be KEY=VALUE, e.g. --hyper lr=0.0001")
            overrides[key.strip()] = wizard.typed_value(raw.strip())
        values["hyperparameters"] = overrides
        given.add("hyperparameters")
    choices = ModelChoices(**values)
    from trainer.model_folder import load_track, write_model_folder

    if not args.yes:
        try:
            choices = wizard.ask(choices, given, console)
        except EOFError as exc:
            raise WizardError(
                "input ended before every question was answered; run `racer new` in a "
                "terminal, or pass the choices as flags with --yes for the rest"
            ) from exc
    with console.status("writing the model folder ..."):
        result = write_model_folder(choices, force=args.force)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if args.yes:
        _, track = load_track(choices.track)
        console.print(wizard.ascii_preview(track))
    console.print(
        f"[green]created[/green] {result['folder']}: {', '.join(result['files'])}\n"
        f"track {result['track']} ({result['track_length_m']:.2f} m), "
        f"{result['actions']} actions, reward {result['reward']}, "
        f"randomize {choices.randomize}, {choices.minutes:g} min"
    )
    console.print("\nnext:")
    print(result["command"])
    return 0
