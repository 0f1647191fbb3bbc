"""Loading DeepRacer-format run folders: our loader and deepracer-utils agree on them."""

from __future__ import annotations

import pytest

from tests.analysis import fixtures
from tools.analysis.episodes import best_laps, episode_table, iteration_table
from tools.analysis.errors import LogFolderError
from tools.analysis.logs import detect_layout, load_run, parse_sim_trace_lines


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("logs")
    return {
        "drfc": fixtures.write_drfc(base / "drfc-model"),
        "console": fixtures.write_console(base / "console-export"),
        "multi": fixtures.write_multi(base / "drfc-multi"),
    }


def test_layouts_are_detected_in_deepracer_utils_order(folders):
    assert detect_layout(folders["drfc"]) == "drfc"
    assert detect_layout(folders["console"]) == "console"
    assert detect_layout(folders["multi"]) == "drfc-multi"


def test_drfc_folder_loads_steps_metadata_and_metrics(folders):
    run = load_run(folders["drfc"])
    assert run.layout == "drfc"
    assert sorted(run.training["iteration"].unique()) == [0, 1, 2, 3]
    assert {"x", "y", "steering_angle", "speed", "on_track", "unique_episode"} <= set(
        run.training.columns
    )
    assert run.training["done"].dtype == bool
    assert run.training["unique_episode"].nunique() == 40
    assert run.evaluation["stream"].unique().tolist() == ["20261122031500"]
    assert len(run.metadata["action_space"]) == 10
    assert run.hyperparameters["num_episodes_between_training"] == 10
    assert set(run.metrics["phase"]) == {"training", "evaluation"}
    assert run.track_length_m == pytest.approx(17.42, abs=0.01)
    assert "reward_function" in run.reward_source


def test_episode_and_iteration_tables(folders):
    run = load_run(folders["drfc"])
    eps = episode_table(run.training)
    assert len(eps) == 40
    first = eps.iloc[0]
    rows = run.training[run.training["unique_episode"] == first["episode"]]
    assert first["steps"] == len(rows)
    assert first["reward"] == pytest.approx(rows["reward"].sum())
    assert first["time_s"] == pytest.approx(rows["tstamp"].iloc[-1] - rows["tstamp"].iloc[0])
    assert first["status"] == rows["episode_status"].iloc[-1]
    iters = iteration_table(eps)
    assert iters["episodes"].tolist() == [10, 10, 10, 10]
    assert iters["completion_rate"].iloc[-1] > iters["completion_rate"].iloc[0]
    assert (iters[["lap_complete", "off_track", "other"]].sum(axis=1) == 10).all()
    best = best_laps(eps, 2)
    assert best["lap_time_s"].is_monotonic_increasing and best["complete"].all()
    ev = episode_table(run.evaluation)
    assert len(ev) == 3 and ev["complete"].all()
    assert (ev["lap_time_s"] > 20).all()


def test_console_export_reads_csvs_and_declares_its_world(folders):
    run = load_run(folders["console"])
    assert run.layout == "console"
    assert run.track_hint == "stadium"
    assert run.training["iteration"].nunique() == 3
    assert run.evaluation is not None


def test_console_robomaker_log_lines_parse_like_the_csvs(folders):
    log = next((folders["console"] / "logs" / "training").glob("*-robomaker.log"))
    with log.open() as fh:
        from_log = parse_sim_trace_lines(fh, episodes_per_iteration=10)
    from_csv = load_run(folders["console"]).training
    assert len(from_log) == len(from_csv)
    assert from_log["x"].round(4).tolist() == from_csv["x"].round(4).tolist()
    assert from_log["iteration"].max() == 2


def test_multi_worker_unique_episodes(folders):
    run = load_run(folders["multi"])
    assert run.training["worker"].nunique() == 2
    # 5 episodes per worker per iteration, 3 iterations
    assert run.training["unique_episode"].nunique() == 30


def test_bad_folders_are_loud(tmp_path):
    with pytest.raises(LogFolderError, match="no DeepRacer log layout"):
        load_run(tmp_path)
    with pytest.raises(LogFolderError, match="not a folder"):
        load_run(tmp_path / "missing")
    bad = tmp_path / "bad" / "training-simtrace"
    bad.mkdir(parents=True)
    (bad / "0-iteration.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LogFolderError, match="lacks column"):
        load_run(tmp_path / "bad")


def test_droa_export_layout(tmp_path):
    folder = fixtures.write_droa(tmp_path / "droa")
    run = load_run(folder)
    assert run.layout == "droa"
    assert run.training["iteration"].nunique() == 2
    assert run.evaluation["stream"].unique().tolist() == ["20261122033000"]


def test_console_download_archive_loads(folders, tmp_path):
    import tarfile

    archive = tmp_path / "my-model-logs.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folders["console"], arcname="my-model")
    run = load_run(archive)
    assert run.layout == "console" and run.name == "my-model-logs"
    assert len(run.training) == len(load_run(folders["console"]).training)
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tf:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 0
        tf.addfile(info)
    with pytest.raises(LogFolderError, match="cannot unpack"):
        load_run(evil)
