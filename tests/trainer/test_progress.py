"""The live display renders every figure the issue lists, in live and plain modes."""

from __future__ import annotations

import io

from rich.console import Console

from trainer.progress import ProgressDisplay

STATS = {
    "iteration": 7,
    "episodes": 140,
    "env_steps": 9000,
    "env_steps_per_s": 321.5,
    "mean_reward": 12.5,
    "mean_progress": 33.3,
    "lap_rate": 0.25,
    "entropy": 1.9,
    "policy_loss": -0.01,
    "value_loss": 2.5,
    "approx_kl": 0.012,
    "clip_fraction": 0.1,
    "eval_progress": 40.0,
    "eval_laps": 2,
    "eval_lap_s": 17.5,
    "best": 6,
    "elapsed_s": 120.0,
}


def test_live_panel_shows_the_figures():
    display = ProgressDisplay("racer train -> runs/x", 900.0, live=True)
    buf = io.StringIO()
    display.console = Console(file=buf, width=100, force_terminal=True)
    with display:
        display.rollout(8, 120, 3, 16)
        display.iteration(STATS)
    text = buf.getvalue()
    for word in (
        "iteration",
        "episodes",
        "mean reward",
        "mean progress",
        "lap rate",
        "steps/s",
        "entropy",
        "KL",
        "value loss",
        "CPU",
        "memory",
        "left",
    ):
        assert word in text, word
    assert "322" in text and "13.0 min" in text


def test_plain_mode_prints_one_line_per_iteration(capsys):
    display = ProgressDisplay("t", 60.0, live=False)
    with display:
        display.iteration(STATS)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("it 7 ep 140") and "cpu" in out[0]
