"""The policy on the car: one TFLite model plus its `model_metadata.json`, run on one
observation at a time.

Runs on the car: no TensorFlow at module level. The interpreter comes from the first of
`ai_edge_litert` (preferred, fastest), `tflite_runtime` (needs numpy<2), and TensorFlow's
`tf.lite.Interpreter` (imported lazily, only as the last fallback).

API (used by the drive loop, the model store's activation check and the benchmarks):

    policy = Policy.load("model.tflite", "model_metadata.json")   # or a ModelMetadata
    steer_deg, speed_mps, raw = policy.act(obs_uint8)             # obs: (120, 160, 1) uint8
    raw = policy.infer(obs_uint8)                                 # float32 output vector
    policy.backend                                                # "ai_edge_litert" | ...
    policy = Policy.from_store(store_dir)                         # the store's active model

Signature contract, checked at load time (a mismatch raises `ModelError`):
- one input of shape (1, 120, 160, 1) (or (120, 160, 1)), dtype uint8, int8 or float32.
  The model scales pixels to [0, 1] itself (DeepRacer's contract), so float32 inputs get
  raw 0-255 values and quantized inputs get `round(x / scale) + zero_point`;
- an output whose last dimension is the number of discrete actions (logits or
  probabilities: argmax picks the action), or, for a continuous space, 2 (steering, speed
  in [-1, 1], clipped and rescaled by `ActionSpace.decode`) or 4 (the 2 means followed by
  2 log-standard-deviations, which the car ignores). With several outputs, the one named
  like "policy"/"action"/"logits"/"mean" of the right size wins, else the first of the
  right size. Quantized outputs are dequantized.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vehicle.errors import InferenceBackendError, MetadataError, ModelError
from vehicle.metadata import ModelMetadata, load_metadata
from vehicle.observation import OBS_SHAPE

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
"""Interpreter backends in order of preference."""
_OUTPUT_NAME_HINTS = ("policy", "action", "logits", "mean", "probs")


class PolicyAction(NamedTuple):
    """What the policy decided for one observation."""

    steer_deg: float
    """Commanded steering, degrees, positive = left."""
    speed_mps: float
    """Commanded speed, m/s (what the model asked for, before the car's mapping)."""
    raw: np.ndarray
    """The model's output vector (float32, dequantized): logits/probabilities or means."""


def _interpreter_class(backend: str | None) -> tuple[str, Any]:
    """The first importable interpreter class, or the one named by `backend`."""
    names = BACKENDS if backend is None else (backend,)
    if backend is not None and backend not in BACKENDS:
        raise InferenceBackendError(f"inference backend {backend!r} is not one of {list(BACKENDS)}")
    tried = []
    for name in names:
        try:
            if name == "ai_edge_litert":
                return name, importlib.import_module("ai_edge_litert.interpreter").Interpreter
            if name == "tflite_runtime":
                return name, importlib.import_module("tflite_runtime.interpreter").Interpreter
            tf = importlib.import_module("tensorflow")  # last resort, lazily
            return name, tf.lite.Interpreter
        except Exception as exc:  # ImportError, or a binary built for another numpy
            tried.append(f"{name} ({type(exc).__name__}: {exc})")
    raise InferenceBackendError(
        "no TFLite interpreter could be imported: tried "
        + "; ".join(tried)
        + ". Install one on the car with `pip install ai-edge-litert`"
    )


def default_backend() -> str:
    """Name of the backend `Policy.load` would use here."""
    return _interpreter_class(None)[0]


class Policy:
    """A loaded TFLite policy bound to its action space. Not thread-safe: one caller."""

    def __init__(
        self,
        interpreter: Any,
        metadata: ModelMetadata,
        *,
        backend: str,
        tflite_path: Path | None = None,
    ) -> None:
        self.metadata = metadata
        """The model's metadata (action space, control rate, input contract)."""
        self.backend = backend
        """Which interpreter runs the model: 'ai_edge_litert', 'tflite_runtime' or 'tensorflow'."""
        self.tflite_path = tflite_path
        """Where the model came from (None when loaded from bytes)."""
        self._interp = interpreter
        try:
            interpreter.allocate_tensors()
        except Exception as exc:
            raise ModelError(
                f"{tflite_path or 'model'}: the interpreter cannot allocate tensors ({exc}); "
                "the file is corrupt or uses operators this runtime lacks"
            ) from exc
        self._check_signature()

    # -- loading -----------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        tflite_path: str | Path,
        metadata: ModelMetadata | str | Path | None = None,
        *,
        backend: str | None = None,
        num_threads: int = 1,
    ) -> Policy:
        """Load a `.tflite` file with its metadata (a `ModelMetadata`, a path to
        `model_metadata.json`, or None for the `model_metadata.json` beside the model)."""
        path = Path(tflite_path)
        if not path.is_file():
            raise ModelError(
                f"{path}: model file not found; pass an exported .tflite, a bundle, or "
                "install one with `racer flash`"
            )
        meta = cls._metadata_for(path, metadata)
        name, interp_cls = _interpreter_class(backend)
        try:
            interp = interp_cls(model_path=str(path), num_threads=num_threads)
        except Exception as exc:
            raise ModelError(
                f"{path}: not a loadable TFLite model ({type(exc).__name__}: {exc}); "
                "re-export it with `racer export`"
            ) from exc
        return cls(interp, meta, backend=name, tflite_path=path)

    @classmethod
    def from_bytes(
        cls,
        model: bytes,
        metadata: ModelMetadata,
        *,
        backend: str | None = None,
        num_threads: int = 1,
    ) -> Policy:
        """Load a model held in memory (e.g. read from a bundle) with its metadata."""
        name, interp_cls = _interpreter_class(backend)
        try:
            interp = interp_cls(model_content=bytes(model), num_threads=num_threads)
        except Exception as exc:
            raise ModelError(
                f"model bytes ({len(model)} B): not a loadable TFLite model "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        return cls(interp, metadata, backend=name)

    @classmethod
    def from_store(cls, store_dir: str | Path, **kwargs: Any) -> Policy:
        """Load the active model of the car's model store (`vehicle.models.store.ModelStore`)."""
        try:
            store_mod = importlib.import_module("vehicle.models.store")
        except ImportError as exc:
            raise ModelError(
                f"{store_dir}: the model store is not available in this install ({exc})"
            ) from exc
        active = store_mod.ModelStore(store_dir).active()
        tflite = getattr(active, "tflite_path", None)
        meta = getattr(active, "metadata", None)
        if tflite is None:
            raise ModelError(f"{store_dir}: the store's active model has no tflite_path")
        return cls.load(tflite, meta, **kwargs)

    @staticmethod
    def _metadata_for(path: Path, metadata: ModelMetadata | str | Path | None) -> ModelMetadata:
        if isinstance(metadata, ModelMetadata):
            return metadata
        meta_path = (
            Path(metadata) if metadata is not None else path.with_name("model_metadata.json")
        )
        if not meta_path.is_file():
            raise ModelError(
                f"{meta_path}: model_metadata.json not found for {path}; pass it with "
                "--metadata or put it beside the model"
            )
        try:
            return load_metadata(meta_path)
        except MetadataError as exc:
            raise ModelError(str(exc)) from exc

    # -- signature ---------------------------------------------------------------------

    def _check_signature(self) -> None:
        where = self.tflite_path or "model"
        inputs = self._interp.get_input_details()
        if len(inputs) != 1:
            raise ModelError(
                f"{where}: has {len(inputs)} inputs; the car feeds exactly one "
                f"{list(OBS_SHAPE)} camera observation"
            )
        inp = inputs[0]
        shape = tuple(int(d) for d in inp["shape"])
        if shape not in ((1, *OBS_SHAPE), OBS_SHAPE):
            raise ModelError(
                f"{where}: input shape {list(shape)} differs from the observation "
                f"{[1, *OBS_SHAPE]} that metadata input_shape {list(self.metadata.input_shape)} "
                "promises; re-export the model from an openracer run"
            )
        dtype = np.dtype(inp["dtype"])
        if dtype not in (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.float32)):
            raise ModelError(f"{where}: input dtype {dtype} is not uint8, int8 or float32")
        self._in_index = int(inp["index"])
        self._in_shape = shape
        self._in_dtype = dtype
        scale, zero = inp.get("quantization", (0.0, 0))
        self._in_scale = float(scale)
        self._in_zero = int(zero)
        self._in_identity = dtype == np.uint8 and (
            self._in_scale == 0.0 or (abs(self._in_scale - 1.0) < 1e-9 and self._in_zero == 0)
        )
        self._in_buffer = np.zeros(shape, dtype=dtype)

        space = self.metadata.action_space
        wanted = (space.n,) if space.kind == "discrete" else (2, 4)
        outputs = self._interp.get_output_details()
        fits = [o for o in outputs if int(np.prod(o["shape"])) in wanted]
        if not fits:
            sizes = [int(np.prod(o["shape"])) for o in outputs]
            raise ModelError(
                f"{where}: output sizes {sizes} do not match the {space.kind} action space of "
                f"model_metadata.json (expected {' or '.join(map(str, wanted))} values); the "
                "metadata belongs to another model"
            )
        named = [o for o in fits if any(h in str(o["name"]).lower() for h in _OUTPUT_NAME_HINTS)]
        out = (named or fits)[0]
        self._out_index = int(out["index"])
        scale, zero = out.get("quantization", (0.0, 0))
        self._out_scale = float(scale)
        self._out_zero = int(zero)
        self._out_quantized = np.dtype(out["dtype"]) != np.float32 and self._out_scale != 0.0

    # -- running -----------------------------------------------------------------------

    def infer(self, obs: np.ndarray) -> np.ndarray:
        """Run the model on one (120, 160, 1) uint8 observation; returns the float32
        output vector (dequantized)."""
        if obs.shape != OBS_SHAPE or obs.dtype != np.uint8:
            raise ModelError(
                f"observation of shape {obs.shape} dtype {obs.dtype} is not the model's "
                f"{list(OBS_SHAPE)} uint8; pass it through vehicle.observation.preprocess"
            )
        buf = self._in_buffer.reshape(OBS_SHAPE)
        if self._in_identity:
            buf[...] = obs
        elif self._in_dtype == np.float32:
            buf[...] = obs
        else:
            info = np.iinfo(self._in_dtype)
            q = np.rint(obs.astype(np.float32) / self._in_scale) + self._in_zero
            buf[...] = np.clip(q, info.min, info.max)
        self._interp.set_tensor(self._in_index, self._in_buffer)
        self._interp.invoke()
        out = self._interp.get_tensor(self._out_index).reshape(-1)
        if self._out_quantized:
            return np.asarray(
                (out.astype(np.float32) - self._out_zero) * np.float32(self._out_scale)
            )
        return np.array(out, dtype=np.float32, copy=True)

    def act(self, obs: np.ndarray) -> PolicyAction:
        """Observation -> (steer_deg, speed_mps, raw output). Discrete: argmax over the
        outputs; continuous: the first two outputs clipped to [-1, 1] and rescaled."""
        raw = self.infer(obs)
        if not np.all(np.isfinite(raw)):
            raise ModelError(f"{self.tflite_path or 'model'}: produced non-finite output {raw}")
        space = self.metadata.action_space
        if space.kind == "discrete":
            steer, speed = space.decode(int(np.argmax(raw)))
        else:
            steer, speed = space.decode(raw[:2])
        return PolicyAction(steer, speed, raw)

    def describe(self) -> dict[str, Any]:
        """What was loaded, for logs and `--json` outputs."""
        return {
            "path": str(self.tflite_path) if self.tflite_path else None,
            "backend": self.backend,
            "input_dtype": str(self._in_dtype),
            "action_space": self.metadata.action_space.kind,
            "n_outputs": self.metadata.action_space.n,
            "control_rate_hz": self.metadata.control_rate_hz,
            "size_bytes": (os.path.getsize(self.tflite_path) if self.tflite_path else None),
        }


def load_tflite_policy(
    spec: str | Path | None,
    *,
    metadata: str | Path | None = None,
    store_dir: str | Path | None = None,
    backend: str | None = None,
) -> Policy:
    """The policy named on a command line: a `.tflite` file (metadata beside it or given),
    a model bundle file (`racer export`), a model name in the car's store, or None for the
    store's active model."""
    if spec is not None:
        path = Path(spec).expanduser()
        if path.suffix == ".tflite":
            return Policy.load(path, metadata, backend=backend)
        if path.is_file():
            from vehicle.models.bundle import read_bundle

            try:
                bundle = read_bundle(path)
            except Exception as exc:
                raise ModelError(f"{path}: not a usable model bundle: {exc}") from exc
            policy = Policy.from_bytes(bundle.model_bytes, bundle.metadata, backend=backend)
            policy.tflite_path = path
            return policy
        if "/" in str(spec) or path.suffix:
            raise ModelError(
                f"{path}: no such model file; pass a .tflite, a bundle (.tar.gz), or a "
                "model name from `racer models list`"
            )
    from vehicle.models.store import ModelStore

    store = ModelStore(store_dir)
    if spec is None:
        installed = store.active()
    else:
        matches = [m for m in store.list() if m.name == str(spec)]
        if not matches:
            names = [m.name for m in store.list()]
            raise ModelError(
                f"model {str(spec)!r} is not in the store {store.root} "
                f"(installed: {names or 'none'}); install it with `racer models install`"
            )
        installed = matches[0]
    if installed.problem:
        raise ModelError(f"model {installed.name!r} is unusable: {installed.problem}")
    return Policy.load(installed.tflite_path, installed.metadata, backend=backend)
