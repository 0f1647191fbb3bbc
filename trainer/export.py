"""TFLite export of a trained run: conversion, parity, lap check, and the model bundle.

`export_run(ExportConfig(run=..., format="int8"))`:
1. loads the checkpoint as the float Keras policy (`trainer.checkpoint.load_keras_policy`);
2. converts with `tf.lite.TFLiteConverter.from_keras_model` (Keras 3 concrete functions
   lose their weights): float32; float16 weights; or full-integer int8 whose input is
   uint8 taking raw 0-255 pixels (the model's own Rescaling layer is quantized with the
   rest; `quantization_info` checks the pixels stay exact and every kernel is quantized
   per output channel) and whose output is float32 (dequantized inside the model). For a
   discrete policy the int8 model keeps its two ends in float32 ("int8 with a float head
   and first layer": the pixel scaling, pooling and first convolution, and the logits layer
   with its softmax; `trainer.quantize.float_ends`), selected with TFLite's selective
   quantization (`int8_float_ends`), its last hidden layer equalized first
   (`trainer.quantize.equalize_head`); `quantization_info` names the float ops;
3. float16/float32: measures agreement on held-out simulator frames
   (`trainer.parity.simulator_frames`) with the car's interpreter
   (`vehicle.inference.Policy`) and drives a few laps with both models through
   `trainer.evaluate.evaluate` (the `racer eval` path) on the same seeds; refuses an
   agreement below `min_agreement` (99 %);
4. int8: judges parity by driving. It calibrates on the float policy's own frames from
   greedy laps under the training randomization (`trainer.quantize.on_policy_frames`,
   seeds disjoint from the judging laps); then the float model, the int8 model and a
   float32 TFLite control drive the same `laps` (>= 10) seeded laps from the start line.
   The int8 model must agree on `min_agreement` (99.5 %) of the frames both models visit
   and keep lap parity (`trainer.parity.judge_laps`: as many laps, mean lap time within
   2 %). When post-training quantization misses either, a short distillation of the
   rounded network toward the float policy (`trainer.quantize.distill`) is tried once,
   then, for a discrete policy, the last hidden dense layer kept in float32 too ("int8
   with float first and dense layers", about 3x the bytes); every attempt's figures go
   into the manifest. Random-pose agreement on the held-out
   frames is measured too, for information;
5. refuses a model that fails (the message names both figures) unless `allow_parity_loss`,
   and otherwise writes the bundle (`vehicle.models.bundle.write_bundle`), signed if a key
   is given. A refusal writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import ExportError, ParityError
from trainer.parity import SPEED_TOLERANCE_FRACTION as SPEED_TOL_FRACTION
from trainer.parity import STEER_TOLERANCE_DEG as STEER_TOL_DEG
from vehicle.metadata import ModelMetadata

FORMATS = ("int8", "float16", "float32")
"""TFLite formats `racer export` writes."""

Stage = Callable[[str, int | None], Callable[[int], None]]
"""`stage(description, total)`, called as each step starts; returns a callback that
advances that step's progress (a progress bar's, or nothing)."""


def silent_stage(_description: str, _total: int | None) -> Callable[[int], None]:
    """The stage callback of a caller that shows no progress."""
    return _ignore_progress


def _ignore_progress(_n: int) -> None:
    pass


CALIBRATION_SEED_OFFSET = 1000
"""int8 calibration laps use seeds from `seed + CALIBRATION_SEED_OFFSET`, the judging laps
`seed`: disjoint episodes."""


@dataclass
class RunToExport:
    """A run's checkpoint loaded for export (`racer export`, `--deepracer-car`): the float
    Keras policy, its metadata, and what the run trained on."""

    path: Path
    reward_file: Path
    checkpoint: str
    iteration: int
    model: Any
    metadata: ModelMetadata
    tracks: list[str]
    randomize: str
    """The randomization asked for, else the run's own."""

    def frame_env_kwargs(self) -> dict[str, Any]:
        """Simulator arguments for held-out frames: every track the run trained on."""
        from trainer.evaluate import env_kwargs_for

        track = self.tracks if len(self.tracks) > 1 else self.tracks[0]
        return env_kwargs_for(track, self.metadata, self.randomize)

    def source(self) -> dict[str, Any]:
        """Where the exported model came from (the manifest's and result's `source`)."""
        return {
            "run": str(self.path.resolve()),
            "checkpoint": self.checkpoint,
            "iteration": self.iteration,
            "tracks": self.tracks,
            "randomize": self.randomize,
            "network": self.metadata.neural_network,
        }


def load_run_to_export(run_dir: str, checkpoint: str, randomize: str | None) -> RunToExport:
    """Load `checkpoint` ('best', 'last' or an iteration) of a `racer train` run."""
    from trainer.checkpoint import RunDir, load_keras_policy
    from trainer.config import load_train_config

    run = RunDir(run_dir)
    model, metadata, info = load_keras_policy(run_dir, checkpoint)
    train_cfg = load_train_config(run.config)
    return RunToExport(
        path=run.path,
        reward_file=run.reward_file,
        checkpoint=checkpoint,
        iteration=int(info.get("iteration", 0)),
        model=model,
        metadata=metadata,
        tracks=list(train_cfg.track),
        randomize=randomize or train_cfg.randomize,
    )


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
    representative_frames: int = 1000
    """On-policy frames used to calibrate int8 quantization (a few hundred at least)."""
    parity_frames: int = 2000
    """Held-out simulator frames (random poses) the agreement is also measured on."""
    min_agreement: float | None = None
    """Export fails below this action agreement unless allow_parity_loss (default: 0.995 on
    the on-policy frames for int8, 0.99 on the held-out frames for float16/float32)."""
    allow_parity_loss: bool = False
    """Write the bundle even when a parity figure fails."""
    laps: int | None = None
    """Evaluation laps per model (default 10 for int8, at least 10; 3 for float16/float32,
    0 skips them)."""
    distill: bool = True
    """int8: when post-training quantization fails parity, try a short distillation."""
    distill_steps: int = 300
    """int8: distillation steps (batches of 64 on-policy frames)."""
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

    float32_bytes: bytes | None = None
    """The float32 conversion (int8: the lap control; for benchmarks), not in the JSON."""
    model_bytes: bytes | None = None
    """The exported model, not in the JSON."""

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


def convert(
    model: Any,
    fmt: str,
    representative: np.ndarray | None = None,
    *,
    float_ends: bool = False,
    float_tail: int = 1,
) -> bytes:
    """Keras policy (or an imported DeepRacer graph's `GraphPolicy`) -> TFLite bytes in
    `fmt` (see the module docstring). int8 with `float_ends` (`trainer.quantize.float_ends`
    says when): the ops up to the first layer with weights and from the last `float_tail`
    ones on stay float32, the rest is int8 as usual (`int8_float_ends`)."""
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
        # One black and one white pixel in a copy of a frame pin the input's calibrated
        # range to the whole 0-255, so the scaled pixels sit exactly on the int8 grid
        # (scale 1/255) whatever the darkest and brightest on-policy pixels
        # (`quantization_info` checks it); single pixels barely move the later ranges.
        pinned = frames[:1].copy()
        pinned[0, 0, 0, 0], pinned[0, 0, 1, 0] = 0, 255
        frames = np.concatenate([pinned, frames])

        def dataset():
            for f in frames:
                yield [f[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        if float_ends:
            return int8_float_ends(converter, dataset, float_tail)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
    chatter = io.StringIO()  # the converter prints its SavedModel signature to stdout
    try:
        with contextlib.redirect_stdout(chatter):
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises many types; name the step
        raise ExportError(f"TFLite conversion to {fmt} failed: {exc}") from exc


_WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL")


def float_end_ops(model_bytes: bytes, tail: int = 1) -> list[tuple[str, str]]:
    """(op name, output tensor name) of a TFLite model's two ends: from the input, every op
    up to and including the first one with weights (`_WEIGHTED_OPS`; the input's CAST
    aside); and walking back from the output, every op up to and including the `tail`-th
    one with weights (1: the head)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model_bytes)
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    first: list[tuple[str, str]] = []
    for op in ops:  # a chain: the execution order from the input
        if op["op_name"] != "CAST":
            first.append((op["op_name"], names[op["outputs"][0]]))
        if op["op_name"] in _WEIGHTED_OPS:
            break
    producer = {o: op for op in ops for o in op["outputs"]}
    head: list[tuple[str, str]] = []
    tensor = interp.get_output_details()[0]["index"]
    while tensor in producer:
        op = producer[tensor]
        head.append((op["op_name"], names[tensor]))
        tail -= op["op_name"] in _WEIGHTED_OPS
        if tail == 0:
            return first + head[::-1]
        tensor = next(i for i in op["inputs"] if i >= 0)
    raise ExportError(
        "int8 with float ends: no layer with weights found before the model's output "
        f"(walked {[name for name, _ in head]}); export --format float16 instead"
    )


def int8_float_ends(converter: Any, dataset: Callable[[], Any], tail: int = 1) -> bytes:
    """int8 whose two ends (`float_end_ops`) stay float32: TFLite's selective quantization
    (`tf.lite.experimental.QuantizationDebugger`, the ends' output tensors denylisted). The
    uint8 input stays uint8 (the model's own input type), the output is float32."""
    import tensorflow as tf

    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the debugger's interpreter is deprecated
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=dataset
            )
            denied = [tensor for _, tensor in float_end_ops(debugger.calibrated_model, tail)]
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=denied
            )
            model_bytes = bytes(debugger.get_nondebug_quantized_model())
    except ExportError:
        raise
    except Exception as exc:  # the converter raises many types; name the step
        raise ExportError(f"TFLite conversion to int8 with float ends failed: {exc}") from exc
    info = quantization_info(model_bytes, "int8")
    if info["input"]["dtype"] != "uint8" or info["output"]["dtype"] != "float32":
        raise ExportError(
            f"int8 with float ends came out with a {info['input']['dtype']} input and a "
            f"{info['output']['dtype']} output, not uint8 and float32: the TensorFlow converter "
            "changed (report it); use --format float16 meanwhile"
        )
    return model_bytes


def quantization_info(model_bytes: bytes, fmt: str) -> dict[str, Any]:
    """The input/output tensor types and quantization parameters of a TFLite model, and for
    int8 the checks export relies on: every int8 weight kernel quantized per output channel
    (`per_channel_kernels` of `kernels`), and the pixels exact on the int8 grid
    (`pixels_exact`: every int8 tensor of the input's shape has zero point -128 and scale 1
    or 1/255, so each 0-255 value and its /255 scaling are represented without rounding);
    `float_ops`, the ops computing in float32 (an int8 model's float ends), and `recipe`,
    what the int8 model is in words ("full-integer int8", "int8 with a float head and
    first layer")."""
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

    details = interp._get_ops_details()
    ops = sorted({op["op_name"] for op in details})
    info: dict[str, Any] = {"format": fmt, "input": q(inp), "output": q(out), "ops": ops}
    if fmt == "int8":
        dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
        float_ops = [
            op["op_name"]
            for op in details
            if op["op_name"] not in ("CAST", "QUANTIZE", "DEQUANTIZE")
            and any(dtypes[o] == np.float32 for o in op["outputs"])
        ]
        weighted = [op for op in float_ops if op in _WEIGHTED_OPS]
        info["float_ops"] = float_ops
        info["recipe"] = {
            0: "full-integer int8",
            1: "int8 with a float head",
            2: "int8 with a float head and first layer",
        }.get(len(weighted), "int8 with float first and dense layers")
        kernels = per_channel = 0
        pixels_exact = True
        in_shape = [int(d) for d in inp["shape"]]
        for t in interp.get_tensor_details():
            params = t.get("quantization_parameters") or {}
            scales = np.asarray(params.get("scales", []))
            shape = [int(d) for d in t["shape"]]
            if np.dtype(t["dtype"]) != np.int8 or len(scales) == 0:
                continue
            if len(shape) >= 2 and shape[0] > 1:  # a kernel: (out, ...); activations are (1, ...)
                kernels += 1
                per_channel += int(len(scales) == shape[0])
            elif shape == in_shape:
                zero = np.asarray(params.get("zero_points", []))
                pixels_exact &= bool(
                    len(scales) == 1
                    and int(zero[0]) == -128
                    and min(abs(scales[0] - 1.0), abs(scales[0] * 255.0 - 1.0)) < 1e-6
                )
        info.update(
            {"kernels": kernels, "per_channel_kernels": per_channel, "pixels_exact": pixels_exact}
        )
    return info


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def export_run(config: ExportConfig, *, stage: Stage = silent_stage) -> ExportResult:
    """Export a run (see the module docstring). `stage(description, total)` is called at
    each step and returns a callback advancing that step's progress (for progress bars)."""
    from trainer.parity import (
        MIN_ON_POLICY_AGREEMENT,
        compare,
        continuous_tolerance,
        keras_outputs,
        simulator_frames,
        tflite_outputs,
    )
    from vehicle.inference import Policy
    from vehicle.models.bundle import check_name

    int8 = config.format == "int8"
    if config.format not in FORMATS:
        raise ExportError(f"--format {config.format!r} is not one of {list(FORMATS)}")
    if int8 and config.representative_frames < 200:
        raise ExportError(
            f"--representative-frames {config.representative_frames} is too few to calibrate "
            "int8; use at least 200 (default 1000)"
        )
    if config.parity_frames < 100:
        raise ExportError(f"--parity-frames {config.parity_frames} must be at least 100")
    laps = config.laps if config.laps is not None else (10 if int8 else 3)
    if int8 and laps < 10:
        raise ExportError(
            f"--laps {laps} is too few to judge int8 parity by driving; use at least 10 "
            "(the default)"
        )
    if laps < 0:
        raise ExportError(f"--laps {laps} must be 0 or more")
    min_agreement = config.min_agreement
    if min_agreement is None:
        min_agreement = MIN_ON_POLICY_AGREEMENT if int8 else 0.99
    if not 0.0 <= min_agreement <= 1.0:
        raise ExportError(f"--min-agreement {min_agreement} must be between 0 and 1")
    if int8 and config.distill_steps < 1:
        raise ExportError(f"--distill-steps {config.distill_steps} must be at least 1")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run = load_run_to_export(config.run, config.checkpoint, config.randomize)
    model, metadata, tracks, randomize = run.model, run.metadata, run.tracks, run.randomize
    name = check_name(config.name or f"{run.path.resolve().name}-{run.iteration}-{config.format}")
    out = Path(config.out) if config.out else run.path / "export" / f"{name}.tar.gz"
    kind = metadata.action_space.kind
    tolerance = continuous_tolerance(metadata.action_space) if kind == "continuous" else (0.0, 0.0)
    frame_kwargs = run.frame_env_kwargs()
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage("converting to TFLite float32", None)
    float32_bytes = convert(model, "float32")
    timings["convert"] = time.perf_counter() - t0
    if int8:
        judged = _judge_int8(
            config,
            model,
            metadata,
            tracks[0],
            randomize,
            laps,
            float32_bytes,
            min_agreement,
            tolerance,
            stage,
            timings,
        )
        model_bytes, parity, lap_figures, passed, failure = judged
    else:
        t0 = time.perf_counter()
        stage(f"converting to TFLite {config.format}", None)
        model_bytes = float32_bytes if config.format == "float32" else convert(model, config.format)
        timings["convert"] += time.perf_counter() - t0
        parity, lap_figures = {}, {}
    t0 = time.perf_counter()
    advance = stage("held-out simulator frames (random poses)", config.parity_frames)
    held_out = simulator_frames(
        model,
        metadata,
        frame_kwargs,
        config.parity_frames,
        seed=config.seed * 2 + 2,
        on_progress=advance,
    )
    stage("agreement on held-out frames", None)
    tflite = Policy.from_bytes(model_bytes, metadata)
    # float16/float32 keep their [-1, 1]-unit tolerance; int8 uses the car's units
    tol = {"tolerance": tolerance} if int8 and kind == "continuous" else {}
    held = compare(
        keras_outputs(model, held_out), tflite_outputs(tflite, held_out), kind, **tol
    ).to_json()
    timings["held_out"] = time.perf_counter() - t0
    if int8:
        parity["held_out"] = held
    else:
        parity = {**held, "representative_frames": 0, "randomize": randomize}
        passed = held["agreement"] >= min_agreement
        failure = (
            f"{config.format} model agrees with the float model on "
            f"{100 * held['agreement']:.2f}% of {held['frames']} held-out frames, below the "
            f"{100 * min_agreement:.0f}% required (max error {held['max_abs_error']:.4f}, "
            f"{held['disagreements']} frames differ); nothing written. Try --format float16, "
            "or pass --allow-parity-loss to write it anyway"
        )
        t0 = time.perf_counter()
        if laps > 0:
            lap_figures = _float_laps(
                model, tflite, metadata, tracks[0], randomize, laps, config.seed, stage
            )
        parity["laps"] = lap_figures
        timings["laps"] = time.perf_counter() - t0

    quant = quantization_info(model_bytes, config.format)
    if int8 and not (quant["pixels_exact"] and quant["per_channel_kernels"] == quant["kernels"]):
        raise ExportError(
            f"the int8 conversion of {config.run} is malformed: pixels exact on the int8 grid "
            f"{quant['pixels_exact']}, {quant['per_channel_kernels']} of {quant['kernels']} "
            "kernels quantized per channel; the TensorFlow converter changed (report it), "
            "use --format float16 meanwhile"
        )
    source = {
        **run.source(),
        "reward_sha256": _file_sha256(run.reward_file),
        "reward_file": run.reward_file.name if run.reward_file.exists() else None,
    }
    result = ExportResult(
        bundle_path=None,
        name=name,
        format=config.format,
        size_bytes=len(model_bytes),
        float32_size_bytes=len(float32_bytes),
        parity=parity,
        laps=lap_figures,
        quantization=quant,
        source=source,
        passed=passed,
        timings_s=timings,
        float32_bytes=float32_bytes,
        model_bytes=model_bytes,
    )
    if not passed and not config.allow_parity_loss:
        raise ParityError(result, failure)
    _write(
        config,
        out,
        name,
        model_bytes,
        metadata,
        source,
        {**parity, "passed": passed, "min_agreement": min_agreement},
        quant,
    )
    result.bundle_path = out
    return result


def _float_laps(
    model: Any,
    tflite: Any,
    metadata: ModelMetadata,
    track: Any,
    randomize: str,
    laps: int,
    seed: int,
    stage: Stage,
) -> dict[str, Any]:
    """float16/float32: both models' lap figures, for information."""
    from trainer.evaluate import evaluate
    from trainer.parity import keras_policy_fn, tflite_policy_fn

    kind = metadata.action_space.kind
    figures: dict[str, Any] = {}
    for label, fn in (
        ("float", keras_policy_fn(model, kind)),
        ("tflite", tflite_policy_fn(tflite, kind)),
    ):
        stage(f"{laps} evaluation laps, {label} model", None)
        report = evaluate(
            fn, track, laps, randomize, metadata=metadata, seed=seed, parallel=min(laps, 3)
        )
        figures[label] = _lap_summary(report)
    figures["track"] = str(track)
    figures["randomize"] = randomize
    return figures


def _judge_int8(
    config: ExportConfig,
    model: Any,
    metadata: ModelMetadata,
    track: Any,
    randomize: str,
    laps: int,
    float32_bytes: bytes,
    min_agreement: float,
    tolerance: tuple[float, float],
    stage: Stage,
    timings: dict[str, float],
) -> tuple[bytes, dict[str, Any], dict[str, Any], bool, str]:
    """Calibrate, convert and judge int8 by driving (module docstring, step 4): the chosen
    model bytes, the parity and lap figures, whether it passed, and the refusal message."""
    from trainer.evaluate import evaluate
    from trainer.parity import (
        compare,
        judge_laps,
        keras_outputs,
        keras_policy_fn,
        tflite_outputs,
        tflite_policy_fn,
    )
    from trainer.quantize import (
        distill,
        equalize_head,
        float_ends,
        on_policy_frames,
        recording,
    )
    from vehicle.inference import Policy

    kind = metadata.action_space.kind
    float_fn = keras_policy_fn(model, kind)
    t0 = time.perf_counter()
    stage("on-policy frames for int8 calibration (float model's laps)", None)
    representative = on_policy_frames(
        float_fn,
        track,
        randomize,
        metadata,
        config.representative_frames,
        seed=config.seed + CALIBRATION_SEED_OFFSET,
    )
    timings["calibration_frames"] = time.perf_counter() - t0

    def drive(
        fn: Callable[[np.ndarray], np.ndarray], label: str, seen: list[np.ndarray] | None = None
    ) -> Any:
        stage(f"{laps} laps from the start line, {label}", None)
        return evaluate(
            recording(fn, seen) if seen is not None else fn,
            track,
            laps,
            randomize,
            metadata=metadata,
            seed=config.seed,
            parallel=3,
        )

    t0 = time.perf_counter()
    float_seen: list[np.ndarray] = []
    float_report = drive(float_fn, "float model", float_seen)
    control = Policy.from_bytes(float32_bytes, metadata)
    control_report = drive(tflite_policy_fn(control, kind), "float32 TFLite control")
    timings["float_laps"] = time.perf_counter() - t0

    attempts: list[dict[str, Any]] = []
    best: tuple[bytes, dict[str, Any], Any] | None = None
    ends = float_ends(kind)
    # smallest first: the hidden dense layer in float (its weights too) comes last
    methods = ["post-training"] + (["distillation"] if config.distill else [])
    methods += ["float dense layers"] if ends else []
    base, equalized = model, None
    if ends:  # the same function, its last hidden layer's units spread over the int8 grid
        base, equalized = equalize_head(model, representative)
    for method in methods:
        t0 = time.perf_counter()
        how: dict[str, Any] = {"method": method}
        source_model = base
        if method == "distillation":
            advance = stage(
                "distilling the rounded network toward the float policy", config.distill_steps
            )
            source_model, how = distill(
                base,
                representative,
                kind,
                steps=config.distill_steps,
                seed=config.seed,
                float_ends=ends,
                on_progress=advance,
            )
        tail = 2 if method == "float dense layers" else 1  # the hidden dense layer too
        if method == "float dense layers":
            source_model = model  # nothing to equalize: the hidden layer is float
        how = {
            **how,
            "float_ends": ends,
            "equalized": equalized if source_model is not model else None,
        }
        stage(f"converting to TFLite int8 ({method})", None)
        model_bytes = convert(
            source_model, "int8", representative, float_ends=ends, float_tail=tail
        )
        tflite = Policy.from_bytes(model_bytes, metadata)
        seen: list[np.ndarray] = []
        report = drive(tflite_policy_fn(tflite, kind), f"int8 model ({method})", seen)
        stage("agreement on the frames both models visited", None)
        frames = np.concatenate(float_seen + seen)
        kwargs = {"tolerance": tolerance} if kind == "continuous" else {}
        on_policy = compare(
            keras_outputs(model, frames), tflite_outputs(tflite, frames), kind, **kwargs
        )
        lap_parity = judge_laps(float_report, report, control_report)
        ok_agree = on_policy.agreement >= min_agreement
        attempt = {
            **how,
            "agreement": on_policy.agreement,
            "frames": on_policy.frames,
            "agreement_passed": ok_agree,
            "lap_parity": lap_parity,
            "tflite_laps": _lap_summary(report),
            "passed": ok_agree and lap_parity["passed"],
        }
        attempts.append(attempt)
        timings[f"int8_{method}"] = time.perf_counter() - t0
        best = (model_bytes, on_policy.to_json(), report)
        if attempt["passed"]:
            break
    assert best is not None
    model_bytes, on_policy_json, report = best
    last = attempts[-1]
    lap_figures = {
        "float": _lap_summary(float_report),
        "tflite": _lap_summary(report),
        "control": _lap_summary(control_report),
        "track": str(track),
        "randomize": randomize,
        "seed": config.seed,
    }
    parity = {
        **on_policy_json,
        "frames_source": "on-policy: the frames the float and int8 models visit in their laps",
        "min_agreement": min_agreement,
        "steer_tolerance_deg": STEER_TOL_DEG if kind == "continuous" else None,
        "speed_tolerance_mps": (
            SPEED_TOL_FRACTION * metadata.action_space.max_speed_mps
            if kind == "continuous"
            else None
        ),
        "lap_parity": last["lap_parity"],
        "method": last["method"],
        "attempts": attempts,
        "representative_frames": len(representative),
        "calibration": "on-policy: greedy laps of the float model from the start line, "
        f"seeds from {config.seed + CALIBRATION_SEED_OFFSET}",
        "randomize": randomize,
        "laps": lap_figures,
    }
    failure = ""
    if not last["passed"]:
        failure = refusal_message(attempts, min_agreement)
    return model_bytes, parity, lap_figures, bool(last["passed"]), failure


def refusal_message(attempts: list[dict[str, Any]], min_agreement: float) -> str:
    """The one-line refusal of an int8 model: both figures of the last attempt, each marked
    ok or FAILED, and what was tried."""
    a = attempts[-1]
    lp = a["lap_parity"]
    diff = lp["lap_time_diff"]
    agree = (
        f"on-policy agreement {100 * a['agreement']:.2f}% of {a['frames']} frames "
        f"(needs {100 * min_agreement:.1f}%: {'ok' if a['agreement_passed'] else 'FAILED'})"
    )
    laps = (
        f"lap parity {lp['tflite_laps']} laps vs the float model's {lp['float_laps']} of "
        f"{lp['laps'] - len(lp['undetermined'])} determined"
        + (f" ({len(lp['undetermined'])} undetermined left out)" if lp["undetermined"] else "")
        + (f", mean lap {100 * diff:+.2f}%" if diff is not None else "")
        + f" (needs as many laps, mean lap within {100 * lp['lap_time_tolerance']:.0f}%: "
        + ("ok" if lp["passed"] else "FAILED")
        + ")"
    )
    tried = ", ".join(t["method"] for t in attempts)
    return (
        f"int8 model refused after {tried}: {agree}; {laps}; nothing written. Try more "
        "--representative-frames or --distill-steps, --format float16, or pass "
        "--allow-parity-loss to write it anyway"
    )


def _write(
    config: ExportConfig,
    out: Path,
    name: str,
    model_bytes: bytes,
    metadata: ModelMetadata,
    source: dict[str, Any],
    parity: dict[str, Any],
    quant: dict[str, Any],
) -> None:
    """The bundle (atomically, through `write_bundle`), signed when a key is given."""
    from vehicle.models.bundle import write_bundle

    signing_key = None
    if config.sign:
        from vehicle.models.signing import load_signing_key

        signing_key = load_signing_key(config.sign)
    bundle_meta = metadata.with_extra(quantization=quant)
    write_bundle(
        out,
        name=name,
        model_bytes=model_bytes,
        metadata=bundle_meta,
        source=source,
        parity=parity,
        quantization=quant,
        signing_key=signing_key,
    )


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
