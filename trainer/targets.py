"""What `racer eval`, `racer race` and the benchmarks can evaluate, as a batch policy.

`policy_from_target(target, which)` turns a run directory, a model bundle or a `.tflite`
file into the greedy batch `PolicyFn` of `trainer.evaluate`: a uint8 batch (B, 120, 160, 1)
in, action indices (discrete) or (B, 2) values in [-1, 1] (continuous) out. A run's
checkpoint is a Keras model (TensorFlow is imported only then); a bundle or `.tflite` runs
in the car's TFLite interpreter (`vehicle.inference.Policy`), so evaluating or racing a
TFLite model never loads TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import EvaluationError


def policy_from_target(target: str, which: str) -> tuple[Any, Any, dict[str, Any], str | None]:
    """(policy_fn, ModelMetadata, info, run_dir or None) for `target`: a run directory
    (checkpoint `which`: best, last or an iteration; loads TensorFlow), a model bundle or
    a `.tflite` file with its `model_metadata.json` beside it (TFLite: no TensorFlow)."""
    path = Path(target)
    if path.is_dir():
        import tensorflow as tf

        from trainer.checkpoint import load_keras_policy

        model, metadata, info = load_keras_policy(path, int(which) if which.isdigit() else which)
        forward = tf.function(lambda x: model(x, training=False))
        discrete = metadata.action_space.kind == "discrete"

        def run_fn(obs: np.ndarray) -> np.ndarray:
            out = forward(tf.constant(obs)).numpy()
            return out.argmax(axis=1) if discrete else np.clip(out, -1.0, 1.0)

        info = {"checkpoint": info.get("iteration"), "checkpoint_path": info.get("path")}
        return run_fn, metadata, info, str(path)
    if not path.is_file():
        raise EvaluationError(f"{target}: no such run directory, bundle or .tflite file")
    from vehicle.inference import Policy

    if path.suffix == ".tflite":
        meta_path = path.with_name("model_metadata.json")
        policy = Policy.load(path, meta_path)
    else:
        from vehicle.models.bundle import read_bundle

        bundle = read_bundle(path)
        policy = Policy.from_bytes(bundle.model_bytes, bundle.metadata)
    metadata = policy.metadata
    discrete = metadata.action_space.kind == "discrete"

    def tflite_fn(obs: np.ndarray) -> np.ndarray:
        outs = [policy.infer(o) for o in obs]
        if discrete:
            return np.array([int(np.argmax(o)) for o in outs])
        return np.array([np.clip(o[:2], -1.0, 1.0) for o in outs])

    return tflite_fn, metadata, {"backend": policy.backend}, None
