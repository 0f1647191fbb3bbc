"""A pixel policy without a network, for tests of evaluation tools: it steers towards the
middle of the bright lines (borders, centre dashes) in the lower part of the image, with a
fixed brightness threshold, so it drives the nominal simulator and fails when the scene
gets dark, as a real model that never saw dark scenes would."""

from __future__ import annotations

import numpy as np

from vehicle.metadata import ModelMetadata, console_default_action_space

SPACE = console_default_action_space()
METADATA = ModelMetadata(action_space=SPACE)


def vision_policy(obs: np.ndarray) -> np.ndarray:
    """(B, 120, 160, 1) uint8 -> (B,) action indices of the console default space."""
    out = []
    for img in obs[..., 0]:
        cols = np.nonzero(img[60:110] > 150)[1]
        steer = 0.0 if len(cols) < 20 else float(np.clip(-(cols.mean() - 80) / 80 * 60, -30, 30))
        fast = abs(steer) < 10
        best = min(
            range(SPACE.n),
            key=lambda i: (
                abs(SPACE.actions[i].steer_deg - steer),
                -SPACE.actions[i].speed_mps if fast else SPACE.actions[i].speed_mps,
            ),
        )
        out.append(best)
    return np.array(out)
