"""What `racer eval` and `racer race` evaluate: a run, a bundle or a .tflite as a batch
policy; a TFLite model is evaluated and raced without TensorFlow ever being imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from trainer.errors import EvaluationError
from trainer.targets import policy_from_target

ROOT = Path(__file__).resolve().parents[2]

# Any import of TensorFlow or Keras fails, as on a machine without them.
BLOCK_TF = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("tensorflow", "keras"):
                raise ImportError(f"{name} is blocked: TFLite evaluation must not need it")
    sys.meta_path.insert(0, Block())
    from tools.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from tests.vehicle.tiny_models import tflite_bytes
    from vehicle.metadata import ModelMetadata
    from vehicle.models.bundle import write_bundle

    folder = tmp_path_factory.mktemp("bundles")
    paths = []
    for seed in (0, 1):
        path = folder / f"model{seed}.bundle"
        write_bundle(
            path,
            name=f"model{seed}",
            model_bytes=tflite_bytes(10, seed=seed),
            metadata=ModelMetadata(),
        )
        paths.append(str(path))
    return paths


def test_a_bundle_is_a_greedy_batch_policy(bundles: list[str]) -> None:
    policy_fn, metadata, info, run_dir = policy_from_target(bundles[0], "best")
    obs = np.random.default_rng(0).integers(0, 256, (3, 120, 160, 1), dtype=np.uint8)
    actions = policy_fn(obs)
    assert actions.shape == (3,) and actions.dtype.kind == "i"
    assert all(0 <= a < metadata.action_space.n for a in actions)
    assert np.array_equal(actions, policy_fn(obs))  # greedy: the same every time
    assert run_dir is None and "backend" in info


def test_a_missing_target_names_itself(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="nothing.tflite"):
        policy_from_target(str(tmp_path / "nothing.tflite"), "best")


def _racer_without_tensorflow(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TF, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_eval_and_race_of_tflite_bundles_never_import_tensorflow(
    bundles: list[str], tmp_path: Path
) -> None:
    common = ["--track", "beginner_oval", "--laps", "1", "--max-steps", "40", "--json"]
    proc = _racer_without_tensorflow("eval", bundles[0], *common)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["laps"] == 1
    out = tmp_path / "race"
    proc = _racer_without_tensorflow("race", *bundles, *common, "--out", str(out), "--no-video")
    assert proc.returncode == 0, proc.stderr
    assert {e["name"] for e in json.loads(proc.stdout)["leaderboard"]} == {"model0", "model1"}


@pytest.mark.slow
def test_eval_logs_none_writes_no_simtrace(
    bundles: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tools.cli import main as racer

    monkeypatch.chdir(tmp_path)
    argv = ["eval", bundles[0], "--track", "beginner_oval", "--laps", "1", "--max-steps", "20"]
    assert racer([*argv, "--logs", "none", "--json"]) == 0
    assert not (tmp_path / "none").exists()
    assert racer([*argv, "--logs", "logs", "--json"]) == 0
    assert list((tmp_path / "logs").glob("evaluation-*/evaluation-simtrace/0-iteration.csv"))
