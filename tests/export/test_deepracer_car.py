"""`racer export RUN --deepracer-car`: the archive a stock AWS DeepRacer car loads, converted
with OpenVINO as the car converts it and loaded with tf.compat.v1 by the tensor names; and
the round trip openracer -> DeepRacer archive -> `racer models import` -> same actions."""

from __future__ import annotations

import json
import tarfile

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("openvino")

from tests.export.test_export import make_run  # noqa: E402
from tools.cli import main as racer  # noqa: E402
from trainer.parity import compare, keras_outputs, simulator_frames, tflite_outputs  # noqa: E402
from vehicle.inference import Policy  # noqa: E402
from vehicle.models.bundle import read_bundle  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "car-run")


def test_car_archive_converts_with_openvino_and_round_trips(run_dir, tmp_path, capsys):
    archive = tmp_path / "car-run.tar.gz"
    code = racer(
        [
            "export",
            str(run_dir),
            "--deepracer-car",
            "--out",
            str(archive),
            "--parity-frames",
            "300",
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["passed"] and data["archive"] == str(archive)
    ov = data["openvino"]
    assert ov["frames"] == 300 and ov["agreement"] >= 0.995 and ov["fp16_weights"]
    assert data["tf_compat_v1"]["agreement"] == 1.0 and data["tf_compat_v1"]["max_abs_error"] < 1e-4
    with tarfile.open(archive) as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}
        assert set(files) == {"model_metadata.json", "agent/model.pb"}
        meta = json.loads(tar.extractfile(files["model_metadata.json"]).read())
    run_meta = json.loads((run_dir / "model" / "model_metadata.json").read_text())
    assert meta["action_space"] == run_meta["action_space"]
    assert meta["sensor"] == ["FRONT_FACING_CAMERA"] and meta["training_algorithm"] == "clipped_ppo"

    out = tmp_path / "imported"
    code = racer(
        ["models", "import", str(archive), "--out-dir", str(out), "--name", "round-trip",
         "--representative-frames", "200", "--parity-frames", "200", "--laps", "0", "--json"]
    )  # fmt: skip
    imported = json.loads(capsys.readouterr().out)
    assert code == 0 and imported["archive"]["graph"] == "agent/model.pb"

    # same actions as the Keras policy the run holds, on frames neither step saw
    from trainer.checkpoint import load_keras_policy
    from trainer.evaluate import env_kwargs_for

    model, metadata, _ = load_keras_policy(run_dir)
    frames = simulator_frames(
        model, metadata, env_kwargs_for("reinvent_like", metadata, "standard"), 200, seed=99
    )
    want = keras_outputs(model, frames)
    for fmt, least in (("float16", 0.995), ("int8", 0.99)):
        bundle = read_bundle(out / f"round-trip-{fmt}.tar.gz")
        assert bundle.manifest["source"]["imported_from"] == "deepracer"
        assert bundle.metadata.action_space == metadata.action_space
        got = tflite_outputs(Policy.from_bytes(bundle.model_bytes, bundle.metadata), frames)
        assert compare(want, got, "discrete").agreement >= least, fmt


def test_a_converter_that_disagrees_is_refused_and_nothing_written(
    run_dir, tmp_path, monkeypatch, capsys
):
    import trainer.deepracer_graph as graph

    real = graph.openvino_outputs

    def reversed_actions(path, frames, sensor):
        out, info = real(path, frames, sensor)
        return out[:, ::-1].copy(), info  # every decisive choice moves to another action

    monkeypatch.setattr(graph, "openvino_outputs", reversed_actions)
    archive = tmp_path / "car.tar.gz"
    code = racer(
        ["export", str(run_dir), "--deepracer-car", "--out", str(archive), "--parity-frames", "100"]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        code == 2 and "OpenVINO-converted graph agrees" in err and "below the 99.5% required" in err
    )
    assert not archive.exists() and not list(tmp_path.iterdir())

    # --min-agreement is the car export's threshold too: at 0 the same graph is written
    code = racer(["export", str(run_dir), "--deepracer-car", "--out", str(archive),
                  "--parity-frames", "100", "--min-agreement", "0", "--json"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["passed"] and data["openvino"]["agreement"] < 0.995
    assert archive.exists()


def test_min_agreement_outside_0_to_1_is_refused_with_deepracer_car(run_dir, tmp_path, capsys):
    code = racer(["export", str(run_dir), "--deepracer-car", "--min-agreement", "1.5",
                  "--out", str(tmp_path / "a.tar.gz")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--min-agreement 1.5 must be between 0 and 1" in err
    assert not list(tmp_path.iterdir())


def test_import_writes_what_passes_and_refuses_a_broken_int8(
    run_dir, tmp_path, monkeypatch, capsys
):
    import trainer.parity as parity
    from trainer.checkpoint import load_keras_policy
    from trainer.deepracer_archive import write_car_archive
    from trainer.deepracer_graph import graph_from_keras

    model, metadata, _ = load_keras_policy(run_dir)
    archive = write_car_archive(
        tmp_path / "car.tar.gz", metadata.to_json(), graph_from_keras(model)
    )
    real = parity.simulator_frames

    def black_calibration(model, metadata, env_kwargs, n, *, seed, **kw):
        frames = real(model, metadata, env_kwargs, n, seed=seed, **kw)
        return frames * 0 if seed % 2 else frames  # int8 calibrated on black frames only

    monkeypatch.setattr(parity, "simulator_frames", black_calibration)
    out = tmp_path / "out"
    argv = ["models", "import", str(archive), "--out-dir", str(out), "--name", "b", "--laps", "0",
            "--representative-frames", "200", "--parity-frames", "100", "--json"]  # fmt: skip
    code = racer(argv)
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    err = captured.err.strip().splitlines()[-1]
    assert code == 2 and not data["passed"]
    assert (
        data["formats"]["int8"]["parity"]["agreement"]
        < 0.995
        <= data["formats"]["float16"]["parity"]["agreement"]
    )
    assert "the int8 model agrees with the original graph on" in err and "not written" in err
    assert sorted(p.name for p in out.iterdir()) == ["b-float16.tar.gz"]
    assert read_bundle(out / "b-float16.tar.gz").manifest["parity"]["passed"] is True


def test_bundle_only_options_are_refused_with_deepracer_car(run_dir, tmp_path, capsys):
    code = racer(
        [
            "export",
            str(run_dir),
            "--deepracer-car",
            "--sign",
            "k.key",
            "--out",
            str(tmp_path / "a.tar.gz"),
        ]
    )
    assert code == 2 and "--sign cannot go with --deepracer-car" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
