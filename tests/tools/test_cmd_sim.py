"""Smoke runs of `racer sim view` and `racer bench sim` with tiny budgets."""

from __future__ import annotations

import json

import cv2
import imageio.v2 as imageio

from tools import bench_sim, cmd_sim


def test_sim_view_writes_video_and_grid(tmp_path, capsys):
    out, png = tmp_path / "lap.mp4", tmp_path / "grid.png"
    rc = cmd_sim.main(
        [
            "view",
            "--track",
            "technical",
            "--randomize",
            "light",
            "--out",
            str(out),
            "--png",
            str(png),
            "--columns",
            "2",
            "--max-frames",
            "12",
            "--json",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["video"]["frames"] == 12
    reader = imageio.get_reader(str(out))
    first = reader.get_data(0)
    assert first.shape == (720, 1120, 3)
    grid = cv2.imread(str(png))
    assert grid.shape == (4 * 240, 130 + 2 * 320, 3)


def test_sim_view_bad_arguments():
    assert cmd_sim.main(["view", "--out", "x.avi"]) == 2
    assert cmd_sim.main(["view"]) == 2


def test_bench_sim_json(capsys):
    rc = bench_sim.main(["--json", "--seconds", "0.2", "--rounds", "1", "--batch", "2"])
    assert rc == 0
    fig = json.loads(capsys.readouterr().out)
    for key in (
        "steps_per_s_none",
        "steps_per_s_standard",
        "carracing_steps_per_s",
        "ratio_none",
        "ratio_standard",
    ):
        assert fig[key] > 0
    assert fig["ratio_none"] == round(fig["steps_per_s_none"] / fig["carracing_steps_per_s"], 2)
