"""Closed smooth curves for authored and generated tracks: a periodic cubic spline through
control points, resampled at even arc-length spacing, with borders offset along normals.

The spline is C2 (continuous curvature), parameterised by chord length, and exact for the
control points given; everything is deterministic numpy (no randomness here).
"""

from __future__ import annotations

import numpy as np

from tracks.track import Track

SAMPLE_SPACING_M = 0.15
"""Default waypoint spacing of built tracks (DeepRacer's re:Invent 2018 file: ~0.15 m)."""


class PeriodicSpline:
    """Periodic C2 cubic spline x(s), y(s) through closed control points (chord-length s)."""

    def __init__(self, control: np.ndarray) -> None:
        p = np.asarray(control, dtype=np.float64)
        if np.array_equal(p[0], p[-1]):
            p = p[:-1]
        n = len(p)
        if n < 3:
            raise ValueError(f"a closed spline needs at least 3 control points, got {n}")
        h = np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1)
        if np.any(h <= 0):
            raise ValueError("consecutive control points must differ")
        self.points = p
        self.h = h
        self.knots = np.concatenate([[0.0], np.cumsum(h)])
        self.period = float(self.knots[-1])
        # Second derivatives M_i from the cyclic tridiagonal system of a periodic spline:
        # h[i-1] M[i-1] + 2 (h[i-1] + h[i]) M[i] + h[i] M[i+1] = 6 (slope[i] - slope[i-1])
        hp = np.roll(h, 1)
        a = np.zeros((n, n))
        idx = np.arange(n)
        a[idx, idx] = 2.0 * (hp + h)
        a[idx, (idx - 1) % n] += hp
        a[idx, (idx + 1) % n] += h
        slope = (np.roll(p, -1, axis=0) - p) / h[:, None]
        rhs = 6.0 * (slope - np.roll(slope, 1, axis=0))
        self.m = np.linalg.solve(a, rhs)

    def _locate(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = np.mod(np.asarray(s, dtype=np.float64), self.period)
        i = np.clip(np.searchsorted(self.knots, s, side="right") - 1, 0, len(self.h) - 1)
        return i, s - self.knots[i], self.h[i]

    def evaluate(self, s: np.ndarray, derivative: int = 0) -> np.ndarray:
        """Point (derivative=0), tangent (1) or second derivative (2) at parameters s."""
        i, u, h = self._locate(s)
        j = (i + 1) % len(self.h)
        p0, p1 = self.points[i], self.points[j]
        m0, m1 = self.m[i], self.m[j]
        u, h = u[:, None], h[:, None]
        v = h - u
        if derivative == 0:
            return (
                m0 * v**3 / (6 * h)
                + m1 * u**3 / (6 * h)
                + (p0 / h - m0 * h / 6) * v
                + (p1 / h - m1 * h / 6) * u
            )
        if derivative == 1:
            return (
                -m0 * v**2 / (2 * h)
                + m1 * u**2 / (2 * h)
                - (p0 / h - m0 * h / 6)
                + (p1 / h - m1 * h / 6)
            )
        if derivative == 2:
            return m0 * v / h + m1 * u / h
        raise ValueError("derivative must be 0, 1 or 2")

    def curvature(self, s: np.ndarray) -> np.ndarray:
        """Signed curvature (1/m, positive turning left) at parameters s."""
        d1 = self.evaluate(s, 1)
        d2 = self.evaluate(s, 2)
        cross = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
        return cross / np.linalg.norm(d1, axis=1) ** 3

    def arc_table(self, samples_per_segment: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Dense (parameter, arc length) table for even arc-length resampling."""
        s = np.linspace(0.0, self.period, samples_per_segment * len(self.h) + 1)
        pts = self.evaluate(s)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        return s, arc

    def resample(self, spacing_m: float = SAMPLE_SPACING_M) -> tuple[np.ndarray, float]:
        """Parameters of points at even arc-length spacing (without the closing point), and
        the total curve length in metres."""
        s, arc = self.arc_table()
        length = float(arc[-1])
        n = max(8, int(round(length / spacing_m)))
        target = np.arange(n) * (length / n)
        return np.interp(target, arc, s), length


def loop_from_control_points(
    control: np.ndarray,
    width_m: float,
    name: str,
    description: str = "",
    source: str = "",
    length_m: float | None = None,
    spacing_m: float = SAMPLE_SPACING_M,
    clockwise: bool = False,
) -> Track:
    """A closed track whose centre line is the periodic spline through `control`.

    The curve is scaled to be `length_m` long (when given), driven counter-clockwise
    unless `clockwise`; row 0 sits on control point 0. See `loop_from_spline`.
    """
    p = np.asarray(control, dtype=np.float64)
    spline = PeriodicSpline(p)
    scale = 1.0
    if length_m is not None:
        s, _ = spline.resample(spacing_m * spline.period / length_m)
        c = spline.evaluate(s)
        poly = np.linalg.norm(np.diff(np.vstack([c, c[:1]]), axis=0), axis=1).sum()
        scale = length_m / poly
    track = loop_from_spline(
        spline, width_m, name, description, source, scale, 0.0, spacing_m, clockwise
    )
    if length_m is not None:  # one correction step for the resampling's tiny bias
        scale *= length_m / track.length_m
        track = loop_from_spline(
            spline, width_m, name, description, source, scale, 0.0, spacing_m, clockwise
        )
    return track


def loop_from_spline(
    spline: PeriodicSpline,
    width_m: float,
    name: str,
    description: str = "",
    source: str = "",
    scale: float = 1.0,
    start_arc_fraction: float = 0.0,
    spacing_m: float = SAMPLE_SPACING_M,
    clockwise: bool = False,
) -> Track:
    """Resample `scale * spline` at even spacing from `start_arc_fraction` of its length and
    offset borders by width/2 along the normals (inner border on the inside of the loop)."""
    s_tab, arc_tab = spline.arc_table()
    length = float(arc_tab[-1])
    n = max(8, int(round(length * scale / spacing_m)))
    target = (start_arc_fraction + np.arange(n) / n) * length
    s = np.interp(np.mod(target, length), arc_tab, s_tab)
    center = spline.evaluate(s) * scale
    tangent = spline.evaluate(s, 1)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    left = np.c_[-tangent[:, 1], tangent[:, 0]]
    x, y = center[:, 0], center[:, 1]
    area = 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    if area < 0:  # the control polygon runs clockwise: make the loop counter-clockwise
        center, left = np.roll(center[::-1], 1, axis=0), -np.roll(left[::-1], 1, axis=0)
    inner = center + left * (width_m / 2)  # ccw loop: left of the driver is inside
    outer = center - left * (width_m / 2)
    if clockwise:  # same start line, other way round
        center, inner, outer = (np.roll(a[::-1], 1, axis=0) for a in (center, inner, outer))
    return Track.from_loop(name, center, inner, outer, description=description, source=source)
