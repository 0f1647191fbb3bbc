"""The policy and value networks, in Keras, built from TFLite-convertible ops only.

Stable contract for export (trainer/export.py) and evaluation:

- `build_policy(metadata) -> keras.Model`: input uint8 (None, 120, 160, 1), pixel values
  0-255 scaled to [0, 1] inside the model (as DeepRacer's Coach does). Output: discrete
  action spaces -> action probabilities (None, n) from a softmax; continuous -> the
  Gaussian mean (None, 2) in DeepRacer's [-1, 1] action space (tanh), steering first.
- `build_networks(metadata, seed, critic)` -> `Networks(policy_logits, policy, value)`:
  what PPO trains. `policy` shares its layers with `policy_logits` (it adds only the
  softmax for discrete spaces), so weights saved from one load into the other. The value
  network sees the camera (`critic="camera"`, a tower like the policy's) or the
  simulator's privileged state (`critic="state"`: float32 (None, STATE_SIZE) through two
  dense layers of 256; `sim2real.privileged`).

Topologies (compat reference section 4.2), each a separate tower for policy and value as
DeepRacer's Clipped PPO has (`use_separate_networks_per_head`), ReLU after every layer,
"valid" padding:

- DEEP_CONVOLUTIONAL_NETWORK_SHALLOW (DeepRacer's default): 32@8x8/4, 64@4x4/2,
  64@3x3/1 -> flatten 11 264 -> dense 512.
- DEEP_CONVOLUTIONAL_NETWORK: 32@5x5/2, 32@3x3/1, 64@3x3/2, 64@3x3/1, per-position dense
  64 -> flatten 56 000 -> dense 512.
- DEEP_CONVOLUTIONAL_NETWORK_DEEP: 32@8x8/4, 32@4x4/2, 64@4x4/2, 64@3x3/1, per-position
  dense 512, 512 -> flatten 9 216 -> dense 256 -> dense 128.
- OPENRACER_FAST (openracer's own, not a DeepRacer topology): 2x2 average pool to 60x80,
  24@5x5/2, 32@3x3/2, 64@3x3/2 -> flatten 3 072 -> dense 256. About 5x cheaper to train
  than SHALLOW on this machine.
- OPENRACER_LOWRES (openracer's own): 4x4 average pool to 30x40, 16@5x5/2, 32@3x3/2,
  32@3x3/1 -> flatten 768 -> dense 128: 0.63 M multiply-adds per tower against
  OPENRACER_FAST's 3.9 M. The learning benchmark's recipe uses it.

Coach applies the embedder's dense layers per spatial position before flattening; a
dense layer on the channel axis is exactly a 1x1 convolution, which is what we build
(TFLite's CONV_2D, rather than a batched FULLY_CONNECTED on a 4-D tensor).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from sim2real.privileged import STATE_SIZE
from trainer.errors import TrainConfigError
from vehicle.metadata import ModelMetadata
from vehicle.observation import OBS_SHAPE

# (kind, filters or units, kernel, stride); "conv" = Conv2D, "pos" = per-position dense
# (1x1 conv), "pool" = average pool, "dense" = dense after flatten.
TOPOLOGIES: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": (
        ("conv", 32, 8, 4),
        ("conv", 64, 4, 2),
        ("conv", 64, 3, 1),
        ("dense", 512, 0, 0),
    ),
    "DEEP_CONVOLUTIONAL_NETWORK": (
        ("conv", 32, 5, 2),
        ("conv", 32, 3, 1),
        ("conv", 64, 3, 2),
        ("conv", 64, 3, 1),
        ("pos", 64, 1, 1),
        ("dense", 512, 0, 0),
    ),
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP": (
        ("conv", 32, 8, 4),
        ("conv", 32, 4, 2),
        ("conv", 64, 4, 2),
        ("conv", 64, 3, 1),
        ("pos", 512, 1, 1),
        ("pos", 512, 1, 1),
        ("dense", 256, 0, 0),
        ("dense", 128, 0, 0),
    ),
    "OPENRACER_FAST": (
        ("pool", 0, 2, 2),
        ("conv", 24, 5, 2),
        ("conv", 32, 3, 2),
        ("conv", 64, 3, 2),
        ("dense", 256, 0, 0),
    ),
    "OPENRACER_LOWRES": (
        ("pool", 0, 4, 4),
        ("conv", 16, 5, 2),
        ("conv", 32, 3, 2),
        ("conv", 32, 3, 1),
        ("dense", 128, 0, 0),
    ),
}


@dataclass(frozen=True)
class Networks:
    """The models PPO trains."""

    policy_logits: keras.Model
    """Discrete: unnormalised log-probabilities (None, n). Continuous: tanh mean (None, 2)."""
    policy: keras.Model
    """The exported policy: probabilities (discrete) or the mean (continuous); shares weights."""
    value: keras.Model
    """State value (None,), a separate tower."""


def tower(
    name: str, inputs: keras.KerasTensor, prefix: str, seed: int, orthogonal: bool = True
) -> keras.KerasTensor:
    """The embedder + middleware of topology `name` applied to uint8 `inputs`
    (`orthogonal=False` initialises with zeros: only for inspecting shapes cheaply)."""
    if name not in TOPOLOGIES:
        raise TrainConfigError(
            f"neural_network {name!r} is not one of {sorted(TOPOLOGIES)}; set it in "
            "model_metadata.json"
        )
    x = layers.Rescaling(1.0 / 255.0, name=f"{prefix}_scale")(inputs)
    flat = False
    for i, (kind, size, kernel, stride) in enumerate(TOPOLOGIES[name]):
        init = keras.initializers.Orthogonal(gain=2**0.5, seed=seed + i) if orthogonal else "zeros"
        if kind == "pool":
            x = layers.AveragePooling2D(kernel, strides=stride, name=f"{prefix}_pool{i}")(x)
        elif kind in ("conv", "pos"):
            x = layers.Conv2D(
                size,
                kernel,
                strides=stride,
                activation="relu",
                kernel_initializer=init,
                name=f"{prefix}_{kind}{i}",
            )(x)
        else:
            if not flat:
                x = layers.Flatten(name=f"{prefix}_flatten")(x)
                flat = True
            x = layers.Dense(
                size, activation="relu", kernel_initializer=init, name=f"{prefix}_dense{i}"
            )(x)
    return x


def build_networks(metadata: ModelMetadata, seed: int = 0, critic: str = "camera") -> Networks:
    """Policy (logits and exported form) and value towers for `metadata`'s network and
    action space, the value network on `critic`'s input. Weight initialisation is seeded by
    `seed` (orthogonal, as CleanRL; the policy head starts near-uniform with gain 0.01)."""
    name = metadata.neural_network
    space = metadata.action_space
    obs = keras.Input(shape=OBS_SHAPE, dtype="uint8", name="observation")
    features = tower(name, obs, "pi", seed)
    head_init = keras.initializers.Orthogonal(gain=0.01, seed=seed + 100)
    if space.kind == "discrete":
        logits = layers.Dense(space.n, kernel_initializer=head_init, name="pi_logits")(features)
        policy_logits = keras.Model(obs, logits, name="policy_logits")
        probs = layers.Softmax(name="policy")(logits)
        policy = keras.Model(obs, probs, name="policy")
    else:
        mean = layers.Dense(2, activation="tanh", kernel_initializer=head_init, name="pi_mean")(
            features
        )
        policy_logits = keras.Model(obs, mean, name="policy_logits")
        policy = keras.Model(obs, mean, name="policy")
    if critic == "state":
        vobs = keras.Input(shape=(STATE_SIZE,), dtype="float32", name="state")
        vfeat = vobs
        for i in range(2):
            vfeat = layers.Dense(
                256,
                activation="relu",
                kernel_initializer=keras.initializers.Orthogonal(gain=2**0.5, seed=seed + 300 + i),
                name=f"v_state{i}",
            )(vfeat)
    else:
        vobs = keras.Input(shape=OBS_SHAPE, dtype="uint8", name="observation")
        vfeat = tower(name, vobs, "v", seed + 1000)
    v = layers.Dense(
        1, kernel_initializer=keras.initializers.Orthogonal(gain=1.0, seed=seed + 200), name="v"
    )(vfeat)
    v = layers.Reshape((), name="value")(v)
    value = keras.Model(vobs, v, name="value")
    return Networks(policy_logits=policy_logits, policy=policy, value=value)


def build_policy(metadata: ModelMetadata, seed: int = 0) -> keras.Model:
    """The exported policy model for `metadata` (see the module docstring), fresh weights."""
    return build_networks(metadata, seed).policy


def feature_shapes(name: str) -> list[tuple[int, ...]]:
    """Output shape (without batch) of every layer of topology `name` on a 120x160x1 input;
    used by tests against the compat reference's table."""
    obs = keras.Input(shape=OBS_SHAPE, dtype="uint8")
    out = tower(name, obs, "t", 0, orthogonal=False)
    model = keras.Model(obs, out)
    return [
        tuple(layer.output.shape[1:])
        for layer in model.layers
        if isinstance(
            layer, layers.Conv2D | layers.Dense | layers.Flatten | layers.AveragePooling2D
        )
    ]
