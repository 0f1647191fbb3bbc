"""The training pipeline end to end on the fake environment: runs, logs, checkpoints,
resumes to identical state, clones, and evaluates. Tiny budgets; no learning bars."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.trainer.conftest import FAKE_ENV
from trainer.checkpoint import RunDir, load_keras_policy
from trainer.config import TrainConfig
from trainer.errors import CheckpointError
from trainer.evaluate import evaluate
from trainer.ppo import train


def config(out, track, **kw):
    base = dict(
        out=str(out),
        track=(track,),
        minutes=10,
        workers=1,
        eval_episodes=2,
        max_iterations=2,
        env_id=FAKE_ENV,
        randomize="none",
    )
    base.update(kw)
    return TrainConfig(**base)


def test_train_writes_run_dir_and_resumes_to_identical_state(
    tmp_path, track_file, fast_metadata, small_hp
):
    straight = train(config(tmp_path / "a", track_file, max_iterations=3), small_hp, fast_metadata)
    assert straight.iterations == 3 and straight.episodes == 12
    run = RunDir(tmp_path / "a")
    for p in (run.config, run.metadata_file, run.hyperparameters_file, run.metrics):
        assert p.exists(), p
    assert sorted(p.name for p in run.simtrace.glob("*.csv")) == [
        "0-iteration.csv",
        "1-iteration.csv",
        "2-iteration.csv",
    ]
    assert list(run.tensorboard.glob("events.out.tfevents.*"))
    metrics = json.loads(run.metrics.read_text())["metrics"]
    phases = [m["phase"] for m in metrics]
    assert phases.count("training") == 12 and phases.count("evaluation") == 6
    header = (run.simtrace / "0-iteration.csv").read_text().splitlines()[0].split(",")
    assert header[:17] == [
        "episode",
        "steps",
        "X",
        "Y",
        "yaw",
        "steer",
        "throttle",
        "action",
        "reward",
        "done",
        "all_wheels_on_track",
        "progress",
        "closest_waypoint",
        "track_len",
        "tstamp",
        "episode_status",
        "pause_duration",
    ]
    # Two iterations, then resume for the third: identical to the straight run.
    train(config(tmp_path / "b", track_file, max_iterations=2), small_hp, fast_metadata)
    resumed = train(
        config(tmp_path / "b", track_file, max_iterations=3, resume=True), small_hp, fast_metadata
    )
    assert resumed.iterations == 3 and resumed.episodes == 12
    wa, _, sa = RunDir(tmp_path / "a").load_resume()
    wb, _, sb = RunDir(tmp_path / "b").load_resume()
    for group in ("policy", "value", "log_std"):
        for x, y in zip(wa[group], wb[group], strict=True):
            np.testing.assert_array_equal(x, y)
    assert sa["rng"] == sb["rng"] and sa["episodes"] == sb["episodes"]
    assert sa["env_steps"] == sb["env_steps"]
    a_csv = (tmp_path / "a" / "training-simtrace" / "2-iteration.csv").read_text().splitlines()
    b_csv = (tmp_path / "b" / "training-simtrace" / "2-iteration.csv").read_text().splitlines()
    assert a_csv == b_csv

    # The exported policy loads and acts; a clone starts from the same weights.
    model, md, info = load_keras_policy(tmp_path / "a", "last")
    assert info["iteration"] == 3 and md.neural_network == "OPENRACER_FAST"
    obs = np.zeros((1, 120, 160, 1), np.uint8)
    assert np.asarray(model(obs)).shape == (1, 10)
    with pytest.raises(CheckpointError, match="no checkpoint of iteration 99"):
        load_keras_policy(tmp_path / "a", 99)
    cloned = config(tmp_path / "c", track_file, max_iterations=1, clone=str(tmp_path / "a"))
    train(cloned, small_hp, fast_metadata)
    index = json.loads((tmp_path / "c" / "checkpoints" / "index.json").read_text())
    assert index["cloned_from"]["run"] == str(tmp_path / "a")
    assert index["cloned_from"]["iteration"] == RunDir(tmp_path / "a").resolve("best")


def test_entropy_falls_and_losses_are_finite(tmp_path, track_file, fast_metadata, small_hp):
    import dataclasses

    hp = dataclasses.replace(small_hp, lr=1e-3, num_epochs=4, beta_entropy=0.0)
    result = train(
        config(tmp_path / "r", track_file, max_iterations=5, eval_episodes=0), hp, fast_metadata
    )
    ent = [h["entropy"] for h in result.history]
    assert all(np.isfinite(h["loss"]) and np.isfinite(h["value_loss"]) for h in result.history)
    assert ent[0] == pytest.approx(np.log(10), abs=0.05)  # near-uniform start
    assert ent[-1] < ent[0] - 0.02  # the policy commits as it learns


def test_new_run_refuses_existing_run_and_resume_needs_one(
    tmp_path, track_file, fast_metadata, small_hp
):
    train(config(tmp_path / "a", track_file, max_iterations=1), small_hp, fast_metadata)
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(config(tmp_path / "a", track_file, max_iterations=1), small_hp, fast_metadata)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(
            config(tmp_path / "none", track_file, max_iterations=1, resume=True),
            small_hp,
            fast_metadata,
        )


def test_evaluate_reports_laps(track_file, fast_metadata, tmp_path):
    report = evaluate(
        lambda obs: np.full(len(obs), 4),  # steer 0 at 0.4 m/s... (index 4: 0 deg, 0.4 m/s)
        track_file,
        laps=3,
        metadata=fast_metadata,
        env_id=FAKE_ENV,
        simtrace_dir=tmp_path,
    )
    out = report.to_json()
    for key in (
        "laps",
        "laps_completed",
        "completion_pct",
        "lap_times_s",
        "best_lap_s",
        "off_track",
        "limit_ratio",
    ):
        assert key in out
    assert out["laps"] == 3
    assert len(list(tmp_path.glob("evaluation-*/evaluation-simtrace/0-iteration.csv"))) == 1
