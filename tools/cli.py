"""The `racer` command: a dispatcher that imports each subcommand's module only when it runs.

`racer --help` and the car-side subcommands (drive, calibrate, models, firmware) must
start without TensorFlow, albumentations or gymnasium, so nothing heavy is imported here.
Each subcommand lives in its own module `tools/cmd_<name>.py` exposing
`main(argv: list[str]) -> int`.

Errors: any exception carrying an integer `exit_code` attribute (every package's
`errors.py` base class has one) is bad input or a refused operation; it is printed as one
line `racer <cmd>: error: <message>` and the process exits with that code (2), without a
traceback unless `--debug` is given.
"""

from __future__ import annotations

import importlib
import os
import sys

# name -> (module, one-line help). Order is the order `racer --help` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "tracks": ("tools.cmd_tracks", "list, show, inspect and import tracks"),
    "sim": ("tools.cmd_sim", "view the simulator: MP4 of a pure-pursuit lap, preset grids"),
    "new": ("tools.cmd_new", "guided wizard that creates a model folder"),
    "train": ("tools.cmd_train", "train a policy with PPO from camera pixels"),
    "eval": ("tools.cmd_eval", "time-trial evaluation of a run or bundle"),
    "export": ("tools.cmd_export", "convert a run to a TFLite model bundle"),
    "keys": ("tools.cmd_keys", "make ed25519 keys for signing bundles"),
    "models": ("tools.cmd_models", "the car's model store: list, install, activate, rollback"),
    "flash": ("tools.cmd_flash", "install a bundle on a car over SSH or into a store"),
    "firmware": ("tools.cmd_firmware", "build and flash the MicroPython motor-controller firmware"),
    "drive": ("tools.cmd_drive", "drive the car (console, headless, or hardware-in-the-loop sim)"),
    "calibrate": ("tools.cmd_calibrate", "calibrate steering, throttle, speed, battery, camera"),
    "analyze": ("tools.cmd_analyze", "HTML report with plots from training or car logs"),
    "compare": ("tools.cmd_compare", "compare training runs side by side"),
    "race": ("tools.cmd_race", "time-trial race of several models with a leaderboard"),
    "bench": ("tools.cmd_bench", "benchmarks: sim, train, car"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        "usage: racer [--debug] COMMAND [ARGS...]",
        "",
        "openracer: train a DeepRacer-style car from pixels, quantize, flash, calibrate, drive.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `racer COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("OPENRACER_DEBUG") == "1"
    if "--debug" in args:
        args.remove("--debug")
        debug = True
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"openracer {version('openracer')}")
        except PackageNotFoundError:
            print("openracer (not installed)")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(
            f"racer: error: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        print(f"racer {name}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        if debug:
            raise
        missing = exc.name or "a module"
        print(
            f"racer {name}: error: this command needs {missing!r}, which is not installed; "
            f"install it with `pip install 'openracer[train]'` (training side) or "
            f"`pip install 'openracer[car]'` (car side)",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:
        code = getattr(exc, "exit_code", None)
        if debug or not isinstance(code, int):
            raise
        print(f"racer {name}: error: {exc}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
