"""The raster camera renderer: inverse perspective mapping of a track's texture atlas
(`sim2real.scene.TrackScene`) into camera frames. No OpenGL, no display.

Everything that depends only on the camera is computed once per camera configuration
(`pixel_geometry`: each pixel's ray, its ground point and footprint, its mip level).
Per frame:

- pinhole lens (default): the ground is a plane, so each band of image rows sampling one
  mip level is one `cv2.warpPerspective` with a 3x3 homography built from the pose
  (atlas <- world <- car <- pixel); the background rows are one `cv2.remap` of the
  panorama with the heading as a column shift;
- other lenses (fisheye): per-pixel features (ground point / level resolution, a
  background flag) times a 4x2 pose matrix plus per-pixel constants give the atlas
  coordinates of every pixel, and one `cv2.remap` over the stacked maps renders a whole
  batch of cars at once.

Cameras that wander more than a metre outside the track's bounding box see plain floor.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sim2real.camera import CameraConfig, pixel_geometry
from sim2real.scene import TrackScene

__all__ = ["CameraRenderer", "TrackScene"]


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
            out: np.ndarray = np.empty((n, h, w, 3) if color else (n, h, w), np.uint8)
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
