"""The run directory: layout, atomic checkpoints, resume state, and loading a trained policy.

Layout (DeepRacer-for-Cloud single-worker, so deepracer-utils reads it, plus our files):

```
RUN/config.json                      TrainConfig (schema_version)
RUN/model/model_metadata.json        DeepRacer model metadata (action space, network)
RUN/ip/hyperparameters.json          DeepRacer hyperparameters
RUN/reward_function.py               the reward file used (copy)
RUN/training-simtrace/N-iteration.csv
RUN/metrics/TrainingMetrics.json
RUN/tensorboard/                     TensorBoard event files
RUN/progress.json                    the last iteration's figures (what the display shows)
RUN/checkpoints/ckpt-NNNNNN.npz      weights after iteration N (PPO: policy, value, log_std;
                                     SAC: policy, sac_log_std, sac_critic, sac_target)
RUN/checkpoints/index.json           {"last", "best", "best_score", "kept"}
RUN/checkpoints/resume.npz           full state of the last iteration (weights, Adam,
                                     counters, RNG, round robin, metrics count; not SAC's
                                     replay buffer)
RUN/failed.json                      only after a run stopped on an error: the message and
                                     the iterations completed (removed by the next one)
```

Every file is written to a temporary name in the same directory, flushed, fsynced and
renamed over the target (`vehicle.files.atomic_write`), so a `kill -9` at any moment leaves
either the old or the new file. Per iteration the order is: simtrace and metrics, `ckpt-N`,
`resume.npz`, `index.json`, then pruning. `resume.npz` is the source of truth: on resume,
simtrace files and checkpoints of later iterations are deleted, `TrainingMetrics.json` is
cut back to the count recorded in it, and `index.json` is rewritten from it. At most the
iteration in flight is lost.

Stable contract for export and evaluation:
`load_keras_policy(run_dir, which="best"|"last"|N) -> (keras.Model, ModelMetadata, info)`,
the model as `trainer.networks.build_policy` describes it.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import CheckpointError
from vehicle.errors import MetadataError
from vehicle.files import atomic_write, atomic_write_json, read_json
from vehicle.metadata import ModelMetadata, load_metadata

CHECKPOINT_VERSION = 1
_CKPT_RE = re.compile(r"ckpt-(\d{6})\.npz$")


def _pack(groups: dict[str, list[np.ndarray]], state: dict[str, Any]) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    for group, items in groups.items():
        for i, a in enumerate(items):
            arrays[f"{group}/{i:04d}"] = np.asarray(a)
    state = {**state, "checkpoint_version": CHECKPOINT_VERSION}
    arrays["__state__"] = np.frombuffer(json.dumps(state).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _unpack(path: Path) -> tuple[dict[str, list[np.ndarray]], dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            state = json.loads(bytes(z["__state__"]).decode("utf-8"))
            groups: dict[str, list[np.ndarray]] = {}
            for key in sorted(k for k in z.files if k != "__state__"):
                group, _ = key.rsplit("/", 1)
                groups.setdefault(group, []).append(z[key])
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: checkpoint not found") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from exc
    if state.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('checkpoint_version')} is not "
            f"{CHECKPOINT_VERSION}; it was written by another openracer version"
        )
    return groups, state


class RunDir:
    """Paths and file operations of one run directory (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.simtrace = self.path / "training-simtrace"
        self.metrics = self.path / "metrics" / "TrainingMetrics.json"
        self.tensorboard = self.path / "tensorboard"
        self.config = self.path / "config.json"
        self.metadata_file = self.path / "model" / "model_metadata.json"
        self.hyperparameters_file = self.path / "ip" / "hyperparameters.json"
        self.reward_file = self.path / "reward_function.py"
        self.index_file = self.checkpoints / "index.json"
        self.resume_file = self.checkpoints / "resume.npz"
        self.failure_file = self.path / "failed.json"

    def checkpoint_path(self, iteration: int) -> Path:
        return self.checkpoints / f"ckpt-{iteration:06d}.npz"

    def exists(self) -> bool:
        return self.config.exists()

    def metadata(self) -> ModelMetadata:
        try:
            return load_metadata(self.metadata_file)
        except MetadataError as exc:
            raise CheckpointError(f"run {self.path}: {exc}") from exc

    def create(self, config: Any, hp: Any, metadata: ModelMetadata) -> None:
        """Start a new run: config, DeepRacer metadata and hyperparameters, reward copy."""
        if self.exists() and not self.resume_file.exists():
            # A run that never finished an iteration: nothing to lose, start it again.
            for p in (self.config, self.metadata_file, self.hyperparameters_file):
                p.unlink(missing_ok=True)
            self.reward_file.unlink(missing_ok=True)
            for p in self.simtrace.glob("*.csv"):
                p.unlink()
            self.metrics.unlink(missing_ok=True)
            self.failure_file.unlink(missing_ok=True)
            for p in self.tensorboard.glob("*"):
                p.unlink()
        if self.exists():
            raise CheckpointError(
                f"{self.path} already holds a run; add --resume to continue it, or choose "
                "another --out"
            )
        leftovers = {"model", "ip", "tensorboard", "checkpoints", "training-simtrace", "metrics"}
        if self.path.exists() and any(p.name not in leftovers for p in self.path.iterdir()):
            raise CheckpointError(
                f"{self.path} exists and is not empty; choose a new --out directory"
            )
        reward_text = None
        if config.reward:
            try:
                reward_text = Path(config.reward).read_bytes()
            except OSError as exc:
                raise CheckpointError(
                    f"--reward {config.reward}: cannot read the reward file ({exc.strerror})"
                ) from exc
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.metadata_file, metadata.to_json())
        atomic_write_json(self.hyperparameters_file, hp.to_json())
        if reward_text is not None:
            atomic_write(self.reward_file, reward_text)
        atomic_write_json(self.config, config.to_json())  # last: marks a complete run dir

    def mark_failed(self, exc: BaseException, iteration: int) -> None:
        """Write `failed.json`: the run stopped on this error after `iteration` complete
        iterations (the checkpoints up to it are whole; nothing of the failed one was
        written). A later successful iteration (`--resume`) removes it."""
        if not self.exists():
            return
        atomic_write_json(
            self.failure_file,
            {
                "schema_version": 1,
                "error": str(exc),
                "error_type": type(exc).__name__,
                "completed_iterations": iteration,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )

    # -- checkpoints -------------------------------------------------------------------
    def save_checkpoint(
        self, iteration: int, weights: dict[str, list[np.ndarray]], info: dict[str, Any]
    ) -> Path:
        path = self.checkpoint_path(iteration)
        atomic_write(path, _pack(weights, {"iteration": iteration, **info}))
        return path

    def load_checkpoint(self, which: str | int = "best") -> tuple[dict[str, list], dict]:
        """Weights and info of checkpoint `which`: "best", "last", or an iteration number."""
        iteration = self.resolve(which)
        groups, info = _unpack(self.checkpoint_path(iteration))
        info["path"] = str(self.checkpoint_path(iteration))
        return groups, info

    def index(self) -> dict[str, Any]:
        return read_json(
            self.index_file,
            what="checkpoint index",
            error=CheckpointError,
            missing="no checkpoints yet; is this a run directory written by `racer train`?",
        )

    def resolve(self, which: str | int) -> int:
        """The iteration number `which` refers to."""
        index = self.index()
        if isinstance(which, int) or str(which).isdigit():
            n = int(which)
            if not self.checkpoint_path(n).exists():
                kept = index.get("kept", [])
                raise CheckpointError(
                    f"{self.path}: no checkpoint of iteration {n}; kept iterations: {kept}"
                )
            return n
        if which not in ("best", "last"):
            raise CheckpointError(
                f"checkpoint {which!r} is not 'best', 'last' or an iteration number"
            )
        found = index.get(which)
        if found is None:
            found = index.get("last")
        if found is None:
            raise CheckpointError(f"{self.path}: no checkpoint saved yet")
        return int(found)

    def save_resume(
        self,
        weights: dict[str, list[np.ndarray]],
        optimizer: list[np.ndarray],
        state: dict[str, Any],
    ) -> None:
        atomic_write(self.resume_file, _pack({**weights, "optimizer": optimizer}, state))
        atomic_write_json(self.index_file, state["index"])

    def load_resume(self) -> tuple[dict[str, list], list[np.ndarray], dict[str, Any]]:
        if not self.resume_file.exists():
            raise CheckpointError(
                f"{self.path}: nothing to resume (no checkpoints/resume.npz); start the run "
                "without --resume"
            )
        groups, state = _unpack(self.resume_file)
        optimizer = groups.pop("optimizer", [])
        return groups, optimizer, state

    def save_iteration(
        self,
        weights: dict[str, list[np.ndarray]],
        optimizer: list[np.ndarray],
        state: dict[str, Any],
        evaluation: dict[str, Any],
        keep: int,
    ) -> Path:
        """Everything that makes iteration `state["iteration"]` resumable, in the
        crash-safe order: its checkpoint, the index updated (best, kept), `resume.npz`
        with `state`, then pruning of checkpoints no longer kept."""
        iteration = int(state["iteration"])
        info = {k: state[k] for k in ("elapsed_s", "episodes", "env_steps")}
        path = self.save_checkpoint(iteration, weights, {**info, "evaluation": evaluation})
        update_index(state["index"], iteration, score_of(evaluation), keep)
        self.save_resume(weights, optimizer, state)
        self.prune(state["index"]["kept"])
        self.failure_file.unlink(missing_ok=True)
        return path

    def save_progress(self, stats: dict[str, Any]) -> None:
        """`progress.json`: the last iteration's figures."""
        atomic_write_json(self.path / "progress.json", stats)

    def prune(self, keep: list[int]) -> None:
        """Delete checkpoint files whose iteration is not in `keep`."""
        for p in self.checkpoints.glob("ckpt-*.npz"):
            m = _CKPT_RE.search(p.name)
            if m and int(m.group(1)) not in keep:
                p.unlink(missing_ok=True)
        for p in self.checkpoints.glob(".*.tmp"):
            p.unlink(missing_ok=True)

    def roll_back_to(self, state: dict[str, Any]) -> None:
        """Make the directory agree with resume state `state` (see the module docstring)."""
        iteration = int(state["iteration"])
        self.prune(list(state["index"].get("kept", [])))
        for p in self.simtrace.glob("*-iteration.csv"):
            m = re.match(r"(\d+)-iteration\.csv$", p.name)
            if m and int(m.group(1)) >= iteration:
                p.unlink(missing_ok=True)
        for p in self.simtrace.glob(".*.tmp"):
            p.unlink(missing_ok=True)
        if self.metrics.exists():
            data = read_json(self.metrics, what="training metrics", error=CheckpointError)
            data["metrics"] = data.get("metrics", [])[: int(state["metrics_count"])]
            atomic_write_json(self.metrics, data)
        atomic_write_json(self.index_file, state["index"])

    def load_metrics(self) -> list[dict[str, Any]]:
        """The entries of `TrainingMetrics.json` (none before the first iteration)."""
        if not self.metrics.exists():
            return []
        data = read_json(self.metrics, what="training metrics", error=CheckpointError)
        return list(data.get("metrics", []))


def score_of(evaluation: dict[str, Any]) -> list[float] | None:
    """How checkpoints are ranked: evaluation progress, then the faster mean lap."""
    if not evaluation:
        return None
    return [float(evaluation["progress"]), -float(evaluation.get("mean_lap_s") or 1e9)]


def update_index(
    index: dict[str, Any], iteration: int, score: list[float] | None, keep: int
) -> None:
    """Record checkpoint `iteration` in `index` ({"last", "best", "best_score", "kept"}):
    it is the last, the best if its score beats the best so far, and the kept ones are
    the best plus the `keep` - 1 most recent others and this one."""
    is_best = score is not None and (index["best_score"] is None or score > index["best_score"])
    recent = [k for k in index["kept"] if k != index["best"]][-(keep - 1) :] if keep > 1 else []
    index["last"] = iteration
    if is_best:
        index["best"], index["best_score"] = iteration, score
    index["kept"] = sorted({*recent, iteration, *([index["best"]] if index["best"] else [])})


def load_keras_policy(
    run_dir: str | Path, which: str | int = "best"
) -> tuple[Any, ModelMetadata, dict]:
    """The trained policy of a run as a Keras model (see `trainer.networks.build_policy`),
    its metadata, and an info dict (iteration, path, evaluation figures at save time)."""
    from trainer.networks import build_networks

    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise CheckpointError(f"{run.path}: run directory not found")
    metadata = run.metadata()
    weights, info = run.load_checkpoint(which)
    nets = build_networks(metadata)
    try:
        nets.policy_logits.set_weights(weights["policy"])
    except (ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{info['path']}: weights do not fit the network {metadata.neural_network} with "
            f"{metadata.action_space.n} outputs from {run.metadata_file} ({exc})"
        ) from exc
    return nets.policy, metadata, info
