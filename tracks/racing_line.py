"""The racing line and the lap-time limit: the yardstick for lap times.

`racing_line(track, config)` finds a minimum-curvature line inside the borders (less half
the car's width and a margin) and a forward-backward speed profile on it under a top
speed, a lateral-acceleration limit (grip) and longitudinal acceleration and braking
limits. The lap time along that profile is `limit_lap_time_s`: what a car with those
limits could do at best on this track, for a flying lap (periodic speed profile, as in a
continuous evaluation); `standing_lap_time_s` starts from rest at the start line.

Method (numpy only): resample the centre line every `spacing_m`, let each sample move by a
lateral offset along its normal within the allowed band, and minimise the sum of squared
second differences of the resulting points (discrete curvature squared) — a convex
box-constrained quadratic programme solved exactly by an active-set method with dense
solves. The programme is re-linearised around the new line a few times. The speed
profile is the classic two-pass one (accelerate forward, brake backward), periodic on loops.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from tracks.errors import TrackError
from tracks.geometry import TrackGeometry, _Polyline, menger_curvature
from tracks.track import Track

CURVATURE_SMOOTHING_SAMPLES = 5
"""Curvature is averaged over this many samples (0.5 m at the default spacing): it removes
the vertex noise of polyline tracks and stands for the car's finite steering rate."""


@dataclass(frozen=True)
class RacingLineConfig:
    """Limits of the car the racing line is computed for (defaults: a 1/18 DeepRacer)."""

    max_speed_mps: float = 4.0
    """Top speed (DeepRacer's simulator clips speed commands at 4 m/s)."""
    max_lateral_accel_mps2: float = 5.0
    """Grip: lateral acceleration limit, about 0.5 g for a 1/18 car on foam tiles or carpet."""
    max_accel_mps2: float = 4.0
    """Longitudinal acceleration limit (motor and traction)."""
    max_brake_mps2: float = 5.0
    """Longitudinal deceleration limit."""
    car_width_m: float = 0.2
    """Car width; the line keeps half of it plus `margin_m` from each border."""
    margin_m: float = 0.05
    """Extra distance kept from the borders, metres."""
    spacing_m: float = 0.1
    """Sample spacing along the line, metres."""
    iterations: int = 3
    """Re-linearisations of the programme per candidate line."""
    length_weights: tuple[float, ...] = (1.0, 2.0, 4.0)
    """Candidate lines minimise  integral(curvature^2) + weight * length  (weight in 1/m^2):
    0 is the pure minimum-curvature line, larger weights cut corners more. The candidate
    with the fastest lap under the limits below is the racing line."""

    def __post_init__(self) -> None:
        for name in (
            "max_speed_mps",
            "max_lateral_accel_mps2",
            "max_accel_mps2",
            "max_brake_mps2",
            "spacing_m",
        ):
            if not getattr(self, name) > 0:
                raise TrackError(
                    f"RacingLineConfig.{name} = {getattr(self, name)!r} must be positive"
                )
        if not self.length_weights or min(self.length_weights) < 0:
            raise TrackError(
                f"RacingLineConfig.length_weights = {self.length_weights!r} must be a non-empty "
                "tuple of weights >= 0"
            )
        if self.car_width_m < 0 or self.margin_m < 0 or self.iterations < 1:
            raise TrackError(
                "RacingLineConfig: car_width_m and margin_m must be >= 0 and iterations >= 1"
            )


@dataclass(frozen=True)
class RacingLine:
    """A racing line with its speed profile (arrays of K samples in driving order)."""

    points: np.ndarray
    """(K, 2) line points, metres; loops do not repeat the first point."""
    closed: bool
    """True for a loop."""
    arc_m: np.ndarray
    """(K,) arc length along the line at each point, metres."""
    length_m: float
    """Length of the line (for loops including the closing segment), metres."""
    curvature: np.ndarray
    """(K,) signed curvature of the line, 1/m (positive turning left)."""
    speed_mps: np.ndarray
    """(K,) limit speed profile on a flying lap, m/s."""
    limit_lap_time_s: float
    """Lap time of the flying-lap profile (open tracks: from rest to the end), seconds."""
    standing_lap_time_s: float
    """Lap time starting from rest at the start line, seconds."""
    length_weight: float
    """The `length_weights` entry whose line gave the fastest lap."""
    config: RacingLineConfig
    """The limits used."""


def _normals(p: np.ndarray, closed: bool) -> np.ndarray:
    if closed:
        t = np.roll(p, -1, axis=0) - np.roll(p, 1, axis=0)
    else:
        t = np.gradient(p, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    return np.c_[-t[:, 1], t[:, 0]]  # left normal


def _second_difference(k: int, closed: bool) -> np.ndarray:
    if closed:
        d = -2.0 * np.eye(k) + np.roll(np.eye(k), 1, axis=1) + np.roll(np.eye(k), -1, axis=1)
    else:
        d = np.zeros((k - 2, k))
        i = np.arange(k - 2)
        d[i, i], d[i, i + 1], d[i, i + 2] = 1.0, -2.0, 1.0
    return d


def _box_qp(h: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """argmin 1/2 x'Hx + g'x subject to lo <= x <= hi (H positive definite).

    Primal-dual interior point with Mehrotra-style centring; variables whose bounds
    coincide are fixed and removed first. About 15-30 dense Cholesky solves.
    """
    fixed = hi - lo < 1e-9
    x = np.where(fixed, (lo + hi) / 2, 0.0)
    free = ~fixed
    if not free.any():
        return x
    if fixed.any():
        g = g[free] + h[np.ix_(free, fixed)] @ x[fixed]
        h = h[np.ix_(free, free)]
        lo, hi = lo[free], hi[free]
    n = len(g)
    xf = np.clip(np.zeros(n), lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo))
    z1 = np.ones(n)
    z2 = np.ones(n)
    scale = max(1.0, float(np.abs(g).max()))
    for _ in range(100):
        s1, s2 = xf - lo, hi - xf
        r_d = h @ xf + g - z1 + z2
        mu = float((s1 @ z1 + s2 @ z2) / (2 * n))
        if mu < 1e-12 and np.abs(r_d).max() < 1e-9 * scale:
            break
        sigma = 0.1 if mu > 1e-6 else 0.01
        m = h + np.diag(z1 / s1 + z2 / s2)
        rhs = -r_d + (sigma * mu / s1 - z1) - (sigma * mu / s2 - z2)
        try:
            c = np.linalg.cholesky(m)
            dx = np.linalg.solve(c.T, np.linalg.solve(c, rhs))
        except np.linalg.LinAlgError:
            dx = np.linalg.lstsq(m, rhs, rcond=None)[0]
        dz1 = (sigma * mu - s1 * z1 - z1 * dx) / s1
        dz2 = (sigma * mu - s2 * z2 + z2 * dx) / s2
        step = 1.0
        for v, dv in ((s1, dx), (s2, -dx), (z1, dz1), (z2, dz2)):
            neg = dv < 0
            if neg.any():
                step = min(step, 0.99 * float(np.min(-v[neg] / dv[neg])))
        xf = xf + step * dx
        z1 = z1 + step * dz1
        z2 = z2 + step * dz2
    x[free] = np.clip(xf, lo, hi)
    return x


def _closed_rows(p: np.ndarray, closed: bool) -> np.ndarray:
    return np.vstack([p, p[:1]]) if closed else p


def _mean_spacing(p: np.ndarray, closed: bool) -> float:
    return float(np.linalg.norm(np.diff(_closed_rows(p, closed), axis=0), axis=1).mean())


def _smooth(
    values: np.ndarray, closed: bool, width: int = CURVATURE_SMOOTHING_SAMPLES
) -> np.ndarray:
    """Centred moving average (wrapping on loops); removes polyline vertex noise."""
    if width <= 1:
        return values
    kernel = np.ones(width) / width
    half = width // 2
    if closed:
        core = values[:-1]
        padded = np.concatenate([core[-half:], core, core[:half]])
        out = np.convolve(padded, kernel, "valid")
        return np.concatenate([out, out[:1]])
    padded = np.concatenate([np.full(half, values[0]), values, np.full(half, values[-1])])
    return np.convolve(padded, kernel, "valid")


def _resample(p: np.ndarray, closed: bool, spacing: float) -> np.ndarray:
    pts = np.vstack([p, p[:1]]) if closed else p
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(8, int(round(arc[-1] / spacing)))
    s = np.arange(n) * (arc[-1] / n) if closed else np.linspace(0.0, arc[-1], n + 1)
    return np.c_[np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])]


def _side_room(borders, p: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point to the border on its left and on its right, metres."""
    rooms = []
    for border in borders:
        _, _, q, dist = border.nearest(p)
        side = np.sign(np.einsum("ij,ij->i", q - p, normals))
        rooms.append((dist, side))
    (d_in, s_in), (d_out, s_out) = rooms
    left = np.where(s_in >= 0, d_in, d_out)
    right = np.where(s_in >= 0, d_out, d_in)
    return left, right


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Dense solves of a few hundred unknowns are fastest on one thread; a multi-threaded
    BLAS on a busy machine made them 20-40x slower. Uses threadpoolctl when installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def racing_line(track: Track, config: RacingLineConfig | None = None) -> RacingLine:
    """Minimum-curvature line and its limit speed profile; see the module docstring."""
    with _one_blas_thread():
        return _racing_line(track, config)


def _racing_line(track: Track, config: RacingLineConfig | None) -> RacingLine:
    cfg = config or RacingLineConfig()
    geom = TrackGeometry(track)
    borders = (_Polyline(track.inner), _Polyline(track.outer))
    best: RacingLine | None = None
    for weight in cfg.length_weights:
        line = _optimise(track, geom, borders, cfg, weight)
        candidate = _with_speed(line, track.closed, cfg, weight)
        if best is None or candidate.limit_lap_time_s < best.limit_lap_time_s:
            best = candidate
    assert best is not None
    return best


def _optimise(track, geom, borders, cfg: RacingLineConfig, weight: float) -> np.ndarray:
    """The line minimising  integral(kappa^2 ds) + weight * length  inside the band."""
    closed = track.closed
    keep = cfg.car_width_m / 2 + cfg.margin_m
    line = _resample(track.center[:-1] if closed else track.center, closed, cfg.spacing_m)
    for _ in range(cfg.iterations):
        normals = _normals(line, closed)
        left, right = _side_room(borders, line, normals)
        lo = -(right - keep)
        hi = left - keep
        narrow = lo > hi  # the car does not fit: stay where the room is centred
        mid = (lo + hi) / 2
        lo = np.where(narrow, mid, lo)
        hi = np.where(narrow, mid, hi)
        if not closed:  # keep the ends where they are
            lo[[0, -1]] = hi[[0, -1]] = 0.0
        # Offsetting by alpha (left-positive) along the normals, linearised in the Frenet
        # frame: kappa ~= kappa_ref + kappa_ref^2 alpha + alpha'' and
        # length ~= L_ref - sum(kappa_ref alpha h) + sum(alpha'^2 h) / 2. Both quadratic.
        k = len(line)
        h = _mean_spacing(line, closed)
        kappa_ref = _smooth(menger_curvature(_closed_rows(line, closed), closed), closed)
        kappa_ref = kappa_ref[:-1] if closed else kappa_ref
        m = _second_difference(k, closed) / h**2
        if not closed:
            m = np.vstack([np.zeros((1, k)), m, np.zeros((1, k))])
        m = m + np.diag(kappa_ref**2)
        d1 = np.roll(np.eye(k), 1, axis=1) - np.eye(k)
        if not closed:
            d1 = d1[:-1]
        hess = 2 * h * (m.T @ m) + weight * (d1.T @ d1) / h
        hess += 1e-9 * np.trace(hess) / k * np.eye(k)
        grad = 2 * h * (m.T @ kappa_ref) - weight * h * kappa_ref
        alpha = _box_qp(hess, grad, np.minimum(lo, hi), np.maximum(lo, hi))
        moved = line + alpha[:, None] * normals
        on = geom.contains(moved)  # never leave the road, whatever the linearisation says
        moved[~on] = line[~on]
        line = _resample(moved, closed, cfg.spacing_m)
    return line


def _with_speed(line: np.ndarray, closed: bool, cfg: RacingLineConfig, weight: float) -> RacingLine:
    pts = _closed_rows(line, closed)
    kappa = _smooth(menger_curvature(pts, closed), closed)
    kappa = kappa[:-1] if closed else kappa
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)  # K segments (loop) or K-1 (open)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    length = float(arc[-1])
    k_abs = np.abs(kappa)
    with np.errstate(divide="ignore"):
        v_lat = np.sqrt(cfg.max_lateral_accel_mps2 / k_abs)
    v_cap = np.minimum(v_lat, cfg.max_speed_mps)
    n = len(v_cap)
    acc2, brk2 = 2 * cfg.max_accel_mps2, 2 * cfg.max_brake_mps2
    if closed:
        start = int(np.argmin(v_cap))
        order = (start + np.arange(n + 1)) % n
        v = v_cap.copy()
        for a, b in zip(order[:-1], order[1:], strict=True):  # forward: accelerate
            v[b] = min(v[b], np.sqrt(v[a] ** 2 + acc2 * seg[a]))
        for a, b in zip(order[::-1][:-1], order[::-1][1:], strict=True):  # backward: brake
            v[b] = min(v[b], np.sqrt(v[a] ** 2 + brk2 * seg[b]))
        flying = _lap_time(v, seg, closed)
        standing_v = v.copy()
        standing_v[0] = 0.0
        for i in range(n - 1):
            standing_v[i + 1] = min(standing_v[i + 1], np.sqrt(standing_v[i] ** 2 + acc2 * seg[i]))
        standing = _lap_time(standing_v, seg, closed)
    else:
        v = v_cap.copy()
        v[0] = 0.0
        for i in range(n - 1):
            v[i + 1] = min(v[i + 1], np.sqrt(v[i] ** 2 + acc2 * seg[i]))
        for i in range(n - 2, -1, -1):
            v[i] = min(v[i], np.sqrt(v[i + 1] ** 2 + brk2 * seg[i]))
        flying = standing = _lap_time(v, seg, closed)
    return RacingLine(
        points=line,
        closed=closed,
        arc_m=arc[:n],
        length_m=length,
        curvature=kappa,
        speed_mps=v,
        limit_lap_time_s=flying,
        standing_lap_time_s=standing,
        length_weight=weight,
        config=cfg,
    )


def _lap_time(v: np.ndarray, seg: np.ndarray, closed: bool) -> float:
    nxt = np.roll(v, -1) if closed else v[1:]
    cur = v if closed else v[:-1]
    mean = (cur + nxt) / 2
    if np.any(mean <= 0):
        raise TrackError("speed profile reaches zero on a segment; check the limits")
    return float(np.sum(seg / mean))


def compute(track: Track, config: RacingLineConfig | None = None) -> RacingLine:
    """Alias of `racing_line` (the name `racer new`'s picture code calls)."""
    return racing_line(track, config)
