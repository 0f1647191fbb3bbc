"""vehicle.inference: real TFLite interpreters on tiny models built with TensorFlow here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.vehicle.tiny_models import write_model
from vehicle.errors import InferenceBackendError, ModelError
from vehicle.inference import Policy, default_backend
from vehicle.metadata import ActionSpace, ModelMetadata, console_default_action_space

pytest.importorskip("tensorflow")


def _obs(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (120, 160, 1), dtype=np.uint8)


@pytest.mark.parametrize("quant", ["float32", "int8"])
def test_discrete_policy_argmax_matches_outputs(tmp_path, quant):
    tfl, meta = write_model(tmp_path, quant=quant)
    policy = Policy.load(tfl, meta)
    assert policy.backend == default_backend() == "ai_edge_litert"
    space = console_default_action_space()
    for seed in range(5):
        steer, speed, raw = policy.act(_obs(seed))
        assert raw.shape == (10,) and raw.dtype == np.float32
        assert (steer, speed) == space.decode(int(np.argmax(raw)))


def test_int8_output_is_dequantized_close_to_float(tmp_path):
    f_tfl, f_meta = write_model(tmp_path / "f", quant="float32")
    q_tfl, q_meta = write_model(tmp_path / "q", quant="int8")
    f = Policy.load(f_tfl, f_meta).infer(_obs(3))
    q = Policy.load(q_tfl, q_meta).infer(_obs(3))
    assert np.max(np.abs(f - q)) < 0.1 * max(1.0, float(np.max(np.abs(f))))


def test_metadata_beside_model_is_found(tmp_path):
    tfl, _ = write_model(tmp_path)
    assert Policy.load(tfl).metadata.action_space.n == 10


def test_continuous_clip_and_rescale(tmp_path):
    space = ActionSpace(
        kind="continuous", steer_range_deg=(-20.0, 20.0), speed_range_mps=(0.5, 2.0)
    )
    tfl, meta = write_model(tmp_path, space=space)
    policy = Policy.load(tfl, meta)
    steer, speed, raw = policy.act(_obs(1))
    u = np.clip(raw[:2], -1, 1)
    assert steer == pytest.approx(-20 + (u[0] + 1) * 20)
    assert speed == pytest.approx(0.5 + (u[1] + 1) * 0.75)
    assert -20 <= steer <= 20 and 0.5 <= speed <= 2.0


def test_metadata_disagreeing_with_model_is_refused(tmp_path):
    tfl, _ = write_model(tmp_path, n_out=7)  # 7 outputs, metadata says 10 actions
    with pytest.raises(ModelError, match="do not match the discrete action space"):
        Policy.load(tfl)


def test_missing_and_corrupt_models_are_refused(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Policy.load(tmp_path / "nope.tflite", ModelMetadata())
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelError, match="not a loadable TFLite model"):
        Policy.load(bad, ModelMetadata())
    tfl, meta = write_model(tmp_path / "m")
    trunc = tmp_path / "trunc.tflite"
    trunc.write_bytes(tfl.read_bytes()[:2000])
    with pytest.raises(ModelError):
        Policy.load(trunc, meta)
    meta.write_text(json.dumps({"action_space": "oops"}))
    with pytest.raises(ModelError, match="action_space"):
        Policy.load(tfl, meta)
    (tmp_path / "m" / "model_metadata.json").unlink()
    with pytest.raises(ModelError, match="model_metadata.json not found"):
        Policy.load(tfl)


def test_wrong_observation_is_refused(tmp_path):
    tfl, meta = write_model(tmp_path)
    policy = Policy.load(tfl, meta)
    with pytest.raises(ModelError, match="preprocess"):
        policy.infer(np.zeros((120, 160, 3), np.uint8))


@pytest.mark.parametrize("backend", ["tensorflow"])
def test_fallback_backend_gives_same_outputs(tmp_path, backend):
    tfl, meta = write_model(tmp_path)
    a = Policy.load(tfl, meta).infer(_obs(2))
    b = Policy.load(tfl, meta, backend=backend).infer(_obs(2))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_unknown_backend_is_refused(tmp_path):
    tfl, meta = write_model(tmp_path)
    with pytest.raises(InferenceBackendError, match="not one of"):
        Policy.load(tfl, meta, backend="onnx")


def test_from_bytes(tmp_path):
    tfl, meta = write_model(tmp_path)
    p = Policy.from_bytes(tfl.read_bytes(), ModelMetadata())
    assert p.infer(_obs()).shape == (10,)


def test_load_policy_from_bundle_store_name_and_active(tmp_path):
    from vehicle.inference import load_tflite_policy
    from vehicle.models.bundle import write_bundle
    from vehicle.models.store import ModelStore

    tfl, meta = write_model(tmp_path / "m", quant="int8")
    bundle = tmp_path / "tiny.tar.gz"
    write_bundle(bundle, name="tiny", model_bytes=tfl.read_bytes(), metadata=ModelMetadata())
    obs = _obs(4)
    want = Policy.load(tfl, meta).infer(obs)
    np.testing.assert_array_equal(load_tflite_policy(bundle).infer(obs), want)
    store = ModelStore(tmp_path / "store")
    store.install(bundle, activate=True)
    np.testing.assert_array_equal(load_tflite_policy("tiny", store_dir=store.root).infer(obs), want)
    np.testing.assert_array_equal(load_tflite_policy(None, store_dir=store.root).infer(obs), want)
    with pytest.raises(ModelError, match="not in the store"):
        load_tflite_policy("other", store_dir=store.root)
    with pytest.raises(ModelError, match="no such model file"):
        load_tflite_policy(str(tmp_path / "missing.tar.gz"))
    (tmp_path / "junk.tar.gz").write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a usable model bundle"):
        load_tflite_policy(tmp_path / "junk.tar.gz")
