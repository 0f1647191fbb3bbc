"""Track geometry for the simulator and the reward parameters: projection onto the centre
line, arc length, DeepRacer's `closest_waypoints` / `is_left_of_center` / `track_width`
rules, points and headings along the lap, curvature, and the on-road test for wheels.

Everything is vectorised over points (no Python loop per point); per-track arrays are
precomputed once in `TrackGeometry(track)`. Semantics follow the DeepRacer simulator
(deepracer-simapp `track_geom/track_data.py`, see shared/reference/deepracer-compat.md 1.1):
the centre line is the polyline through the waypoints, projection is onto that polyline
(nearest point; on a tie the lower segment index wins), and zero-length segments from
repeated waypoints are skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from tracks.errors import TrackValidationError
from tracks.track import Track
from tracks.validation import MAX_SPAN_M

GRID_CELL_M = 0.2
"""Cell size of the grid that lists candidate nearest segments for projection queries."""

GRID_REACH_M = 1.0
"""Grid cells farther than this from a polyline answer queries with the full search."""

FULL_SEARCH_MAX_POINTS = 4
"""Queries with this few points skip the grid: fewer numpy calls beat fewer segments."""

CONTAINS_CELL_M = 0.02
"""Cell size of the road raster that answers `contains` for points far from a border."""

ROAD_RASTER_MAX_CELLS = 40_000_000
"""Largest road raster (one byte a cell): a track spanning validation.MAX_SPAN_M needs
25 million cells; a bigger one would be a Track that skipped validation."""


@dataclass(frozen=True)
class Projection:
    """Projections of M points onto a track's centre line (all fields are arrays of M)."""

    arc_m: np.ndarray
    """Arc length from waypoint 0 to the projection, metres, in [0, length_m)."""
    progress: np.ndarray
    """arc_m / length_m: fraction of the lap in [0, 1) (open tracks: [0, 1])."""
    distance_from_center_m: np.ndarray
    """Euclidean distance from the point to its projection, metres."""
    closest_waypoints: np.ndarray
    """(M, 2) int: DeepRacer's [prev, next] waypoint indices bracketing the projection."""
    is_left_of_center: np.ndarray
    """bool: closer to the inner border point than the outer one, XOR the track is clockwise."""
    track_width_m: np.ndarray
    """Distance between the inner and outer border points nearest the projection, metres."""
    center_xy: np.ndarray
    """(M, 2) projected point on the centre line, metres."""
    heading: np.ndarray
    """Direction of travel of the centre line at the projection, radians from +x, (-pi, pi]."""
    segment: np.ndarray
    """int: index i of the centre-line segment (waypoint i to i+1) holding the projection."""


class _Polyline:
    """Segments of one polyline with their nearest-point query.

    A uniform grid holds, for each cell near the polyline, every segment that can be the
    nearest one for some point of that cell (those within the nearest distance from the
    cell centre plus a cell diagonal), so a query looks at a handful of segments instead of
    all of them. The answer is exactly the full search's, ties included (lowest index).
    Points off the grid fall back to the full search.
    """

    def __init__(self, points: np.ndarray) -> None:
        self.a = np.ascontiguousarray(points[:-1])
        self.d = np.ascontiguousarray(points[1:] - points[:-1])
        self.ax, self.ay = self.a[:, 0].copy(), self.a[:, 1].copy()
        self.dx, self.dy = self.d[:, 0].copy(), self.d[:, 1].copy()
        self.seg_len = np.hypot(self.dx, self.dy)
        self.degenerate = self.seg_len == 0.0
        self.inv_len2 = np.zeros_like(self.seg_len)
        ok = ~self.degenerate
        self.inv_len2[ok] = 1.0 / self.seg_len[ok] ** 2
        self.cumulative = np.concatenate([[0.0], np.cumsum(self.seg_len)])
        self.length = float(self.cumulative[-1])
        self._points = points
        self._table: np.ndarray | None = None  # built on the first query that needs it

    def _all(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Squared distance and segment parameter of each point to every segment, (M, S)."""
        rx = px[:, None] - self.ax
        ry = py[:, None] - self.ay
        t = np.clip((rx * self.dx + ry * self.dy) * self.inv_len2, 0.0, 1.0)
        ex = rx - t * self.dx
        ey = ry - t * self.dy
        d2 = ex * ex + ey * ey
        d2[:, self.degenerate] = np.inf
        return d2, t

    def _build_grid(self, points: np.ndarray) -> None:
        cell = GRID_CELL_M
        slack = 2.0 * cell * math.sqrt(0.5) + 1e-9
        self._lo = points.min(axis=0) - GRID_REACH_M
        span = points.max(axis=0) + GRID_REACH_M - self._lo
        self._nx, self._ny = (int(v) for v in np.ceil(span / cell))
        jj, ii = np.mgrid[0 : self._ny, 0 : self._nx]
        cx = (self._lo[0] + (ii.ravel() + 0.5) * cell).astype(np.float64)
        cy = (self._lo[1] + (jj.ravel() + 0.5) * cell).astype(np.float64)
        chunks, widths = [], []
        step = max(1, 400_000 // max(1, len(self.ax)))
        for s in range(0, len(cx), step):
            d2, _ = self._all(cx[s : s + step], cy[s : s + step])
            dist = np.sqrt(d2)
            dmin = dist.min(axis=1)
            cand = dist <= (dmin + slack)[:, None]
            count = cand.sum(axis=1)
            near = dmin <= GRID_REACH_M
            k = int(count[near].max()) if near.any() else 1
            order = np.argsort(~cand, axis=1, kind="stable")[:, :k]
            pos = np.arange(k)[None, :]
            order = np.where(pos < count[:, None], order, order[:, :1])
            order[~near] = -1
            chunks.append(order)
            widths.append(k)
        width = max(widths)
        table = np.full((len(cx), width), -1, dtype=np.intp)
        row = 0
        for order in chunks:
            table[row : row + len(order), : order.shape[1]] = order
            if order.shape[1] < width:  # pad with the first candidate (same answer)
                table[row : row + len(order), order.shape[1] :] = order[:, :1]
            row += len(order)
        # The outermost ring of cells answers "use the full search", so a query can clip
        # its cell index into the grid instead of testing the bounds.
        grid = table.reshape(self._ny, self._nx, width)
        grid[[0, -1], :, :] = -1
        grid[:, [0, -1], :] = -1
        self._table = table
        self._cell_max = np.array([self._nx - 1, self._ny - 1], dtype=np.float64)
        self._cell_stride = np.array([1, self._nx], dtype=np.intp)
        self._inv_cell = 1.0 / GRID_CELL_M
        # one gather per query: segment start, direction and 1/length^2 side by side
        self._segs = np.stack([self.ax, self.ay, self.dx, self.dy, self.inv_len2], axis=-1)

    def nearest(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For (M, 2) points: segment index, parameter t in [0, 1], nearest point, distance."""
        if len(p) <= FULL_SEARCH_MAX_POINTS:
            k, tk, dist = self.nearest_full(p)
            return k, tk, self.a[k] + tk[:, None] * self.d[k], dist
        if self._table is None:
            self._build_grid(self._points)
        table = self._table
        assert table is not None
        f = np.minimum(np.maximum(np.floor((p - self._lo) * self._inv_cell), 0.0), self._cell_max)
        cand = table[f.astype(np.intp) @ self._cell_stride]
        fast = cand[:, 0] >= 0
        if fast.all():
            seg = self._segs[cand]
            rx = p[:, 0, None] - seg[..., 0]
            ry = p[:, 1, None] - seg[..., 1]
            dx, dy = seg[..., 2], seg[..., 3]
            t = np.minimum(np.maximum((rx * dx + ry * dy) * seg[..., 4], 0.0), 1.0)
            ex = rx - t * dx
            ey = ry - t * dy
            d2 = ex * ex + ey * ey
            rows = np.arange(len(p))
            j = np.argmin(d2, axis=1)
            k = cand[rows, j]
            tk = t[rows, j]
            dist = np.sqrt(d2[rows, j])
        elif not fast.any():
            k, tk, dist = self.nearest_full(p)
        else:
            k, tk, dist = self.nearest_full(p)
            k[fast], tk[fast], _, dist[fast] = self.nearest(p[fast])
        q = self.a[k] + tk[:, None] * self.d[k]
        return k, tk, q, dist

    def nearest_full(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reference search over all segments: segment index, parameter t, distance."""
        d2, t = self._all(p[:, 0], p[:, 1])
        k = np.argmin(d2, axis=1)
        rows = np.arange(len(p))
        return k, t[rows, k], np.sqrt(d2[rows, k])


def _as_points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1 and p.shape[0] == 2:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"expected points of shape (M, 2) or (2,), got {p.shape}")
    return p


class TrackGeometry:
    """Precomputed geometry of one track. Construct once per track, query every step."""

    def __init__(self, track: Track) -> None:
        self.track = track
        self.closed = track.closed
        self._center = _Polyline(track.center)
        self._inner = _Polyline(track.inner)
        self._outer = _Polyline(track.outer)
        self.length_m: float = self._center.length
        """Centre-line polyline length, metres (DeepRacer's `track_length`)."""
        self.cumulative_m: np.ndarray = self._center.cumulative
        """(N,) arc length at each waypoint; cumulative_m[-1] == length_m."""
        # DeepRacer's normalised waypoint positions: project each waypoint, then 1.0 last.
        self._ndist = self.cumulative_m / self.length_m
        self._ndist[-1] = 1.0
        self._is_cw = track.direction == "cw"
        d = self._center.d
        self._seg_heading = np.arctan2(d[:, 1], d[:, 0])
        # Segment used for headings/points at an arc length: the previous real (non
        # zero-length) segment, or the next one when none precedes it.
        real = np.flatnonzero(~self._center.degenerate)
        seg = np.arange(len(d))
        before = np.searchsorted(real, seg, side="right") - 1
        self._usable = np.where(before >= 0, real[np.maximum(before, 0)], real[0])
        self.curvature: np.ndarray = menger_curvature(track.center, track.closed)
        """(N,) signed curvature 1/m at each waypoint, positive turning left (ccw)."""
        self._build_road()

    # -- projection -------------------------------------------------------------------

    def project(self, points: np.ndarray) -> Projection:
        """Project (M, 2) points onto the centre line with DeepRacer's reward semantics."""
        p = _as_points(points)
        k, t, q, dist = self._center.nearest(p)
        arc = self.cumulative_m[k] + t * self._center.seg_len[k]
        if self.closed:
            arc = np.where(arc >= self.length_m, arc - self.length_m, arc)
        progress = arc / self.length_m
        n = len(self.cumulative_m)
        nxt = np.searchsorted(self._ndist, progress, side="right")
        prev = nxt - 1
        prev = np.where(prev < 0, n - 1, prev)
        nxt = np.where(nxt >= n, 0, nxt)
        _, _, q_in, _ = self._inner.nearest(q)
        _, _, q_out, _ = self._outer.nearest(q)
        d_in = np.hypot(*(p - q_in).T)
        d_out = np.hypot(*(p - q_out).T)
        return Projection(
            arc_m=arc,
            progress=progress,
            distance_from_center_m=dist,
            closest_waypoints=np.stack([prev, nxt], axis=1),
            is_left_of_center=(d_in < d_out) ^ self._is_cw,
            track_width_m=np.hypot(*(q_in - q_out).T),
            center_xy=q,
            heading=self._seg_heading[k],
            segment=k,
        )

    def _segment_at(self, arc_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        arc = np.asarray(arc_m, dtype=np.float64)
        if self.closed:
            arc = np.mod(arc, self.length_m)
        else:
            arc = np.clip(arc, 0.0, self.length_m)
        s = len(self._center.seg_len)
        k = np.clip(np.searchsorted(self.cumulative_m, arc, side="right") - 1, 0, s - 1)
        # searchsorted lands after a run of equal cumulative values, i.e. past zero-length
        # segments, except at the very end of the line; _usable maps those to a real one.
        return self._usable[k], arc

    def point_at(self, arc_m: np.ndarray) -> np.ndarray:
        """Points on the centre line at arc lengths (wrapped on loops, clipped on open lines)."""
        k, arc = self._segment_at(np.atleast_1d(arc_m))
        t = (arc - self.cumulative_m[k]) / self._center.seg_len[k]
        return self._center.a[k] + t[:, None] * self._center.d[k]

    def heading_at(self, arc_m: np.ndarray) -> np.ndarray:
        """Direction of travel (radians) of the centre-line segment at arc lengths."""
        k, _ = self._segment_at(np.atleast_1d(arc_m))
        return self._seg_heading[k]

    def arc_of_waypoint(self, index: int) -> float:
        """Arc length of waypoint `index` (0 is the start line), metres."""
        return float(self.cumulative_m[index])

    # -- on-road test ----------------------------------------------------------------

    def _build_road(self) -> None:
        tr = self.track
        if self.closed:
            rings = [tr.outer, tr.inner]
        else:
            rings = [np.vstack([tr.outer, tr.inner[::-1], tr.outer[:1]])]
        edges = []
        for ring in rings:
            r = np.asarray(ring)
            e = np.hstack([r[:-1], r[1:]])
            edges.append(e[np.any(e[:, :2] != e[:, 2:], axis=1)])
        e = np.vstack(edges)
        self._ex0, self._ey0, self._ex1, self._ey1 = (np.ascontiguousarray(c) for c in e.T)
        # Road raster: 1 = surely on the road, 0 = surely off, 2 = near a border (exact test).
        cell = CONTAINS_CELL_M
        allp = np.vstack([tr.inner, tr.outer])
        self._origin = allp.min(axis=0) - 4 * cell
        size_f = np.ceil((allp.max(axis=0) + 4 * cell - self._origin) / cell) + 1
        if float(size_f[0]) * float(size_f[1]) > ROAD_RASTER_MAX_CELLS:
            raise TrackValidationError(
                f"{tr.where}: spans {size_f[0] * cell:.3g} x {size_f[1] * cell:.3g} m, too large for "
                f"the road raster (at most {MAX_SPAN_M:g} m a side); coordinates are metres: "
                "rescale a file in mm or cm"
            )
        w, h = int(size_f[0]), int(size_f[1])
        shift = 8
        scale = (1 << shift) / cell

        def px(poly: np.ndarray) -> np.ndarray:
            # pixel centres sit at integer coordinates; cell (i, j) covers origin + (i±0.5)*cell
            return np.round((poly - self._origin) * scale).astype(np.int32).reshape(-1, 1, 2)

        label = np.zeros((h, w), np.uint8)
        if self.closed:
            cv2.fillPoly(label, [px(tr.outer)], 1, lineType=cv2.LINE_8, shift=shift)
            cv2.fillPoly(label, [px(tr.inner)], 0, lineType=cv2.LINE_8, shift=shift)
            border_lines = [px(tr.outer), px(tr.inner)]
        else:
            cv2.fillPoly(label, [px(rings[0])], 1, lineType=cv2.LINE_8, shift=shift)
            border_lines = [px(rings[0])]
        band = np.zeros((h, w), np.uint8)
        cv2.polylines(band, border_lines, True, 1, thickness=3, lineType=cv2.LINE_8, shift=shift)
        near_border = cv2.dilate(band, np.ones((5, 5), np.uint8)) > 0
        label[near_border] = 2
        self._label = label

    def contains_exact(self, points: np.ndarray) -> np.ndarray:
        """Even-odd crossing test of (M, 2) points against both border rings (road polygon)."""
        p = _as_points(points)
        if len(p) == 0:
            return np.zeros(0, dtype=bool)
        px_, py_ = p[:, 0, None], p[:, 1, None]
        y0, y1 = self._ey0, self._ey1
        straddle = (y0 > py_) != (y1 > py_)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = self._ex0 + (py_ - y0) * (self._ex1 - self._ex0) / (y1 - y0)
        hits = straddle & (px_ < xc)
        return (np.count_nonzero(hits, axis=1) % 2) == 1

    def contains(self, points: np.ndarray) -> np.ndarray:
        """True where a point lies on the road (between the inner and the outer border).

        A raster lookup answers points away from the borders; points within a few
        centimetres of a border get the exact crossing test. Accepts (..., 2) arrays and
        returns a bool array of the leading shape (e.g. (cars, 4) wheels).
        """
        p = np.asarray(points, dtype=np.float64)
        lead = p.shape[:-1]
        p = p.reshape(-1, 2)
        ij = np.floor((p - self._origin) / CONTAINS_CELL_M + 0.5).astype(np.int64)
        h, w = self._label.shape
        inside_grid = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
        lab = np.zeros(len(p), np.uint8)
        lab[inside_grid] = self._label[ij[inside_grid, 1], ij[inside_grid, 0]]
        out = lab == 1
        near = lab == 2
        if near.any():
            out[near] = self.contains_exact(p[near])
        return out.reshape(lead)


def menger_curvature(center: np.ndarray, closed: bool) -> np.ndarray:
    """Signed curvature at each waypoint from the circle through it and its neighbours."""
    step = np.linalg.norm(np.diff(center, axis=0), axis=1)
    keep = np.concatenate([[True], step > 0])  # first row of each run of repeated rows
    if closed:
        keep[-1] = False  # the repeated closing row
    idx = np.flatnonzero(keep)
    pts = center[idx]
    m = len(pts)
    if closed:
        a, b, c = np.roll(pts, 1, axis=0), pts, np.roll(pts, -1, axis=0)
    else:
        a, b, c = pts[:-2], pts[1:-1], pts[2:]
    ab, bc, ac = b - a, c - b, c - a
    cross = ab[:, 0] * bc[:, 1] - ab[:, 1] * bc[:, 0]
    denom = np.linalg.norm(ab, axis=1) * np.linalg.norm(bc, axis=1) * np.linalg.norm(ac, axis=1)
    k = np.divide(2.0 * cross, denom, out=np.zeros_like(cross), where=denom > 0)
    per_distinct = k if closed else np.concatenate([[0.0], k, [0.0]])
    assert len(per_distinct) == m
    # map every row to its distinct point (repeated rows share the curvature)
    owner = np.cumsum(keep) - 1
    if closed:
        owner[-1] = 0
    return per_distinct[np.clip(owner, 0, m - 1)]
