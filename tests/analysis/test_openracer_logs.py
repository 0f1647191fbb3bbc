"""Compatibility, tested on openracer's own writers: the simulator's simtrace writer
(training), `trainer.evaluate` (evaluation simtrace), `trainer.logbook` (metrics),
`vehicle.metadata` / `trainer.config` (model and hyperparameter files). deepracer-utils
loads the folder unchanged and its standard analysis calls run on it; our report too."""

from __future__ import annotations

import json

import pytest

from tests.tools.vision_policy import METADATA, vision_policy

deepracer_logs = pytest.importorskip("deepracer.logs")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import gymnasium as gym

    import sim2real  # noqa: F401
    from trainer.config import Hyperparameters
    from trainer.evaluate import evaluate
    from trainer.logbook import metric_entry, write_metrics

    run = tmp_path_factory.mktemp("openracer") / "run"
    env = gym.make(
        "openracer/Race-v0",
        track="beginner_oval",
        action_space=METADATA.to_json(),
        simtrace_dir=str(run),
        max_steps=250,
        disable_env_checker=True,
    )
    entries, episode = [], 0
    for iteration in range(2):
        env.unwrapped.set_simtrace_iteration(iteration)
        for trial in range(3):
            # seed once, as the trainer does: later resets continue the episode counter
            # and the round-robin start
            obs, info = env.reset(seed=100 if episode == 0 else None)
            total, t0 = 0.0, info["params"].get("sim_time", 0.0)
            while True:
                obs, reward, terminated, truncated, info = env.step(
                    int(vision_policy(obs[None])[0])
                )
                total += reward
                if terminated or truncated:
                    break
            episode += 1
            entries.append(
                metric_entry(
                    episode=episode,
                    trial=trial + 1,
                    phase="training",
                    reward=total,
                    progress=info["params"]["progress"],
                    status=info["episode_status"],
                    start_s=t0,
                    end_s=info["params"].get("sim_time", 0.0),
                )
            )
    env.close()
    write_metrics(run / "metrics" / "TrainingMetrics.json", entries)
    (run / "model").mkdir(exist_ok=True)
    (run / "model" / "model_metadata.json").write_text(json.dumps(METADATA.to_json()))
    (run / "ip").mkdir(exist_ok=True)
    (run / "ip" / "hyperparameters.json").write_text(json.dumps(Hyperparameters().to_json()))
    report = evaluate(vision_policy, "beginner_oval", 2, metadata=METADATA, simtrace_dir=run)
    assert report.extra["simtrace"]
    return run


def test_deepracer_utils_reads_openracer_training_and_evaluation_logs(run_dir):
    from tools.analysis.episodes import episode_table
    from tools.analysis.logs import load_run

    drl = deepracer_logs.DeepRacerLog(model_folder=str(run_dir))
    assert drl.fh.type.name == "DRFC_MODEL_SINGLE_WORKERS"
    drl.load_training_trace()
    df = drl.dataframe()
    assert sorted(df["iteration"].unique()) == [0, 1]
    steps = df[df["episode_status"] != "prepare"]
    assert (steps["action"] >= 0).all()  # numeric action indices for a discrete space
    agg = deepracer_logs.AnalysisUtils.simulation_agg(df)
    ours = episode_table(load_run(run_dir).training)
    assert len(agg) == len(ours) == 6
    assert sorted(agg["progress"].round(3)) == sorted(ours["progress"].round(3))
    assert drl.hyperparameters()["batch_size"] == 64
    assert len(drl.action_space()) == 10

    ev = deepracer_logs.DeepRacerLog(model_folder=str(run_dir))
    ev.load_evaluation_trace()
    eagg = deepracer_logs.AnalysisUtils.simulation_agg(ev.dataframe(), "stream", is_eval=True)
    assert len(eagg) == 2
    assert set(ev.dataframe()["episode_status"]) >= {"prepare"}

    metrics = deepracer_logs.TrainingMetrics(
        None, fname=str(run_dir / "metrics" / "TrainingMetrics.json")
    )
    summary = metrics.getSummary()
    assert list(summary.index.get_level_values("iteration")) == [0, 1]


def test_racer_analyze_on_openracer_logs(run_dir, tmp_path, capsys):
    from tools.cli import main as racer

    assert (
        racer(
            ["analyze", str(run_dir), "--out", str(tmp_path), "--track", "beginner_oval", "--json"]
        )
        == 0
    )
    s = json.loads(capsys.readouterr().out)
    assert s["iterations"] == 2 and s["training_episodes"] == 6 and s["evaluation_episodes"] == 2
    assert s["limit_lap_s"] > 0 and s["track"] == "beginner_oval"


def test_racer_analyze_plots_the_dagger_rounds_of_an_imitation_warm_start(
    run_dir, tmp_path, capsys
):
    from tools.analysis.logs import load_run
    from tools.cli import main as racer

    rounds = [
        {"beta": 0.5, "laps": 4, "mean_lap_s": 6.9},
        {"beta": 0.25, "laps": 9, "mean_lap_s": 6.7},
    ]
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    index = run_dir / "checkpoints" / "index.json"
    index.write_text(json.dumps({"imitation": {"episodes": 20, "dagger": rounds}}))
    try:
        assert load_run(run_dir).imitation["dagger"] == rounds
        assert racer(["analyze", str(run_dir), "--out", str(tmp_path), "--json"]) == 0
        capsys.readouterr()
        assert (tmp_path / "dagger_rounds.png").stat().st_size > 10_000
        assert "DAgger round" in (tmp_path / "report.html").read_text()
    finally:
        index.unlink()
