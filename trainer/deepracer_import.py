"""`racer models import`: a DeepRacer model (console or deepracer-for-cloud) as openracer
model bundles, int8 and float16, with parity measured against the original graph.

1. `trainer.deepracer_archive.open_archive` finds `model_metadata.json` and the one `.pb`;
2. the metadata is checked (SAC and multi-sensor models are refused by name) and parsed as
   any DeepRacer file is (`vehicle.metadata.parse_metadata`);
3. `trainer.deepracer_graph.read_graph` loads the frozen graph by DeepRacer's tensor names
   (`tf.compat.v1`) and checks that its output fits the action space;
4. the original graph drives the simulator (`trainer.parity.simulator_frames`, the export's
   frame source) on `track` under `randomize` for the int8 calibration frames and, with
   other seeds, for the held-out parity frames;
5. each format is converted by `trainer.export.convert` (the export's own settings) and
   compared with the original graph by `trainer.parity.compare` on the held-out frames,
   run by the car's interpreter; both then drive the same seeded laps;
6. each bundle whose agreement reaches `min_agreement` (or every one, with
   `allow_parity_loss`) is written (`vehicle.models.bundle`), with the archive, graph hash,
   tensor names and parity in its manifest; a format below it is not written, and the
   import then ends in `ImportParityError` naming the figure and what was written.

The bundles run wherever an openracer model runs: `racer eval`, `race`, `eval --sweep`,
`drive` (on the car and `--sim`). DeepRacer's Gazebo camera images and openracer's raster
images differ, so a DeepRacer model's laps here measure that gap.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import DeepRacerModelError, ImportParityError
from trainer.export import Stage, silent_stage

IMPORT_FORMATS = ("int8", "float16")
"""The bundles an import writes: int8 for the car, float16 as the near-exact reference."""


@dataclass(frozen=True)
class ImportConfig:
    """What `racer models import` does."""

    archive: str
    """The DeepRacer model: a .tar.gz/.tgz/.tar file or a folder."""
    graph: str | None = None
    """Which .pb, when the archive holds several (its path inside the archive, or its name)."""
    out_dir: str = "."
    """Folder the bundles are written to (NAME-int8.tar.gz, NAME-float16.tar.gz)."""
    name: str | None = None
    """Model name (default: the archive's name)."""
    sign: str | None = None
    """Private key (.key from `racer keys new`) to sign the bundles with."""
    track: str = "reinvent_like"
    """Track the frames and laps are played on (a name, or a DeepRacer .npy)."""
    randomize: str = "standard"
    """Randomization preset of the frames and laps."""
    representative_frames: int = 500
    """Simulator frames used to calibrate int8 quantization."""
    parity_frames: int = 2000
    """Held-out simulator frames the parity is measured on."""
    min_agreement: float = 0.995
    """Refuse an int8 model agreeing with the original graph on fewer frames than this."""
    allow_parity_loss: bool = False
    """Write the bundles even below min_agreement."""
    laps: int = 3
    """Evaluation laps of the original graph and the int8 model (0: skip)."""
    seed: int = 0
    """Seed of the simulator episodes (frames and laps)."""


@dataclass
class ImportResult:
    """What the import measured, and where the bundles went."""

    name: str
    archive: dict[str, Any]
    formats: dict[str, dict[str, Any]]
    laps: dict[str, Any]
    passed: bool
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "archive": self.archive,
            "formats": self.formats,
            "laps": self.laps,
            "passed": self.passed,
            "timings_s": self.timings_s,
        }


def model_name(archive: Any, chosen: bool) -> str:
    """A bundle name from the archive's file or folder name (plus the graph's, when one of
    several was chosen)."""
    stem = archive.source.name
    for suffix in (".tar.gz", ".tgz", ".tar", ".gz"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if chosen:
        stem = f"{stem}-{archive.graph_path.stem}"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "deepracer"
    return stem[:50]


def import_model(
    config: ImportConfig,
    *,
    stage: Stage = silent_stage,
) -> ImportResult:
    """Import a DeepRacer model (see the module docstring)."""
    from trainer.deepracer_archive import open_archive
    from trainer.deepracer_graph import check_supported, read_graph
    from trainer.evaluate import env_kwargs_for, evaluate
    from trainer.export import _lap_summary, convert, quantization_info
    from trainer.parity import (
        compare,
        keras_outputs,
        keras_policy_fn,
        simulator_frames,
        tflite_outputs,
        tflite_policy_fn,
    )
    from trainer.quantize import float_ends
    from vehicle.errors import MetadataError
    from vehicle.inference import Policy
    from vehicle.metadata import parse_metadata
    from vehicle.models.bundle import check_name, write_bundle

    if config.representative_frames < 200:
        raise DeepRacerModelError(
            f"--representative-frames {config.representative_frames} is too few to calibrate "
            "int8; use at least 200 (default 500)"
        )
    if config.parity_frames < 100:
        raise DeepRacerModelError(f"--parity-frames {config.parity_frames} must be at least 100")
    out_dir = Path(config.out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise DeepRacerModelError(f"--out-dir {out_dir}: exists and is not a folder")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="openracer-import-") as work:
        archive = open_archive(config.archive, work, config.graph)
        where = f"{config.archive}: {archive.graph_member}"
        raw = archive.metadata
        sensors = raw.get("sensor", ["observation"])  # DeepRacer's default without the key
        sensors = [sensors] if isinstance(sensors, str) else list(sensors)
        algorithm = str(raw.get("training_algorithm", "clipped_ppo")).strip().lower()
        sensor = check_supported(sensors, algorithm, str(archive.metadata_path))
        try:
            with warnings.catch_warnings():  # keys DeepRacer ignores: ignored here too
                warnings.simplefilter("ignore")
                metadata = parse_metadata(raw, str(archive.metadata_path))
        except MetadataError as exc:
            raise DeepRacerModelError(str(exc)) from exc
        graph_bytes = archive.graph_path.read_bytes()
        graph = read_graph(graph_bytes, sensor, algorithm, where)
        space = metadata.action_space
        wanted = (space.n,) if space.kind == "discrete" else (2, 4)
        if graph.interface.n_outputs not in wanted:
            raise DeepRacerModelError(
                f"{where}: the policy gives {graph.interface.n_outputs} values per frame, and "
                f"{archive.metadata_path} describes a {space.kind} space of "
                f"{' or '.join(map(str, wanted))}; the metadata belongs to another model"
            )
        source_info = {
            "deepracer_archive": str(archive.source.resolve()),
            "graph": archive.graph_member,
            "graph_sha256": hashlib.sha256(graph_bytes).hexdigest(),
            "graph_input": graph.interface.input,
            "graph_output": graph.interface.output,
            "metadata_file": archive.metadata_path.relative_to(archive.root).as_posix(),
            "sensor": sensor,
        }
    name = config.name or model_name(archive, config.graph is not None)
    check_name(f"{name}-float16", "--name (with the format added)")
    kind = space.kind
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    frame_kwargs = env_kwargs_for(config.track, metadata, config.randomize)
    advance = stage("simulator frames for int8 calibration", config.representative_frames)
    representative = simulator_frames(
        graph, metadata, frame_kwargs, config.representative_frames,
        seed=config.seed * 2 + 1, on_progress=advance,
    )  # fmt: skip
    advance = stage("held-out simulator frames for parity", config.parity_frames)
    held_out = simulator_frames(
        graph, metadata, frame_kwargs, config.parity_frames,
        seed=config.seed * 2 + 2, on_progress=advance,
    )  # fmt: skip
    reference = keras_outputs(graph, held_out)
    timings["frames"] = time.perf_counter() - t0

    formats: dict[str, dict[str, Any]] = {}
    models: dict[str, bytes] = {}
    policies: dict[str, Any] = {}
    for fmt in IMPORT_FORMATS:
        t0 = time.perf_counter()
        stage(f"converting to TFLite {fmt}, parity against the original graph", None)
        models[fmt] = (
            convert(graph, fmt, representative, float_ends=float_ends(kind))
            if fmt == "int8"
            else convert(graph, fmt)
        )
        policies[fmt] = Policy.from_bytes(models[fmt], metadata)
        report = compare(reference, tflite_outputs(policies[fmt], held_out), kind)
        formats[fmt] = {
            "size_bytes": len(models[fmt]),
            "parity": {
                **report.to_json(),
                "reference": "the original DeepRacer graph (tf.compat.v1)",
                "representative_frames": len(representative) if fmt == "int8" else 0,
                "track": str(config.track),
                "randomize": config.randomize,
            },
            "quantization": quantization_info(models[fmt], fmt),
        }
        timings[f"convert_{fmt}"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    laps: dict[str, Any] = {}
    if config.laps > 0:
        for label, fn in (
            ("graph", keras_policy_fn(graph, kind)),
            ("int8", tflite_policy_fn(policies["int8"], kind)),
        ):
            stage(f"{config.laps} evaluation laps, {label} model", None)
            lap_report = evaluate(
                fn, config.track, config.laps, config.randomize, metadata=metadata,
                seed=config.seed, parallel=min(config.laps, 3),
            )  # fmt: skip
            laps[label] = _lap_summary(lap_report)
        laps["track"] = str(config.track)
        laps["randomize"] = config.randomize
    timings["laps"] = time.perf_counter() - t0

    for fmt in IMPORT_FORMATS:
        formats[fmt]["parity"]["passed"] = (
            formats[fmt]["parity"]["agreement"] >= config.min_agreement
        )
    passed = all(f["parity"]["passed"] for f in formats.values())
    result = ImportResult(
        name=name, archive=source_info, formats=formats, laps=laps, passed=passed, timings_s=timings
    )
    signing_key = None
    if config.sign:
        from vehicle.models.signing import load_signing_key

        signing_key = load_signing_key(config.sign)
    for fmt in IMPORT_FORMATS:  # a format below min_agreement only with allow_parity_loss
        if not formats[fmt]["parity"]["passed"] and not config.allow_parity_loss:
            continue
        quant = formats[fmt]["quantization"]
        bundle_meta = metadata.with_extra(quantization=quant)
        parity = {
            **formats[fmt]["parity"],
            "laps": laps if fmt == "int8" else {},
            "min_agreement": config.min_agreement,
        }
        path = out_dir / f"{name}-{fmt}.tar.gz"
        write_bundle(
            path,
            name=f"{name}-{fmt}",
            model_bytes=models[fmt],
            metadata=bundle_meta,
            source={**source_info, "imported_from": "deepracer"},
            parity=parity,
            quantization=quant,
            signing_key=signing_key,
        )
        formats[fmt]["bundle"] = str(path)
    refused = [fmt for fmt in IMPORT_FORMATS if "bundle" not in formats[fmt]]
    if refused:
        par = formats[refused[0]]["parity"]
        written = [formats[f]["bundle"] for f in IMPORT_FORMATS if "bundle" in formats[f]]
        raise ImportParityError(
            result,
            f"{config.archive}: the {refused[0]} model agrees with the original graph on "
            f"{100 * par['agreement']:.2f}% of {par['frames']} held-out frames, below the "
            f"{100 * config.min_agreement:.1f}% required ({par['disagreements']} differ, max "
            f"error {par['max_abs_error']:.4f}), so it was not written"
            + (f"; written: {', '.join(written)}" if written else "; nothing written")
            + ". Pass --allow-parity-loss to write it anyway",
        )
    return result
