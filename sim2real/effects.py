"""Per-episode lighting and camera effects applied to every frame: one lookup table for
brightness, contrast and gamma; a camera-fixed sun flare and shadow drawn once per episode
with albumentations (`RandomSunFlare`, `RandomShadow`) and applied as an overlay and a
mask; sensor noise from a per-episode bank; motion blur from precomputed kernels; and the
albumentations camera pipeline (noise, blur, JPEG artefacts, brightness/contrast) on a
fraction of the frames. Knobs come from `sim2real.randomization.RandomizationConfig`;
albumentations is imported only when a knob needs it.
"""

from __future__ import annotations

import math
import os
from typing import Any

import cv2
import numpy as np

from sim2real.randomization import RandomizationConfig

# albumentations asks PyPI for a newer version of itself on import unless this is set;
# openracer never touches the network unasked (simulator processes inherit it).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


class FrameEffects:
    """Per-episode lighting and camera effects, applied to every frame of the episode."""

    def __init__(
        self,
        rng: np.random.Generator,
        cfg: RandomizationConfig,
        shape: tuple[int, ...],
        pipeline: Any | None,
    ) -> None:
        self.cfg = cfg
        self.active = cfg.enabled
        self.pipeline = pipeline
        h, w = shape[:2]
        color = len(shape) == 3
        b = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0
        c = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
        g = math.exp(rng.uniform(-cfg.gamma, cfg.gamma))
        x = np.arange(256) / 255.0
        lut = (255.0 * x**g - 127.5) * c + 127.5 + b
        self.lut = np.clip(np.round(lut), 0, 255).astype(np.uint8)
        self.identity_lut = b == 0.0 and c == 1.0 and g == 1.0
        self.shadow: np.ndarray | None = None
        self.glare: np.ndarray | None = None
        if pipeline is not None and rng.random() < cfg.image_shadow_prob:
            import albumentations as A

            white = np.full((h, w, 3), 255, np.uint8)
            t = A.Compose(
                [A.RandomShadow(shadow_intensity_range=(0.3, 0.6), p=1.0)],
                seed=int(rng.integers(2**31)),
            )
            m = t(image=white)["image"]
            self.shadow = m if color else cv2.cvtColor(m, cv2.COLOR_BGR2GRAY)
        if pipeline is not None and rng.random() < cfg.glare_prob:
            import albumentations as A

            black = np.zeros((h, w, 3), np.uint8)
            t = A.Compose(
                [A.RandomSunFlare(flare_roi=(0, 0, 1, 0.4), src_radius=max(h, w) // 2, p=1.0)],
                seed=int(rng.integers(2**31)),
            )
            f = t(image=black)["image"]
            self.glare = f if color else cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)
        sigma = float(rng.uniform(0.0, cfg.noise_std_max))
        self.noise_pos: np.ndarray | None = None
        self.noise_neg: np.ndarray | None = None
        if sigma > 0.25:
            bank = rng.standard_normal((3, *shape), dtype=np.float32)
            bank *= sigma
            self.noise_pos = np.clip(bank, 0, 255).astype(np.uint8)
            np.negative(bank, out=bank)
            self.noise_neg = np.clip(bank, 0, 255).astype(np.uint8)
        self.blur_kernels: list[np.ndarray] = []
        if cfg.motion_blur_prob > 0:
            for length in (3, 5, 7):
                k = np.zeros((length, length), np.float32)
                k[length // 2, :] = 1.0 / length  # horizontal smear: yaw while turning
                self.blur_kernels.append(k)
        if pipeline is not None:
            pipeline.set_random_seed(int(rng.integers(2**31)))

    def apply(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The frame with this episode's effects (a new array; `frame` is not modified)."""
        if not self.active:
            return frame
        out = frame
        if self.shadow is not None:
            out = cv2.multiply(out, self.shadow, scale=1.0 / 255.0)
        if self.glare is not None:
            out = cv2.add(out, self.glare)
        if not self.identity_lut:
            out = cv2.LUT(out, self.lut)
        if self.blur_kernels and rng.random() < self.cfg.motion_blur_prob:
            k = self.blur_kernels[int(rng.integers(len(self.blur_kernels)))]
            out = cv2.filter2D(out, -1, k, borderType=cv2.BORDER_REPLICATE)
        if self.noise_pos is not None and self.noise_neg is not None:
            i = int(rng.integers(len(self.noise_pos)))
            out = cv2.subtract(cv2.add(out, self.noise_pos[i]), self.noise_neg[i])
        if self.pipeline is not None and rng.random() < self.cfg.albumentations_prob:
            out = self.pipeline(image=out)["image"]
        return out if out is not frame else frame.copy()


def albumentations_pipeline(cfg: RandomizationConfig) -> Any | None:
    """The per-frame albumentations camera pipeline, or None when no albumentations knob is
    on (albumentations is then not imported)."""
    if cfg.albumentations_prob <= 0 and cfg.glare_prob <= 0 and cfg.image_shadow_prob <= 0:
        return None
    import albumentations as A

    s = min(1.0, cfg.noise_std_max / 255.0 * 3.0 + 0.02)
    return A.Compose(
        [
            A.RandomBrightnessContrast(
                brightness_limit=cfg.brightness, contrast_limit=cfg.contrast, p=0.5
            ),
            A.GaussNoise(std_range=(0.01, s), p=0.5),
            A.MotionBlur(blur_limit=(3, 7), p=0.5),
            A.ImageCompression(quality_range=(25, 80), p=0.5),
        ],
        seed=0,
    )
