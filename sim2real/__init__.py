"""The simulated world: raster camera, car dynamics with battery-speed curve, domain
randomization, and the Gymnasium environment with DeepRacer semantics.

Importing `sim2real` registers `openracer/Race-v0` with Gymnasium (when Gymnasium is
installed); the env module itself is imported only by `gymnasium.make`.
"""

import importlib.util as _util

if _util.find_spec("gymnasium") is not None:  # the non-gym core works without it
    import gymnasium as _gym

    if "openracer/Race-v0" not in _gym.registry:
        _gym.register(id="openracer/Race-v0", entry_point="sim2real.env:RaceEnv")
