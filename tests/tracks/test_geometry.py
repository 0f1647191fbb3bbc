"""TrackGeometry against closed-form answers (regular polygon, stadium oval) and against
DeepRacer's own shapely-based rules on the shared route files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.tracks.conftest import DEEPRACER_FILES, circle_track, stadium_track
from tracks.geometry import TrackGeometry
from tracks.track import Track, load_npy

MM = 1e-3
TIGHT = 1e-9


# -- regular polygon ("circle") ---------------------------------------------------------


def _edge_midpoint_ray(n, i, r):
    """Point at radius r on the ray through the midpoint of edge i of a regular n-gon."""
    phi = (i + 0.5) * 2 * math.pi / n
    return np.array([r * math.cos(phi), r * math.sin(phi)])


def test_circle_length_cumulative_and_curvature():
    n, R = 200, 2.0
    g = TrackGeometry(circle_track(radius_m=R, n=n))
    chord = 2 * R * math.sin(math.pi / n)
    assert abs(g.length_m - n * chord) < TIGHT
    assert np.allclose(g.cumulative_m, np.arange(n + 1) * chord, atol=TIGHT)
    assert np.allclose(g.curvature, 1 / R, atol=1e-9)
    assert np.allclose(TrackGeometry(circle_track(n=n).reversed()).curvature, -1 / R)


@pytest.mark.parametrize("i", [0, 1, 57, 123, 199])
@pytest.mark.parametrize("r", [1.75, 1.95, 2.0, 2.05, 2.28])
def test_circle_projection_closed_form(i, r):
    n, R, w = 200, 2.0, 0.6
    g = TrackGeometry(circle_track(radius_m=R, width_m=w, n=n))
    apothem = math.cos(math.pi / n)
    chord = 2 * R * math.sin(math.pi / n)
    p = _edge_midpoint_ray(n, i, r)
    pr = g.project(p[None])
    assert pr.arc_m[0] == pytest.approx(i * chord + chord / 2, abs=TIGHT)
    assert pr.progress[0] == pytest.approx((i + 0.5) / n, abs=TIGHT)
    assert pr.distance_from_center_m[0] == pytest.approx(abs(r - R * apothem), abs=TIGHT)
    assert np.allclose(pr.center_xy[0], _edge_midpoint_ray(n, i, R * apothem), atol=TIGHT)
    heading = (i + 0.5) * 2 * math.pi / n + math.pi / 2
    assert math.cos(pr.heading[0] - heading) == pytest.approx(1.0, abs=1e-12)
    assert pr.closest_waypoints[0].tolist() == [i, i + 1]  # i+1 may be the repeated row n
    assert pr.track_width_m[0] == pytest.approx(w * apothem, abs=TIGHT)
    if abs(r - R * apothem) > 1e-6:
        assert bool(pr.is_left_of_center[0]) == (r < R * apothem)  # ccw: inside is left
        rev = TrackGeometry(circle_track(radius_m=R, width_m=w, n=n).reversed())
        assert bool(rev.project(p[None]).is_left_of_center[0]) == (r > R * apothem)


def test_circle_contains_to_the_millimetre():
    n, R, w = 200, 2.0, 0.6
    g = TrackGeometry(circle_track(radius_m=R, width_m=w, n=n))
    apothem = math.cos(math.pi / n)
    lo, hi = (R - w / 2) * apothem, (R + w / 2) * apothem
    rs = np.array([0.0, 1.0, lo - MM, lo + MM, 2.0, hi - MM, hi + MM, 3.0, 50.0])
    for i in (0, 31, 199):
        pts = np.array([_edge_midpoint_ray(n, i, r) for r in rs])
        expected = (rs > lo) & (rs < hi)
        assert g.contains(pts).tolist() == expected.tolist()
        assert g.contains_exact(pts).tolist() == expected.tolist()


def test_contains_keeps_leading_shape(circle):
    g = TrackGeometry(circle)
    wheels = np.zeros((7, 4, 2))
    wheels[..., 0] = 2.0
    assert g.contains(wheels).shape == (7, 4)
    assert g.contains(wheels).all()


def test_raster_contains_matches_exact_test_everywhere(stadium):
    g = TrackGeometry(stadium)
    rng = np.random.default_rng(1)
    pts = rng.uniform([-3, -3], [7, 3], size=(20000, 2))
    assert np.array_equal(g.contains(pts), g.contains_exact(pts))


def test_point_and_heading_at_wrap_on_loops():
    n, R = 200, 2.0
    g = TrackGeometry(circle_track(radius_m=R, n=n))
    chord = 2 * R * math.sin(math.pi / n)
    s = np.array([0.0, 3 * chord, 3.5 * chord, g.length_m, g.length_m + 3 * chord, -chord])
    pts = g.point_at(s)
    assert np.allclose(pts[0], [R, 0.0], atol=TIGHT)
    ang = 3 * 2 * math.pi / n
    assert np.allclose(pts[1], [R * math.cos(ang), R * math.sin(ang)], atol=TIGHT)
    assert np.allclose(pts[2], _edge_midpoint_ray(n, 3, R * math.cos(math.pi / n)), atol=TIGHT)
    assert np.allclose(pts[3], pts[0], atol=TIGHT) and np.allclose(pts[4], pts[1], atol=TIGHT)
    ang = -2 * math.pi / n
    assert np.allclose(pts[5], [R * math.cos(ang), R * math.sin(ang)], atol=TIGHT)
    # project(point_at(s)) gives s back
    s2 = np.linspace(0, g.length_m, 333, endpoint=False)
    assert np.allclose(g.project(g.point_at(s2)).arc_m, s2, atol=1e-9)
    h = g.heading_at(np.array([3.5 * chord]))
    assert math.cos(h[0] - (3.5 * 2 * math.pi / n + math.pi / 2)) == pytest.approx(1.0)


# -- stadium oval -----------------------------------------------------------------------


def test_stadium_length_and_curvature_closed_form():
    L, R, ns, na = 4.0, 1.5, 8, 24
    t = stadium_track(straight_m=L, radius_m=R, n_straight=ns, n_arc=na)
    g = TrackGeometry(t)
    arc_len = na * 2 * R * math.sin(math.pi / (2 * na))
    assert g.length_m == pytest.approx(2 * L + 2 * arc_len, abs=TIGHT)
    k = g.curvature
    assert np.allclose(k[1:ns], 0.0, atol=1e-12)  # interior of the bottom straight
    assert np.allclose(k[ns + 1 : ns + na], 1 / R, atol=1e-9)  # interior of the right bend
    assert t.direction == "ccw"


@pytest.mark.parametrize("x", [0.3, 1.0, 2.26, 3.9])
@pytest.mark.parametrize("off", [-0.5, -0.39, -0.1, 0.0, 0.1, 0.39, 0.45])
def test_stadium_straights_closed_form(x, off):
    L, R, w, ns, na = 4.0, 1.5, 0.8, 8, 24
    g = TrackGeometry(stadium_track(L, R, w, ns, na))
    arc_len = na * 2 * R * math.sin(math.pi / (2 * na))
    pts = np.array([[x, -R + off], [x, R + off]])
    pr = g.project(pts)
    assert pr.arc_m.tolist() == pytest.approx([x, L + arc_len + (L - x)], abs=TIGHT)
    assert pr.distance_from_center_m.tolist() == pytest.approx([abs(off)] * 2, abs=TIGHT)
    assert pr.track_width_m.tolist() == pytest.approx([w, w], abs=TIGHT)
    assert math.cos(pr.heading[0]) == pytest.approx(1.0) and math.cos(pr.heading[1]) == -1.0
    step = L / ns
    i = int(x // step)
    j = ns + na + int((L - x) // step)
    assert pr.closest_waypoints.tolist() == [[i, i + 1], [j, j + 1]]
    if off != 0.0:
        assert pr.is_left_of_center.tolist() == [off > 0, off < 0]
    inside = abs(off) < w / 2
    assert g.contains(pts).tolist() == [inside, inside]


def test_closest_waypoints_bracket_not_nearest():
    # uneven spacing on an open line: a point at x=0.9 is nearest to waypoints 1 and 2
    # (0.1 m and 0.2 m away) but DeepRacer reports the bracketing pair [0, 1].
    x = np.array([0.0, 1.0, 1.1, 1.2, 3.0])
    c = np.c_[x, np.zeros_like(x)]
    t = Track("line", c, c + [0, 0.3], c - [0, 0.3], closed=False)
    pr = TrackGeometry(t).project(np.array([[0.9, 0.05], [3.0, 0.0], [-1.0, 0.0]]))
    assert pr.closest_waypoints.tolist() == [[0, 1], [4, 0], [0, 1]]
    assert pr.progress.tolist() == pytest.approx([0.3, 1.0, 0.0])
    assert pr.is_left_of_center.tolist()[0] is True


def test_repeated_rows_are_skipped():
    base = circle_track(n=40)
    a = base.to_array()
    a = np.insert(a, 10, a[10], axis=0)  # repeat row 10, as six official files do
    t = Track.from_array(a, "dup")
    g = TrackGeometry(t)
    ref = TrackGeometry(base)
    assert g.length_m == pytest.approx(ref.length_m, abs=TIGHT)
    assert np.all(np.isfinite(g.curvature)) and g.curvature[10] == g.curvature[11]
    s = np.linspace(0, g.length_m, 97, endpoint=False)
    assert np.allclose(g.point_at(s), ref.point_at(s), atol=TIGHT)
    assert np.allclose(g.heading_at(s), ref.heading_at(s))
    pts = ref.point_at(s) * 1.05
    assert np.allclose(g.project(pts).arc_m, ref.project(pts).arc_m, atol=TIGHT)


# -- DeepRacer's own rules (shapely, as in the simapp) -------------------------------------


def _simapp_reference(track: Track, pts: np.ndarray):
    """The simapp's computation (track_geom/track_data.py, agent_ctrl/utils.py) in shapely."""
    import bisect

    from shapely.geometry import LinearRing, LineString, Point, Polygon

    a = track.to_array()
    line = LinearRing if track.closed else LineString
    center, inner, outer = line(a[:, 0:2]), line(a[:, 2:4]), line(a[:, 4:6])
    ndists = [center.project(Point(p), normalized=True) for p in center.coords[:-1]] + [1.0]
    if track.closed:
        road = Polygon(outer, [inner])
        is_ccw = center.is_ccw
    else:
        road = Polygon(np.vstack((a[:, 4:6], np.flipud(a[:, 2:4]))))
        is_ccw = True
    out = []
    for x, y in pts:
        p = Point(x, y)
        nd = center.project(p, normalized=True)
        near_c = center.interpolate(nd, normalized=True)
        near_in = inner.interpolate(inner.project(near_c))
        near_out = outer.interpolate(outer.project(near_c))
        nxt = bisect.bisect_right(ndists, nd)
        prev = nxt - 1
        prev = len(ndists) - 1 if prev == -1 else prev
        nxt = 0 if nxt == len(ndists) else nxt
        out.append(
            dict(
                arc=center.project(p),
                dist=near_c.distance(p),
                width=near_in.distance(near_out),
                left=(near_in.distance(p) < near_out.distance(p)) ^ (not is_ccw),
                wp=[prev, nxt],
                inside=road.contains(p),
            )
        )
    return out


@pytest.mark.parametrize("path", DEEPRACER_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("reverse", [False, True])
def test_matches_deepracer_simapp_rules_on_shared_tracks(path, reverse):
    pytest.importorskip("shapely")
    track = load_npy(path)
    if reverse:
        track = track.reversed()
    g = TrackGeometry(track)
    rng = np.random.default_rng(7)
    s = rng.uniform(0, g.length_m, 150)
    base = g.point_at(s)
    normal = np.c_[-np.sin(g.heading_at(s)), np.cos(g.heading_at(s))]
    pts = base + normal * rng.uniform(-0.7, 0.7, (150, 1))
    pr = g.project(pts)
    ref = _simapp_reference(track, pts)
    arc = np.array([r["arc"] for r in ref])
    if track.closed:
        arc = np.where(arc >= g.length_m, arc - g.length_m, arc)
    assert np.allclose(pr.arc_m, arc, atol=1e-7)
    assert np.allclose(pr.distance_from_center_m, [r["dist"] for r in ref], atol=1e-9)
    assert np.allclose(pr.track_width_m, [r["width"] for r in ref], atol=1e-9)
    assert pr.closest_waypoints.tolist() == [r["wp"] for r in ref]
    assert pr.is_left_of_center.tolist() == [r["left"] for r in ref]
    assert g.contains(pts).tolist() == [r["inside"] for r in ref]
    assert abs(g.length_m - track.length_m) < 1e-9


@pytest.mark.parametrize("path", DEEPRACER_FILES, ids=lambda p: p.stem)
def test_grid_search_equals_full_search(path):
    g = TrackGeometry(load_npy(path))
    rng = np.random.default_rng(3)
    lo, hi = g.track.outer.min(axis=0) - 3, g.track.outer.max(axis=0) + 3
    pts = rng.uniform(lo, hi, (2000, 2))
    for poly in (g._center, g._inner, g._outer):
        k, t, _, d = poly.nearest(pts)
        k2, t2, d2 = poly.nearest_full(pts)
        assert np.array_equal(k, k2) and np.array_equal(t, t2) and np.array_equal(d, d2)


@pytest.mark.parametrize("path", DEEPRACER_FILES, ids=lambda p: p.stem)
def test_raster_contains_equals_exact_crossing_test_on_shared_tracks(path):
    g = TrackGeometry(load_npy(path))
    rng = np.random.default_rng(11)
    lo, hi = g.track.outer.min(axis=0) - 0.5, g.track.outer.max(axis=0) + 0.5
    pts = rng.uniform(lo, hi, (20000, 2))
    # and many points within a few millimetres of the borders
    s = rng.uniform(0, g.length_m, 4000)
    base = g.point_at(s)
    side = np.c_[-np.sin(g.heading_at(s)), np.cos(g.heading_at(s))]
    half = g.project(base).track_width_m / 2
    near = base + side * (half + rng.uniform(-0.005, 0.005, 4000))[:, None]
    pts = np.vstack([pts, near])
    assert np.array_equal(g.contains(pts), g.contains_exact(pts))


def test_project_inverts_point_at_on_generated_tracks():
    from tracks.generator import generate

    for seed in (1, 2, 3):
        g = TrackGeometry(generate(seed))
        s = np.random.default_rng(seed).uniform(0, g.length_m, 500)
        pr = g.project(g.point_at(s))
        assert np.allclose(pr.arc_m, s, atol=1e-9)
        assert np.allclose(pr.distance_from_center_m, 0.0, atol=1e-9)
        assert np.allclose(pr.progress, s / g.length_m, atol=1e-12)
        # waypoint brackets: cumulative[prev] <= arc < cumulative[next] (next may be N-1)
        prev, nxt = pr.closest_waypoints.T
        assert np.all(g.cumulative_m[prev] <= pr.arc_m + 1e-12)
        assert np.all(pr.arc_m < g.cumulative_m[nxt] + 1e-12)
