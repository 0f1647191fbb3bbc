"""A stand-in for a trained model in the hardware-in-the-loop tests: a small CNN cloned
from the simulator's pure-pursuit expert (behaviour cloning with perturbed rollouts, so it
has seen recoveries), exported to full-integer TFLite. Built in the test with TensorFlow;
takes well under a minute on a laptop core. The lead runs the HIL with a PPO-trained
model as well."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vehicle.metadata import ModelMetadata, discrete_grid


def expert_dataset(track: str, n: int, seed: int = 0):
    from sim2real.pure_pursuit import PurePursuit, PurePursuitConfig
    from sim2real.world import World
    from tracks.catalogue import resolve

    space = discrete_grid(max_steer_deg=30.0, steer_levels=7, max_speed_mps=1.0, speed_levels=2)
    rng = np.random.default_rng(seed)
    world = World(resolve(track), rng=rng)
    expert = PurePursuit(world, PurePursuitConfig(max_speed_mps=1.0, min_speed_mps=0.5))
    obs = np.zeros((n, 120, 160, 1), np.uint8)
    labels = np.zeros(n, np.int64)
    world.place_on_centerline(float(rng.random()))
    noise_left = 0
    noise = 0.0
    for i in range(n):
        obs[i] = world.observe()
        labels[i] = int(expert.action_for(space))
        steer, speed = expert.command()
        if noise_left == 0 and rng.random() < 0.08:
            noise_left = int(rng.integers(2, 8))
            noise = float(rng.uniform(-25, 25))
        if noise_left:
            noise_left -= 1
            steer = float(np.clip(steer + noise, -30, 30))
        world.step(steer, min(max(speed, 0.5), 1.0))
        if not any(world.wheels_on_road()) or rng.random() < 0.003:
            world.place_on_centerline(float(rng.random()))
    return space, obs, labels


def build_expert_model(directory: Path, track: str = "beginner_oval", n: int = 5000, seed: int = 0):
    """Train, convert to int8 TFLite, write model.tflite + model_metadata.json."""
    import tensorflow as tf

    space, obs, labels = expert_dataset(track, n, seed)
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((120, 160, 1), name="observation")
    x = tf.keras.layers.Rescaling(1.0 / 255.0)(inp)
    x = tf.keras.layers.AveragePooling2D(2)(x)
    x = tf.keras.layers.Conv2D(16, 5, strides=2, activation="relu")(x)
    x = tf.keras.layers.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = tf.keras.layers.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(64, activation="relu")(x)
    out = tf.keras.layers.Dense(space.n, name="policy")(x)
    model = tf.keras.Model(inp, out)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    hist = model.fit(obs.astype(np.float32), labels, epochs=8, batch_size=64, verbose=0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)

    def rep():
        for k in range(0, 256, 4):
            yield [obs[k : k + 1].astype(np.float32)]

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.int8
    directory.mkdir(parents=True, exist_ok=True)
    tfl = directory / "model.tflite"
    tfl.write_bytes(conv.convert())
    meta = directory / "model_metadata.json"
    meta.write_text(json.dumps(ModelMetadata(action_space=space).to_json()))
    return tfl, meta, float(hist.history["accuracy"][-1])
