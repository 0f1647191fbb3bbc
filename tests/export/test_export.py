"""`racer export` and trainer.parity: real TFLite conversion of the real policy network,
parity on simulator frames, laps through the evaluation path, bundle written and
installable in the car's store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tools.cli import main as racer
from trainer.parity import CONTINUOUS_TOLERANCE, compare
from vehicle.models.bundle import read_bundle
from vehicle.models.store import ModelStore

pytest.importorskip("tensorflow")

SMALL = ["--representative-frames", "200", "--parity-frames", "200", "--laps", "1"]


def make_run(path: Path, *, network: str = "OPENRACER_FAST", head_gain: float = 300.0) -> Path:
    """A run directory as `racer train` leaves it, holding one checkpoint of an initialized
    (untrained) policy whose output head is scaled up so its choices are decisive, as a
    trained policy's are (a fresh head is near-uniform and every argmax a near-tie)."""
    from trainer.checkpoint import RunDir
    from trainer.config import Hyperparameters, TrainConfig
    from trainer.networks import build_networks
    from vehicle.files import atomic_write_json
    from vehicle.metadata import ModelMetadata

    meta = ModelMetadata(neural_network=network)
    run = RunDir(path)
    run.create(TrainConfig(out=str(path), randomize="standard"), Hyperparameters(), meta)
    weights = build_networks(meta, seed=0).policy_logits.get_weights()
    weights[-2] = weights[-2] * head_gain
    run.save_checkpoint(1, {"policy": weights}, {"score": 0.0})
    atomic_write_json(run.index_file, {"last": 1, "best": 1, "kept": [1]})
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "fast-run")


def test_compare_discrete_counts_argmax_and_probability_error():
    ref = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8]])
    cand = np.array([[0.69, 0.21, 0.1], [0.36, 0.39, 0.25], [0.1, 0.1, 0.8]])
    r = compare(ref, cand, "discrete")
    assert r.frames == 3 and r.disagreements == 1
    assert r.agreement == pytest.approx(2 / 3)
    assert r.max_abs_error == pytest.approx(0.04)
    assert r.float_margin_at_disagreement == pytest.approx(0.05)
    assert r.chosen_prob_error == pytest.approx((0.01 + 0.04 + 0.0) / 3)
    # decisive frames: top-2 gaps 0.5, 0.05, 0.7 are all >= 0.01; the miss is among them
    assert r.decisive_fraction == 1.0 and r.decisive_agreement == pytest.approx(2 / 3)
    tie = compare(np.array([[0.5, 0.495, 0.005]]), np.array([[0.49, 0.5, 0.01]]), "discrete")
    assert tie.decisive_fraction == 0.0 and tie.decisive_agreement is None
    assert tie.float_margin_at_disagreement == pytest.approx(0.005)


def test_compare_continuous_uses_the_tolerance():
    ref = np.array([[0.5, -0.2], [0.1, 0.9]])
    cand = ref + np.array([[CONTINUOUS_TOLERANCE * 0.9, 0.0], [0.0, CONTINUOUS_TOLERANCE * 1.5]])
    r = compare(ref, cand, "continuous")
    assert r.agreement == 0.5 and r.max_abs_error == pytest.approx(CONTINUOUS_TOLERANCE * 1.5)


@pytest.mark.slow
def test_int8_export_end_to_end(run_dir, tmp_path, capsys):
    out = tmp_path / "fast-int8.tar.gz"
    code = racer(
        [
            "export",
            str(run_dir),
            "--format",
            "int8",
            "--out",
            str(out),
            "--json",
            "--min-agreement",
            "0.9",
            *SMALL,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert 0.9 <= data["agreement"] <= 1.0
    assert data["size_bytes"] == len(read_bundle(out).model_bytes)
    # full-integer int8 is about a quarter of float32
    assert 0.2 < data["size_bytes"] / data["float32_size_bytes"] < 0.35
    q = data["quantization"]
    assert q["input"]["dtype"] == "uint8" and q["input"]["shape"] == [1, 120, 160, 1]
    assert q["output"]["dtype"] == "float32"
    assert "FULLY_CONNECTED" in q["ops"] and "CONV_2D" in q["ops"]
    par = data["parity"]
    assert par["frames"] == 200 and par["representative_frames"] == 200
    assert par["randomize"] == "standard"
    for model in ("float", "tflite"):
        lap = data["laps"][model]
        assert lap["trials"] == 1 and 0.0 <= lap["completion_pct"] <= 100.0
    # The bundle carries the figures and provenance, and installs on the car.
    bundle = read_bundle(out)
    assert bundle.manifest["parity"]["agreement"] == data["agreement"]
    assert bundle.manifest["source"]["iteration"] == 1
    assert bundle.manifest["source"]["tracks"] == ["reinvent_like"]
    assert bundle.metadata.extra["quantization"]["input"]["dtype"] == "uint8"
    assert bundle.metadata.neural_network == "OPENRACER_FAST"
    store = ModelStore(tmp_path / "store")
    store.install(out, activate=True)
    assert store.active().name == data["name"]


@pytest.mark.slow
def test_float16_halves_float32(run_dir, tmp_path, capsys):
    out = tmp_path / "f16.tar.gz"
    assert (
        racer(
            [
                "export",
                str(run_dir),
                "--float16",
                "--out",
                str(out),
                "--json",
                *SMALL[:4],
                "--laps",
                "0",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["agreement"] == 1.0 or data["agreement"] >= 0.99
    assert 0.4 < data["size_bytes"] / data["float32_size_bytes"] < 0.6
    assert data["laps"] == {}


@pytest.mark.slow
def test_parity_below_threshold_fails_with_figures_and_writes_nothing(
    run_dir, tmp_path, capsys, monkeypatch
):
    """A conversion that breaks 5 % of the decisions (simulated by corrupting the TFLite
    outputs) must be refused, figures shown, no bundle written."""
    import trainer.parity as parity

    real = parity.tflite_outputs

    def broken(policy, frames):
        out = real(policy, frames)
        bad = np.arange(len(out)) % 20 == 0
        out[bad] = np.roll(out[bad], 1, axis=1)  # another action wins on those frames
        return out

    monkeypatch.setattr(parity, "tflite_outputs", broken)
    out = tmp_path / "bad.tar.gz"
    code = racer(["export", str(run_dir), "--int8", "--out", str(out), *SMALL[:4], "--laps", "0"])
    captured = capsys.readouterr()
    assert code == 2
    err = [ln for ln in captured.err.splitlines() if ln.startswith("racer export: error:")]
    assert len(err) == 1 and "below the 99% required" in err[0] and "nothing written" in err[0]
    assert "agreement" in captured.out  # the figures are printed
    assert not out.exists()
    # --allow-parity-loss writes it, flagged as not passed.
    code = racer(
        [
            "export",
            str(run_dir),
            "--int8",
            "--out",
            str(out),
            *SMALL[:4],
            "--laps",
            "0",
            "--allow-parity-loss",
        ]
    )
    assert code == 0
    assert read_bundle(out).manifest["parity"]["passed"] is False


def test_bad_options_are_one_line_errors(run_dir, tmp_path, capsys):
    assert racer(["export", str(run_dir), "--int8", "--representative-frames", "10"]) == 2
    assert "too few to calibrate" in capsys.readouterr().err
    assert racer(["export", str(tmp_path / "nope"), "--int8"]) == 2
    assert "run directory not found" in capsys.readouterr().err
