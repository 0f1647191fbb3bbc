"""`racer train` / `racer eval` from the command line: clear one-line errors, and a run
killed with SIGKILL that resumes to exactly the state an uninterrupted run reaches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.trainer.conftest import FAKE_ENV

REPO = Path(__file__).resolve().parents[2]


def racer(*args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_bad_hyperparameters_fail_at_start_with_one_line(tmp_path):
    hp = tmp_path / "hyperparameters.json"
    hp.write_text(json.dumps({"lr": 5.0}))
    r = racer(
        "train",
        "--track",
        "reinvent_like",
        "--hyperparameters",
        str(hp),
        "--out",
        str(tmp_path / "run"),
    )
    assert r.returncode == 2
    assert "lr 5.0 is outside the accepted range" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_broken_reward_fails_at_start_with_file_and_line(tmp_path):
    reward = tmp_path / "reward.py"
    reward.write_text("def reward_function(params):\n    return params['no_such_key']\n")
    r = racer(
        "train",
        "--track",
        "reinvent_like",
        "--reward",
        str(reward),
        "--out",
        str(tmp_path / "run"),
        "--minutes",
        "1",
    )
    assert r.returncode == 2, r.stderr
    assert "reward.py" in r.stderr and "no_such_key" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "run" / "config.json").exists()


def test_resume_refuses_changed_options(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(
        json.dumps({"schema_version": 1, "out": str(run), "track": ["reinvent_like"]})
    )
    r = racer("train", "--out", str(run), "--resume", "--randomize", "heavy")
    assert r.returncode == 2 and "--randomize" in r.stderr and "--clone" in r.stderr


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted_run(
    tmp_path, track_file, fast_metadata, small_hp
):
    from trainer.checkpoint import RunDir

    md = tmp_path / "model_metadata.json"
    md.write_text(json.dumps(fast_metadata.to_json()))
    hpf = tmp_path / "hyperparameters.json"
    hpf.write_text(json.dumps(small_hp.to_json()))
    common = [
        "--track",
        track_file,
        "--metadata",
        str(md),
        "--hyperparameters",
        str(hpf),
        "--env-id",
        FAKE_ENV,
        "--workers",
        "1",
        "--eval-episodes",
        "2",
        "--randomize",
        "none",
        "--quiet",
    ]
    run = tmp_path / "killed"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.cli",
            "train",
            *common,
            "--out",
            str(run),
            "--max-iterations",
            "1000",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    index = run / "checkpoints" / "index.json"
    deadline = time.time() + 240
    while time.time() < deadline:
        if index.exists() and json.loads(index.read_text()).get("last", 0) >= 2:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the run never reached iteration 2")
    time.sleep(0.7)  # land somewhere inside an iteration
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = RunDir(run).load_resume()[2]
    done = state["iteration"]
    target = done + 1
    r = racer("train", "--out", str(run), "--resume", "--max-iterations", str(target), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["iterations"] == target
    # The same run, uninterrupted, as its own process too: TensorFlow's thread pools are
    # then set up alike (this test process may have started TensorFlow with others, and
    # oneDNN's sums depend on the thread count).
    straight = tmp_path / "straight"
    r = racer("train", *common, "--out", str(straight), "--max-iterations", str(target), "--json")
    assert r.returncode == 0, r.stderr
    wa, oa, sa = RunDir(run).load_resume()
    wb, ob, sb = RunDir(straight).load_resume()
    for group in ("policy", "value"):
        for x, y in zip(wa[group], wb[group], strict=True):
            np.testing.assert_array_equal(x, y)
    for x, y in zip(oa, ob, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (sa["episodes"], sa["env_steps"], sa["rng"]) == (
        sb["episodes"],
        sb["env_steps"],
        sb["rng"],
    )
    metrics = json.loads((run / "metrics" / "TrainingMetrics.json").read_text())["metrics"]
    assert len(metrics) == sa["metrics_count"]
    csvs = sorted(p.name for p in (run / "training-simtrace").glob("*.csv"))
    assert csvs == sorted(f"{i}-iteration.csv" for i in range(target))
    assert not list((run / "checkpoints").glob(".*.tmp"))
    # racer eval on the resumed run directory.
    r = racer(
        "eval", str(run), "--track", track_file, "--laps", "2", "--json", "--env-id", FAKE_ENV
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["laps"] == 2 and report["checkpoint"] == RunDir(run).resolve("best")
    assert list(run.glob("evaluation-*/evaluation-simtrace/0-iteration.csv"))


# Reward files that used to end `racer train` silently (issue 20): each must be exit code
# 2 with a one-line message naming the user's file, and leave no run behind. The hang
# takes its limit from the --config JSON, as `racer new`'s train.json would carry it.
HOSTILE_TRAIN = {
    "exit_3_in_call": (
        "import sys\ndef reward_function(params):\n    sys.exit(3)\n",
        "line 3 called sys.exit(3) (SystemExit)",
        [],
    ),
    "exit_0_on_import": (
        "raise SystemExit(0)\n",
        "line 1: importing the file called sys.exit(0) (SystemExit)",
        [],
    ),
    "endless_loop_limit_in_config": (
        "def reward_function(params):\n    while True:\n        pass\n",
        "ran longer than the 0.5 s time limit",
        ["config"],
    ),
    "endless_loop_limit_flag": (
        "def reward_function(params):\n    while True:\n        pass\n",
        "ran longer than the 0.5 s time limit",
        ["--reward-time-limit-s", "0.5"],
    ),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(HOSTILE_TRAIN))
def test_hostile_reward_ends_racer_train_with_exit_2(tmp_path, name):
    code, fragment, extra = HOSTILE_TRAIN[name]
    reward = tmp_path / "reward.py"
    reward.write_text(code)
    args = ["--track", "reinvent_like", "--reward", str(reward), "--out", str(tmp_path / "run")]
    if extra == ["config"]:
        cfg = tmp_path / "train.json"
        cfg.write_text(json.dumps({"reward_time_limit_s": 0.5, "minutes": 1}))
        extra = ["--config", str(cfg)]
    start = time.monotonic()
    r = racer("train", *args, *extra, timeout=240)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert f"racer train: error: reward function {reward}" in r.stderr or (
        f"racer train: error: {reward}" in r.stderr
    ), r.stderr
    assert fragment in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run" / "config.json").exists()
    assert time.monotonic() - start < 200
