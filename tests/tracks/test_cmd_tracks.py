"""`racer tracks` through `tools.cli.main`: list, info, show, import, generate."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.tracks.conftest import deepracer_file
from tools.cli import main as racer
from tracks import catalogue


@pytest.fixture(autouse=True)
def user_tracks(tmp_path, monkeypatch):
    d = tmp_path / "user-tracks"
    monkeypatch.setenv("OPENRACER_TRACKS_DIR", str(d))
    return d


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_list_json_has_every_builtin(capsys):
    assert racer(["tracks", "list", "--json"]) == 0
    rows = {r["name"]: r for r in _json(capsys)}
    assert set(catalogue.BUILTIN) <= set(rows)
    r = rows["reinvent_like"]
    assert r["length_m"] == pytest.approx(17.7, abs=0.01)
    assert r["width_m"] == pytest.approx(0.76, abs=1e-6)
    assert r["direction"] == "ccw" and r["source"] == "built-in"
    assert rows["sweeper"]["direction"] == "cw"


def test_list_text_and_broken_user_file(capsys, user_tracks):
    user_tracks.mkdir(parents=True)
    np.save(user_tracks / "broken.npy", np.zeros((3, 6)))
    assert racer(["tracks", "list"]) == 0
    out = capsys.readouterr().out
    assert "reinvent_like" in out and "17.70m" in out
    assert "broken" in out and "INVALID" in out


def test_info_reinvent_base_length_to_the_millimetre(capsys):
    path = deepracer_file("reinvent_base.npy")
    assert racer(["tracks", "info", str(path), "--json"]) == 0
    info = _json(capsys)
    raw = np.load(path)
    length = sum(
        ((raw[i + 1, 0] - raw[i, 0]) ** 2 + (raw[i + 1, 1] - raw[i, 1]) ** 2) ** 0.5
        for i in range(len(raw) - 1)
    )
    assert abs(info["length_m"] - length) < 1e-3
    assert 17.70 < info["length_m"] < 17.72
    for key in (
        "name",
        "closed",
        "waypoints",
        "width_min_m",
        "width_mean_m",
        "min_radius_m",
        "racing_line_length_m",
        "limit_lap_time_s",
    ):
        assert key in info
    assert info["name"] == "reinvent_base" and info["closed"] is True
    assert info["waypoints"] == 119
    assert info["width_min_m"] == pytest.approx(0.7564, abs=1e-4)
    assert info["limit_lap_time_s"] >= info["racing_line_length_m"] / 4.0


def test_info_limits_change_the_lap_time(capsys):
    assert racer(["tracks", "info", "reinvent_like", "--json"]) == 0
    base = _json(capsys)
    assert racer(["tracks", "info", "reinvent_like", "--json", "--max-speed", "2.0"]) == 0
    slow = _json(capsys)
    args = ["tracks", "info", "reinvent_like", "--json", "--max-lateral-accel", "9"]
    assert racer(args) == 0
    grippy = _json(capsys)
    assert grippy["limit_lap_time_s"] < base["limit_lap_time_s"] < slow["limit_lap_time_s"]
    assert slow["max_speed_mps"] == 2.0
    assert racer(["tracks", "info", "reinvent_like", "--max-speed", "0"]) == 2
    assert "max_speed_mps" in capsys.readouterr().err


def test_info_text_output(capsys):
    assert racer(["tracks", "info", "technical"]) == 0
    out = capsys.readouterr().out
    assert "limit_lap_time_s" in out and "technical" in out


def test_show_writes_png_with_and_without_racing_line(tmp_path, capsys):
    out = tmp_path / "t.png"
    assert racer(["tracks", "show", "chicane", "--png", str(out), "--size", "600"]) == 0
    img = cv2.imread(str(out))
    assert img is not None and max(img.shape[:2]) >= 560
    out2 = tmp_path / "t2.png"
    args = ["tracks", "show", "chicane", "--png", str(out2), "--racing-line", "--size", "600"]
    assert racer(args) == 0
    assert not np.array_equal(cv2.imread(str(out2)), img)
    assert racer(["tracks", "show", "chicane", "--png", str(tmp_path / "x.jpg")]) == 2
    assert ".png" in capsys.readouterr().err


def test_unknown_track_lists_names(capsys):
    assert racer(["tracks", "info", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown track 'nope'" in err and "reinvent_like" in err


def test_import_then_use_by_name(capsys, user_tracks):
    src = deepracer_file("Oval_track.npy")
    assert racer(["tracks", "import", str(src), "--name", "oval"]) == 0
    assert (user_tracks / "oval.npy").read_bytes() == src.read_bytes()
    capsys.readouterr()
    assert racer(["tracks", "info", "oval", "--json"]) == 0
    assert _json(capsys)["name"] == "oval"
    assert racer(["tracks", "import", str(src), "--name", "oval"]) == 2
    assert "--force" in capsys.readouterr().err
    assert racer(["tracks", "list", "--json"]) == 0
    assert "oval" in {r["name"] for r in _json(capsys)}


def test_generate_writes_a_valid_deterministic_track(tmp_path, capsys):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert (
        racer(
            ["tracks", "generate", "--seed", "9", "--out", str(a), "--png", str(tmp_path / "a.png")]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert racer(["tracks", "generate", "--seed", "9", "--out", str(b), "--json"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert _json(capsys)["closed"] is True
    assert (tmp_path / "a.png").exists()


def test_usage_errors_exit_2(capsys):
    assert racer(["tracks"]) == 2
    assert racer(["tracks", "show", "hairpin"]) == 2  # --png missing
    assert racer(["tracks", "--help"]) == 0


def test_info_open_straight_track(capsys):
    path = deepracer_file("Straight_track.npy")
    assert racer(["tracks", "info", str(path), "--json"]) == 0
    info = _json(capsys)
    assert info["closed"] is False and info["direction"] == "open"
    assert info["min_radius_m"] is None  # a straight line has no bend
    assert info["waypoints"] == 22


def test_export_builtin_then_reimport_and_remove(tmp_path, capsys, user_tracks):
    out = tmp_path / "hp.npy"
    assert racer(["tracks", "export", "hairpin", "--out", str(out)]) == 0
    assert np.array_equal(np.load(out), catalogue.builtin("hairpin").to_array())
    assert racer(["tracks", "import", str(out), "--name", "hp_copy"]) == 0
    assert (user_tracks / "hp_copy.npy").exists()
    assert racer(["tracks", "remove", "hp_copy"]) == 0
    assert not (user_tracks / "hp_copy.npy").exists()
    capsys.readouterr()
    assert racer(["tracks", "remove", "hp_copy"]) == 2
    assert "no user track" in capsys.readouterr().err
    assert racer(["tracks", "remove", "hairpin"]) == 2
