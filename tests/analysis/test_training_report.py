"""`racer analyze` on DeepRacer-format folders writes a self-contained report."""

from __future__ import annotations

import json
import re

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
