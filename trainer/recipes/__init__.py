"""Ready-made training recipes: a folder each, holding DeepRacer-format files
(`model_metadata.json`, `hyperparameters.json`, `reward.py`) that `racer train` accepts as
they are, and `recipe.json` with the training options that go with them.

    racer train --recipe fast_laps --track reinvent_like --out runs/a
    racer new mymodel            # offers the recipes by title

`racer train --recipe NAME` sets the recipe's files and options; any flag (or `--config`
value) given beside it wins. The run's `config.json` records the recipe's name and every
value it set, so a run reads the same without the recipe folder.

- `first_lap` ("First lap fast"): PPO alone from pixels, 10 discrete actions at 1-2 m/s,
  a centre-line reward with a small speed premium; the learning benchmark's recipe
  (`racer bench train`).
- `fast_laps` ("Fast laps"): imitation of the racing line first (behaviour cloning, then
  DAgger rounds on the student's own frames), continuous actions up to 4 m/s, then PPO
  held near the imitation by a fading KL term; the lap-time benchmark's recipe
  (`racer bench race`). Evidence for both in `trainer/EXPERIMENTS.md`.
- `first_lap_sac` ("First lap, SAC"): soft actor-critic (`trainer.sac`) with continuous
  steering -30..30 deg at 1-2 m/s and `first_lap`'s reward; `racer bench train
  --algorithm sac`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.errors import TrainConfigError
from vehicle.files import read_json

RECIPES = Path(__file__).parent


@dataclass(frozen=True)
class Recipe:
    """One recipe folder."""

    name: str
    folder: Path

    @property
    def metadata(self) -> Path:
        return self.folder / "model_metadata.json"

    @property
    def hyperparameters(self) -> Path:
        return self.folder / "hyperparameters.json"

    @property
    def reward(self) -> Path:
        """The recipe's `reward.py`, or the reward-gallery example its recipe.json names
        (`"reward_gallery": NAME`) or another recipe's (`"reward_recipe": NAME`), so a
        reward has one home."""
        example = self._doc().get("reward_gallery")
        if example:
            from trainer import reward_gallery

            return reward_gallery.get(str(example)).path
        other = self._doc().get("reward_recipe")
        if other:
            return get(str(other)).reward
        return self.folder / "reward.py"

    def _doc(self) -> dict[str, Any]:
        data = read_json(self.folder / "recipe.json", what="recipe", error=TrainConfigError)
        if not isinstance(data, dict):
            raise TrainConfigError(f"{self.folder / 'recipe.json'}: expected a JSON object")
        return data

    @property
    def title(self) -> str:
        return str(self._doc()["title"])

    @property
    def summary(self) -> str:
        return str(self._doc()["summary"])

    def train_options(self) -> dict[str, Any]:
        """The `TrainConfig` values this recipe sets: its files and its options."""
        options = dict(self._doc().get("train", {}))
        options.update(
            recipe=self.name,
            metadata=str(self.metadata),
            hyperparameters=str(self.hyperparameters),
            reward=str(self.reward),
        )
        return options


def names() -> list[str]:
    """The recipes' names, in presentation order."""
    return ["first_lap", "fast_laps", "first_lap_sac"]


def get(name: str) -> Recipe:
    """The recipe called `name`; TrainConfigError naming the choices otherwise."""
    if name not in names():
        raise TrainConfigError(f"--recipe {name!r} is not one of {', '.join(names())}")
    return Recipe(name, RECIPES / name)


FIRST_LAP = get("first_lap")
FAST_LAPS = get("fast_laps")
FIRST_LAP_SAC = get("first_lap_sac")
