"""int8 quantization that earns its place: calibration on the frames the policy itself
sees, and a short distillation of the rounded network toward the float policy.

- `on_policy_frames` drives the float policy greedily from the start line (the
  `racer eval` path, `trainer.evaluate.evaluate`) under the run's training randomization
  and keeps every frame it saw: the car's own view, not random poses. Export calibrates
  int8 on these frames from seeds disjoint from the ones its parity laps use.
- `distill` is the fallback when post-training quantization does not drive like the float
  model: a copy of the policy whose forward pass rounds as TFLite's full-integer kernels do
  (per-channel symmetric int8 weights, 8-bit activations over the ranges the float model
  reaches on the calibration frames, TFLite's fixed output grids for tanh and softmax),
  trained for a few hundred steps, straight-through, to reproduce the float model's
  outputs. The result is an ordinary float Keras model that the converter quantizes again
  with the same calibration. Plain TensorFlow ops (`tf.quantization.fake_quant_*`), so it
  works with Keras 3, which the TensorFlow Model Optimization toolkit does not support.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from trainer.errors import ExportError
from vehicle.metadata import ModelMetadata


def recording(
    policy_fn: Callable[[np.ndarray], np.ndarray], frames: list[np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    """`policy_fn`, also appending every observation batch it is shown to `frames`."""

    def fn(batch: np.ndarray) -> np.ndarray:
        frames.append(np.array(batch, dtype=np.uint8))
        return policy_fn(batch)

    return fn


def on_policy_frames(
    policy_fn: Callable[[np.ndarray], np.ndarray],
    track: Any,
    randomize: str,
    metadata: ModelMetadata,
    n_frames: int,
    *,
    seed: int,
    laps_per_round: int = 10,
    max_rounds: int = 20,
) -> np.ndarray:
    """About `n_frames` (N, 120, 160, 1) uint8 frames the greedy `policy_fn` sees in time
    trials from the start line on `track` under `randomize`, evenly subsampled from rounds
    of `laps_per_round` laps (seeds `seed`, `seed + 1`, ...) until there are enough."""
    from trainer.evaluate import evaluate

    seen: list[np.ndarray] = []
    for r in range(max_rounds):
        evaluate(
            recording(policy_fn, seen),
            track,
            laps_per_round,
            randomize,
            metadata=metadata,
            seed=seed + r,
            parallel=3,
        )
        if sum(len(b) for b in seen) >= n_frames:
            break
    frames = np.concatenate(seen)
    if len(frames) > n_frames:
        frames = frames[np.linspace(0, len(frames) - 1, n_frames).round().astype(int)]
    return frames


_SUPPORTED = ("Rescaling", "AveragePooling2D", "Conv2D", "Flatten", "Dense", "Softmax")


def _chain(model: Any) -> list[Any]:
    """The model's layers in order (the policy networks are a single chain)."""
    chain = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    for layer in chain:
        if type(layer).__name__ not in _SUPPORTED:
            raise ExportError(
                f"int8 distillation does not know layer {layer.name!r} "
                f"({type(layer).__name__}); export without it (--no-distill) or use --float16"
            )
    return chain


def activation_ranges(
    model: Any, frames: np.ndarray, batch: int = 128
) -> list[tuple[float, float]]:
    """Per layer of the chain: the (min, max) of its output over `frames` (for a Dense
    layer with a tanh or softmax activation, of its linear output before it), always
    including 0 as TFLite's calibration does."""
    import tensorflow as tf

    chain = _chain(model)
    lo = [0.0] * len(chain)
    hi = [0.0] * len(chain)
    for i in range(0, len(frames), batch):
        x = tf.cast(tf.convert_to_tensor(frames[i : i + batch]), tf.float32)
        for k, layer in enumerate(chain):
            if type(layer).__name__ == "Dense" and layer.activation.__name__ != "relu":
                pre = tf.matmul(x, layer.kernel) + layer.bias
                lo[k], hi[k] = (
                    min(lo[k], float(tf.reduce_min(pre))),
                    max(hi[k], float(tf.reduce_max(pre))),
                )
                x = layer.activation(pre)
                continue
            x = layer(x)
            lo[k], hi[k] = min(lo[k], float(tf.reduce_min(x))), max(hi[k], float(tf.reduce_max(x)))
    return list(zip(lo, hi, strict=True))


def _rounded_forward(chain: list[Any], ranges: list[tuple[Any, Any]]) -> Callable[[Any], Any]:
    """The chain's forward pass with TFLite's int8 rounding simulated (see the module
    docstring); returns the pre-softmax logits for a softmax head."""
    import tensorflow as tf

    fq = tf.quantization.fake_quant_with_min_max_vars
    fq_channel = tf.quantization.fake_quant_with_min_max_vars_per_channel

    def weights(kernel: Any) -> Any:
        axes = list(range(len(kernel.shape) - 1))
        m = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(kernel), axis=axes), 1e-8))
        return fq_channel(kernel, -m, m, num_bits=8, narrow_range=True)

    def forward(x: Any) -> Any:
        x = tf.cast(x, tf.float32)
        for layer, (lo, hi) in zip(chain, ranges, strict=True):
            kind = type(layer).__name__
            if kind == "Softmax":
                return x  # logits: the loss compares distributions
            if kind == "Flatten":
                x = tf.reshape(x, (tf.shape(x)[0], -1))
                continue
            if kind == "Conv2D":
                x = (
                    tf.nn.conv2d(x, weights(layer.kernel), layer.strides, layer.padding.upper())
                    + layer.bias
                )
            elif kind == "Dense":
                x = tf.matmul(x, weights(layer.kernel)) + layer.bias
            else:
                x = layer(x)
            act = getattr(layer, "activation", None)
            name = act.__name__ if act is not None else "linear"
            if name == "relu":
                x = tf.nn.relu(x)
            x = fq(x, lo, hi, num_bits=8)
            if name == "tanh":  # TFLite's int8 tanh output: scale 1/128, zero point 0
                x = fq(tf.tanh(x), -1.0, 127.0 / 128.0, num_bits=8)
            elif name not in ("relu", "linear"):
                raise ExportError(f"int8 distillation does not know activation {name!r}")
        return x

    return forward


def distill(
    model: Any,
    frames: np.ndarray,
    kind: str,
    *,
    steps: int = 300,
    batch: int = 64,
    learning_rate: float = 3e-5,
    seed: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """A copy of the float policy `model` fine-tuned so that its int8-rounded forward pass
    reproduces `model`'s outputs on `frames` (see the module docstring); and the figures
    (steps, loss before and after). Every 100 steps and at the end the simulated ranges
    follow the student's own and the weights with the lowest loss so far are kept, so the
    result is never worse than the float model on `frames`."""
    import keras
    import tensorflow as tf

    student = keras.models.clone_model(model)
    student.set_weights(model.get_weights())
    chain = _chain(student)
    # The converter calibrates the distilled model's own ranges: follow them as it trains.
    ranges = [(tf.Variable(lo), tf.Variable(hi)) for lo, hi in activation_ranges(model, frames)]
    rounded = _rounded_forward(chain, ranges)

    def refresh_ranges() -> None:
        sample = frames[:: max(1, len(frames) // 500)]
        for (lo_var, hi_var), (lo, hi) in zip(
            ranges, activation_ranges(student, sample), strict=True
        ):
            lo_var.assign(lo)
            hi_var.assign(hi)

    reference = model.predict(frames, batch_size=128, verbose=0)
    variables = [v for layer in chain for v in layer.trainable_variables]
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    optimizer.build(variables)

    # Discrete: the rounded logits' grid step; the float model's choice must win by one.
    logit_range = ranges[-2] if type(chain[-1]).__name__ == "Softmax" else ranges[-1]

    def loss_fn(x: Any, y: Any) -> Any:
        out = rounded(x)
        if kind == "discrete":  # KL(float || rounded) + a hinge on the float model's choice
            logp = tf.nn.log_softmax(out)
            kl = tf.reduce_mean(tf.reduce_sum(y * (tf.math.log(y + 1e-12) - logp), axis=1))
            chosen = tf.one_hot(tf.argmax(y, axis=1), tf.shape(y)[1])
            top = tf.reduce_sum(out * chosen, axis=1)
            other = tf.reduce_max(out - 1e9 * chosen, axis=1)
            step = (logit_range[1] - logit_range[0]) / 255.0
            return kl + tf.reduce_mean(tf.nn.relu(step + other - top))
        return tf.reduce_mean(tf.square(out - y))

    @tf.function(reduce_retracing=True)
    def train_step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(x, y)
        grads = tape.gradient(loss, [v.value for v in variables])
        optimizer.apply(grads, variables)
        return loss

    def full_loss() -> float:
        return float(
            np.mean(
                [
                    loss_fn(frames[i : i + 256], reference[i : i + 256]).numpy()
                    for i in range(0, len(frames), 256)
                ]
            )
        )

    before = full_loss()
    best = (before, student.get_weights())
    rng = np.random.default_rng(seed)
    for k in range(1, steps + 1):
        idx = rng.choice(len(frames), size=min(batch, len(frames)), replace=False)
        train_step(tf.convert_to_tensor(frames[idx]), tf.convert_to_tensor(reference[idx]))
        if on_progress is not None:
            on_progress(1)
        if k % 100 == 0 or k == steps:  # follow the ranges; keep the best weights seen
            refresh_ranges()
            loss = full_loss()
            if loss < best[0]:
                best = (loss, student.get_weights())
    after = best[0]
    student.set_weights(best[1])
    return student, {
        "method": "distillation",
        "steps": steps,
        "batch": batch,
        "learning_rate": learning_rate,
        "frames": len(frames),
        "rounded_loss_before": before,
        "rounded_loss_after": after,
    }
