"""The `racer` command: a dispatcher that imports each subcommand's module only when it runs.

`racer --help` and the car-side subcommands (drive, calibrate, models, firmware) must
start without TensorFlow, albumentations or gymnasium, so nothing heavy is imported here.
Each subcommand lives in its own module `tools/cmd_<name>.py` exposing
`main(argv: list[str]) -> int`; the first line of its docstring is its help line.

Errors: any exception carrying an integer `exit_code` attribute (every package's
`errors.py` base class has one) is bad input or a refused operation; it is printed as one
line `racer <cmd>: error: <message>` and the process exits with that code (2), without a
traceback unless `--debug` is given. A `ModuleNotFoundError` for one of openracer's
third-party dependencies (`THIRD_PARTY`, kept in step with pyproject.toml by a test) says
which extra installs it, exit 2; any other (an openracer module, a typo) is a bug and
shows as the traceback it is.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import sys
from pathlib import Path

# The order `racer --help` shows; commands are the modules tools/cmd_<name>.py that exist,
# each described by the first line of its docstring (read without importing it).
ORDER = (
    "tracks",
    "sim",
    "new",
    "train",
    "eval",
    "export",
    "keys",
    "models",
    "flash",
    "firmware",
    "drive",
    "calibrate",
    "analyze",
    "compare",
    "race",
    "bench",
)


def _discover() -> dict[str, tuple[str, str]]:
    """name -> (module, one-line help) for every tools/cmd_<name>.py."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(Path(__file__).parent.glob("cmd_*.py")):
        name = path.stem.removeprefix("cmd_")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        paragraph = (ast.get_docstring(tree) or "").strip().split("\n\n")[0]
        help_ = " ".join(paragraph.split())
        # docstrings read "`racer NAME ...`: what it does." -> keep what it does
        if help_.startswith("`") and "`:" in help_:
            help_ = help_.split("`:", 1)[1].strip()
        help_ = re.sub(r"\s*\([^)]*\)", "", help_.split(". ")[0]).rstrip(".:,")
        found[name] = (f"tools.cmd_{name}", help_)
    rank = {n: i for i, n in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(ORDER)), kv[0])))


COMMANDS: dict[str, tuple[str, str]] = _discover()

THIRD_PARTY: dict[str, tuple[str, tuple[str, ...]]] = {
    # import name: (distribution in pyproject.toml, the extras that install it; () = base)
    "numpy": ("numpy", ()),
    "cv2": ("opencv-python-headless", ()),
    "serial": ("pyserial", ()),
    "textual": ("textual", ()),
    "rich": ("rich", ()),
    "tensorflow": ("tensorflow", ("train",)),
    "keras": ("tensorflow", ("train",)),  # Keras comes with TensorFlow
    "tensorboard": ("tensorboard", ("train",)),
    "albumentations": ("albumentations", ("train",)),
    "gymnasium": ("gymnasium", ("train",)),
    "matplotlib": ("matplotlib", ("train",)),
    "pandas": ("pandas", ("train",)),
    "tyro": ("tyro", ("train",)),
    "imageio": ("imageio", ("train",)),
    "imageio_ffmpeg": ("imageio-ffmpeg", ("train",)),
    "psutil": ("psutil", ("train",)),
    "scipy": ("scipy", ("train",)),  # offered to reward functions, as in DeepRacer
    "shapely": ("shapely", ("train",)),
    "cryptography": ("cryptography", ("car", "train")),
    "ai_edge_litert": ("ai-edge-litert", ("car",)),
    "openvino": ("openvino", ("deepracer",)),  # racer export --deepracer-car's proof
    "Box2D": ("gymnasium", ("bench",)),  # gymnasium[box2d]
    "ray": ("ray", ("ray",)),
}
"""The third-party packages `racer` may find missing, by import name."""


def _missing_package_message(command: str, module: str) -> str | None:
    """The one-line error for a missing third-party `module`; None when it is not one of
    openracer's dependencies (then the ModuleNotFoundError is a bug, raised as it is)."""
    top = module.split(".")[0]
    if top not in THIRD_PARTY:
        return None
    dist, extras = THIRD_PARTY[top]
    if extras:
        where = {
            "train": " (training side)",
            "car": " (on the car)",
            "bench": "",
            "ray": " (the training machine and every Ray node)",
            "deepracer": " (training side)",
        }
        fix = " or ".join(f"`pip install 'openracer[{e}]'`{where[e]}" for e in extras)
    else:
        fix = "`pip install --force-reinstall openracer` (it is a base dependency)"
    return (
        f"racer {command}: error: this command needs {dist!r} (module {top!r}), which is "
        f"not installed; install it with {fix}"
    )


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


_OWN_PACKAGES = ("vehicle", "calibration", "tracks", "sim2real", "trainer", "tools")


def _one_line_warnings(command: str) -> None:
    """Show openracer's own warnings (a DeepRacer file accepted with something ignored or
    clipped) as one line, `racer <cmd>: warning: <message>`, without Python's source line;
    other libraries' warnings keep Python's format."""
    import warnings

    python_show = getattr(warnings.showwarning, "python_show", warnings.showwarning)

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if category.__module__.split(".")[0] in _OWN_PACKAGES:
            print(f"racer {command}: warning: {message}", file=file or sys.stderr)
        else:
            python_show(message, category, filename, lineno, file, line)

    show.python_show = python_show  # type: ignore[attr-defined]
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("OPENRACER_DEBUG") == "1"
    if "--debug" in args:
        args.remove("--debug")
        debug = True
    if not debug:
        from tools import quiet_start

        quiet_start.install()
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
    _one_line_warnings(name)
    try:
        module = importlib.import_module(module_name)
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        print(f"racer {name}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        message = _missing_package_message(name, exc.name or "")
        if debug or message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    except Exception as exc:
        code = getattr(exc, "exit_code", None)
        if debug or not isinstance(code, int):
            raise
        print(f"racer {name}: error: {exc}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
