"""`racer export RUN --deepracer-car`: a trained run as the archive a stock AWS DeepRacer car
loads through its device console, proven here with the car's own converter.

1. loads the checkpoint as the float Keras policy (`trainer.checkpoint.load_keras_policy`);
2. writes it as DeepRacer's frozen TF1 graph (`trainer.deepracer_graph.graph_from_keras`:
   DeepRacer's input and output names, only ops OpenVINO's converter accepts);
3. plays the simulator under the run's tracks and randomization for held-out frames (the
   export's frame source and seeds, `trainer.parity.simulator_frames`);
4. converts the graph with OpenVINO as the car's model optimizer does (FP16 weights), runs
   the converted model frame by frame, and scores it against the Keras policy
   (`trainer.parity.compare`); also loads the graph with `tf.compat.v1` by the tensor
   names and scores that;
5. refuses an OpenVINO agreement below `CAR_MIN_AGREEMENT` (99.5 %) unless
   `allow_parity_loss`, and otherwise writes `model_metadata.json` + `agent/model.pb` as
   one `.tar.gz` (`trainer.deepracer_archive.write_car_archive`, atomic).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import DeepRacerModelError
from trainer.export import Stage, load_run_to_export, silent_stage

CAR_MIN_AGREEMENT = 0.995
"""OpenVINO-converted graph vs the Keras policy: the least action agreement accepted."""


@dataclass(frozen=True)
class CarExportConfig:
    """What `racer export RUN --deepracer-car` does."""

    run: str
    """Run directory written by `racer train`."""
    checkpoint: str = "best"
    """'best', 'last' or an iteration number."""
    out: str | None = None
    """Archive path (default RUN/export/<run>-<iteration>-deepracer.tar.gz)."""
    parity_frames: int = 2000
    """Held-out simulator frames the parity is measured on."""
    min_agreement: float = CAR_MIN_AGREEMENT
    """Refuse below this agreement of the OpenVINO-converted graph unless allow_parity_loss."""
    allow_parity_loss: bool = False
    """Write the archive even below min_agreement."""
    seed: int = 0
    """Seed of the simulator episodes."""
    randomize: str | None = None
    """Randomization of the frames (default: the run's own)."""


@dataclass
class CarExportResult:
    """What the car export measured, and where the archive went."""

    archive: Path | None
    graph_size_bytes: int
    openvino: dict[str, Any]
    tf_compat_v1: dict[str, Any]
    source: dict[str, Any]
    passed: bool
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": str(self.archive) if self.archive else None,
            "graph_size_bytes": self.graph_size_bytes,
            "openvino": self.openvino,
            "tf_compat_v1": self.tf_compat_v1,
            "source": self.source,
            "passed": self.passed,
            "timings_s": self.timings_s,
        }


def export_car(
    config: CarExportConfig,
    *,
    stage: Stage = silent_stage,
) -> CarExportResult:
    """Export a run for the AWS DeepRacer car (see the module docstring)."""
    from trainer.deepracer_archive import CAR_GRAPH_MEMBER, write_car_archive
    from trainer.deepracer_graph import graph_from_keras, openvino_outputs, session_outputs
    from trainer.parity import compare, keras_outputs, simulator_frames

    if config.parity_frames < 100:
        raise DeepRacerModelError(f"--parity-frames {config.parity_frames} must be at least 100")
    if not 0.0 <= config.min_agreement <= 1.0:
        raise DeepRacerModelError(
            f"--min-agreement {config.min_agreement} must be between 0 and 1 "
            f"(default {CAR_MIN_AGREEMENT})"
        )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run = load_run_to_export(config.run, config.checkpoint, config.randomize)
    model, metadata = run.model, run.metadata
    out = (
        Path(config.out)
        if config.out
        else run.path / "export" / f"{run.path.resolve().name}-{run.iteration}-deepracer.tar.gz"
    )
    sensor = metadata.sensor[0]
    kind = metadata.action_space.kind
    graph_bytes = graph_from_keras(model, sensor)
    timings["graph"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    advance = stage("held-out simulator frames for parity", config.parity_frames)
    frames = simulator_frames(
        model,
        metadata,
        run.frame_env_kwargs(),
        config.parity_frames,
        seed=config.seed * 2 + 2,
        on_progress=advance,
    )
    reference = keras_outputs(model, frames)
    timings["frames"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage("OpenVINO conversion as on the car, and its parity", None)
    with tempfile.TemporaryDirectory(prefix="openracer-car-") as tmp:
        pb = Path(tmp) / "model.pb"
        pb.write_bytes(graph_bytes)
        ov_out, ov_info = openvino_outputs(pb, frames, sensor)
    ov_report = {**compare(reference, ov_out, kind).to_json(), **ov_info}
    timings["openvino"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage("tf.compat.v1 load by tensor names, and its parity", None)
    v1_report = compare(reference, session_outputs(graph_bytes, frames, sensor), kind).to_json()
    timings["tf_compat_v1"] = time.perf_counter() - t0

    source = {**run.source(), "graph_member": CAR_GRAPH_MEMBER}
    passed = ov_report["agreement"] >= config.min_agreement
    result = CarExportResult(
        archive=None,
        graph_size_bytes=len(graph_bytes),
        openvino=ov_report,
        tf_compat_v1=v1_report,
        source=source,
        passed=passed,
        timings_s=timings,
    )
    if not passed and not config.allow_parity_loss:
        raise DeepRacerModelError(
            f"{config.run}: the OpenVINO-converted graph agrees with the Keras policy on "
            f"{100 * ov_report['agreement']:.2f}% of {ov_report['frames']} held-out frames, below "
            f"the {100 * config.min_agreement:.1f}% required (max error "
            f"{ov_report['max_abs_error']:.4f}); nothing written. Pass --allow-parity-loss to "
            "write it anyway"
        )
    write_car_archive(out, metadata.to_json(), graph_bytes)
    result.archive = out
    return result
