"""Tiny TFLite models built with TensorFlow for the car-runtime tests (tests may import TF;
the car code may not). Cached per process, written to a caller-chosen directory."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from vehicle.metadata import ActionSpace, ModelMetadata, console_default_action_space


def _keras_model(n_out: int, seed: int = 0):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((120, 160, 1), name="observation")
    x = tf.keras.layers.Rescaling(1.0 / 255.0)(inp)
    x = tf.keras.layers.AveragePooling2D(8)(x)
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = tf.keras.layers.Flatten()(x)
    out = tf.keras.layers.Dense(n_out, name="policy")(x)
    return tf.keras.Model(inp, out)


@functools.cache
def tflite_bytes(n_out: int, quant: str = "float32", seed: int = 0) -> bytes:
    """A tiny CNN (120x160x1 -> n_out) as TFLite bytes; quant 'float32' or 'int8'
    (full-integer, uint8 input, int8 output)."""
    import tensorflow as tf

    model = _keras_model(n_out, seed)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant == "int8":
        rng = np.random.default_rng(seed)

        def rep():
            for _ in range(16):
                yield [rng.integers(0, 256, (1, 120, 160, 1)).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.int8
    return conv.convert()


def write_model(
    directory: Path,
    space: ActionSpace | None = None,
    quant: str = "float32",
    seed: int = 0,
    n_out: int | None = None,
) -> tuple[Path, Path]:
    """Write model.tflite + model_metadata.json into `directory`; returns both paths."""
    space = space or console_default_action_space()
    n = n_out if n_out is not None else (space.n if space.kind == "discrete" else 2)
    directory.mkdir(parents=True, exist_ok=True)
    tfl = directory / "model.tflite"
    tfl.write_bytes(tflite_bytes(n, quant, seed))
    meta = directory / "model_metadata.json"
    meta.write_text(json.dumps(ModelMetadata(action_space=space).to_json()))
    return tfl, meta
