"""Compatibility, tested: the community library deepracer-utils loads DeepRacer-format
logs unchanged and its standard analysis calls run on them.

The fixtures here are written by tests/analysis/fixtures.py; once a real openracer run is
available the same checks run on one (test_openracer_run_loads_in_deepracer_utils).
"""

from __future__ import annotations

import pytest

from tests.analysis import fixtures
from tools.analysis.episodes import episode_table
from tools.analysis.logs import load_run

deepracer_logs = pytest.importorskip("deepracer.logs")


def _check_folder(folder, expect_eval=True):
    drl = deepracer_logs.DeepRacerLog(model_folder=str(folder))
    drl.load_training_trace()
    df = drl.dataframe()
    ours = load_run(folder)
    assert len(df) == len(ours.training)
    assert drl.hyperparameters()["batch_size"] == ours.hyperparameters["batch_size"]
    assert len(drl.action_space()) == len(ours.metadata["action_space"])
    agg = deepracer_logs.AnalysisUtils.simulation_agg(df, secondgroup="unique_episode")
    mine = episode_table(ours.training)
    assert len(agg) == len(mine)
    # same per-episode progress and completion as our own summary
    assert sorted(agg["progress"].round(3)) == sorted(mine["progress"].round(3))
    assert int(agg["complete"].sum()) == int(mine["complete"].sum())
    if expect_eval:
        drl_eval = deepracer_logs.DeepRacerLog(model_folder=str(folder))
        drl_eval.load_evaluation_trace()
        ev = deepracer_logs.AnalysisUtils.simulation_agg(
            drl_eval.dataframe(), "stream", is_eval=True
        )
        ours_ev = episode_table(ours.evaluation)
        assert len(ev) == len(ours_ev)
        assert sorted(ev["time"].round(3)) == sorted(ours_ev["time_s"].round(3))
    return drl


def test_drfc_fixture_loads_in_deepracer_utils(tmp_path):
    drl = _check_folder(fixtures.write_drfc(tmp_path / "model"))
    assert drl.fh.type.name == "DRFC_MODEL_SINGLE_WORKERS"
    metrics = deepracer_logs.TrainingMetrics(
        None, fname=str(tmp_path / "model" / "metrics" / "TrainingMetrics.json")
    )
    summary = metrics.getSummary()
    assert len(summary) > 0


def test_console_fixture_loads_in_deepracer_utils(tmp_path):
    folder = fixtures.write_console(tmp_path / "export")
    drl = _check_folder(folder)
    assert drl.fh.type.name == "CONSOLE_MODEL_WITH_LOGS"
    robomaker = deepracer_logs.DeepRacerLog(model_folder=str(folder))
    robomaker.load()  # the robomaker-log path of the console layout
    assert len(robomaker.dataframe()) == len(load_run(folder).training)
    assert robomaker.agent_and_network()["world"] == "stadium"


def test_multi_worker_fixture_loads_in_deepracer_utils(tmp_path):
    _check_folder(fixtures.write_multi(tmp_path / "multi"), expect_eval=False)


def test_droa_fixture_loads_in_deepracer_utils(tmp_path):
    drl = _check_folder(fixtures.write_droa(tmp_path / "droa"))
    assert drl.fh.type.name == "DROA_SOLUTION_LOGS"
