"""The reward gallery: documented example reward functions written for openracer.

Each example is a standalone file in this folder defining `reward_function(params)` with
DeepRacer's `params` (standard library only), so a user can copy it, read it, edit it and
use it in openracer, the AWS DeepRacer console or deepracer-for-cloud alike. This module
is the index: names, one-line titles, the file paths, and `render()`, which returns an
example's source with its tuning constants (module-level `NAME = value` lines) set,
e.g. the target speed to the action space's top speed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class RewardExample:
    """One example of the gallery."""

    name: str
    """Short name used on the command line (`racer new --reward NAME`)."""
    title: str
    """One-line human title."""
    summary: str
    """What it pays for and when to use it, one sentence."""
    path: Path
    """The example's source file."""

    @property
    def constants(self) -> dict[str, object]:
        """The example's tuning constants (module-level UPPER_CASE literals) and values."""
        tree = ast.parse(self.path.read_text(encoding="utf-8"))
        out: dict[str, object] = {}
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.isupper()
                and isinstance(node.value, ast.Constant)
            ):
                out[node.targets[0].id] = node.value.value
        return out


GALLERY: tuple[RewardExample, ...] = (
    RewardExample(
        "centerline",
        "Follow the centre line",
        "Bands around the centre line pay 1.0 / 0.5 / 0.1; the classic first reward.",
        _HERE / "centerline.py",
    ),
    RewardExample(
        "borders",
        "Stay inside the borders",
        "1.0 anywhere on the road with a small margin; lets the car find its own line.",
        _HERE / "borders.py",
    ),
    RewardExample(
        "no_zigzag",
        "Centre line without zig-zag",
        "Centre-line bands, times 0.8 for sharp steering; steadier on the real car.",
        _HERE / "no_zigzag.py",
    ),
    RewardExample(
        "waypoint_heading",
        "Follow the direction of the track",
        "Pays for pointing at a waypoint a few ahead; turns in before the corner.",
        _HERE / "waypoint_heading.py",
    ),
    RewardExample(
        "speed_on_straights",
        "Speed on the straights, care in the corners",
        "Pays for speed where the track is straight and for a moderate, centred corner.",
        _HERE / "speed_on_straights.py",
    ),
    RewardExample(
        "progress_speed",
        "Progress per step, plus speed (time trial)",
        "Pays for lap share per step and a little for speed; for models that already lap.",
        _HERE / "progress_speed.py",
    ),
)


def names() -> list[str]:
    """The gallery's example names, in presentation order."""
    return [e.name for e in GALLERY]


def get(name: str) -> RewardExample:
    """The example called `name`; KeyError naming the choices otherwise."""
    for example in GALLERY:
        if example.name == name:
            return example
    raise KeyError(f"no reward example {name!r}; the gallery has {', '.join(names())}")


def render(name: str, **constants: float | int | str) -> str:
    """The example's source with the given tuning constants replaced.

    Only constants the example declares can be set; an unknown name is a KeyError so a
    typo never silently produces the default file.
    """
    example = get(name)
    text = example.path.read_text(encoding="utf-8")
    declared = example.constants
    for key, value in constants.items():
        if key not in declared:
            raise KeyError(
                f"reward example {name!r} has no constant {key!r}; it has {sorted(declared)}"
            )
        pattern = re.compile(rf"^{re.escape(key)} = .*$", re.MULTILINE)
        text, count = pattern.subn(f"{key} = {value!r}", text, count=1)
        assert count == 1, key
    return text


__all__ = ["GALLERY", "RewardExample", "get", "names", "render"]
