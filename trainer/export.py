"""TFLite export of a trained run: conversion, parity, lap check, and the model bundle.

`export_run(ExportConfig(run=..., format="int8"))`:
1. loads the checkpoint as the float Keras policy (`trainer.checkpoint.load_keras_policy`);
2. plays the simulator under the run's tracks and randomization for the representative
   frames (int8 calibration) and, with other seeds, the held-out parity frames
   (`trainer.parity.simulator_frames`);
3. converts with `tf.lite.TFLiteConverter.from_keras_model` (Keras 3 concrete functions
   lose their weights): float32; float16 weights; or full-integer int8 whose input is
   uint8 taking raw 0-255 pixels (the model's own Rescaling layer is quantized with the
   rest) and whose output is float32 (dequantized inside the model);
4. measures parity on the held-out frames with the car's interpreter
   (`vehicle.inference.Policy`), and drives a few laps with both models through
   `trainer.evaluate.evaluate` (the `racer eval` path) on the same seeds;
5. refuses an agreement below `min_agreement` (99 %) unless `allow_parity_loss`, and
   otherwise writes the bundle (`vehicle.models.bundle.write_bundle`), signed if a key is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import ExportError, ParityError
from vehicle.metadata import ModelMetadata

FORMATS = ("int8", "float16", "float32")
"""TFLite formats `racer export` writes."""


@dataclass(frozen=True)
class ExportConfig:
    """What `racer export` does."""

    run: str
    """Run directory written by `racer train`."""
    checkpoint: str = "best"
    """'best', 'last' or an iteration number."""
    format: str = "int8"
    """'int8' (full-integer, uint8 pixels in), 'float16' or 'float32'."""
    out: str | None = None
    """Bundle path (default RUN/export/<name>.tar.gz)."""
    name: str | None = None
    """Model name in the bundle (default <run>-<iteration>-<format>)."""
    sign: str | None = None
    """Private key (.key from `racer keys new`) to sign the bundle with."""
    representative_frames: int = 500
    """Simulator frames used to calibrate int8 quantization (a few hundred at least)."""
    parity_frames: int = 2000
    """Held-out simulator frames the parity is measured on."""
    min_agreement: float = 0.99
    """Export fails below this action agreement unless allow_parity_loss."""
    allow_parity_loss: bool = False
    """Write the bundle even when the agreement is below min_agreement."""
    laps: int = 3
    """Evaluation laps per model (0: skip the lap check)."""
    seed: int = 0
    """Seed of the simulator episodes (frames and laps)."""
    randomize: str | None = None
    """Randomization for frames and laps (default: the run's own)."""


@dataclass
class ExportResult:
    """Everything export measured, and where the bundle went."""

    bundle_path: Path | None
    name: str
    format: str
    size_bytes: int
    float32_size_bytes: int
    parity: dict[str, Any]
    laps: dict[str, Any]
    quantization: dict[str, Any]
    source: dict[str, Any]
    passed: bool
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def agreement(self) -> float:
        return float(self.parity["agreement"])

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle_path) if self.bundle_path else None,
            "name": self.name,
            "format": self.format,
            "agreement": self.agreement,
            "size_bytes": self.size_bytes,
            "float32_size_bytes": self.float32_size_bytes,
            "size_ratio_to_float32": self.size_bytes / self.float32_size_bytes,
            "parity": self.parity,
            "laps": self.laps,
            "quantization": self.quantization,
            "source": self.source,
            "passed": self.passed,
            "timings_s": self.timings_s,
        }


def convert(model: Any, fmt: str, representative: np.ndarray | None = None) -> bytes:
    """Keras policy (or an imported DeepRacer graph's `GraphPolicy`) -> TFLite bytes in
    `fmt` (see the module docstring)."""
    import tensorflow as tf

    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r} is not one of {list(FORMATS)}")
    if hasattr(model, "serving"):  # a DeepRacer graph (trainer.deepracer_graph.GraphPolicy)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([model.serving], model)
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if fmt == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "int8":
        if representative is None or len(representative) == 0:
            raise ExportError("int8 export needs representative simulator frames")
        frames = np.asarray(representative, dtype=np.uint8)

        def dataset():
            for f in frames:
                yield [f[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
    chatter = io.StringIO()  # the converter prints its SavedModel signature to stdout
    try:
        with contextlib.redirect_stdout(chatter):
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises many types; name the step
        raise ExportError(f"TFLite conversion to {fmt} failed: {exc}") from exc


def quantization_info(model_bytes: bytes, fmt: str) -> dict[str, Any]:
    """The input/output tensor types and quantization parameters of a TFLite model."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model_bytes)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]

    def q(detail: dict[str, Any]) -> dict[str, Any]:
        scale, zero = detail.get("quantization", (0.0, 0))
        return {
            "dtype": np.dtype(detail["dtype"]).name,
            "shape": [int(d) for d in detail["shape"]],
            "scale": float(scale),
            "zero_point": int(zero),
        }

    ops = sorted({op["op_name"] for op in interp._get_ops_details()})
    return {"format": fmt, "input": q(inp), "output": q(out), "ops": ops}


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def export_run(
    config: ExportConfig, *, stage: Callable[[str, int | None], Callable[[int], None]] | None = None
) -> ExportResult:
    """Export a run (see the module docstring). `stage(description, total)` is called at
    each step and returns a callback advancing that step's progress (for progress bars)."""
    from trainer.checkpoint import RunDir, load_keras_policy
    from trainer.config import config_from_json
    from trainer.evaluate import env_kwargs_for, evaluate
    from trainer.parity import (
        compare,
        keras_outputs,
        keras_policy_fn,
        simulator_frames,
        tflite_outputs,
        tflite_policy_fn,
    )
    from vehicle.inference import Policy
    from vehicle.models.bundle import check_name, write_bundle

    def noop(_n: int) -> None:
        pass

    stage = stage or (lambda _d, _t: noop)
    if config.format not in FORMATS:
        raise ExportError(f"--format {config.format!r} is not one of {list(FORMATS)}")
    if config.format == "int8" and config.representative_frames < 200:
        raise ExportError(
            f"--representative-frames {config.representative_frames} is too few to calibrate "
            "int8; use at least 200 (default 500)"
        )
    if config.parity_frames < 100:
        raise ExportError(f"--parity-frames {config.parity_frames} must be at least 100")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run = RunDir(config.run)
    model, metadata, info = load_keras_policy(config.run, config.checkpoint)
    train_cfg = config_from_json(
        __import__("json").loads(run.config.read_text(encoding="utf-8")), str(run.config)
    )
    iteration = int(info.get("iteration", 0))
    randomize = config.randomize or train_cfg.randomize
    tracks = list(train_cfg.track)
    name = check_name(config.name or f"{run.path.resolve().name}-{iteration}-{config.format}")
    out = Path(config.out) if config.out else run.path / "export" / f"{name}.tar.gz"
    kind = metadata.action_space.kind
    frame_kwargs = env_kwargs_for(tracks if len(tracks) > 1 else tracks[0], metadata, randomize)
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    representative = None
    if config.format == "int8":
        advance = stage("simulator frames for int8 calibration", config.representative_frames)
        representative = simulator_frames(
            model,
            metadata,
            frame_kwargs,
            config.representative_frames,
            seed=config.seed * 2 + 1,
            on_progress=advance,
        )
    advance = stage("held-out simulator frames for parity", config.parity_frames)
    held_out = simulator_frames(
        model,
        metadata,
        frame_kwargs,
        config.parity_frames,
        seed=config.seed * 2 + 2,
        on_progress=advance,
    )
    timings["frames"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage(f"converting to TFLite {config.format}", None)
    model_bytes = convert(model, config.format, representative)
    float32_size = (
        len(model_bytes) if config.format == "float32" else len(convert(model, "float32"))
    )
    timings["convert"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage("parity on held-out frames", None)
    tflite = Policy.from_bytes(model_bytes, metadata)
    report = compare(keras_outputs(model, held_out), tflite_outputs(tflite, held_out), kind)
    parity = report.to_json()
    parity["representative_frames"] = 0 if representative is None else len(representative)
    parity["randomize"] = randomize
    timings["parity"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    laps: dict[str, Any] = {}
    if config.laps > 0:
        for label, fn in (
            ("float", keras_policy_fn(model, kind)),
            ("tflite", tflite_policy_fn(tflite, kind)),
        ):
            stage(f"{config.laps} evaluation laps, {label} model", None)
            lap_report = evaluate(
                fn,
                tracks[0],
                config.laps,
                randomize,
                metadata=metadata,
                seed=config.seed,
                parallel=min(config.laps, 3),
            )
            laps[label] = _lap_summary(lap_report)
        laps["track"] = str(tracks[0])
        laps["randomize"] = randomize
    parity["laps"] = laps
    timings["laps"] = time.perf_counter() - t0

    quant = quantization_info(model_bytes, config.format)
    source = {
        "run": str(run.path.resolve()),
        "checkpoint": config.checkpoint,
        "iteration": iteration,
        "tracks": tracks,
        "randomize": randomize,
        "reward_sha256": _file_sha256(run.reward_file),
        "reward_file": run.reward_file.name if run.reward_file.exists() else None,
        "network": metadata.neural_network,
    }
    passed = report.agreement >= config.min_agreement
    result = ExportResult(
        bundle_path=None,
        name=name,
        format=config.format,
        size_bytes=len(model_bytes),
        float32_size_bytes=float32_size,
        parity=parity,
        laps=laps,
        quantization=quant,
        source=source,
        passed=passed,
        timings_s=timings,
    )
    if not passed and not config.allow_parity_loss:
        raise ParityError(
            result,
            f"{config.format} model agrees with the float model on "
            f"{100 * report.agreement:.2f}% of {report.frames} held-out frames, below the "
            f"{100 * config.min_agreement:.0f}% required (max error {report.max_abs_error:.4f}, "
            f"{report.disagreements} frames differ); nothing written. Try --format float16, "
            "or pass --allow-parity-loss to write it anyway",
        )
    signing_key = None
    if config.sign:
        from vehicle.models.signing import load_signing_key

        signing_key = load_signing_key(config.sign)
    bundle_meta = ModelMetadata(
        action_space=metadata.action_space,
        training_algorithm=metadata.training_algorithm,
        neural_network=metadata.neural_network,
        sensor=metadata.sensor,
        version=metadata.version,
        control_rate_hz=metadata.control_rate_hz,
        input_shape=metadata.input_shape,
        preprocessing_version=metadata.preprocessing_version,
        extra={**metadata.extra, "quantization": quant},
    )
    write_bundle(
        out,
        name=name,
        model_bytes=model_bytes,
        metadata=bundle_meta,
        source=source,
        parity={**parity, "passed": passed, "min_agreement": config.min_agreement},
        quantization=quant,
        signing_key=signing_key,
    )
    result.bundle_path = out
    return result


def _lap_summary(report: Any) -> dict[str, Any]:
    data = report.to_json()
    keep = (
        "laps_completed",
        "completion_pct",
        "mean_lap_s",
        "best_lap_s",
        "lap_times_s",
        "mean_speed_mps",
        "off_track",
        "limit_ratio",
    )
    out = {k: data[k] for k in keep if k in data}
    out["trials"] = len(report.laps)
    return out
