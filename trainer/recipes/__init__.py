"""Ready-made training recipes: DeepRacer-format files (`model_metadata.json`,
`hyperparameters.json`, a reward function) that `racer train` accepts as they are.

`fast_*`: the learning benchmark's recipe (`racer bench train`): the OPENRACER_LOWRES network
(30x40 input after an in-model pool), 10 discrete actions (steering -30..30 deg x 1.0 /
2.0 m/s), discount 0.99 (a horizon of about 100 steps = 7 s at 15 Hz instead of
DeepRacer's 0.999), 16 episodes and 4 epochs per iteration, entropy bonus 0.002 (0.01
kept the policy so spread that its argmax drove worse than its samples), and a
centre-line reward with a small speed premium and a lap bonus.
"""

from __future__ import annotations

from pathlib import Path

RECIPES = Path(__file__).parent
FAST_METADATA = RECIPES / "fast_model_metadata.json"
FAST_HYPERPARAMETERS = RECIPES / "fast_hyperparameters.json"
FAST_REWARD = RECIPES / "fast_reward.py"
