"""Racing line and lap-time limit against closed-form answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.tracks.conftest import DEEPRACER_FILES, circle_track, deepracer_file, stadium_track
from tracks import catalogue
from tracks.errors import TrackError
from tracks.geometry import TrackGeometry, _Polyline
from tracks.racing_line import RacingLineConfig, racing_line
from tracks.track import load_npy


def test_circle_pure_min_curvature_line_hugs_the_outside_closed_form():
    R, w = 2.0, 0.6
    cfg = RacingLineConfig(length_weights=(0.0,))
    keep = cfg.car_width_m / 2 + cfg.margin_m
    rl = racing_line(circle_track(radius_m=R, width_m=w, n=200), cfg)
    r = np.linalg.norm(rl.points, axis=1)
    # the outer border is a 200-gon: its edges sit at apothem*(R + w/2)
    r_out = (R + w / 2) * math.cos(math.pi / 200) - keep
    assert np.allclose(r, r_out, atol=0.01)
    v = math.sqrt(cfg.max_lateral_accel_mps2 * r_out)
    assert np.allclose(rl.speed_mps, v, rtol=0.01)
    assert rl.limit_lap_time_s == pytest.approx(2 * math.pi * r_out / v, rel=0.01)
    # from rest: accelerate at max_accel up to v, then constant speed
    t_acc = v / cfg.max_accel_mps2
    s_acc = v * v / (2 * cfg.max_accel_mps2)
    standing = t_acc + (2 * math.pi * r_out - s_acc) / v
    assert rl.standing_lap_time_s == pytest.approx(standing, rel=0.01)


def test_circle_fastest_line_hugs_the_inside_closed_form():
    # at the grip limit a lap of radius r takes 2 pi sqrt(r / a): the inside is faster
    R, w = 2.0, 0.6
    cfg = RacingLineConfig()
    keep = cfg.car_width_m / 2 + cfg.margin_m
    rl = racing_line(circle_track(radius_m=R, width_m=w, n=200), cfg)
    r_in = R - w / 2 + keep
    assert np.allclose(np.linalg.norm(rl.points, axis=1), r_in, atol=0.01)
    a = cfg.max_lateral_accel_mps2
    assert rl.limit_lap_time_s == pytest.approx(2 * math.pi * math.sqrt(r_in / a), rel=0.01)
    outside = racing_line(
        circle_track(radius_m=R, width_m=w, n=200), RacingLineConfig(length_weights=(0.0,))
    )
    assert rl.limit_lap_time_s < outside.limit_lap_time_s


def test_straight_open_track_is_accelerate_then_cruise():
    t = load_npy(deepracer_file("Straight_track.npy"))
    cfg = RacingLineConfig()
    rl = racing_line(t, cfg)
    assert not rl.closed
    assert rl.length_m == pytest.approx(t.length_m, abs=1e-3)
    a, vmax, L = cfg.max_accel_mps2, cfg.max_speed_mps, rl.length_m
    expected = vmax / a + (L - vmax**2 / (2 * a)) / vmax
    assert rl.limit_lap_time_s == pytest.approx(expected, rel=0.01)
    assert rl.standing_lap_time_s == rl.limit_lap_time_s


def test_line_stays_inside_the_allowed_band(stadium):
    cfg = RacingLineConfig()
    keep = cfg.car_width_m / 2 + cfg.margin_m
    rl = racing_line(stadium, cfg)
    g = TrackGeometry(stadium)
    pr = g.project(rl.points)
    assert pr.distance_from_center_m.max() <= 0.4 - keep + 0.01
    assert g.contains(rl.points).all()
    # it uses the width: somewhere it is near the allowed edge
    assert pr.distance_from_center_m.max() > 0.4 - keep - 0.02


def test_limits_order_and_lower_bounds():
    t = catalogue.builtin("reinvent_like")
    base = racing_line(t)
    assert base.length_m < t.length_m  # cutting corners is shorter than the centre line
    assert base.limit_lap_time_s >= base.length_m / base.config.max_speed_mps
    assert base.standing_lap_time_s > base.limit_lap_time_s
    grip = racing_line(t, RacingLineConfig(max_lateral_accel_mps2=8.0))
    slow = racing_line(t, RacingLineConfig(max_speed_mps=2.0))
    assert grip.limit_lap_time_s < base.limit_lap_time_s < slow.limit_lap_time_s
    assert slow.speed_mps.max() <= 2.0 + 1e-12
    assert slow.limit_lap_time_s >= slow.length_m / 2.0


def test_speed_respects_accel_and_brake_limits():
    cfg = RacingLineConfig()
    rl = racing_line(catalogue.builtin("hairpin"), cfg)
    v = rl.speed_mps
    ds = np.diff(np.concatenate([rl.arc_m, [rl.length_m]]))
    dv2 = np.roll(v, -1) ** 2 - v**2
    assert (dv2 <= 2 * cfg.max_accel_mps2 * ds + 1e-9).all()
    assert (-dv2 <= 2 * cfg.max_brake_mps2 * ds + 1e-9).all()
    with np.errstate(divide="ignore"):
        lat = v**2 * np.abs(rl.curvature)
    assert lat.max() <= cfg.max_lateral_accel_mps2 + 1e-9


def test_bad_config_is_refused():
    with pytest.raises(TrackError, match="max_speed_mps"):
        RacingLineConfig(max_speed_mps=0.0)


def test_stadium_fixture_direction():
    assert stadium_track().direction == "ccw"


@pytest.mark.slow
@pytest.mark.parametrize("path", DEEPRACER_FILES, ids=lambda p: p.stem)
def test_racing_line_keeps_clear_of_the_borders_on_shared_tracks(path):
    track = load_npy(path)
    cfg = RacingLineConfig()
    rl = racing_line(track, cfg)
    keep = cfg.car_width_m / 2 + cfg.margin_m
    clear = np.minimum(
        _Polyline(track.inner).nearest_full(rl.points)[2],
        _Polyline(track.outer).nearest_full(rl.points)[2],
    )
    assert clear.min() >= keep - 0.01  # within a centimetre of the band (linearisation)
    assert rl.limit_lap_time_s >= rl.length_m / cfg.max_speed_mps
    if track.closed:
        assert TrackGeometry(track).contains(rl.points).all()
