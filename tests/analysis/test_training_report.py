"""`racer analyze` on DeepRacer-format folders writes a self-contained report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.analysis import fixtures
from tools.cli import main as racer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drfc(tmp_path_factory):
    return fixtures.write_drfc(tmp_path_factory.mktemp("a") / "model")


def _pngs_ok(folder):
    pngs = sorted(folder.glob("*.png"))
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    return {p.name for p in pngs}


def test_analyze_writes_report_with_every_figure(drfc, tmp_path, capsys):
    out = tmp_path / "report"
    track = drfc.parent / "stadium.npy"
    assert racer(["analyze", str(drfc), "--out", str(out), "--track", str(track), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["iterations"] == 4 and summary["training_episodes"] == 40
    assert summary["evaluation_episodes"] == 3 and summary["track"] == "stadium"
    assert 20 < summary["best_evaluation_lap_s"] < 30
    names = _pngs_ok(out)
    assert {
        "training_curves.png",
        "episode_status.png",
        "heatmap_speed.png",
        "heatmap_reward.png",
        "heatmap_action.png",
        "actions.png",
        "best_laps.png",
        "evaluation_laps.png",
        "metrics_completion.png",
    } <= names
    html = (out / "report.html").read_text()
    linked = set(re.findall(r'src="([^"]+\.png)"', html))
    assert linked <= names and len(linked) >= 9  # relative links, files beside the page
    assert "http" not in html.split("</style>")[0]  # no external assets
    assert json.loads((out / "summary.json").read_text())["iterations"] == 4


def test_analyze_console_export_without_track_still_reports(tmp_path, capsys):
    folder = fixtures.write_console(tmp_path / "export")
    out = tmp_path / "r"
    assert racer(["analyze", str(folder), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "report" in text
    html = (out / "report.html").read_text()
    assert "track unknown" in html or "track stadium" in html


def test_summary_figures_match_the_logs(drfc, tmp_path):
    from tools.analysis.logs import load_run
    from tools.analysis.training_report import summarize

    run = load_run(drfc)
    s = summarize(run)
    ev = run.evaluation
    laps = [
        g["tstamp"].iloc[-1] - g["tstamp"].iloc[0]
        for _, g in ev.groupby("episode")
        if g["episode_status"].iloc[-1] == "lap_complete"
    ]
    assert s["best_evaluation_lap_s"] == pytest.approx(min(laps), abs=1e-3)
    assert s["mean_evaluation_lap_s"] == pytest.approx(np.mean(laps), abs=1e-3)


def test_analyze_bad_folder_is_one_line_exit_2(tmp_path, capsys):
    assert racer(["analyze", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no DeepRacer log layout" in err and len(err.strip().splitlines()) == 1


SAMPLES = Path(__file__).parent / "data" / "deepracer-utils"
SHARED_ROUTE = (
    Path(__file__).resolve().parents[3] / "shared/data/deepracer-tracks/reinvent_base.npy"
)


@pytest.fixture
def imported_reinvent_base(tmp_path, monkeypatch):
    """DeepRacer's re:Invent 2018 route imported under DeepRacer's name, as a user does
    once (`racer tracks import reinvent_base.npy --name reinvent_base`); openracer ships
    no copies of DeepRacer's routes."""
    if not SHARED_ROUTE.is_file():
        pytest.skip("../shared/data/deepracer-tracks not present")
    monkeypatch.setenv("OPENRACER_TRACKS_DIR", str(tmp_path / "user-tracks"))
    assert racer(["tracks", "import", str(SHARED_ROUTE), "--name", "reinvent_base"]) == 0


def test_analyze_names_a_logged_track_that_is_not_imported(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENRACER_TRACKS_DIR", str(tmp_path / "empty"))
    out = tmp_path / "r"
    folder = SAMPLES / "sample-console-logs"
    assert racer(["analyze", str(folder), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out).get("track") is None  # nothing guessed
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "the logs name the track 'reinvent_base'" in err[0]
    assert "racer tracks import reinvent_base.npy --name reinvent_base" in err[0]


def test_analyze_draws_the_track_the_console_logs_name(tmp_path, capsys, imported_reinvent_base):
    """The console sample's logs say WORLD_NAME reinvent_base: that track is drawn (not
    the built-in reinvent_like of nearly the same length)."""
    capsys.readouterr()
    out = tmp_path / "r"
    folder = SAMPLES / "sample-console-logs"
    assert racer(["analyze", str(folder), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["track"] == "reinvent_base" and summary["limit_lap_s"] > 0
    assert "warning" not in captured.err
    assert "named by the run&#x27;s logs (reinvent_base)" in (out / "report.html").read_text()


def test_analyze_without_a_named_track_says_so_and_asks_for_track(
    tmp_path, capsys, imported_reinvent_base
):
    capsys.readouterr()
    out = tmp_path / "r"
    folder = SAMPLES / "sample-drfc-1-logs"
    assert racer(["analyze", str(folder), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out).get("track") is None  # nothing guessed
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"racer analyze: warning: {folder}: track unknown")
    assert "the logs do not name their track" in err[0]
    assert "17.71 m: " in err[0] and "reinvent_base" in err[0] and "reinvent_like" in err[0]
    assert err[0].endswith("pass --track NAME or FILE.npy")
    assert (
        racer(["analyze", str(folder), "--out", str(out), "--json", "--track", "reinvent_base"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["track"] == "reinvent_base"


def test_analyze_of_an_archive_leaves_no_unpacked_folder(tmp_path, monkeypatch, capsys):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    archive = SAMPLES / "sample-droa-solution-logs.tar.gz"
    assert racer(["analyze", str(archive), "--out", str(tmp_path / "r"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary.get("track") is None and summary["run"] == str(archive)  # not imported
    assert list(scratch.iterdir()) == []
