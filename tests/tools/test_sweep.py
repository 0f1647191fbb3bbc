"""`racer eval --sweep`: the robustness map runs every condition and finds where a policy
breaks."""

from __future__ import annotations

import json

import pytest

from sim2real.conditions import Condition, default_conditions
from tests.tools.vision_policy import METADATA, vision_policy
from tools.sweep import sweep_map


@pytest.mark.slow
def test_sweep_finds_the_dark_scene_that_breaks_a_fixed_threshold_policy(tmp_path):
    conditions = [
        Condition("lighting", "dark", gain=0.4, gamma=1.3),
        Condition("lighting", "nominal", nominal=True),
        Condition("battery", "nominal", nominal=True),
        Condition("battery", "empty", battery_soc=0.05),
    ]
    s = sweep_map(vision_policy, METADATA, "reinvent_like", 1, tmp_path, conditions=conditions)
    by = {(c["axis"], c["label"]): c for c in s["cells"]}
    assert by[("lighting", "nominal")]["laps_completed"] == 1
    assert by[("lighting", "dark")]["completion_pct"] < 50
    # a sagging pack slows the car down
    assert by[("battery", "empty")]["mean_lap_s"] > by[("battery", "nominal")]["mean_lap_s"]
    assert s["weakest"][0]["axis"] == "lighting"
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert len(saved["cells"]) == 4
    for name in ("sweep_completion.png", "sweep_laptime.png"):
        assert (tmp_path / name).stat().st_size > 5000
    assert "sweep_completion.png" in (tmp_path / "sweep.html").read_text()


@pytest.mark.slow
def test_racer_eval_sweep_on_a_bundle(tmp_path, capsys):
    from tests.vehicle.tiny_models import tflite_bytes
    from tools.cli import main as racer
    from vehicle.metadata import ModelMetadata
    from vehicle.models.bundle import write_bundle

    bundle = tmp_path / "m.bundle"
    write_bundle(bundle, name="m", model_bytes=tflite_bytes(10, seed=0), metadata=ModelMetadata())
    capsys.readouterr()
    out = tmp_path / "map"
    argv = ["eval", str(bundle), "--track", "beginner_oval", "--laps", "1", "--sweep"]
    assert racer([*argv, "--sweep-out", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert len(s["cells"]) == len(default_conditions()) == 24
    assert all(c["laps"] == 1 for c in s["cells"])
    assert (out / "sweep.html").is_file() and (out / "sweep_completion.png").is_file()
