"""`racer compare`: several runs side by side in one report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.analysis import fixtures
from tools.cli import main as racer


@pytest.mark.slow
def test_compare_two_runs_and_a_console_export(tmp_path, capsys):
    a = fixtures.write_drfc(tmp_path / "a" / "model", iterations=3, seed=1)
    b = fixtures.write_drfc(tmp_path / "b" / "model", iterations=5, seed=2)
    c = fixtures.write_console(tmp_path / "c" / "export")
    out = tmp_path / "cmp"
    assert racer(["compare", str(a), str(b), str(c), "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["runs"]) == ["a/model", "b/model", "export"]
    assert result["runs"]["a/model"]["iterations"] == 3
    assert result["runs"]["b/model"]["iterations"] == 5
    html = (out / "compare.html").read_text()
    for png in ("compare_training.png", "compare_evaluation.png"):
        assert f'src="{png}"' in html and (out / png).stat().st_size > 5000
    assert json.loads((out / "compare.json").read_text())["runs"]["export"]["layout"] == "console"


def test_compare_needs_two_runs(tmp_path, capsys):
    a = fixtures.write_drfc(tmp_path / "a", iterations=1, with_eval=False)
    assert racer(["compare", str(a), "--out", str(tmp_path / "o")]) == 2
    assert "at least two runs" in capsys.readouterr().err


def test_compare_says_when_the_track_is_unknown(tmp_path, capsys):
    """Logs that name no track: the comparison is still written (exit 0), and the same
    one-line warning as `racer analyze` asks for --track instead of guessing."""
    samples = Path(__file__).parents[1] / "analysis" / "data" / "deepracer-utils"
    folder = samples / "sample-drfc-1-logs"
    out = tmp_path / "cmp"
    assert racer(["compare", str(folder), str(folder), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"racer compare: warning: {folder}: track unknown")
    assert err[0].endswith("pass --track NAME or FILE.npy")
    assert "track unknown" in (out / "compare.html").read_text()
    assert json.loads(captured.out)["runs"]
