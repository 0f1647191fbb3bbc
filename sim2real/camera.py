"""The simulated camera: intrinsics (pinhole, or an equidistant fisheye like the real car's
wide lens), its pose on the car, and the per-pixel geometry the renderer precomputes once:
where each pixel's ray meets the ground (inverse perspective mapping), how much ground one
pixel covers there, and the direction of the rays that see the background instead.

Car frame: x forward from the model origin, y to the left, z up, metres. Image: u to the
right, v down, pixel centres at integer + 0.5.

Defaults match a Raspberry Pi Camera Module v2 (IMX219, 62.2 x 48.8 deg field of view)
mounted on a 1/18 car: lens 0.11 m above the ground and 0.07 m ahead of the model origin,
pitched 15 deg down like DeepRacer's simulated camera (deepracer-compat 1.2). The real
DeepRacer lens is much wider (about 120 deg): use `CameraConfig(model="fisheye",
hfov_deg=120)` to train for such a lens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sim2real.errors import SimConfigError


@dataclass(frozen=True)
class CameraConfig:
    """Camera intrinsics and mounting (defaults: Pi Camera v2 on a 1/18 car)."""

    model: str = "pinhole"
    """'pinhole' (rectilinear) or 'fisheye' (equidistant, r = f * theta)."""
    width_px: int = 160
    """Rendered image width; 160 is the observation size, so no resize is needed."""
    height_px: int = 120
    """Rendered image height."""
    hfov_deg: float = 62.2
    """Horizontal field of view (Pi Camera v2: 62.2 deg; DeepRacer sim: 65; real car ~120)."""
    height_m: float = 0.11
    """Lens height above the ground."""
    forward_m: float = 0.07
    """Lens position ahead of the car's model origin."""
    pitch_deg: float = 15.0
    """Downward tilt of the optical axis (DeepRacer's simulated camera: 15 deg)."""
    max_ground_distance_m: float = 8.0
    """Ground farther than this is hidden behind the background (walls, barriers)."""

    def __post_init__(self) -> None:
        if self.model not in ("pinhole", "fisheye"):
            raise SimConfigError(f"CameraConfig.model {self.model!r} is not 'pinhole' or 'fisheye'")
        limit = 170.0 if self.model == "pinhole" else 200.0
        if not 10.0 <= self.hfov_deg < limit:
            raise SimConfigError(
                f"CameraConfig.hfov_deg {self.hfov_deg} is outside 10-{limit:g} for a "
                f"{self.model} lens"
            )
        if self.width_px < 8 or self.height_px < 8:
            raise SimConfigError(f"CameraConfig size {self.width_px}x{self.height_px} is too small")
        if not 0.02 <= self.height_m <= 2.0:
            raise SimConfigError(f"CameraConfig.height_m {self.height_m} is outside 0.02-2 m")
        if not -30.0 <= self.pitch_deg <= 80.0:
            raise SimConfigError(f"CameraConfig.pitch_deg {self.pitch_deg} is outside -30..80 deg")

    def resized(self, width_px: int, height_px: int) -> CameraConfig:
        """The same lens and mounting rendering `width_px` x `height_px` (a display view)."""
        return replace(self, width_px=width_px, height_px=height_px)

    @property
    def focal_px(self) -> float:
        """Focal length in pixels, from the horizontal field of view."""
        half = math.radians(self.hfov_deg) / 2.0
        if self.model == "pinhole":
            return (self.width_px / 2.0) / math.tan(half)
        return (self.width_px / 2.0) / half

    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = math.radians(self.pitch_deg)
        forward = np.array([math.cos(p), 0.0, -math.sin(p)])
        right = np.array([0.0, -1.0, 0.0])
        down = np.array([-math.sin(p), 0.0, -math.cos(p)])
        return right, down, forward

    def rays(self) -> np.ndarray:
        """Unit ray direction of every pixel in the car frame, shape (H, W, 3), float64."""
        w, h, f = self.width_px, self.height_px, self.focal_px
        u = np.arange(w) + 0.5 - w / 2.0
        v = np.arange(h) + 0.5 - h / 2.0
        uu, vv = np.meshgrid(u, v)
        if self.model == "pinhole":
            dx, dy, dz = uu / f, vv / f, np.ones_like(uu)
        else:
            r = np.hypot(uu, vv)
            theta = r / f
            phi = np.arctan2(vv, uu)
            dx, dy, dz = np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)
        right, down, forward = self._axes()
        d = dx[..., None] * right + dy[..., None] * down + dz[..., None] * forward
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def project(self, points_car: np.ndarray) -> np.ndarray:
        """Pixel coordinates (u, v) of points given in the car frame, shape (N, 3) -> (N, 2).

        Points behind the camera come back as NaN. Used by tests and debug overlays.
        """
        pts = np.atleast_2d(np.asarray(points_car, dtype=np.float64))
        rel = pts - np.array([self.forward_m, 0.0, self.height_m])
        right, down, forward = self._axes()
        x, y, z = rel @ right, rel @ down, rel @ forward
        f = self.focal_px
        out = np.full((len(pts), 2), np.nan)
        ok = z > 1e-9
        if self.model == "pinhole":
            out[ok, 0] = f * x[ok] / z[ok] + self.width_px / 2.0
            out[ok, 1] = f * y[ok] / z[ok] + self.height_px / 2.0
        else:
            ok = np.ones(len(pts), dtype=bool)
            theta = np.arctan2(np.hypot(x, y), z)
            phi = np.arctan2(y, x)
            out[:, 0] = f * theta * np.cos(phi) + self.width_px / 2.0
            out[:, 1] = f * theta * np.sin(phi) + self.height_px / 2.0
        return out


@dataclass(frozen=True)
class PixelGeometry:
    """What every pixel sees, computed once per camera configuration."""

    ground: np.ndarray
    """(H, W) bool: the ray meets the ground within `max_ground_distance_m`."""
    ground_xy_m: np.ndarray
    """(H, W, 2) car-frame (forward, left) ground point of each ground pixel (0 elsewhere)."""
    footprint_m: np.ndarray
    """(H, W) side of the ground square one pixel covers (geometric mean of its extents)."""
    azimuth_rad: np.ndarray
    """(H, W) ray azimuth relative to the car's heading, positive = left."""
    elevation_rad: np.ndarray
    """(H, W) ray elevation above the horizontal plane."""


def pixel_geometry(config: CameraConfig) -> PixelGeometry:
    """Intersect every pixel's ray with the ground plane (inverse perspective mapping)."""
    d = config.rays()
    dz = d[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dz < -1e-9, config.height_m / -dz, np.inf)
    gx = config.forward_m + t * d[..., 0]
    gy = t * d[..., 1]
    dist = np.hypot(gx - config.forward_m, gy)
    ground = np.isfinite(t) & (dist <= config.max_ground_distance_m)
    # Footprint: finite differences of the ground point across neighbouring pixels.
    gxs = np.where(ground, gx, np.nan)
    gys = np.where(ground, gy, np.nan)
    du = np.hypot(np.gradient(gxs, axis=1), np.gradient(gys, axis=1))
    dv = np.hypot(np.gradient(gxs, axis=0), np.gradient(gys, axis=0))
    foot = np.sqrt(np.nan_to_num(du, nan=1.0) * np.nan_to_num(dv, nan=1.0))
    xy = np.stack([np.where(ground, gx, 0.0), np.where(ground, gy, 0.0)], axis=-1)
    return PixelGeometry(
        ground=ground,
        ground_xy_m=xy,
        footprint_m=np.where(ground, foot, np.inf),
        azimuth_rad=np.arctan2(d[..., 1], d[..., 0]),
        elevation_rad=np.arcsin(np.clip(d[..., 2], -1.0, 1.0)),
    )
