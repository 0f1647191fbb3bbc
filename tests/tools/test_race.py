"""`racer race`: a time trial of several models with a leaderboard, HTML and the winner's MP4."""

from __future__ import annotations

import json

import cv2
import pytest

from tools.cli import main as racer
from tools.race import Entry, standings, unique_names


def _lap(done, t, pct=100.0, off=0):
    return {
        "completed": done,
        "lap_time_s": t,
        "completion_pct": pct if not done else 100.0,
        "off_track": off,
    }


def test_standings_rank_laps_then_total_time_then_best_lap():
    a = Entry("a", "a", [_lap(True, 10.0), _lap(True, 10.0), _lap(False, 3.0, 40, 1)], None)
    b = Entry("b", "b", [_lap(True, 9.0), _lap(True, 11.0), _lap(False, 2.0, 20, 1)], None)
    c = Entry("c", "c", [_lap(True, 12.0), _lap(True, 12.0), _lap(True, 12.0)], None)
    d = Entry("d", "d", [_lap(False, 5.0, 60, 1)] * 3, None)
    e = Entry("e", "e", [_lap(False, 5.0, 70, 1)] * 3, None)
    order = [x.name for x in standings([a, b, d, e, c])]
    # c finished 3 laps; a and b 2 laps each with the same total: a's best lap loses to b's
    assert order == ["c", "b", "a", "e", "d"]
    assert c.total_time_s == 36.0 and c.best_lap_s == 12.0 and a.off_tracks == 1
    assert d.to_json()["total_time_s"] is None


def test_unique_names(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "m.bundle").write_bytes(b"")
    (tmp_path / "y" / "m.bundle").write_bytes(b"")
    assert unique_names([str(tmp_path / "x" / "m.bundle"), str(tmp_path / "y" / "m.bundle")]) == [
        "m",
        "m#2",
    ]


@pytest.mark.slow
def test_race_of_two_bundles(tmp_path, capsys):
    from tests.vehicle.tiny_models import tflite_bytes
    from vehicle.metadata import ModelMetadata
    from vehicle.models.bundle import write_bundle

    paths = []
    for seed in (0, 1):
        p = tmp_path / f"model{seed}.bundle"
        write_bundle(
            p,
            name=f"model{seed}",
            model_bytes=tflite_bytes(10, seed=seed),
            metadata=ModelMetadata(),
        )
        paths.append(str(p))
    capsys.readouterr()  # drop the TFLite converter's chatter
    out = tmp_path / "race"
    code = racer(
        ["race", *paths, "--track", "reinvent_like", "--laps", "2", "--out", str(out), "--json"]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    board = result["leaderboard"]
    assert [e["position"] for e in board] == [1, 2]
    assert {e["name"] for e in board} == {"model0", "model1"}
    assert result["winner"] == board[0]["name"]
    for e in board:
        assert len(e["per_lap"]) == 2 and e["simtrace"].endswith("0-iteration.csv")
        assert e["laps_completed"] + e["off_tracks"] <= 2
    assert result["limit_lap_s"] > 0
    cap = cv2.VideoCapture(result["winner_video"]["path"])
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames == result["winner_video"]["frames"] > 1
    html = (out / "race.html").read_text()
    assert "Leaderboard" in html and "winner_best_lap.mp4" in html and "race_laps.png" in html
