"""`racer export` and trainer.parity: real TFLite conversion of the real policy network,
parity on simulator frames, laps through the evaluation path, bundle written and
installable in the car's store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tools.cli import main as racer
from trainer.export import refusal_message
from trainer.parity import CONTINUOUS_TOLERANCE, compare, continuous_tolerance, judge_laps
from vehicle.models.bundle import read_bundle
from vehicle.models.store import ModelStore

pytest.importorskip("tensorflow")

SMALL = ["--representative-frames", "200", "--parity-frames", "200"]


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
            "0.95",  # an untrained network has near-ties a trained one rarely has
            *SMALL,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["agreement"] >= 0.95 and data["passed"] is True
    assert data["size_bytes"] == len(read_bundle(out).model_bytes)
    # int8 with float ends is about a quarter of float32
    assert 0.2 < data["size_bytes"] / data["float32_size_bytes"] < 0.35
    q = data["quantization"]
    assert q["input"]["dtype"] == "uint8" and q["input"]["shape"] == [1, 120, 160, 1]
    assert q["output"]["dtype"] == "float32"
    assert "FULLY_CONNECTED" in q["ops"] and "CONV_2D" in q["ops"]
    # discrete: the pixels, pooling, first convolution and the head in float32; the two
    # other convolutions and the hidden dense layer int8, per channel
    assert q["recipe"] == "int8 with a float head and first layer"
    assert q["float_ops"] == ["MUL", "AVERAGE_POOL_2D", "CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]
    assert q["kernels"] == q["per_channel_kernels"] == 3 and q["pixels_exact"] is True
    par = data["parity"]
    # agreement on the frames both models visited in their 10 laps; random poses beside
    assert par["frames_source"].startswith("on-policy") and par["frames"] >= 10
    assert par["held_out"]["frames"] == 200 and par["representative_frames"] == 200
    assert par["randomize"] == "standard" and par["method"] == "post-training"
    assert par["attempts"][0]["float_ends"] is True
    assert par["attempts"][0]["equalized"]["layer"] == "pi_dense4"
    for model in ("float", "tflite", "control"):
        lap = data["laps"][model]
        assert lap["trials"] == 10 and 0.0 <= lap["completion_pct"] <= 100.0
    lp = par["lap_parity"]
    assert lp["laps"] == 10 and lp["passed"] is True
    assert lp["tflite_laps"] >= lp["float_laps"]
    # The bundle carries the figures and provenance, and installs on the car.
    bundle = read_bundle(out)
    assert bundle.manifest["parity"]["agreement"] == data["agreement"]
    assert bundle.manifest["parity"]["lap_parity"] == lp
    assert bundle.manifest["source"]["iteration"] == 1
    assert bundle.manifest["source"]["tracks"] == ["reinvent_like"]
    assert bundle.metadata.extra["quantization"]["input"]["dtype"] == "uint8"
    assert bundle.metadata.neural_network == "OPENRACER_FAST"
    store = ModelStore(tmp_path / "store")
    store.install(out, activate=True)
    assert store.active().name == data["name"]
    # The car shows both figures.
    capsys.readouterr()
    assert racer(["models", "--store", str(store.root), "list"]) == 0
    listed = capsys.readouterr().out
    assert f"agreement {100 * data['agreement']:.2f}% on-policy" in listed
    assert f"laps {lp['tflite_laps']}/{lp['float_laps']} of float's" in listed
    assert "int8 (float ends)" in listed
    assert racer(["models", "--store", str(store.root), "info", data["name"]]) == 0
    info = capsys.readouterr().out
    assert "on-policy frames" in info and "lap parity   ok" in info and "laps control" in info
    assert "int8 (int8 with a float head and first layer: MUL, AVERAGE_POOL_2D" in info


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
def test_broken_int8_is_refused_with_both_figures_and_writes_nothing(
    run_dir, tmp_path, capsys, monkeypatch
):
    """A quantization that breaks 5 % of the decisions (simulated by corrupting the TFLite
    outputs, distillation included) must be refused, both figures named, no bundle written."""
    import trainer.parity as parity

    real = parity.tflite_outputs

    def broken(policy, frames):
        out = real(policy, frames)
        bad = np.arange(len(out)) % 20 == 0
        out[bad] = np.roll(out[bad], 1, axis=1)  # another action wins on those frames
        return out

    monkeypatch.setattr(parity, "tflite_outputs", broken)
    out = tmp_path / "bad.tar.gz"
    args = ["export", str(run_dir), "--int8", "--out", str(out), *SMALL, "--distill-steps", "5"]
    code = racer(args)
    captured = capsys.readouterr()
    assert code == 2
    err = [ln for ln in captured.err.splitlines() if ln.startswith("racer export: error:")]
    assert len(err) == 1, captured.err
    assert "on-policy agreement" in err[0] and "(needs 99.5%: FAILED)" in err[0]
    assert "lap parity" in err[0] and "nothing written" in err[0]
    assert "post-training, distillation, float dense layers" in err[0]
    assert "agreement" in captured.out  # the figures are printed
    assert not out.exists() and not list(tmp_path.iterdir())
    # --allow-parity-loss writes it, flagged as not passed, with every attempt's figures.
    assert racer([*args, "--allow-parity-loss"]) == 0
    manifest = read_bundle(out).manifest["parity"]
    assert manifest["passed"] is False
    methods = [a["method"] for a in manifest["attempts"]]
    assert methods == ["post-training", "distillation", "float dense layers"]
    assert manifest["attempts"][2]["equalized"] is None
    assert read_bundle(out).manifest["quantization"]["recipe"] == (
        "int8 with float first and dense layers"
    )


def test_judge_laps_leaves_out_laps_the_float_control_does_not_share():
    from trainer.evaluate import EvalReport, LapResult

    def report(done, times):
        laps = tuple(
            LapResult(i, d, 100.0 if d else 40.0, t, 0 if d else 1, "", 0, 0.0)
            for i, (d, t) in enumerate(zip(done, times, strict=True))
        )
        return EvalReport(track="t", laps=laps)

    float_ = report([1, 1, 0, 1], [10.0, 10.0, 4.0, 10.0])
    control = report([1, 1, 1, 1], [10.0, 10.0, 10.0, 10.0])  # lap 2 is a knife edge
    same = judge_laps(float_, report([1, 1, 0, 1], [10.1, 10.1, 4.0, 10.1]), control)
    assert same["passed"] and same["undetermined"] == [2] and same["float_laps"] == 3
    assert same["lap_time_diff"] == pytest.approx(0.01)
    lost = judge_laps(float_, report([1, 0, 1, 1], [10.0, 4.0, 10.0, 10.0]), control)
    assert not lost["passed"] and lost["tflite_laps"] == 2 and lost["float_laps"] == 3
    assert lost["strict_passed"]  # over every lap it finished as many: only the rule differs
    slow = judge_laps(float_, report([1, 1, 0, 1], [10.3, 10.3, 4.0, 10.3]), control)
    assert not slow["passed"] and slow["lap_time_diff"] == pytest.approx(0.03)
    msg = refusal_message(
        [
            {
                "method": "post-training",
                "agreement": 0.999,
                "frames": 800,
                "agreement_passed": True,
                "lap_parity": lost,
            }
        ],
        0.995,
    )
    assert "on-policy agreement 99.90% of 800 frames (needs 99.5%: ok)" in msg
    assert "lap parity 2 laps vs the float model's 3 of 3 determined" in msg
    assert "1 undetermined left out" in msg and "FAILED" in msg


def test_continuous_tolerance_is_what_the_car_does():
    from vehicle.metadata import ActionSpace

    space = ActionSpace(
        kind="continuous", steer_range_deg=(-30.0, 30.0), speed_range_mps=(1.0, 4.0)
    )
    steer, speed = continuous_tolerance(space)
    lo = np.array(space.decode(np.array([0.2, 0.2])))
    hi = np.array(space.decode(np.array([0.2 + steer, 0.2 + speed])))
    assert hi - lo == pytest.approx([1.5, 0.08])


def test_bad_options_are_one_line_errors(run_dir, tmp_path, capsys):
    assert racer(["export", str(run_dir), "--int8", "--representative-frames", "10"]) == 2
    assert "too few to calibrate" in capsys.readouterr().err
    assert racer(["export", str(tmp_path / "nope"), "--int8"]) == 2
    assert "run directory not found" in capsys.readouterr().err


def _importable(name: str) -> bool:
    import importlib

    try:
        importlib.import_module(name)
    except Exception:  # tflite_runtime 2.14 imports but breaks under numpy 2
        return False
    return True


@pytest.mark.parametrize(
    "backend",
    [
        "ai_edge_litert",
        pytest.param(
            "tflite_runtime",
            marks=pytest.mark.skipif(
                not _importable("tflite_runtime.interpreter"),
                reason="tflite-runtime 2.14 (newest; cp311 wheels only) needs numpy<2, the "
                "lock has numpy 2: install it on a car venv with numpy<2 to run this",
            ),
        ),
    ],
)
def test_every_format_runs_in_each_car_runtime(run_dir, backend):
    """The bytes export writes, in each format, load and agree with Keras in the car's
    interpreter, through ai-edge-litert and (where installable) tflite-runtime."""
    from trainer.checkpoint import load_keras_policy
    from trainer.export import convert
    from trainer.parity import keras_outputs
    from vehicle.inference import Policy

    model, meta, _ = load_keras_policy(run_dir, "best")
    frames = np.random.default_rng(0).integers(0, 256, (32, 120, 160, 1), dtype=np.uint8)
    ref = keras_outputs(model, frames)
    for fmt, ends, tol in (
        ("float32", False, 1e-4),
        ("float16", False, 0.02),
        ("int8", False, 0.1),
        ("int8", True, 0.1),
    ):
        model_bytes = convert(model, fmt, frames, float_ends=ends)
        policy = Policy.from_bytes(model_bytes, meta, backend=backend)
        assert policy.backend == backend
        out = np.stack([policy.infer(f) for f in frames])
        assert np.abs(out - ref).max() < tol, (fmt, ends, np.abs(out - ref).max())


def test_near_ties_survive_int8_with_float_ends(run_dir):
    """The measured failure of discrete policies: two actions nearly tied on many frames (a
    trained policy choosing between neighbouring steering angles) while the others' logits
    sit far below. Full-integer int8 rounds the logits to one grid sized by that whole
    range and flips the near-ties; the export's recipe for discrete policies (float ends,
    the hidden layer equalized) keeps the decisions the on-policy rule asks for."""
    import keras

    from trainer.checkpoint import load_keras_policy
    from trainer.export import convert, quantization_info
    from trainer.parity import MIN_ON_POLICY_AGREEMENT, keras_outputs
    from trainer.quantize import equalize_head, float_ends
    from vehicle.inference import Policy

    model, meta, _ = load_keras_policy(run_dir, "best")
    rng = np.random.default_rng(1)
    frames = np.clip(
        128 + np.cumsum(rng.integers(-12, 13, (300, 120, 160, 1)), axis=2), 0, 255
    ).astype(np.uint8)
    calibration, test = frames[:100], frames[100:]
    hidden = keras.Model(model.inputs, model.layers[-3].output)
    h_cal, h_test = (hidden.predict(f, verbose=0) for f in (calibration, test))
    head = model.layers[-2]
    units, n = head.kernel.shape
    common = np.random.default_rng(0).normal(size=units)
    # the gap follows what varies most between frames, as a trained policy's choices do
    apart = np.linalg.svd(h_cal - h_cal.mean(0), full_matrices=False)[2][0]
    p = h_test @ apart
    c = 0.18 / (p.max() - p.min())
    kernel = np.zeros((units, n))
    kernel[:, 0] = common * 10.0 / np.std(h_cal @ common)  # logits spread over about +-30
    kernel[:, 1] = kernel[:, 0] + c * apart  # action 1 wins by 0.02-0.2 on every frame
    bias = np.full(n, -80.0)  # the other actions far below
    bias[0] = -float(np.mean(h_cal @ kernel[:, 0]))
    bias[1] = bias[0] + 0.02 - c * p.min()
    head.kernel.assign(kernel.astype(np.float32))
    head.bias.assign(bias.astype(np.float32))
    ref = keras_outputs(model, test)

    def agreement(model_bytes: bytes) -> float:
        policy = Policy.from_bytes(model_bytes, meta)
        out = np.stack([policy.infer(f) for f in test])
        return compare(ref, out, "discrete").agreement

    assert float_ends(meta.action_space.kind)
    full_integer = convert(model, "int8", calibration)
    assert quantization_info(full_integer, "int8")["recipe"] == "full-integer int8"
    assert agreement(full_integer) < 0.95
    equalized, _ = equalize_head(model, calibration)
    assert np.abs(keras_outputs(equalized, test) - ref).max() < 1e-4  # the same function
    ends = convert(equalized, "int8", calibration, float_ends=True)
    assert agreement(ends) >= MIN_ON_POLICY_AGREEMENT


def test_rounded_forward_is_what_tflite_computes_and_distillation_lowers_its_loss(run_dir):
    """The distillation's simulated int8 forward pass matches the converter's real int8
    model (so training it means something), and a few steps lower its loss."""
    import tensorflow as tf

    from trainer.checkpoint import load_keras_policy
    from trainer.export import convert
    from trainer.parity import keras_outputs
    from trainer.quantize import _chain, _rounded_forward, activation_ranges, distill
    from vehicle.inference import Policy

    model, meta, _ = load_keras_policy(run_dir, "best")
    rng = np.random.default_rng(1)
    # smooth frames (a random walk along each row), closer to camera images than noise
    frames = np.clip(
        128 + np.cumsum(rng.integers(-12, 13, (96, 120, 160, 1)), axis=2), 0, 255
    ).astype(np.uint8)
    ranges = [(tf.constant(lo), tf.constant(hi)) for lo, hi in activation_ranges(model, frames)]
    for ends in (False, True):  # full-integer, and with the float ends of discrete policies
        forward = _rounded_forward(_chain(model), ranges, float_ends=ends)
        simulated = tf.nn.softmax(forward(frames)).numpy()
        int8 = Policy.from_bytes(convert(model, "int8", frames, float_ends=ends), meta)
        real = np.stack([int8.infer(f) for f in frames])
        assert np.abs(simulated - real).mean() < 0.01
        assert np.mean(simulated.argmax(1) == real.argmax(1)) >= 0.9
        assert np.mean(keras_outputs(model, frames).argmax(1) == real.argmax(1)) >= 0.9
    student, figures = distill(model, frames, "discrete", steps=20, float_ends=True)
    assert figures["rounded_loss_after"] <= figures["rounded_loss_before"]
    assert len(student.get_weights()) == len(model.get_weights())
