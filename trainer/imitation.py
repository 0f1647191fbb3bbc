"""Optional imitation warm start: behaviour cloning from the simulator's pure-pursuit expert.

Off by default (`TrainConfig.imitation_episodes = 0`); when used, `racer train` says so
before training and the run records it (`checkpoints/index.json` key `imitation`, and
the `imitation/*` TensorBoard scalars), so a result is never mistaken for pure PPO.

The expert's frames come from `trainer.expert_data` (simulator processes, NumPy only).
Loss: cross-entropy to the expert's action (discrete) or squared error of the mean
(continuous), with its own Adam so PPO's optimizer state starts clean.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


def behaviour_clone(
    learner: Any,
    obs: np.ndarray,
    actions: np.ndarray,
    rng: np.random.Generator,
    *,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 1e-3,
) -> dict[str, float]:
    """Fit the learner's policy to the expert; returns the final loss and accuracy."""
    model = learner.nets.policy_logits
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    discrete = learner.discrete

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            if discrete:
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out)
                )
                hit = tf.reduce_mean(tf.cast(tf.argmax(out, axis=1) == y, tf.float32))
            else:
                loss = tf.reduce_mean(tf.square(out - y))
                hit = tf.reduce_mean(tf.cast(tf.reduce_all(tf.abs(out - y) < 0.1, 1), tf.float32))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss, hit

    y_all = actions.astype(np.int64) if discrete else actions.astype(np.float32)
    n = len(obs)
    size = min(batch_size, n)
    loss = hit = 0.0
    for _ in range(epochs):
        order = rng.permutation(n)
        losses, hits = [], []
        for start in range(0, n - size + 1, size):
            idx = np.sort(order[start : start + size])
            l_, h_ = step(tf.constant(obs[idx]), tf.constant(y_all[idx]))
            losses.append(float(l_))
            hits.append(float(h_))
        loss, hit = float(np.mean(losses)), float(np.mean(hits))
    out = {"loss": loss, "accuracy": hit, "samples": float(n), "epochs": float(epochs)}
    if not discrete:
        # The spread of the expert's actions around the fitted mean: the maximum-likelihood
        # standard deviation of a Gaussian policy with this mean (per action dimension).
        sample = rng.choice(n, size=min(n, 2048), replace=False)
        mean = np.concatenate(
            [
                model(obs[sample[i : i + 256]], training=False).numpy()
                for i in range(0, len(sample), 256)
            ]
        )
        residual = np.sqrt(np.mean((mean - y_all[sample]) ** 2, axis=0))
        out["residual_std_steer"], out["residual_std_speed"] = (float(r) for r in residual)
    return out
