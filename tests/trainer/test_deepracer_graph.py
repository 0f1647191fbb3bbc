"""DeepRacer's frozen graph: writing an openracer policy with DeepRacer's tensor names and
only the car's ops, reading it back by those names with tf.compat.v1, the OpenVINO
conversion the car makes, and every refusal of `racer models import` (exit 2, one line)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import tensorflow as tf  # noqa: E402

from tools.cli import main as racer  # noqa: E402
from trainer.deepracer_graph import (  # noqa: E402
    CAR_OPS,
    PPO_OUTPUT,
    SAC_OUTPUT,
    graph_from_keras,
    input_name,
    openvino_outputs,
    read_graph,
    session_outputs,
)
from trainer.errors import DeepRacerModelError  # noqa: E402
from trainer.networks import build_policy  # noqa: E402
from trainer.parity import keras_outputs  # noqa: E402
from vehicle.metadata import ModelMetadata, parse_metadata  # noqa: E402

CAMERA = "FRONT_FACING_CAMERA"
CONSOLE = ModelMetadata()  # DeepRacer's console default: discrete, SHALLOW


def frames(n: int, seed: int = 0) -> np.ndarray:
    """Smooth grey images (random frames are all near-ties for an untrained net)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:120, 0:160]
    out = [
        np.clip(128 + 90 * np.sin(x / rng.uniform(5, 30) + y / rng.uniform(5, 30)), 0, 255)
        for _ in range(n)
    ]
    return np.stack(out).astype(np.uint8)[..., None]


@pytest.fixture(scope="module")
def shallow():
    """A DeepRacer SHALLOW policy (the console default) with a decisive head, as a graph."""
    model = build_policy(CONSOLE, seed=3)
    weights = model.get_weights()
    weights[-2] = weights[-2] * 300.0
    model.set_weights(weights)
    return model, graph_from_keras(model, CAMERA)


def test_written_graph_has_deepracer_names_and_only_car_ops(shallow):
    _, data = shallow
    graph_def = tf.compat.v1.GraphDef.FromString(data)
    nodes = {n.name: n for n in graph_def.node}
    assert nodes[input_name(CAMERA)].op == "Placeholder"
    assert [d.size for d in nodes[input_name(CAMERA)].attr["shape"].shape.dim] == [-1, 120, 160, 1]
    assert nodes[PPO_OUTPUT].op == "Softmax"
    assert [n.name for n in graph_def.node if n.op == "Placeholder"] == [input_name(CAMERA)]
    assert {n.op for n in graph_def.node} <= CAR_OPS
    net = "main_level/agent/main/online/network_1"
    for name in (
        f"{net}/{CAMERA}/Conv2d_2/Conv2D",
        f"{net}/middleware_fc_embedder/Dense_0/MatMul",
        f"{net}/ppo_head_0/policy_fc/MatMul",
    ):
        assert name in nodes, name  # named as Coach names them
    assert sorted(n for n, node in nodes.items() if node.op in ("MatMul", "Conv2D")) == [
        f"{net}/{CAMERA}/Conv2d_{i}/Conv2D" for i in range(3)
    ] + [f"{net}/middleware_fc_embedder/Dense_0/MatMul", f"{net}/ppo_head_0/policy_fc/MatMul"]
    assert not any(n.op == "VarHandleOp" or n.op.startswith("Variable") for n in graph_def.node)


def test_written_graph_runs_like_keras_by_tensor_names_and_in_openvino(shallow, tmp_path):
    model, data = shallow
    x = frames(24)
    want = keras_outputs(model, x)
    np.testing.assert_allclose(session_outputs(data, x, CAMERA), want, atol=1e-5)
    read = read_graph(data, CAMERA, "clipped_ppo", "test")
    np.testing.assert_allclose(read(x).numpy(), want, atol=1e-5)
    assert read.interface.n_outputs == CONSOLE.action_space.n
    (tmp_path / "model.pb").write_bytes(data)
    got, info = openvino_outputs(tmp_path / "model.pb", x, CAMERA)
    assert info["fp16_weights"] and "Convolution" in info["ops"]
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.95
    np.testing.assert_allclose(got, want, atol=0.02)


def test_continuous_policy_writes_the_mean_as_policy(tmp_path):
    from dataclasses import replace

    meta = parse_metadata(
        {
            "action_space_type": "continuous",
            "action_space": {
                "steering_angle": {"low": -30, "high": 30},
                "speed": {"low": 1, "high": 3},
            },
        }
    )
    model = build_policy(replace(meta, neural_network="OPENRACER_LOWRES"), seed=1)
    data = graph_from_keras(model, CAMERA)
    nodes = {n.name: n.op for n in tf.compat.v1.GraphDef.FromString(data).node}
    assert nodes[PPO_OUTPUT] == "Identity" and "AvgPool" in nodes.values()
    x = frames(8)
    np.testing.assert_allclose(session_outputs(data, x, CAMERA), keras_outputs(model, x), atol=1e-5)


def tiny_graph(inputs: dict[str, int], output: str) -> bytes:
    """A TF1 graph with the given placeholders (name -> channels or vector size) and a
    softmax named `output` over 3 actions."""
    graph = tf.Graph()
    with graph.as_default():
        parts = []
        for name, size in inputs.items():
            shape = (
                (None, 120, 160, size)
                if "CAMERA" in name or "observation" in name
                else (None, size)
            )
            p = tf.compat.v1.placeholder(tf.float32, shape, name=name)
            parts.append(
                tf.reduce_mean(tf.reshape(p, (-1, int(np.prod(shape[1:])))), 1, keepdims=True)
            )
        x = tf.concat(parts, 1) if len(parts) > 1 else parts[0]
        tf.nn.softmax(tf.matmul(x, tf.ones((len(parts), 3))), name=output)
    return graph.as_graph_def().SerializeToString()


def model_folder(path: Path, graph: bytes, metadata: dict | None = None) -> Path:
    path.mkdir(parents=True)
    meta = metadata or {
        "action_space": [{"steering_angle": a, "speed": 1.0} for a in (-30, 0, 30)],
        "sensor": [CAMERA],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo",
        "action_space_type": "discrete",
        "version": "5",
    }
    (path / "model_metadata.json").write_text(json.dumps(meta))
    (path / "agent").mkdir()
    (path / "agent" / "model.pb").write_bytes(graph)
    return path


def import_error(capsys, folder: Path, *extra: str) -> str:
    code = racer(["models", "import", str(folder), "--out-dir", str(folder.parent / "out"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert not (folder.parent / "out").exists()  # nothing written
    return err[-1]


GOOD = tiny_graph({input_name(CAMERA): 1}, PPO_OUTPUT)


def test_import_refuses_a_corrupt_graph(tmp_path, capsys):
    line = import_error(capsys, model_folder(tmp_path / "m", GOOD[: len(GOOD) // 2]))
    assert "agent/model.pb" in line and "download the model again" in line


def test_import_refuses_unknown_tensor_names(tmp_path, capsys):
    renamed = tiny_graph({"input_image": 1}, PPO_OUTPUT)
    line = import_error(capsys, model_folder(tmp_path / "m", renamed))
    assert f"no input placeholder '{input_name(CAMERA)}'" in line and "['input_image']" in line
    no_head = tiny_graph({input_name(CAMERA): 1}, "main_level/agent/main/online/network_1/head/out")
    line = import_error(capsys, model_folder(tmp_path / "n", no_head))
    assert f"no output '{PPO_OUTPUT}'" in line


def test_import_refuses_sac_models(tmp_path, capsys):
    sac_in = "main_level/agent/policy/online/network_0/FRONT_FACING_CAMERA/FRONT_FACING_CAMERA"
    sac = tiny_graph({sac_in: 1}, SAC_OUTPUT)
    line = import_error(capsys, model_folder(tmp_path / "m", sac))  # metadata says PPO
    assert "SAC" in line and "not supported yet" in line
    meta = {
        "action_space": {
            "steering_angle": {"low": -30, "high": 30},
            "speed": {"low": 1, "high": 3},
        },
        "action_space_type": "continuous",
        "training_algorithm": "sac",
        "sensor": [CAMERA],
    }
    line = import_error(capsys, model_folder(tmp_path / "n", sac, meta))
    assert "training_algorithm 'sac'" in line and "not supported yet" in line


def test_import_refuses_multi_sensor_models(tmp_path, capsys):
    base = input_name(CAMERA)
    lidar = "main_level/agent/main/online/network_0/LIDAR/LIDAR"
    graph = tiny_graph({base: 1, lidar: 64}, PPO_OUTPUT)
    meta = json.loads(json.dumps({"action_space": [{"steering_angle": 0, "speed": 1}]}))
    meta["sensor"] = [CAMERA, "LIDAR"]
    line = import_error(capsys, model_folder(tmp_path / "m", graph, meta))
    assert "multi-sensor" in line and "LIDAR" in line
    meta["sensor"] = [CAMERA]  # the metadata hides it; the graph's inputs do not
    line = import_error(capsys, model_folder(tmp_path / "n", graph, meta))
    assert "multi-sensor" in line and "graph inputs" in line
    meta["sensor"] = ["STEREO_CAMERAS"]
    line = import_error(capsys, model_folder(tmp_path / "o", graph, meta))
    assert "multi-sensor" in line and "STEREO_CAMERAS" in line


def test_import_refuses_archive_layout_problems(tmp_path, capsys):
    folder = model_folder(tmp_path / "m", GOOD)
    (folder / "model_metadata.json").unlink()
    assert "no model_metadata.json" in import_error(capsys, folder)
    folder = model_folder(tmp_path / "n", GOOD)
    (folder / "agent" / "model.pb").unlink()
    assert "holds no frozen graph" in import_error(capsys, folder)
    folder = model_folder(tmp_path / "o", GOOD)
    (folder / "model_2.pb").write_bytes(GOOD)
    assert "choose with --graph" in import_error(capsys, folder)


def test_import_refuses_metadata_of_another_model(tmp_path, capsys):
    meta = {"action_space": [{"steering_angle": a, "speed": 1.0} for a in (-30, -15, 0, 15, 30)]}
    meta["sensor"] = [CAMERA]
    line = import_error(capsys, model_folder(tmp_path / "m", GOOD, meta))
    assert "gives 3 values per frame" in line and "another model" in line


def test_a_corrupt_tarball_is_one_line(tmp_path, capsys):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("agent/model.pb")
        info.size = len(GOOD)
        tar.addfile(info, io.BytesIO(GOOD))
    (tmp_path / "car.tar.gz").write_bytes(raw.getvalue()[:100])
    code = racer(
        ["models", "import", str(tmp_path / "car.tar.gz"), "--out-dir", str(tmp_path / "out")]
    )
    assert code == 2 and "cannot unpack it" in capsys.readouterr().err


def test_read_graph_names_an_empty_file():
    with pytest.raises(DeepRacerModelError, match="holds no operations"):
        read_graph(b"", CAMERA, "clipped_ppo", "empty.pb")


def test_import_refuses_a_name_too_long_for_a_bundle(tmp_path, capsys):
    line = import_error(capsys, model_folder(tmp_path / "m", GOOD), "--name", "n" * 60)
    assert "--name (with the format added)" in line and "not a valid model name" in line
