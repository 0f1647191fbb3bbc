"""Compatibility, tested: the community library deepracer-utils loads DeepRacer-format
logs unchanged and its standard analysis calls run on them.

The fixtures here are written by tests/analysis/fixtures.py; once a real openracer run is
available the same checks run on one (test_openracer_run_loads_in_deepracer_utils). The
second half reads deepracer-utils' own sample log sets (tests/analysis/data/deepracer-utils,
MIT, attribution in its README) with both readers.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

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


# -------------------------------------------------- deepracer-utils' own sample log sets
# tests/analysis/data/deepracer-utils/: a subset of deepracer-utils' test logs (MIT; see
# the README there). Step counts must equal deepracer-utils' reading of the same files.

SAMPLES = Path(__file__).parent / "data" / "deepracer-utils"


def _utils_log(path: Path):
    if path.name.endswith(".tar.gz"):
        return deepracer_logs.DeepRacerLog(filehandler=deepracer_logs.TarFileHandler(str(path)))
    return deepracer_logs.DeepRacerLog(model_folder=str(path))


@pytest.mark.parametrize(
    "name, layout, training_steps, evaluation_steps, track",
    [
        ("sample-drfc-1-logs", "drfc", 1074, 650, None),
        ("sample-drfc-3-logs", "drfc-multi", 748, 714, None),
        ("sample-console-logs", "console", 1006, 737, "reinvent_base"),
        ("sample-droa-solution-logs.tar.gz", "droa", 846, 1302, "Spain_track"),
        ("sample-droa-eval-only.tar.gz", "droa", None, 1302, "Spain_track"),
    ],
)
def test_deepracer_utils_sample_sets_read_as_deepracer_utils_reads_them(
    name, layout, training_steps, evaluation_steps, track
):
    ours = load_run(SAMPLES / name)
    assert ours.layout == layout and ours.track_hint == track
    if training_steps is None:
        assert ours.training is None
    else:
        drl = _utils_log(SAMPLES / name)
        drl.load_training_trace()
        assert len(drl.dataframe()) == len(ours.training) == training_steps
        theirs = deepracer_logs.AnalysisUtils.simulation_agg(
            drl.dataframe(), secondgroup="unique_episode"
        )
        assert len(theirs) == len(episode_table(ours.training))
    drl = _utils_log(SAMPLES / name)
    drl.load_evaluation_trace()
    assert len(drl.dataframe()) == len(ours.evaluation) == evaluation_steps


def test_console_training_from_the_robomaker_log_matches_deepracer_utils():
    folder = SAMPLES / "sample-console-logs"
    drl = _utils_log(folder)
    drl.load_robomaker_logs()
    assert len(drl.dataframe()) == len(load_run(folder).training)


def test_continuous_archive_without_simtrace_csvs_reads_the_simulation_log(tmp_path):
    archive = SAMPLES / "sample-continuous-action-logs-no-simtrace.tar.gz"
    ours = load_run(archive)
    assert ours.layout == "droa" and ours.track_hint == "reInvent2019_wide_cw"
    assert ours.evaluation is None and (ours.training["action"] == -1).all()
    assert any("SIM_TRACE_LOG" in note for note in ours.notes)
    with tarfile.open(archive) as tf:  # deepracer-utils reads it unpacked
        tf.extractall(tmp_path, filter="data")
    drl = deepracer_logs.DeepRacerLog(model_folder=str(next(tmp_path.iterdir())))
    drl.load_robomaker_logs()
    theirs = drl.dataframe()
    assert len(theirs) == len(ours.training) == 1805
    assert sorted(theirs["speed"].round(2)) == sorted(ours.training["speed"].round(2))
