"""`racer bench race`: its bad inputs are one-line errors with exit code 2 (the benchmark
itself trains for up to 30 minutes and is run by hand; its figures are in the README)."""

from __future__ import annotations

from tools.bench_race import DEFAULT_TRACK
from tools.cli import main as racer


def test_missing_track_file_names_the_default_and_the_fix(tmp_path, capsys):
    assert racer(["bench", "race", "--track", str(tmp_path / "reinvent_base.npy")]) == 2
    err = capsys.readouterr().err
    assert "reinvent_base.npy not found" in err and "--track NAME_OR_FILE" in err


def test_unknown_recipe_names_the_choices(capsys):
    assert racer(["bench", "race", "--recipe", "nope", "--track", "reinvent_like"]) == 2
    assert "first_lap, fast_laps" in capsys.readouterr().err


def test_the_default_track_is_deepracers_own_file_beside_the_checkout():
    assert DEFAULT_TRACK.name == "reinvent_base.npy"
    assert DEFAULT_TRACK.parent.parts[-3:] == ("shared", "data", "deepracer-tracks")
