"""Procedural textures: the top-down track texture (road surface, white border lines, dashed
yellow centre line as on DeepRacer tracks, off-track floor, world-fixed shadows) and the
background panorama seen above the horizon (barriers, walls, room).

Surfaces are periodic tiles (noise, carpet, concrete, tiles) generated from a numpy
Generator and repeated in world coordinates, so the same floor continues seamlessly at
every resolution level the renderer samples from. Colours are BGR uint8 (OpenCV order).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sim2real.errors import SimConfigError

SURFACE_KINDS = ("plain", "noise", "carpet", "concrete", "tiles")
BACKGROUND_KINDS = ("room", "plain", "barriers")


@dataclass(frozen=True)
class TextureStyle:
    """Look of one track texture and background (defaults: a DeepRacer-like track)."""

    road_kind: str = "noise"
    """Road surface pattern, one of SURFACE_KINDS."""
    road_bgr: tuple[int, int, int] = (48, 48, 52)
    """Mean road colour (DeepRacer tracks: dark grey/black)."""
    road_contrast: float = 0.12
    """Relative amplitude of the road pattern."""
    floor_kind: str = "carpet"
    """Off-track floor pattern, one of SURFACE_KINDS."""
    floor_bgr: tuple[int, int, int] = (70, 120, 80)
    """Mean floor colour (DeepRacer's simulator: green)."""
    floor_contrast: float = 0.18
    """Relative amplitude of the floor pattern."""
    border_bgr: tuple[int, int, int] = (235, 235, 235)
    """Border line colour (white)."""
    border_width_m: float = 0.05
    """Border line width, centred on the track's inner and outer border polylines."""
    centre_bgr: tuple[int, int, int] = (20, 190, 235)
    """Centre line colour (yellow-orange)."""
    centre_width_m: float = 0.04
    """Centre line width."""
    dash_length_m: float = 0.15
    """Length of one centre-line dash; 0 draws a solid line, negative draws none."""
    dash_gap_m: float = 0.15
    """Gap between centre-line dashes."""
    shadows: int = 0
    """Number of world-fixed soft shadows painted onto the ground."""
    shadow_strength: float = 0.35
    """Darkening of shadows, 0-1."""
    background_kind: str = "room"
    """Above the horizon: 'room' (walls, doors, lights), 'barriers' or 'plain'."""
    wall_bgr: tuple[int, int, int] = (200, 205, 210)
    """Wall colour."""
    barrier_bgr: tuple[int, int, int] = (230, 230, 230)
    """Colour of the low barrier around the track area."""
    barrier_height_deg: float = 3.0
    """Apparent height of the barrier band above the horizon, degrees."""

    def __post_init__(self) -> None:
        for name in ("road_kind", "floor_kind"):
            if getattr(self, name) not in SURFACE_KINDS:
                raise SimConfigError(
                    f"TextureStyle.{name} {getattr(self, name)!r} is not one of {SURFACE_KINDS}"
                )
        if self.background_kind not in BACKGROUND_KINDS:
            raise SimConfigError(
                f"TextureStyle.background_kind {self.background_kind!r} is not one of "
                f"{BACKGROUND_KINDS}"
            )
        if not 0.0 < self.border_width_m < 0.5 or not 0.0 < self.centre_width_m < 0.5:
            raise SimConfigError(
                f"TextureStyle line widths {self.border_width_m} / {self.centre_width_m} m "
                "must be in (0, 0.5)"
            )


def periodic_noise(rng: np.random.Generator, size_px: int, cell_px: float) -> np.ndarray:
    """Smooth periodic noise tile (size_px, size_px), float32, roughly zero-mean, |v| <= ~1."""
    n = max(2, round(size_px / max(cell_px, 1.0)))
    grid = rng.uniform(-1.0, 1.0, (n, n)).astype(np.float32)
    if n >= size_px:
        return cv2.resize(grid, (size_px, size_px), interpolation=cv2.INTER_AREA)
    pad = np.pad(grid, 2, mode="wrap")
    scale = size_px / n
    big = cv2.resize(
        pad, (round((n + 4) * scale), round((n + 4) * scale)), interpolation=cv2.INTER_CUBIC
    )
    off = round(2 * scale)
    return big[off : off + size_px, off : off + size_px]


def _wrap_blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur that keeps a tile periodic (wrap-around borders)."""
    p = max(1, int(3 * sigma_px) + 1)
    big = np.pad(img, p, mode="wrap")
    return cv2.GaussianBlur(big, (0, 0), sigma_px)[p:-p, p:-p]


def surface_tile(
    rng: np.random.Generator,
    kind: str,
    bgr: tuple[int, int, int],
    contrast: float,
    size_px: int,
    res_m: float,
) -> np.ndarray:
    """A periodic (size_px, size_px, 3) uint8 tile of a surface pattern at `res_m` per pixel."""
    px = 1.0 / res_m  # pixels per metre
    v: np.ndarray
    if kind == "plain":
        v = np.zeros((size_px, size_px), np.float32)
    elif kind == "noise":
        v = 0.6 * periodic_noise(rng, size_px, 0.25 * px) + 0.4 * periodic_noise(
            rng, size_px, 0.03 * px
        )
    elif kind == "carpet":
        fine: np.ndarray = rng.uniform(-1, 1, (size_px, size_px)).astype(np.float32)
        fine = _wrap_blur(fine, 0.6)
        v = 0.7 * fine * 1.8 + 0.3 * periodic_noise(rng, size_px, 0.4 * px)
    elif kind == "concrete":
        v = (
            0.5 * periodic_noise(rng, size_px, 0.6 * px)
            + 0.3 * periodic_noise(rng, size_px, 0.1 * px)
            + 0.2 * rng.uniform(-1, 1, (size_px, size_px)).astype(np.float32)
        )
    elif kind == "tiles":
        tile_px = max(4, round(float(rng.uniform(0.3, 0.6)) * px))
        n = max(1, size_px // tile_px)
        tint = rng.uniform(-0.5, 0.5, (n, n)).astype(np.float32)
        v = cv2.resize(tint, (size_px, size_px), interpolation=cv2.INTER_NEAREST)
        grout = max(1, round(0.008 * px))
        idx = (np.arange(size_px) * n // size_px) * size_px // n
        edge = (np.arange(size_px) - idx) < grout
        v[edge, :] = 1.6
        v[:, edge] = 1.6
        v = v + 0.2 * periodic_noise(rng, size_px, 0.05 * px)
    else:
        raise SimConfigError(f"surface kind {kind!r} is not one of {SURFACE_KINDS}")
    base = np.asarray(bgr, np.float32)
    img = base * (1.0 + contrast * v[..., None])
    return np.clip(img, 0, 255).astype(np.uint8)


def tile_over(tile: np.ndarray, rows: int, cols: int, row0: int, col0: int) -> np.ndarray:
    """Repeat `tile` over a (rows, cols) image whose top-left pixel is tile pixel (row0, col0)
    in world-aligned tile coordinates."""
    th, tw = tile.shape[:2]
    r0, c0 = row0 % th, col0 % tw
    reps = ((r0 + rows) // th + 1, (c0 + cols) // tw + 1) + (1,) * (tile.ndim - 2)
    return np.ascontiguousarray(np.tile(tile, reps)[r0 : r0 + rows, c0 : c0 + cols])


@dataclass
class GroundImage:
    """A top-down image of the ground: pixel (row, col) centre is at world
    (x0_m + col * res_m, y0_m - row * res_m)."""

    image: np.ndarray
    """(H, W, 3) uint8 BGR."""
    x0_m: float
    """World x of column 0's centre."""
    y0_m: float
    """World y of row 0's centre (rows go toward -y)."""
    res_m: float
    """Metres per pixel."""

    def to_px(self, xy: np.ndarray) -> np.ndarray:
        """World (N, 2) -> pixel (col, row) float coordinates."""
        xy = np.asarray(xy, np.float64)
        return np.stack(
            [(xy[:, 0] - self.x0_m) / self.res_m, (self.y0_m - xy[:, 1]) / self.res_m], 1
        )


def _loop(poly: np.ndarray) -> bool:
    return len(poly) > 2 and bool(np.allclose(poly[0], poly[-1]))


def paint_ground(
    centre: np.ndarray,
    inner: np.ndarray,
    outer: np.ndarray,
    style: TextureStyle,
    rng: np.random.Generator,
    *,
    res_m: float,
    x0_m: float,
    y0_m: float,
    width_px: int,
    height_px: int,
    road_tile: np.ndarray,
    floor_tile: np.ndarray,
) -> GroundImage:
    """Paint road, floor, shadows and lines into a (height_px, width_px) ground image."""
    tile_r0 = round(-y0_m / res_m)
    tile_c0 = round(x0_m / res_m)
    img = tile_over(floor_tile, height_px, width_px, tile_r0, tile_c0)
    g = GroundImage(img, x0_m, y0_m, res_m)
    shift = 4
    scale = float(1 << shift)

    def pts(poly: np.ndarray) -> np.ndarray:
        return np.round(g.to_px(poly) * scale).astype(np.int32).reshape(-1, 1, 2)

    closed = _loop(centre)
    mask = np.zeros((height_px, width_px), np.uint8)
    if closed:
        cv2.fillPoly(mask, [pts(outer)], 255, cv2.LINE_AA, shift)
        cv2.fillPoly(mask, [pts(inner)], 0, cv2.LINE_AA, shift)
        # Which ring encloses the other is not guaranteed by name: if the "inner" polygon is
        # the larger one, the road is the area between them the other way round.
        if cv2.contourArea(g.to_px(inner).astype(np.float32)) > cv2.contourArea(
            g.to_px(outer).astype(np.float32)
        ):
            mask[:] = 0
            cv2.fillPoly(mask, [pts(inner)], 255, cv2.LINE_AA, shift)
            cv2.fillPoly(mask, [pts(outer)], 0, cv2.LINE_AA, shift)
    else:
        cv2.fillPoly(mask, [pts(np.vstack([outer, inner[::-1]]))], 255, cv2.LINE_AA, shift)
    road = tile_over(road_tile, height_px, width_px, tile_r0, tile_c0)
    # A hard edge is enough: the border lines are painted over it.
    cv2.copyTo(road, cv2.threshold(mask, 127, 255, cv2.THRESH_BINARY)[1], img)

    if style.shadows > 0:
        # Soft shadows are smooth: paint and blur them at a quarter of the resolution.
        q = 4
        shade: np.ndarray = np.zeros(((height_px + q - 1) // q, (width_px + q - 1) // q), np.uint8)
        xs = np.concatenate([inner[:, 0], outer[:, 0]])
        ys = np.concatenate([inner[:, 1], outer[:, 1]])
        for _ in range(style.shadows):
            cx, cy = rng.uniform(xs.min(), xs.max()), rng.uniform(ys.min(), ys.max())
            k = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, k))
            rad = rng.uniform(0.2, 1.2, k)
            poly = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
            cv2.fillPoly(shade, [pts(poly) // q], 255, cv2.LINE_AA, shift)
        shade = cv2.GaussianBlur(shade, (0, 0), 0.05 / res_m / q)
        shade = cv2.resize(shade, (width_px, height_px), interpolation=cv2.INTER_LINEAR)
        lut = np.round(255.0 - style.shadow_strength * np.arange(256)).clip(0, 255)
        factor = cv2.LUT(shade, lut.astype(np.uint8))
        img = cv2.multiply(img, cv2.merge([factor] * 3), scale=1.0 / 255.0)

    border_px = max(1, round(style.border_width_m / res_m))
    for poly in (inner, outer):
        cv2.polylines(img, [pts(poly)], closed, style.border_bgr, border_px, cv2.LINE_AA, shift)
    centre_px = max(1, round(style.centre_width_m / res_m))
    if style.dash_length_m == 0:
        cv2.polylines(img, [pts(centre)], closed, style.centre_bgr, centre_px, cv2.LINE_AA, shift)
    elif style.dash_length_m > 0:
        for dash in dashes(centre, style.dash_length_m, style.dash_gap_m):
            cv2.polylines(img, [pts(dash)], False, style.centre_bgr, centre_px, cv2.LINE_AA, shift)
    g.image = img
    return g


def dashes(polyline: np.ndarray, on_m: float, off_m: float) -> list[np.ndarray]:
    """Cut a polyline into dashes `on_m` long separated by `off_m` gaps (from its start)."""
    seg = np.diff(polyline, axis=0)
    seglen = np.hypot(seg[:, 0], seg[:, 1])
    s = np.concatenate([[0.0], np.cumsum(seglen)])
    total = s[-1]
    out = []
    start = 0.0
    period = on_m + max(off_m, 0.0)
    while start < total - 1e-9:
        end = min(start + on_m, total)
        inside = s[(s > start) & (s < end)]
        ts = np.concatenate([[start], inside, [end]])
        x = np.interp(ts, s, polyline[:, 0])
        y = np.interp(ts, s, polyline[:, 1])
        out.append(np.stack([x, y], 1))
        start += period
    return out


def paint_background(
    style: TextureStyle,
    rng: np.random.Generator,
    *,
    width_px: int,
    px_per_rad: float,
    elevation_min_rad: float,
    elevation_max_rad: float,
) -> np.ndarray:
    """A 360-degree panorama (rows: elevation from max down to min; columns: azimuth going
    clockwise, i.e. left to right as the camera sees it), uint8 BGR."""
    height = max(2, int(np.ceil((elevation_max_rad - elevation_min_rad) * px_per_rad)) + 2)

    def row_of(elev_rad: float) -> int:
        return int(round((elevation_max_rad - elev_rad) * px_per_rad))

    wall = np.asarray(style.wall_bgr, np.float32)
    pano = np.empty((height, width_px, 3), np.float32)
    pano[:] = wall
    if style.background_kind != "plain":
        # Mottled walls: periodic in azimuth only, so draw a strip and stretch it.
        strip = periodic_noise(rng, max(64, width_px // 8), 5.0)[: max(2, height // 8 + 1)]
        mottle = cv2.resize(strip, (width_px, height), interpolation=cv2.INTER_LINEAR)
        pano *= 1.0 + 0.05 * mottle[:, :, None]
    horizon = row_of(0.0)
    floor_far = np.asarray(style.floor_bgr, np.float32) * 0.8
    pano[max(0, horizon) :] = floor_far
    if style.background_kind == "room":
        # Doors, windows and posters on the walls; lights near the ceiling.
        for _ in range(int(rng.integers(4, 12))):
            w = int(rng.integers(width_px // 60, width_px // 12))
            c0 = int(rng.integers(0, width_px))
            bottom = row_of(np.radians(rng.uniform(0.0, 2.0)))
            top = row_of(np.radians(rng.uniform(6.0, 25.0)))
            colour = rng.uniform(30, 230, 3)
            cols = np.arange(c0, c0 + w) % width_px
            pano[max(0, top) : max(0, bottom), cols] = colour
        ceiling = row_of(np.radians(rng.uniform(18.0, 30.0)))
        if ceiling > 0:
            pano[:ceiling] = wall * 0.7
            for _ in range(int(rng.integers(3, 9))):
                c0 = int(rng.integers(0, width_px))
                cols = np.arange(c0, c0 + width_px // 40) % width_px
                pano[max(0, ceiling - 6) : ceiling - 2, cols] = 255.0
    if style.background_kind in ("room", "barriers"):
        top = row_of(np.radians(style.barrier_height_deg))
        barrier = np.asarray(style.barrier_bgr, np.float32)
        band = slice(max(0, top), max(0, horizon))
        pano[band] = barrier
        if style.background_kind == "barriers" or rng.random() < 0.5:
            seg = max(4, width_px // int(rng.integers(16, 48)))
            stripes = (np.arange(width_px) // seg) % 2 == 1
            pano[band, stripes] = barrier * 0.25
    return np.clip(pano, 0, 255).astype(np.uint8)
