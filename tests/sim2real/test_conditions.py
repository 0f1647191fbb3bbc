"""The robustness map's conditions: four axes, one nominal level each, each a WorldConfig."""

from __future__ import annotations

import numpy as np

from sim2real.conditions import Condition, default_conditions
from sim2real.world import Lighting


def test_default_grid_has_four_axes_with_a_nominal_level_each():
    conditions = default_conditions()
    axes = {c.axis for c in conditions}
    assert axes == {"lighting", "texture", "camera", "battery"}
    for axis in axes:
        assert sum(c.nominal for c in conditions if c.axis == axis) == 1
    worlds = {c.label: c.world() for c in conditions}
    assert worlds["pitch 22°"].camera.pitch_deg == 22.0
    assert worlds["empty 5 %"].battery.initial_soc == 0.05
    assert worlds["concrete"].style.floor_kind == "concrete"
    assert worlds["dark ×0.45"].lighting == Lighting(gain=0.45, gamma=1.2)
    assert worlds["nominal (ideal)"].lighting.nominal


def test_lighting_scales_the_image_and_nominal_leaves_it_alone():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    assert Lighting().apply(image) is image
    dark = Lighting(gain=0.5).apply(image)
    assert dark.dtype == np.uint8 and dark.shape == image.shape
    assert int(dark.max()) == 127 and np.all(dark <= image)
    world = Condition("lighting", "glare", gain=1.8, gamma=0.75).world()
    assert int(world.lighting.apply(image)[8, 0, 0]) == 255
