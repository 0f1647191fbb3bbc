"""Fast per-step track queries for one car: projection onto the centre line, DeepRacer's
bracketing waypoints, left/right of centre, local track width, and the on-road test for
wheel centres.

`tracks.geometry.TrackGeometry` is the reference (vectorised numpy, best for many points);
a simulator step asks about one point and four wheels, where numpy's per-call overhead
dominates. `TrackLookup` answers the same questions with the same semantics in plain
Python over a precomputed grid of candidate segments (exact, not approximate: a cell lists
every segment that can be nearest to any point in it), falling back to `TrackGeometry` for
points off the grid or within a centimetre or two of a border. Tests check that both agree.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import cv2
import numpy as np

from tracks.geometry import TrackGeometry
from tracks.track import Track

_CELL_M = 0.1
_REACH_M = 1.0
_ROAD_CELL_M = 0.005


class PolylineIndex:
    """Nearest point on a polyline for single points, exact, lowest segment index on ties."""

    def __init__(self, points: np.ndarray) -> None:
        p = np.asarray(points, np.float64)
        a, d = p[:-1], p[1:] - p[:-1]
        seg_len = np.hypot(d[:, 0], d[:, 1])
        real = np.flatnonzero(seg_len > 0)
        self.seg_len = seg_len
        self.cumulative = np.concatenate([[0.0], np.cumsum(seg_len)])
        self._ax = a[:, 0].tolist()
        self._ay = a[:, 1].tolist()
        self._dx = d[:, 0].tolist()
        self._dy = d[:, 1].tolist()
        inv = np.zeros_like(seg_len)
        inv[real] = 1.0 / seg_len[real] ** 2
        self._inv = inv.tolist()
        self._cum = self.cumulative.tolist()
        self._len = seg_len.tolist()
        lo = p.min(0) - _REACH_M
        hi = p.max(0) + _REACH_M
        self.x0, self.y0 = float(lo[0]), float(lo[1])
        self.nx = int(math.ceil((hi[0] - lo[0]) / _CELL_M))
        self.ny = int(math.ceil((hi[1] - lo[1]) / _CELL_M))
        cx = self.x0 + (np.arange(self.nx) + 0.5) * _CELL_M
        cy = self.y0 + (np.arange(self.ny) + 0.5) * _CELL_M
        gx, gy = np.meshgrid(cx, cy, indexing="ij")
        c = np.stack([gx.ravel(), gy.ravel()], 1)
        ar, dr = a[real], d[real]
        t = ((c[:, None, 0] - ar[:, 0]) * dr[:, 0] + (c[:, None, 1] - ar[:, 1]) * dr[:, 1]) * inv[
            real
        ]
        t = np.clip(t, 0.0, 1.0)
        qx = ar[:, 0] + t * dr[:, 0]
        qy = ar[:, 1] + t * dr[:, 1]
        dist = np.hypot(c[:, None, 0] - qx, c[:, None, 1] - qy)
        best = dist.min(1, keepdims=True)
        cand = dist <= best + _CELL_M * math.sqrt(2.0) + 1e-9
        rows, cols = np.nonzero(cand)
        splits = np.searchsorted(rows, np.arange(1, len(c)))
        self._cells: list[list[int]] = [real[part].tolist() for part in np.split(cols, splits)]

    def nearest(self, px: float, py: float) -> tuple[int, float, float, float, float] | None:
        """(segment, t, qx, qy, distance) of the nearest point, or None when off the grid."""
        i = int((px - self.x0) / _CELL_M)
        j = int((py - self.y0) / _CELL_M)
        if not (0 <= i < self.nx and 0 <= j < self.ny) or px < self.x0 or py < self.y0:
            return None
        best_d2 = math.inf
        best = (0, 0.0, 0.0, 0.0)
        ax, ay, dx, dy, inv = self._ax, self._ay, self._dx, self._dy, self._inv
        for k in self._cells[i * self.ny + j]:
            t = ((px - ax[k]) * dx[k] + (py - ay[k]) * dy[k]) * inv[k]
            t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
            qx = ax[k] + t * dx[k]
            qy = ay[k] + t * dy[k]
            d2 = (px - qx) ** 2 + (py - qy) ** 2
            if d2 < best_d2:
                best_d2 = d2
                best = (k, t, qx, qy)
        return best[0], best[1], best[2], best[3], math.sqrt(best_d2)


@dataclass(slots=True)
class TrackPosition:
    """Where a point is relative to the track, with DeepRacer's reward semantics."""

    arc_m: float
    """Arc length of the projection from waypoint 0, metres, in [0, length)."""
    ndist: float
    """arc_m / track length (DeepRacer's normalised distance), [0, 1)."""
    distance_from_center_m: float
    """Distance from the point to its projection on the centre line."""
    prev_waypoint: int
    """DeepRacer's `closest_waypoints[0]` (bracketing on normalised positions)."""
    next_waypoint: int
    """DeepRacer's `closest_waypoints[1]`."""
    is_left_of_center: bool
    """Closer to the inner border point than the outer one, XOR the track is clockwise."""
    track_width_m: float
    """Distance between the inner and outer border points nearest the projection."""
    center_x_m: float
    """Projection on the centre line, x."""
    center_y_m: float
    """Projection on the centre line, y."""


class TrackLookup:
    """Per-step queries for one track (one point at a time), matching `TrackGeometry`."""

    def __init__(self, track: Track, geometry: TrackGeometry | None = None) -> None:
        self.track = track
        self.geometry = geometry or TrackGeometry(track)
        self.length_m = float(self.geometry.length_m)
        self._center = PolylineIndex(track.center)
        self._inner = PolylineIndex(track.inner)
        self._outer = PolylineIndex(track.outer)
        ndist = self.geometry.cumulative_m / self.length_m
        ndist[-1] = 1.0
        self._ndist = ndist.tolist()
        self._n = len(self._ndist)
        self._cw = track.direction == "cw"
        self._closed = track.closed
        self._build_road()

    def position(self, x_m: float, y_m: float) -> TrackPosition:
        """Project one point with DeepRacer's reward semantics."""
        hit = self._center.nearest(x_m, y_m)
        if hit is None:
            return self._position_slow(x_m, y_m)
        k, t, qx, qy, dist = hit
        arc = self._center._cum[k] + t * self._center._len[k]
        if self._closed and arc >= self.length_m:
            arc -= self.length_m
        nd = arc / self.length_m
        nxt = bisect.bisect_right(self._ndist, nd)
        prev = nxt - 1 if nxt > 0 else self._n - 1
        if nxt >= self._n:
            nxt = 0
        hin = self._inner.nearest(qx, qy)
        hout = self._outer.nearest(qx, qy)
        if hin is None or hout is None:
            return self._position_slow(x_m, y_m)
        d_in = math.hypot(x_m - hin[2], y_m - hin[3])
        d_out = math.hypot(x_m - hout[2], y_m - hout[3])
        return TrackPosition(
            arc_m=arc,
            ndist=nd,
            distance_from_center_m=dist,
            prev_waypoint=prev,
            next_waypoint=nxt,
            is_left_of_center=(d_in < d_out) ^ self._cw,
            track_width_m=math.hypot(hin[2] - hout[2], hin[3] - hout[3]),
            center_x_m=qx,
            center_y_m=qy,
        )

    def _position_slow(self, x_m: float, y_m: float) -> TrackPosition:
        p = self.geometry.project(np.array([[x_m, y_m]]))
        return TrackPosition(
            arc_m=float(p.arc_m[0]),
            ndist=float(p.progress[0]),
            distance_from_center_m=float(p.distance_from_center_m[0]),
            prev_waypoint=int(p.closest_waypoints[0, 0]),
            next_waypoint=int(p.closest_waypoints[0, 1]),
            is_left_of_center=bool(p.is_left_of_center[0]),
            track_width_m=float(p.track_width_m[0]),
            center_x_m=float(p.center_xy[0, 0]),
            center_y_m=float(p.center_xy[0, 1]),
        )

    # -- on-road test for wheel centres ---------------------------------------------------
    def _build_road(self) -> None:
        tr = self.track
        pts = np.vstack([tr.inner, tr.outer])
        self._rx0, self._ry0 = (pts.min(0) - 0.05).tolist()
        size = np.ceil((pts.max(0) + 0.05 - pts.min(0) + 0.1) / _ROAD_CELL_M).astype(int) + 1
        w, h = int(size[0]), int(size[1])
        shift = 8
        scale = (1 << shift) / _ROAD_CELL_M
        origin = np.array([self._rx0, self._ry0])

        def px(poly: np.ndarray) -> np.ndarray:
            return np.round((poly - origin) * scale).astype(np.int32).reshape(-1, 1, 2)

        label = np.zeros((h, w), np.uint8)
        if tr.closed:
            rings = [px(tr.outer), px(tr.inner)]
            cv2.fillPoly(label, [rings[0]], 1, cv2.LINE_8, shift)
            cv2.fillPoly(label, [rings[1]], 0, cv2.LINE_8, shift)
        else:
            rings = [px(np.vstack([tr.outer, tr.inner[::-1], tr.outer[:1]]))]
            cv2.fillPoly(label, rings, 1, cv2.LINE_8, shift)
        band: np.ndarray = np.zeros((h, w), np.uint8)
        cv2.polylines(band, rings, True, 1, 1, cv2.LINE_8, shift)
        band = cv2.dilate(band, np.ones((5, 5), np.uint8))
        label[band > 0] = 2
        self._road = label
        self._rw, self._rh = w, h

    def on_road(self, points: list[tuple[float, float]]) -> list[bool]:
        """Whether each point lies on the road polygon (between the borders)."""
        out = []
        slow = []
        for n, (x, y) in enumerate(points):
            i = int(math.floor((x - self._rx0) / _ROAD_CELL_M + 0.5))
            j = int(math.floor((y - self._ry0) / _ROAD_CELL_M + 0.5))
            if 0 <= i < self._rw and 0 <= j < self._rh:
                lab = self._road[j, i]
                if lab == 2:
                    slow.append(n)
                out.append(lab == 1)
            else:
                out.append(False)
        if slow:
            exact = self.geometry.contains_exact(np.array([points[n] for n in slow]))
            for n, v in zip(slow, exact, strict=True):
                out[n] = bool(v)
        return out
