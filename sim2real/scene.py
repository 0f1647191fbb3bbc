"""The texture atlas of one track (`TrackScene`): the painted ground at 1 cm/pixel (level 0),
three pre-blurred copies at 2, 4 and 8 cm/pixel (a small mip chain, so distant lines do not
alias), each padded with floor, and a 360-degree background panorama stored twice side by
side (so azimuth wraps without a modulo), packed into one image. Repainting (domain
randomization) keeps the layout, so cameras' precomputed sampling stays valid; the colour
atlas is composed only when a colour frame is asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sim2real.errors import SimConfigError
from sim2real.texture import TextureStyle, paint_background, paint_ground, surface_tile, tile_over

CAR_MARGIN_M = 1.0
"""The camera may be this far outside the track's bounding box and still see correct ground."""
_LEVEL_MAX_DISTANCE_M = (1.0, 2.5, 5.0)
"""Ground farther than this from the lens is sampled from a coarser level (last: camera max)."""
_GAP_PX = 4


@dataclass(frozen=True)
class _Region:
    row: int
    col: int
    height: int
    width: int


class TrackScene:
    """The texture atlas of one track: mip levels of the painted ground and the panorama."""

    def __init__(
        self,
        centre: np.ndarray,
        inner: np.ndarray,
        outer: np.ndarray,
        *,
        res_m: float = 0.01,
        max_ground_distance_m: float = 8.0,
        pano_width_px: int = 1024,
        elevation_range_deg: tuple[float, float] = (-5.0, 80.0),
        tile_px: int = 256,
    ) -> None:
        self.centre = np.asarray(centre, np.float64)[:, :2]
        self.inner = np.asarray(inner, np.float64)[:, :2]
        self.outer = np.asarray(outer, np.float64)[:, :2]
        if len(self.centre) < 2:
            raise SimConfigError("TrackScene: the track needs at least two centre-line points")
        self.res_m = res_m
        self.levels = len(_LEVEL_MAX_DISTANCE_M) + 1
        self.level_max_distance_m = (*_LEVEL_MAX_DISTANCE_M, max(max_ground_distance_m, 5.0))
        self.tile_px = tile_px
        self.pano_width_px = pano_width_px
        self.elevation_min_rad = math.radians(elevation_range_deg[0])
        self.elevation_max_rad = math.radians(elevation_range_deg[1])
        self.pano_px_per_rad = pano_width_px / (2.0 * math.pi)

        pts = np.vstack([self.inner, self.outer, self.centre])
        lo, hi = pts.min(0), pts.max(0)
        self.safe_min = lo - CAR_MARGIN_M
        self.safe_max = hi + CAR_MARGIN_M
        align = res_m * (1 << (self.levels - 1))
        pad0 = CAR_MARGIN_M + self.level_max_distance_m[0]
        self.x0_m = math.floor((lo[0] - pad0) / align) * align
        x1 = math.ceil((hi[0] + pad0) / align) * align
        y_bottom = math.floor((lo[1] - pad0) / align) * align
        self.y0_m = math.ceil((hi[1] + pad0) / align) * align
        self.w0 = round((x1 - self.x0_m) / res_m)
        self.h0 = round((self.y0_m - y_bottom) / res_m)
        # Level k: the downsampled level 0 plus `extra` pixels of floor on every side.
        self.extra_px = [0]
        for k in range(1, self.levels):
            rk = res_m * (1 << k)
            padk = CAR_MARGIN_M + self.level_max_distance_m[k]
            self.extra_px.append(max(0, math.ceil((padk - pad0) / rk)) + 2)
        sizes = [
            ((self.h0 >> k) + 2 * self.extra_px[k], (self.w0 >> k) + 2 * self.extra_px[k])
            for k in range(self.levels)
        ]
        pano_h = (
            int(math.ceil((self.elevation_max_rad - self.elevation_min_rad) * self.pano_px_per_rad))
            + 2
        )
        sizes.append((pano_h, 2 * pano_width_px + 2))
        self.regions = _shelf_pack(sizes)
        self.atlas_height = max(r.row + r.height for r in self.regions)
        self.atlas_width = max(r.col + r.width for r in self.regions)
        self.atlas_gray: np.ndarray = np.zeros((self.atlas_height, self.atlas_width), np.uint8)
        self._atlas_bgr: np.ndarray | None = None
        self._painted: tuple = ()
        self.floor_bgr: tuple[int, ...] = (0, 0, 0)
        self.floor_gray = 0
        self.style: TextureStyle | None = None

    def level_origin(self, k: int) -> tuple[float, float, float]:
        """(x of column 0, y of row 0, metres per pixel) of level k's image."""
        rk = self.res_m * (1 << k)
        shift = ((1 << k) - 1) * self.res_m / 2.0
        e = self.extra_px[k]
        return self.x0_m + shift - e * rk, self.y0_m - shift + e * rk, rk

    def repaint(self, style: TextureStyle, rng: np.random.Generator) -> None:
        """Paint new textures (ground and panorama) and compose a fresh grayscale atlas; the
        colour atlas is composed only when a colour frame is asked for. Previous atlas
        arrays stay valid, so callers may keep them in a pool (`snapshot`/`restore`)."""
        r0 = self.res_m
        road_tile = surface_tile(
            rng, style.road_kind, style.road_bgr, style.road_contrast, self.tile_px, r0
        )
        floor_tile = surface_tile(
            rng, style.floor_kind, style.floor_bgr, style.floor_contrast, self.tile_px, r0
        )
        ground = paint_ground(
            self.centre,
            self.inner,
            self.outer,
            style,
            rng,
            res_m=r0,
            x0_m=self.x0_m,
            y0_m=self.y0_m,
            width_px=self.w0,
            height_px=self.h0,
            road_tile=road_tile,
            floor_tile=floor_tile,
        )
        pano = paint_background(
            style,
            rng,
            width_px=self.pano_width_px,
            px_per_rad=self.pano_px_per_rad,
            elevation_min_rad=self.elevation_min_rad,
            elevation_max_rad=self.elevation_max_rad,
        )
        self._painted = (ground.image, pano, floor_tile)
        self.atlas_gray = self._compose(gray=True)
        self._atlas_bgr = None
        self.floor_bgr = tuple(int(c) for c in floor_tile.reshape(-1, 3).mean(0))
        pixel = np.array([[self.floor_bgr]], np.uint8)
        self.floor_gray = int(cv2.cvtColor(pixel, cv2.COLOR_BGR2GRAY)[0, 0])
        self.style = style
        self.ground_image = ground

    @property
    def atlas_bgr(self) -> np.ndarray:
        """The colour atlas (composed on first use after a repaint)."""
        if self._atlas_bgr is None:
            self._atlas_bgr = self._compose(gray=False)
        return self._atlas_bgr

    def _compose(self, *, gray: bool) -> np.ndarray:
        ground, pano, floor_tile = self._painted
        if gray:
            ground = cv2.cvtColor(ground, cv2.COLOR_BGR2GRAY)
            pano = cv2.cvtColor(pano, cv2.COLOR_BGR2GRAY)
            floor_tile = cv2.cvtColor(floor_tile, cv2.COLOR_BGR2GRAY)
        shape = (self.atlas_height, self.atlas_width) + (() if gray else (3,))
        atlas = np.zeros(shape, np.uint8)
        r0 = self.res_m
        level = ground
        tile = floor_tile
        for k in range(self.levels):
            reg = self.regions[k]
            if k > 0:
                level = cv2.resize(
                    level, (self.w0 >> k, self.h0 >> k), interpolation=cv2.INTER_AREA
                )
                tile = cv2.resize(
                    tile, (self.tile_px >> k, self.tile_px >> k), interpolation=cv2.INTER_AREA
                )
            e = self.extra_px[k]
            dst = atlas[reg.row : reg.row + reg.height, reg.col : reg.col + reg.width]
            if e:
                rk = r0 * (1 << k)
                dst[:] = tile_over(
                    tile,
                    reg.height,
                    reg.width,
                    round(-self.y0_m / rk) - e,
                    round(self.x0_m / rk) - e,
                )
            dst[e : e + level.shape[0], e : e + level.shape[1]] = level
        reg = self.regions[self.levels]
        h = min(reg.height, pano.shape[0])
        wide = np.concatenate([pano, pano, pano[:, :2]], axis=1)
        atlas[reg.row : reg.row + h, reg.col : reg.col + reg.width] = wide[:h]
        return atlas

    def snapshot(self) -> tuple:
        """The current textures, for `restore`."""
        return (
            self.atlas_gray,
            self._atlas_bgr,
            self._painted,
            self.floor_bgr,
            self.floor_gray,
            self.style,
            self.ground_image,
        )

    def restore(self, snap: tuple) -> None:
        """Switch back to textures saved by `snapshot` (no copying)."""
        (
            self.atlas_gray,
            self._atlas_bgr,
            self._painted,
            self.floor_bgr,
            self.floor_gray,
            self.style,
            self.ground_image,
        ) = snap

    def camera_inside_safe_area(self, x_m: float, y_m: float) -> bool:
        """Whether the ground seen from (x, y) lies inside the painted levels."""
        return bool(
            self.safe_min[0] <= x_m <= self.safe_max[0]
            and self.safe_min[1] <= y_m <= self.safe_max[1]
        )


def _shelf_pack(sizes: list[tuple[int, int]]) -> list[_Region]:
    """Place rectangles (height, width) in rows, widest first, with a gap between them."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i][1])
    shelf_w = max(w for _, w in sizes)
    out: list[_Region | None] = [None] * len(sizes)
    row, col, shelf_h = 0, 0, 0
    for i in order:
        h, w = sizes[i]
        if col + w > shelf_w:
            row += shelf_h + _GAP_PX
            col, shelf_h = 0, 0
        out[i] = _Region(row, col, h, w)
        col += w + _GAP_PX
        shelf_h = max(shelf_h, h)
    return [r for r in out if r is not None]
