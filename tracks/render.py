"""Top-down pictures of tracks with OpenCV (no display needed): road, borders, dashed centre
line, start line, driving-direction arrow, and optionally the racing line coloured by speed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from tracks.errors import TrackFileError
from tracks.files import atomic_write
from tracks.track import Track

if TYPE_CHECKING:
    from tracks.racing_line import RacingLine

GRASS_BGR = (58, 94, 52)
ROAD_BGR = (72, 72, 72)
BORDER_BGR = (245, 245, 245)
CENTER_BGR = (40, 200, 240)
START_BGR = (255, 255, 255)
ARROW_BGR = (255, 200, 0)
TEXT_BGR = (255, 255, 255)
_SHIFT = 4
_ONE = 1 << _SHIFT


class _View:
    """World (metres, y up) to image (pixels, y down) transform."""

    def __init__(self, track: Track, max_size_px: int, margin_px: int, header_px: int) -> None:
        pts = np.vstack([track.center, track.inner, track.outer])
        self.lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.maximum(hi - self.lo, 1e-6)
        self.scale = float((max_size_px - 2 * margin_px) / span.max())
        self.margin, self.header = margin_px, header_px
        self.width = int(np.ceil(span[0] * self.scale)) + 2 * margin_px
        self.height = int(np.ceil(span[1] * self.scale)) + 2 * margin_px + header_px
        self.hi_y = hi[1]

    def px(self, xy: np.ndarray) -> np.ndarray:
        """Fixed-point pixel coordinates (for drawing with shift=_SHIFT)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        u = (xy[:, 0] - self.lo[0]) * self.scale + self.margin
        v = (self.hi_y - xy[:, 1]) * self.scale + self.margin + self.header
        return np.round(np.c_[u, v] * _ONE).astype(np.int32)


def render(
    track: Track,
    racing_line: RacingLine | None = None,
    max_size_px: int = 1200,
    info: str | None = None,
) -> np.ndarray:
    """A BGR uint8 picture of the track, the longer side about `max_size_px` pixels."""
    view = _View(track, max_size_px, margin_px=40, header_px=56 if racing_line is None else 84)
    img = np.empty((view.height, view.width, 3), np.uint8)
    img[:] = GRASS_BGR
    line_px = max(2, int(round(view.scale * 0.025)))  # tape about 2.5 cm wide
    if track.closed:
        cv2.fillPoly(img, [view.px(track.outer)], ROAD_BGR, cv2.LINE_AA, _SHIFT)
        cv2.fillPoly(img, [view.px(track.inner)], GRASS_BGR, cv2.LINE_AA, _SHIFT)
    else:
        ring = np.vstack([track.outer, track.inner[::-1]])
        cv2.fillPoly(img, [view.px(ring)], ROAD_BGR, cv2.LINE_AA, _SHIFT)
    for border in (track.inner, track.outer):
        cv2.polylines(
            img, [view.px(border)], track.closed, BORDER_BGR, line_px, cv2.LINE_AA, _SHIFT
        )
    _dashed(img, view, track.center, CENTER_BGR, max(1, line_px // 2), dash_m=0.15)
    _start_line(img, view, track)
    if racing_line is not None:
        _speed_line(img, view, racing_line, line_px)
    _direction_arrow(img, view, track, line_px)
    title = info if info is not None else f"{track.name}  {track.length_m:.2f} m"
    cv2.putText(img, title, (12, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.8, TEXT_BGR, 2, cv2.LINE_AA)
    return img


def _start_line(img: np.ndarray, view: _View, track: Track) -> None:
    """Chequered band two squares deep across the road at waypoint 0."""
    a, b = track.inner[0], track.outer[0]
    across = b - a
    width = float(np.linalg.norm(across))
    n = max(4, int(round(width / 0.06)))
    side = width / n
    ahead = track.center[1] - track.center[0]
    ahead = ahead / max(float(np.linalg.norm(ahead)), 1e-12) * side
    rows = (-1, 0) if track.closed else (0, 1)  # an open line has no road behind its start
    for row in rows:
        for i in range(n):
            p0 = a + across * i / n + ahead * row
            quad = np.vstack([p0, p0 + across / n, p0 + across / n + ahead, p0 + ahead])
            colour = START_BGR if (i + row) % 2 == 0 else (25, 25, 25)
            cv2.fillConvexPoly(img, view.px(quad), colour, cv2.LINE_AA, _SHIFT)


def _dashed(img, view, poly, colour, thickness, dash_m):
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = int(arc[-1] / dash_m)
    s = np.linspace(0, arc[-1], 2 * n + 1)
    pts = np.c_[np.interp(s, arc, poly[:, 0]), np.interp(s, arc, poly[:, 1])]
    px = view.px(pts)
    for i in range(0, len(px) - 1, 2):
        cv2.line(img, tuple(px[i]), tuple(px[i + 1]), colour, thickness, cv2.LINE_AA, _SHIFT)


def _direction_arrow(img, view, track, line_px):
    """Arrow along the centre line just after the start line, pointing the driving way."""
    c = track.center
    seg = np.linalg.norm(np.diff(c, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.array([0.25, 0.25 + min(0.8, 0.3 * arc[-1])])
    pts = np.c_[np.interp(s, arc, c[:, 0]), np.interp(s, arc, c[:, 1])]
    p0, p1 = view.px(pts)
    cv2.arrowedLine(img, tuple(p0), tuple(p1), ARROW_BGR, line_px * 2, cv2.LINE_AA, _SHIFT, 0.35)


def _speed_line(img, view, line: RacingLine, line_px: int) -> None:
    v = line.speed_mps
    lo, hi = float(v.min()), float(v.max())
    level = np.uint8(np.clip((v - lo) / max(hi - lo, 1e-9) * 255, 0, 255))
    colours = cv2.applyColorMap(level.reshape(-1, 1), cv2.COLORMAP_TURBO).reshape(-1, 3)
    pts = line.points
    if line.closed:
        pts = np.vstack([pts, pts[:1]])
    px = view.px(pts)
    for i in range(len(px) - 1):
        colour = tuple(int(c) for c in colours[i])
        cv2.line(img, tuple(px[i]), tuple(px[i + 1]), colour, line_px * 2, cv2.LINE_AA, _SHIFT)
    # colour bar under the title: "lo m/s [ramp] hi m/s"
    font = cv2.FONT_HERSHEY_SIMPLEX
    w = img.shape[1]
    x0, y0, bar_h = 90, 54, 12
    bar_w = max(60, min(260, w - x0 - 100))
    ramp = np.linspace(0, 255, bar_w).astype(np.uint8)[None, :]
    ramp_bgr = cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO)
    img[y0 : y0 + bar_h, x0 : x0 + bar_w] = np.repeat(ramp_bgr, bar_h, axis=0)
    cv2.putText(img, f"{lo:.1f} m/s", (12, y0 + 11), font, 0.45, TEXT_BGR, 1, cv2.LINE_AA)
    right = (x0 + bar_w + 8, y0 + 11)
    cv2.putText(img, f"{hi:.1f} m/s", right, font, 0.45, TEXT_BGR, 1, cv2.LINE_AA)


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an image as PNG atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise TrackFileError(f"{path}: picture files must end in .png; use {path.stem}.png")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise TrackFileError(f"{path}: directory {directory} does not exist; create it first")
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise TrackFileError(f"{path}: OpenCV could not encode the picture as PNG")
    return atomic_write(path, buf.tobytes())
