"""Built-in catalogue tracks, the user catalogue, import and resolve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.tracks.conftest import circle_track, deepracer_file
from tracks import catalogue
from tracks.errors import TrackError, TrackFileError, TrackValidationError, UnknownTrackError
from tracks.geometry import TrackGeometry
from tracks.spline import PeriodicSpline
from tracks.track import Track, load_npy, save_npy

CAR_MIN_TURN_RADIUS_M = 0.164 / math.tan(math.radians(30))


@pytest.fixture(autouse=True)
def user_tracks(tmp_path, monkeypatch):
    d = tmp_path / "user-tracks"
    monkeypatch.setenv("OPENRACER_TRACKS_DIR", str(d))
    return d


def test_catalogue_has_the_required_tracks():
    required = {"beginner_oval", "reinvent_like", "hairpin", "chicane", "sweeper", "technical"}
    assert required <= set(catalogue.BUILTIN)
    assert {e.direction for e in catalogue.BUILTIN.values()} == {"ccw", "cw"}


@pytest.mark.parametrize("name", list(catalogue.BUILTIN))
def test_every_builtin_track_is_valid_smooth_and_as_described(name):
    entry = catalogue.BUILTIN[name]
    track = catalogue.builtin(name)
    assert track.name == name and track.closed and track.source == "catalogue"
    assert track.description == entry.description and "\n" not in entry.description
    assert track.direction == entry.direction
    assert np.allclose(track.widths_m, entry.width_m, atol=1e-9)
    g = TrackGeometry(track)
    min_radius = 1 / np.abs(g.curvature).max()
    assert min_radius >= CAR_MIN_TURN_RADIUS_M + 0.1
    assert min_radius >= entry.width_m / 2 + 0.1
    # smooth: heading changes little from one waypoint to the next
    h = np.unwrap(np.arctan2(*np.diff(track.center, axis=0)[:, ::-1].T))
    assert np.abs(np.diff(h)).max() < math.radians(20)
    # deterministic: building again gives identical arrays
    assert np.array_equal(entry.build().to_array(), track.to_array())


def test_reinvent_like_matches_reinvent_2018_size():
    t = catalogue.builtin("reinvent_like")
    assert t.length_m == pytest.approx(17.7, abs=0.01)
    assert np.allclose(t.widths_m, 0.76)


def test_reinvent_like_is_not_a_copy_of_the_deepracer_file():
    ours = catalogue.builtin("reinvent_like").center
    theirs = load_npy(deepracer_file("reinvent_base.npy")).center
    assert ours.shape != theirs.shape or not np.allclose(ours, theirs, atol=0.05)


def test_resolve_accepts_name_path_track_and_user_name(tmp_path):
    t = catalogue.resolve("hairpin")
    assert t is catalogue.resolve("hairpin")
    assert catalogue.resolve(t) is t
    f = save_npy(circle_track(), tmp_path / "ring.npy")
    assert catalogue.resolve(str(f)).name == "ring"
    assert catalogue.resolve(f).name == "ring"
    catalogue.import_track(f, "my_ring")
    assert catalogue.resolve("my_ring").name == "my_ring"
    assert "my_ring" in catalogue.names()
    assert catalogue.names()[: len(catalogue.BUILTIN)] == list(catalogue.BUILTIN)


def test_unknown_name_lists_available_tracks():
    with pytest.raises(UnknownTrackError) as exc:
        catalogue.resolve("nope")
    msg = str(exc.value)
    assert "'nope'" in msg and "reinvent_like" in msg and "technical" in msg
    assert exc.value.exit_code == 2 and "\n" not in msg
    with pytest.raises(TrackFileError):
        catalogue.resolve("missing/file.npy")


def test_import_copies_byte_exact_and_refuses_clashes(tmp_path, user_tracks):
    src = deepracer_file("reinvent_base.npy")
    out = catalogue.import_track(src, "re2018")
    assert out == user_tracks / "re2018.npy"
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(TrackFileError, match="already exists"):
        catalogue.import_track(src, "re2018")
    catalogue.import_track(src, "re2018", force=True)
    with pytest.raises(TrackFileError, match="built-in"):
        catalogue.import_track(src, "hairpin")
    with pytest.raises(TrackFileError, match="not allowed"):
        catalogue.import_track(src, "../evil")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 5)))
    with pytest.raises(TrackValidationError, match="bad.npy"):
        catalogue.import_track(bad, "bad")
    assert sorted(p.name for p in user_tracks.iterdir()) == ["re2018.npy"]


def test_user_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENRACER_TRACKS_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert catalogue.user_dir() == tmp_path / "xdg" / "openracer" / "tracks"


def test_spline_interpolates_control_points_and_a_circle():
    th = np.arange(16) * 2 * math.pi / 16
    ctrl = 2.0 * np.c_[np.cos(th), np.sin(th)]
    sp = PeriodicSpline(ctrl)
    assert np.allclose(sp.evaluate(sp.knots[:-1]), ctrl, atol=1e-12)
    s = np.linspace(0, sp.period, 400, endpoint=False)
    assert np.allclose(np.linalg.norm(sp.evaluate(s), axis=1), 2.0, atol=2e-3)
    assert np.allclose(sp.curvature(s), 0.5, rtol=0.02)


def test_track_errors_share_the_base():
    assert issubclass(UnknownTrackError, TrackError) and isinstance(
        catalogue.builtin("chicane"), Track
    )


def test_a_deepracer_route_imported_under_its_name_resolves_by_it(tmp_path, monkeypatch):
    """openracer ships no copies of DeepRacer's routes; a user imports one once under the
    name DeepRacer's logs use, and the name resolves from then on."""
    monkeypatch.setenv("OPENRACER_TRACKS_DIR", str(tmp_path / "user"))
    with pytest.raises(UnknownTrackError, match="--name reinvent_base"):
        catalogue.resolve("reinvent_base")
    f = save_npy(circle_track(), tmp_path / "reinvent_base.npy")
    catalogue.import_track(f, "reinvent_base")
    assert catalogue.resolve("reinvent_base").name == "reinvent_base"
    assert "reinvent_base" in catalogue.names()
