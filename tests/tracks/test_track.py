"""Track type and DeepRacer .npy files: loading, direction, waypoints, byte-exact saving."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tracks.conftest import DEEPRACER_FILES, circle_track, deepracer_file
from tracks.errors import TrackError, TrackFileError
from tracks.track import load_npy, save_npy


@pytest.mark.parametrize("path", DEEPRACER_FILES, ids=lambda p: p.stem)
def test_every_shared_deepracer_file_loads_and_round_trips_byte_exact(path, tmp_path):
    track = load_npy(path)
    assert track.name == path.stem
    raw = np.load(path)
    assert track.closed == bool(np.array_equal(raw[0], raw[-1]))
    assert np.array_equal(track.to_array(), raw)
    out = save_npy(track, tmp_path / path.name)
    assert out.read_bytes() == path.read_bytes()
    again = load_npy(out)
    assert np.array_equal(again.to_array(), raw)


def test_deepracer_files_present_or_skipped():
    if not DEEPRACER_FILES:
        pytest.skip("../shared/data/deepracer-tracks not present")
    assert len(DEEPRACER_FILES) == 10


def test_straight_track_is_open():
    track = load_npy(deepracer_file("Straight_track.npy"))
    assert not track.closed
    assert track.direction == "open"
    assert track.n_points == 22
    assert track.waypoints[0] != track.waypoints[-1]


def test_reinvent_base_is_a_ccw_loop_with_deepracer_waypoints():
    path = deepracer_file("reinvent_base.npy")
    raw = np.load(path)
    track = load_npy(path, name="re2018")
    assert track.name == "re2018"
    assert track.closed and track.direction == "ccw"
    wp = track.waypoints
    assert len(wp) == 119 and wp[0] == wp[-1]
    assert all(isinstance(x, float) and isinstance(y, float) for x, y in wp)
    assert wp[5] == (raw[5, 0], raw[5, 1])
    expected = sum(
        float(np.hypot(raw[i + 1, 0] - raw[i, 0], raw[i + 1, 1] - raw[i, 1])) for i in range(118)
    )
    assert abs(track.length_m - expected) < 1e-9
    assert 17.70 < track.length_m < 17.72


def test_reversed_keeps_start_and_inner_and_flips_direction(circle):
    r = circle.reversed()
    assert r.direction == "cw"
    assert np.array_equal(r.center[0], circle.center[0])
    assert np.array_equal(r.center[1], circle.center[-2])
    assert np.array_equal(r.inner[::-1], circle.inner)
    assert r.reversed().direction == "ccw"
    assert np.array_equal(r.reversed().to_array(), circle.to_array())


def test_arrays_are_read_only_float64(circle):
    assert circle.center.dtype == np.float64
    with pytest.raises(ValueError):
        circle.center[0, 0] = 1.0
    with pytest.raises(AttributeError):
        circle.name = "x"


def test_from_loop_appends_the_closing_row():
    t = circle_track(n=50)
    assert len(t.center) == 51 and t.n_points == 50
    assert np.array_equal(t.center[0], t.center[-1])


def test_save_is_atomic_and_checks_suffix(tmp_path, circle):
    with pytest.raises(TrackFileError, match="must end in .npy"):
        save_npy(circle, tmp_path / "x.txt")
    target = tmp_path / "c.npy"
    target.write_bytes(b"old")
    save_npy(circle, target)
    assert np.array_equal(np.load(target), circle.to_array())
    assert [p.name for p in tmp_path.iterdir()] == ["c.npy"]


def test_load_errors_are_track_errors_with_exit_code_2(tmp_path):
    with pytest.raises(TrackFileError, match="no such track file") as exc:
        load_npy(tmp_path / "missing.npy")
    assert exc.value.exit_code == 2
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"this is not numpy")
    with pytest.raises(TrackError, match="junk.npy"):
        load_npy(junk)
