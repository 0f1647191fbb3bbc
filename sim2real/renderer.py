"""The raster camera renderer: inverse perspective mapping of a top-down track texture plus a
background panorama, with one `cv2.transform` and one `cv2.remap` per frame (or per batch of
cars). No OpenGL, no display.

How it works. `TrackScene` owns a texture *atlas* for one track: the painted ground at
1 cm/pixel (level 0), three pre-blurred copies at 2, 4 and 8 cm/pixel (a small mip chain, so
distant lines do not alias), each padded with floor, and a 360-degree background panorama
stored twice side by side (so azimuth wraps without a modulo). `CameraRenderer` precomputes
for its camera, once, a 4-channel feature per pixel: ground pixels carry their car-frame
ground point divided by their level's resolution, background pixels carry a flag; plus a
2-channel constant (where the pixel's level or panorama row sits in the atlas). Then for a
car pose (x, y, heading) the atlas coordinates of every pixel are one 2x4 matrix away:

    map = cv2.transform(features, [[cos, -sin, x, pano_shift], [-sin, -cos, -y, 0]]) + const

and `cv2.remap(atlas, map)` is the frame. Several cars are rendered with one remap over
their stacked maps. Repainting the textures (domain randomization) keeps the atlas layout,
so the per-camera precomputation stays valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sim2real.camera import CameraConfig, pixel_geometry
from sim2real.errors import ConfigError
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
            raise ConfigError("TrackScene: the track needs at least two centre-line points")
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


class CameraRenderer:
    """Renders frames of one `TrackScene` through one camera, for one car or a batch.

    Pinhole cameras take the fast path: the ground is a plane, so each band of image rows
    that samples one mip level is a single `cv2.warpPerspective` with a 3x3 homography
    built per frame from the pose (no per-pixel map arithmetic), and the background band is
    a `cv2.remap` of the panorama shifted by the heading. Other lenses (fisheye) use the
    general path: per-pixel features, one `cv2.transform` and one `cv2.remap`.
    """

    def __init__(self, scene: TrackScene, camera: CameraConfig | None = None) -> None:
        self.scene = scene
        self.camera = camera or CameraConfig()
        cam = self.camera
        geo = pixel_geometry(cam)
        self._geo = geo
        dist = np.hypot(geo.ground_xy_m[..., 0] - cam.forward_m, geo.ground_xy_m[..., 1])
        ground = geo.ground & (dist <= scene.level_max_distance_m[-1])
        with np.errstate(divide="ignore"):
            k_foot = np.floor(np.log2(np.maximum(geo.footprint_m, 1e-9) / scene.res_m))
        k_dist = np.searchsorted(np.asarray(scene.level_max_distance_m), dist)
        level = np.clip(np.maximum(k_foot, k_dist), 0, scene.levels - 1).astype(np.int64)
        self.fast = cam.model == "pinhole"
        if self.fast:
            self._init_pinhole(ground, level)
        else:
            self._init_general(ground, level)
        self._maps: np.ndarray | None = None
        self._batch_const: np.ndarray | None = None

    # -- pinhole: homography per row band -------------------------------------------------
    def _init_pinhole(self, ground: np.ndarray, level: np.ndarray) -> None:
        cam, scene, geo = self.camera, self.scene, self._geo
        h, w = cam.height_px, cam.width_px
        mid = w // 2
        row_level = np.where(ground[:, mid], level[:, mid], -1)
        # Rows above the last ground row at the centre column see the background.
        ground_rows = np.nonzero(row_level >= 0)[0]
        first = int(ground_rows[0]) if len(ground_rows) else h
        row_level[:first] = -1
        for v in range(h - 2, first - 1, -1):  # coarser never below finer
            row_level[v] = max(row_level[v], row_level[v + 1])
        self.bands: list[tuple[int, int, int]] = []  # (row0, row1, level)
        v = first
        while v < h:
            k = int(row_level[v])
            v1 = v
            while v1 < h and row_level[v1] == k:
                v1 += 1
            self.bands.append((v, v1, k))
            v = v1
        self.sky_rows = first
        self.ground_mask = np.zeros((h, w), bool)
        self.ground_mask[first:] = True
        # Homography pieces: pixel (u, v) -> ray -> car-frame ground point (projective).
        f = cam.focal_px
        kinv = np.array([[1 / f, 0, (0.5 - w / 2) / f], [0, 1 / f, (0.5 - h / 2) / f], [0, 0, 1.0]])
        right, down, forward = cam._axes()
        rot = np.stack([right, down, forward], axis=1)  # camera -> car frame
        b = np.array([[cam.height_m, 0, -cam.forward_m], [0, cam.height_m, 0], [0, 0, -1.0]])
        self._car_from_pixel = b @ rot @ kinv
        self._band_pre = []
        self._band_post = []
        for r0, _, k in self.bands:
            shift = np.array([[1, 0, 0], [0, 1, r0], [0, 0, 1.0]])
            self._band_pre.append(self._car_from_pixel @ shift)
            x0, y0, rk = scene.level_origin(k)
            reg = scene.regions[k]
            self._band_post.append(
                np.array(
                    [[1 / rk, 0, reg.col - x0 / rk], [0, -1 / rk, reg.row + y0 / rk], [0, 0, 1.0]]
                )
            )
        reg = scene.regions[scene.levels]
        kp = scene.pano_px_per_rad
        sky = slice(0, first)
        self._sky_x = (reg.col + np.mod(-geo.azimuth_rad[sky] * kp, scene.pano_width_px)).astype(
            np.float32
        )
        elev = np.clip(geo.elevation_rad[sky], scene.elevation_min_rad, scene.elevation_max_rad)
        self._sky_y = (reg.row + (scene.elevation_max_rad - elev) * kp).astype(np.float32)
        self._sky_buf = np.empty_like(self._sky_x)

    def _render_pinhole(
        self, x_m: float, y_m: float, heading_rad: float, atlas: np.ndarray, out: np.ndarray
    ) -> None:
        c, s = math.cos(heading_rad), math.sin(heading_rad)
        pose = np.array([[c, -s, x_m], [s, c, y_m], [0, 0, 1.0]])
        w = self.camera.width_px
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        for (r0, r1, _), pre, post in zip(self.bands, self._band_pre, self._band_post, strict=True):
            hom = post @ pose @ pre
            cv2.warpPerspective(
                atlas,
                hom,
                (w, r1 - r0),
                dst=out[r0:r1],
                flags=flags,
                borderMode=cv2.BORDER_REPLICATE,
            )
        if self.sky_rows:
            shift = (-heading_rad * self.scene.pano_px_per_rad) % self.scene.pano_width_px
            np.add(self._sky_x, np.float32(shift), out=self._sky_buf)
            cv2.remap(
                atlas,
                self._sky_buf,
                self._sky_y,
                cv2.INTER_LINEAR,
                dst=out[: self.sky_rows],
                borderMode=cv2.BORDER_REPLICATE,
            )

    # -- general lens: per-pixel features + remap -----------------------------------------
    def _init_general(self, ground: np.ndarray, level: np.ndarray) -> None:
        cam, scene, geo = self.camera, self.scene, self._geo
        h, w = cam.height_px, cam.width_px
        feats = np.zeros((h, w, 4), np.float32)
        const = np.zeros((h, w, 2), np.float32)
        for k in range(scene.levels):
            sel = ground & (level == k)
            x0, y0, rk = scene.level_origin(k)
            reg = scene.regions[k]
            feats[sel, 0] = geo.ground_xy_m[sel, 0] / rk
            feats[sel, 1] = geo.ground_xy_m[sel, 1] / rk
            feats[sel, 2] = 1.0 / rk
            const[sel, 0] = reg.col - x0 / rk
            const[sel, 1] = reg.row + y0 / rk
        sky = ~ground
        reg = scene.regions[scene.levels]
        kp = scene.pano_px_per_rad
        feats[sky, 3] = 1.0
        const[sky, 0] = reg.col + np.mod(-geo.azimuth_rad[sky] * kp, scene.pano_width_px)
        elev = np.clip(geo.elevation_rad[sky], scene.elevation_min_rad, scene.elevation_max_rad)
        const[sky, 1] = reg.row + (scene.elevation_max_rad - elev) * kp
        self.features = feats.reshape(-1, 4)
        self.const = const
        self.ground_mask = ground

    def _matrix(self, x_m: float, y_m: float, heading_rad: float) -> np.ndarray:
        c, s = math.cos(heading_rad), math.sin(heading_rad)
        shift = (-heading_rad * self.scene.pano_px_per_rad) % self.scene.pano_width_px
        return np.array([[c, -s], [-s, -c], [x_m, -y_m], [shift, 0.0]], np.float32)

    # -- public -------------------------------------------------------------------------
    def render(
        self, x_m: float, y_m: float, heading_rad: float, *, color: bool = False
    ) -> np.ndarray:
        """One frame seen from a camera whose car origin is at (x, y) with `heading_rad`:
        (H, W) uint8 grayscale, or (H, W, 3) BGR with `color=True`."""
        if not self.fast:
            return self.render_batch(np.array([[x_m, y_m, heading_rad]]), color=color)[0]
        h, w = self.camera.height_px, self.camera.width_px
        atlas = self.scene.atlas_bgr if color else self.scene.atlas_gray
        out = np.empty((h, w, 3) if color else (h, w), np.uint8)
        self._render_pinhole(x_m, y_m, heading_rad, atlas, out)
        if not self.scene.camera_inside_safe_area(x_m, y_m):
            out[self.ground_mask] = self.scene.floor_bgr if color else self.scene.floor_gray
        return out

    def render_batch(self, poses: np.ndarray, *, color: bool = False) -> np.ndarray:
        """Frames for n car poses (n, 3) = (x, y, heading): (n, H, W) or (n, H, W, 3) uint8."""
        poses = np.asarray(poses, np.float64).reshape(-1, 3)
        n = len(poses)
        h, w = self.camera.height_px, self.camera.width_px
        atlas = self.scene.atlas_bgr if color else self.scene.atlas_gray
        if self.fast:
            out = np.empty((n, h, w, 3) if color else (n, h, w), np.uint8)
            for i in range(n):
                self._render_pinhole(poses[i, 0], poses[i, 1], poses[i, 2], atlas, out[i])
        else:
            # One remap over the stacked maps of all cars.
            if self._maps is None or self._maps.shape[0] != n * h * w:
                self._maps = np.empty((n * h * w, 2), np.float32)
                self._batch_const = np.tile(self.const.reshape(-1, 2), (n, 1))
            maps = self._maps
            for i in range(n):
                m = self._matrix(poses[i, 0], poses[i, 1], poses[i, 2])
                np.dot(self.features, m, out=maps[i * h * w : (i + 1) * h * w])
            assert self._batch_const is not None
            np.add(maps, self._batch_const, out=maps)
            out = cv2.remap(  # type: ignore[call-overload]
                atlas,
                maps.reshape(n * h, w, 2),
                None,
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            out = out.reshape((n, h, w, 3) if color else (n, h, w))
        for i in range(n):
            if not self.scene.camera_inside_safe_area(poses[i, 0], poses[i, 1]):
                fill = self.scene.floor_bgr if color else self.scene.floor_gray
                out[i][self.ground_mask] = fill
        return out
