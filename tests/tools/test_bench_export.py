"""`racer bench export`: its refusals, and the latency measurement on real TFLite models
(the whole benchmark over trained runs is run by hand: see the README's Measured table)."""

from __future__ import annotations

import pytest

from tools.cli import main as racer

pytest.importorskip("tensorflow")


def test_no_runs_and_a_folder_that_is_no_run_are_one_line_errors(tmp_path, capsys):
    assert racer(["bench", "export"]) == 2
    assert "no runs given" in capsys.readouterr().err
    assert racer(["bench", "export", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "not a run directory" in err


def test_latency_times_both_models_through_ai_edge_litert():
    from tests.vehicle.tiny_models import tflite_bytes
    from tools.bench_export import latency_us
    from vehicle.metadata import ModelMetadata

    out = latency_us(tflite_bytes(10, "int8"), tflite_bytes(10, "float32"), ModelMetadata(), 20, 2)
    assert out["backend"] == "ai_edge_litert" and out["threads"] == 1
    assert 0 < out["int8_p50_us"] <= out["int8_p99_us"]
    assert 0 < out["float32_p50_us"] <= out["float32_p99_us"]
    assert out["int8_over_float32_p50"] == pytest.approx(
        out["int8_p50_us"] / out["float32_p50_us"], rel=0.01
    )
