"""`info["params"]` against values computed here, independently, from the raw route arrays
(brute-force projection over every segment, OpenCV point-in-polygon for the wheels)."""

from __future__ import annotations

import bisect
import math

import cv2
import gymnasium as gym
import numpy as np
import pytest

import sim2real  # noqa: F401  (registers the env)
from sim2real.params import DOCUMENTED_KEYS, EXTRA_KEYS, corrected_progress

REF_AHEAD = 0.14
WHEELS = [(-0.0817, 0.081), (0.0823, 0.081), (-0.0817, -0.081), (0.0823, -0.081)]


def _nearest(poly: np.ndarray, p: np.ndarray):
    best = None
    for k in range(len(poly) - 1):
        a, b = poly[k], poly[k + 1]
        d = b - a
        n2 = float(d @ d)
        if n2 == 0.0:
            continue
        t = min(max(float((p - a) @ d) / n2, 0.0), 1.0)
        q = a + t * d
        dist = float(np.hypot(*(p - q)))
        if best is None or dist < best[0]:
            best = (dist, k, t, q)
    return best


def expected(arr: np.ndarray, origin_xy, heading_deg: float, start_ndist: float):
    center, inner, outer = arr[:, 0:2], arr[:, 2:4], arr[:, 4:6]
    h = math.radians(heading_deg)
    p = np.array(origin_xy) + REF_AHEAD * np.array([math.cos(h), math.sin(h)])
    seg = np.hypot(*np.diff(center, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    length = cum[-1]
    dist, k, t, q = _nearest(center, p)
    arc = cum[k] + t * seg[k]
    if arc >= length:
        arc -= length
    ndist = arc / length
    nd_wp = cum / length
    nd_wp[-1] = 1.0
    nxt = bisect.bisect_right(list(nd_wp), ndist)
    prev = nxt - 1
    if nxt >= len(center):
        nxt = 0
    q_in = _nearest(inner, q)[3]
    q_out = _nearest(outer, q)[3]
    left = float(np.hypot(*(p - q_in))) < float(np.hypot(*(p - q_out)))
    wheels = []
    for lon, lat in WHEELS:
        wx = origin_xy[0] + lon * math.cos(h) - lat * math.sin(h)
        wy = origin_xy[1] + lon * math.sin(h) + lat * math.cos(h)
        o = cv2.pointPolygonTest(outer.astype(np.float32), (wx, wy), False)
        i = cv2.pointPolygonTest(inner.astype(np.float32), (wx, wy), False)
        wheels.append(o > 0 and i < 0)
    return {
        "x": p[0],
        "y": p[1],
        "heading": heading_deg,
        "distance_from_center": dist,
        "progress": corrected_progress(ndist - start_ndist, 0.0),
        "closest_waypoints": [prev, nxt],
        "is_left_of_center": left,
        "track_width": float(np.hypot(*(q_in - q_out))),
        "track_length": length,
        "projection_distance": arc,
        "all_wheels_on_track": all(wheels),
        "any_wheel": any(wheels),
    }


def _pose_at(arr, index: int, lateral_m: float, backwards: bool = False):
    c = arr[:, 0:2]
    a, b = c[index], c[index + 1]
    h = math.atan2(b[1] - a[1], b[0] - a[0])
    mid = (a + b) / 2
    x = mid[0] - math.sin(h) * lateral_m
    y = mid[1] + math.cos(h) * lateral_m
    hd = math.degrees(h) + (180.0 if backwards else 0.0)
    if hd > 180:
        hd -= 360
    return x, y, hd


@pytest.fixture(scope="module")
def env(reinvent_path):
    e = gym.make("openracer/Race-v0", track=str(reinvent_path)).unwrapped
    yield e
    e.close()


@pytest.fixture(scope="module")
def arr(reinvent_path):
    return np.load(reinvent_path)


def _check(params, exp):
    for key in (
        "x",
        "y",
        "heading",
        "distance_from_center",
        "track_width",
        "track_length",
        "projection_distance",
        "progress",
    ):
        assert params[key] == pytest.approx(exp[key], abs=1e-6), key
    assert params["closest_waypoints"] == exp["closest_waypoints"]
    assert params["is_left_of_center"] == exp["is_left_of_center"]
    assert params["all_wheels_on_track"] == exp["all_wheels_on_track"]


@pytest.mark.parametrize(
    "name,index,lateral,backwards",
    [
        ("centre", 10, 0.0, False),
        ("near_left_border", 30, 0.25, False),
        ("near_right_border", 50, -0.25, False),
        ("two_wheels_off", 70, 0.42, False),
        ("backwards", 20, 0.05, True),
        ("corner", 88, 0.1, False),
    ],
)
def test_reset_params_match_independent_geometry(env, arr, name, index, lateral, backwards):
    x, y, hd = _pose_at(arr, index, lateral, backwards)
    _, info = env.reset(options={"pose": {"x": x, "y": y, "heading_deg": hd}})
    p = info["params"]
    # start_ndist is the model origin's projection
    ox = expected(
        arr,
        (x - REF_AHEAD * math.cos(math.radians(hd)), y - REF_AHEAD * math.sin(math.radians(hd))),
        hd,
        0.0,
    )
    start = ox["projection_distance"] / ox["track_length"]
    exp = expected(arr, (x, y), hd, start)
    _check(p, exp)
    assert p["steps"] == 1 and info["episode_status"] == "prepare"
    assert p["is_offtrack"] is False and p["is_crashed"] is False
    assert p["speed"] == 0.0 and p["steering_angle"] == 0.0
    assert p["waypoints"] == [tuple(r) for r in arr[:, 0:2].tolist()]
    assert set(DOCUMENTED_KEYS) | set(EXTRA_KEYS) <= set(p)
    if name == "near_left_border":
        assert p["is_left_of_center"] and p["all_wheels_on_track"]
    if name == "near_right_border":
        assert not p["is_left_of_center"] and p["all_wheels_on_track"]
    if name == "two_wheels_off":
        assert not p["all_wheels_on_track"]


def test_step_params_follow_the_car(env, arr):
    x, y, hd = _pose_at(arr, 5, 0.0)
    env.reset(options={"pose": {"x": x, "y": y, "heading_deg": hd}})
    start = None
    for n in range(10):
        _, reward, term, trunc, info = env.step(5)  # console default: 0 deg, 0.8 m/s
        p = info["params"]
        w = env.world
        ox, oy, th = w.pose
        if start is None:
            start = env.progress.start_ndist
        exp = expected(arr, (ox, oy), math.degrees(th), start)
        _check(p, exp)
        assert p["steps"] == n + 2
        assert (p["steering_angle"], p["speed"]) == (0.0, 0.8)
        assert info["episode_status"] == "in_progress" and not term and not trunc
        assert p["sim_time"] == pytest.approx((n + 1) / 15.0)


def test_just_off_track_ends_the_episode(env, arr):
    x, y, hd = _pose_at(arr, 40, 0.55)
    _, info = env.reset(options={"pose": {"x": x, "y": y, "heading_deg": hd}})
    assert not info["params"]["all_wheels_on_track"]
    _, _, term, trunc, info = env.step(5)
    assert term and not trunc
    assert info["episode_status"] == "off_track"
    assert info["params"]["is_offtrack"] is True


def test_driving_backwards_is_reversed_after_15_steps(env, arr):
    x, y, hd = _pose_at(arr, 8, 0.0, backwards=True)
    env.reset(options={"pose": {"x": x, "y": y, "heading_deg": hd}})
    statuses = []
    for _ in range(20):
        _, _, term, _, info = env.step(5)
        statuses.append(info["episode_status"])
        if term:
            break
    assert statuses[-1] == "reversed"
    # the first run step may not fall yet (speed lag); 15 consecutive falls end it
    assert 15 <= len(statuses) <= 17


def test_progress_across_the_finish_line(env, arr):
    _, info = env.reset(options={"start_progress": 0.985})
    seen = [info["params"]]
    for _ in range(12):
        _, _, term, _, info = env.step(5)
        seen.append(info["params"])
    progress = [p["progress"] for p in seen]
    assert all(b > a for a, b in zip(progress[2:], progress[3:], strict=False))
    assert progress[-1] < 10.0
    cw = [tuple(p["closest_waypoints"]) for p in seen]
    n = len(arr)
    assert (n - 2, n - 1) in cw and (0, 1) in cw  # last bracket uses the duplicate row
    w = env.world
    ox, oy, th = w.pose
    exp = expected(arr, (ox, oy), math.degrees(th), env.progress.start_ndist)
    assert seen[-1]["progress"] == pytest.approx(exp["progress"], abs=1e-6)


def test_corrected_progress_rules():
    assert corrected_progress(0.0079, 0.0) == pytest.approx(0.79)
    assert corrected_progress(-0.98, 1.0) == pytest.approx(2.0)  # start 0.99, line crossed
    assert corrected_progress(0.001, 99.9) == 100.0  # lap completed over the line
    assert corrected_progress(-0.001, 0.5) == pytest.approx(-0.1)  # slightly behind start
    assert corrected_progress(1.2, 99.0) == 100.0


def test_episode_rules_in_deepracer_order():
    from sim2real.params import EpisodeProgress

    ep = EpisodeProgress()
    ep.reset(0.5)
    ep.update(0.501, None)
    assert ep.steps == 1 and ep.status([True] * 4) == "in_progress"
    for _ in range(14):
        ep.update(0.501, 0.0)  # standing still
    assert ep.status([True] * 4) == "in_progress"
    ep.update(0.501, 0.0003)
    assert ep.status([True] * 4) == "immobilized"
    assert ep.status([False] * 4) == "off_track"  # off track is checked before
    ep.reset(0.0)
    ep.update(0.999, None)  # just behind the start line: slightly negative progress
    assert ep.progress == pytest.approx(-0.1)
    for nd in (0.01, 0.3, 0.6, 0.9, 0.999):
        ep.update(nd, 0.1)
    assert ep.progress == pytest.approx(99.9)
    ep.update(0.0005, 0.1)  # over the line
    assert ep.progress == 100.0
    assert ep.status([False] * 4) == "lap_complete"  # lap complete wins over off track
