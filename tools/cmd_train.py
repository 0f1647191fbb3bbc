"""`racer train`: train a policy from camera pixels with PPO, or SAC when
`model_metadata.json` says `"training_algorithm": "sac"` (trainer.ppo.train).

The options are generated from `trainer.config.TrainConfig`: one `--flag` per field, its
help text the docstring under the field, so `racer train --help` never drifts from the
code. `--metadata` and `--hyperparameters` take DeepRacer's own files unchanged.

    racer train --track reinvent_like --reward reward.py --minutes 15 --out runs/a
    racer train --out runs/a --resume            # after a crash or kill: continue
    racer train --track reinvent_base --clone runs/a --out runs/b --reward new.py
    racer train --config mymodel/train.json      # the folder `racer new` wrote
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import types
import typing

# Options that may differ when resuming (how to run, not what to learn).
RESUME_OVERRIDES = {
    "minutes",
    "max_iterations",
    "workers",
    "ray",
    "tf_threads",
    "reward_time_limit_s",
}


def build_parser() -> argparse.ArgumentParser:
    from trainer.config import TrainConfig, field_help

    parser = argparse.ArgumentParser(
        prog="racer train",
        description="Train a DeepRacer-style policy from camera pixels with PPO (or SAC: "
        '"training_algorithm": "sac" in model_metadata.json).',
    )
    helps = field_help(TrainConfig)
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_ = helps.get(f.name, "")
        hint = hints[f.name]
        if f.name == "track":
            parser.add_argument(
                flag, action="append", default=None, metavar="TRACK", help=help_ + " (repeatable)"
            )
        elif f.name == "ray":
            parser.add_argument(
                flag, nargs="?", const="auto", default=None, metavar="ADDRESS", help=help_
            )
        elif hint is bool:
            parser.add_argument(flag, action="store_true", default=None, help=help_)
        else:
            base = hint
            if isinstance(hint, types.UnionType):
                base = next(a for a in typing.get_args(hint) if a is not type(None))
            parser.add_argument(
                flag,
                type=base,
                default=None,
                metavar=f.name.upper(),
                help=f"{help_} [default: {f.default}]",
            )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a training config JSON (the train.json `racer new` writes, or a run's "
        "config.json); flags given beside it override its values",
    )
    parser.add_argument("--quiet", action="store_true", help="no live display")
    parser.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    return parser


def resolve(args: argparse.Namespace) -> tuple:
    """(TrainConfig, Hyperparameters, ModelMetadata) from the command line (and the run
    directory when resuming)."""
    from trainer.algorithms import check_algorithm
    from trainer.checkpoint import RunDir
    from trainer.config import (
        Hyperparameters,
        TrainConfig,
        config_from_json,
        load_hyperparameters,
        load_train_config,
    )
    from trainer.errors import TrainConfigError
    from vehicle.files import read_json
    from vehicle.metadata import ModelMetadata, load_metadata

    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name) is not None
    }
    # Precedence, lowest first: the recipe, the --config file's keys, the flags.
    path = getattr(args, "config", None)
    written = read_json(path, what="training config", error=TrainConfigError) if path else {}
    if not isinstance(written, dict):
        raise TrainConfigError(f"{path}: expected a JSON object")
    recipe = given.get("recipe") or written.get("recipe")
    if recipe and not given.get("resume"):
        from trainer import recipes

        written = {**recipes.get(str(recipe)).train_options(), **written}
    if written:
        base = config_from_json(written, str(path or f"--recipe {recipe}"))
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        given = {**{k: getattr(base, k) for k in written if k in fields}, **given}
        given = {k: v for k, v in given.items() if v is not None}
    if "track" in given:
        given["track"] = tuple(given["track"])
    elif given.get("generated"):
        given["track"] = ()  # --generated alone: only generated tracks
    if given.get("resume"):
        if "out" not in given:
            raise TrainConfigError("--resume needs --out RUN, the run directory to continue")
        run = RunDir(given["out"])
        if not run.config.exists():
            raise TrainConfigError(f"--resume: {run.path} holds no run (no config.json)")
        stored = load_train_config(run.config)
        conflicts = [
            k
            for k, v in given.items()
            if k not in RESUME_OVERRIDES | {"out", "resume"} and v != getattr(stored, k)
        ]
        if conflicts:
            raise TrainConfigError(
                f"--resume continues {run.path} as it was configured; these options differ "
                f"from its config.json: {', '.join('--' + c.replace('_', '-') for c in conflicts)}"
                ". Drop them, or start a new run with --clone"
            )
        overrides = {k: v for k, v in given.items() if k in RESUME_OVERRIDES}
        config = dataclasses.replace(stored, resume=True, clone=None, **overrides)
        return config, load_hyperparameters(run.hyperparameters_file), run.metadata()
    if "out" not in given:
        raise TrainConfigError("--out RUN is required: the directory the run is written to")
    config = TrainConfig(**given)
    hp = (
        load_hyperparameters(config.hyperparameters)
        if config.hyperparameters
        else Hyperparameters()
    )
    metadata = load_metadata(config.metadata) if config.metadata else ModelMetadata()
    check_algorithm(config, hp, metadata)  # clipped_ppo or sac, before anything is written
    return config, hp, metadata


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    config, hp, metadata = resolve(args)

    from trainer.ppo import train
    from trainer.progress import ProgressDisplay

    title = f"racer train -> {config.out}" + (" (resumed)" if config.resume else "")
    display = ProgressDisplay(title, config.minutes * 60.0, quiet=args.quiet or args.json)
    display.message(
        f"network {metadata.neural_network}, {metadata.action_space.kind} actions "
        f"({metadata.action_space.n}), {metadata.training_algorithm}, tracks {list(config.track)}"
        + (f" + {config.generated} generated" if config.generated else "")
        + f", randomize {config.randomize}, {config.workers} simulator "
        + ("workers on Ray" if config.ray else "processes")
        + ", "
        f"gamma {hp.discount_factor}"
        + (
            f", imitation warm start {config.imitation_episodes} expert episodes"
            if config.imitation_episodes
            else ""
        )
    )
    with display:
        result = train(config, hp, metadata, display=display)
    summary = {
        "run": config.out,
        "stop_reason": result.stop_reason,
        "iterations": result.iterations,
        "episodes": result.episodes,
        "env_steps": result.env_steps,
        "elapsed_s": round(result.elapsed_s, 1),
        "best_checkpoint": result.best,
        "best_evaluation": result.best_eval,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"stopped: {result.stop_reason}; {result.iterations} iterations, "
            f"{result.episodes} episodes, {result.env_steps} steps in "
            f"{result.elapsed_s / 60:.1f} min; best checkpoint {result.best} "
            f"(evaluation {result.best_eval})",
            file=sys.stdout,
        )
    return 0
