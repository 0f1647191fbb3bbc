"""vehicle.models.store and `racer models`: install, activate, rollback, remove, refusals that
leave the store untouched, and crash safety proven by killing real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.vehicle.models.bundle_factory import make_bundle, members, rewrite, tree_digest
from tools.cli import main as racer
from vehicle.metadata import ModelMetadata, discrete_grid
from vehicle.models.bundle import MANIFEST_MEMBER, MODEL_MEMBER
from vehicle.models.signing import SigningKey, save_key_pair
from vehicle.models.store import CRASH_POINTS, POINTER_FILE, ModelStore, StoreError

pytest.importorskip("tensorflow")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundles")
    return {
        "a": Path(make_bundle(d / "a.tar.gz", "model-a", quant="float32").source),
        "b": Path(make_bundle(d / "b.tar.gz", "model-b", quant="int8").source),
        "c": Path(make_bundle(d / "c.tar.gz", "model-c", quant="int8", seed=1).source),
    }


def _racer(*args: str, store: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", "models", "--store", str(store), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_install_activate_rollback_remove(tmp_path, bundles):
    store = ModelStore(tmp_path / "store")
    with pytest.raises(StoreError, match="no active model"):
        store.active()
    a = store.install(bundles["a"], activate=True)
    assert a.is_active and store.active().name == "model-a"
    b = store.install(bundles["b"])
    assert not b.is_active and store.active().name == "model-a"
    store.activate("model-b")
    active = store.active()
    assert active.name == "model-b" and active.tflite_path.is_file()
    assert active.metadata.action_space.n == 10 and active.manifest["name"] == "model-b"
    assert [(m.name, m.is_active, m.is_previous) for m in store.list()] == [
        ("model-b", True, False),
        ("model-a", False, True),
    ]
    assert store.rollback().name == "model-a"
    assert store.rollback().name == "model-b"  # a second rollback undoes the first
    with pytest.raises(StoreError, match="is active"):
        store.remove("model-b")
    store.remove("model-a")  # the previous one: rollback now has nowhere to go
    with pytest.raises(StoreError, match="no previous model"):
        store.rollback()
    assert [m.name for m in store.list()] == ["model-b"]
    assert store.verify()["ok"]


def test_reinstalling_the_same_bundle_is_a_no_op_but_a_clash_is_refused(tmp_path, bundles):
    store = ModelStore(tmp_path / "store")
    store.install(bundles["b"], activate=True)
    before = tree_digest(store.root)
    store.install(bundles["b"])
    assert tree_digest(store.root) == before
    with pytest.raises(StoreError, match="already installed with different content"):
        store.install(bundles["c"], name="model-b")
    assert tree_digest(store.root) == before
    assert store.install(bundles["c"], name="model-b2").name == "model-b2"


def _mismatched(tmp_path: Path) -> Path:
    """A 5-output model with 10-action metadata."""
    path = tmp_path / "mismatch.tar.gz"
    make_bundle(path, "mismatch", n_out=5)
    return path


def _tampered(tmp_path: Path, src: Path) -> Path:
    out = []
    for info, data in members(src):
        if info.name == MODEL_MEMBER:
            data = data[:-1] + bytes([data[-1] ^ 1])
        out.append((info, data))
    return rewrite(src, tmp_path / "tampered.tar.gz", out)


def _truncated(tmp_path: Path, src: Path) -> Path:
    path = tmp_path / "truncated.tar.gz"
    path.write_bytes(src.read_bytes()[:-100])
    return path


def _old_preprocessing(tmp_path: Path, src: Path) -> Path:
    out = []
    for info, data in members(src):
        if info.name == "model_metadata.json":
            meta = json.loads(data)
            meta["openracer"]["preprocessing_version"] = 99
            data = json.dumps(meta).encode()
        out.append((info, data))
    # re-hash honestly: the bundle is intact, only made for another preprocessing
    from vehicle.models.bundle import build_manifest

    files = {i.name: d for i, d in out}
    manifest = build_manifest(
        name="prep99", model_bytes=files[MODEL_MEMBER], metadata_bytes=files["model_metadata.json"]
    )
    out = [(i, json.dumps(manifest).encode() if i.name == MANIFEST_MEMBER else d) for i, d in out]
    return rewrite(src, tmp_path / "prep.tar.gz", out)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t, b: _mismatched(t), "output sizes \\[5\\] do not match"),
        (lambda t, b: _tampered(t, b), "sha256 .* differs from the manifest"),
        (lambda t, b: _truncated(t, b), "truncated"),
        (lambda t, b: _old_preprocessing(t, b), "preprocessing version 99"),
        (lambda t, b: t / "missing.tar.gz", "cannot read the bundle"),
    ],
    ids=["mismatch", "tampered", "truncated", "preprocessing", "missing"],
)
def test_refusals_are_one_line_exit_2_and_leave_the_store_untouched(
    tmp_path, bundles, capsys, make, message
):
    root = tmp_path / "store"
    store = ModelStore(root)
    store.install(bundles["a"], activate=True)
    store.install(bundles["b"], activate=True)
    before = tree_digest(root)
    bad = make(tmp_path, bundles["b"])
    code = racer(["models", "--store", str(root), "install", str(bad), "--activate"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("racer models: error: ")
    assert __import__("re").search(message, err[0]), err[0]
    assert tree_digest(root) == before
    assert store.active().name == "model-b"


def test_trusted_keys_refuse_unsigned_and_foreign_bundles(tmp_path, bundles, capsys):
    keydir = tmp_path / "keys"
    mine, theirs = SigningKey.generate("mine"), SigningKey.generate("theirs")
    save_key_pair(mine, keydir, "mine")
    save_key_pair(theirs, keydir, "theirs")
    root = tmp_path / "store"
    assert racer(["models", "--store", str(root), "trust", str(keydir / "mine.pub")]) == 0
    store = ModelStore(root)
    assert [k.key_id for k in store.trusted_keys()] == [mine.public.key_id]
    before = tree_digest(root)
    for bad, why in [(bundles["a"], "unsigned"), (None, "does not trust")]:
        if bad is None:
            bad = tmp_path / "theirs.tar.gz"
            make_bundle(bad, "theirs", signing_key=theirs)
        assert racer(["models", "--store", str(root), "install", str(bad)]) == 2
        assert why in capsys.readouterr().err
        assert tree_digest(root) == before
    signed = tmp_path / "mine.tar.gz"
    make_bundle(signed, "mine", signing_key=mine)
    assert racer(["models", "--store", str(root), "install", str(signed), "--activate"]) == 0
    assert store.active().signed_key_id == mine.public.key_id


def test_trusting_a_key_stops_the_car_driving_an_unsigned_active_model(tmp_path, bundles):
    """The model installed before `racer models trust` was unsigned: from then on the
    store refuses it as the active model (what `racer drive` loads) and says how to fix
    it; it never falls back to another model instead."""
    keydir = tmp_path / "keys"
    mine = SigningKey.generate("mine")
    save_key_pair(mine, keydir, "mine")
    store = ModelStore(tmp_path / "store")
    store.install(bundles["a"], activate=True)
    store.install(bundles["b"], activate=True)  # model-a becomes the previous one
    assert store.active().name == "model-b"
    store.trust(keydir / "mine.pub")
    with pytest.raises(StoreError) as err:
        store.active()
    message = str(err.value)
    assert "refusing to drive model 'model-b'" in message and "unsigned" in message
    assert "racer export --sign" in message and err.value.exit_code == 2
    store.untrust(mine.public.key_id)
    assert store.active().name == "model-b"


def test_list_and_verify_json(tmp_path, bundles, capsys):
    root = tmp_path / "store"
    store = ModelStore(root)
    store.install(bundles["a"], activate=True)
    store.install(bundles["b"], activate=True)
    capsys.readouterr()
    assert racer(["models", "--store", str(root), "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["active"], m["previous"]) for m in listed["models"]] == [
        ("model-b", True, False),
        ("model-a", False, True),
    ]
    assert listed["models"][0]["quantization"] == "int8"
    assert racer(["models", "--store", str(root), "verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["active"] == "model-b"
    assert all(m["backend"] == "ai_edge_litert" for m in report["models"])
    # Damage the inactive model: verify says so and exits 2; active() is unaffected.
    model = root / "model-a" / MODEL_MEMBER
    model.write_bytes(model.read_bytes()[:-10])
    assert racer(["models", "--store", str(root), "verify"]) == 2
    assert "model-a" in capsys.readouterr().err
    damaged = {m.name: m.problem for m in store.list()}
    assert damaged["model-b"] is None and "manifest says" in damaged["model-a"]
    assert racer(["models", "--store", str(root), "list"]) == 0
    assert "DAMAGED" in capsys.readouterr().out
    assert store.active().name == "model-b"


def test_info_shows_one_model_and_names_the_installed_ones(tmp_path, bundles, capsys):
    root = tmp_path / "store"
    ModelStore(root).install(bundles["a"], activate=True)
    capsys.readouterr()
    assert racer(["models", "--store", str(root), "info", "model-a"]) == 0
    out = capsys.readouterr().out
    assert "model-a  (active)" in out and "agreement    100.00% of 16 held-out frames" in out
    assert racer(["models", "--store", str(root), "info", "model-a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["manifest"]["parity"]["frames"] == 16
    assert racer(["models", "--store", str(root), "info", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no model named 'nope'" in err and "installed: model-a" in err


def test_store_dir_from_environment(tmp_path, bundles, monkeypatch):
    monkeypatch.setenv("OPENRACER_STORE", str(tmp_path / "envstore"))
    assert racer(["models", "install", str(bundles["a"]), "--activate"]) == 0
    assert ModelStore().active().name == "model-a"
    assert ModelStore().root == tmp_path / "envstore"


def test_damaged_pointer_and_active_model_fall_back(tmp_path, bundles):
    root = tmp_path / "store"
    store = ModelStore(root)
    store.install(bundles["a"], activate=True)
    store.install(bundles["b"], activate=True)
    (root / POINTER_FILE).write_bytes(b'{"schema_vers')  # torn write
    assert store.active().name == "model-b"  # from the backup pointer
    assert "_active.json unreadable" in store.active().note
    model = root / "model-b" / MODEL_MEMBER
    model.write_bytes(model.read_bytes()[:100])
    fallback = store.active()
    assert fallback.name == "model-a" and "model-b" in fallback.note


def _newest_file(root: Path) -> Path:
    files = [p for p in root.rglob("*") if p.is_file() and p.name != "_lock"]
    return max(files, key=lambda p: p.stat().st_mtime_ns)


def _assert_valid(root: Path, allowed: set[str]) -> str:
    active = ModelStore(root).active()
    assert active.name in allowed, (active.name, active.note)
    return active.name


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_install_and_activation_leave_a_valid_active_model(tmp_path, bundles, point):
    root = tmp_path / "store"
    store = ModelStore(root)
    store.install(bundles["a"], activate=True)
    store.install(bundles["b"], activate=False)
    if point == "remove:moved":
        args = ["remove", "model-b"]
    elif point.startswith("pointer:"):
        args = ["activate", "model-b"]
    else:
        args = ["install", str(bundles["c"]), "--activate"]
    new = {"install": "model-c", "activate": "model-b", "remove": "model-a"}[args[0]]
    result = _racer(*args, store=root, env={"OPENRACER_STORE_CRASH_AT": point})
    assert result.returncode == 86, result.stderr  # it really died at that point
    _assert_valid(root, {"model-a", new})
    # Power loss: the last file written loses its tail as well.
    victim = _newest_file(root)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    _assert_valid(root, {"model-a", new})
    # The store keeps working: the interrupted operation can be redone.
    if args[0] == "remove":
        assert "model-b" not in [m.name for m in ModelStore(root).list()]
        args = ["activate", "model-a"]  # any change sweeps the half-deleted folder
    again = _racer(*args, store=root)
    assert again.returncode == 0, again.stderr
    assert ModelStore(root).active().name == new
    report = ModelStore(root).verify()
    assert report["interrupted_installs"] == [], report


@pytest.mark.slow
def test_killed_rollback_leaves_a_valid_active_model(tmp_path, bundles):
    root = tmp_path / "store"
    store = ModelStore(root)
    store.install(bundles["a"], activate=True)
    store.install(bundles["b"], activate=True)
    for point in ("pointer:temp-written", "pointer:renamed", "pointer:backup-renamed"):
        result = _racer("rollback", store=root, env={"OPENRACER_STORE_CRASH_AT": point})
        assert result.returncode == 86
        _assert_valid(root, {"model-a", "model-b"})


def test_continuous_action_space_installs(tmp_path):
    space_meta = ModelMetadata(
        action_space=__import__("vehicle.metadata", fromlist=["ActionSpace"]).ActionSpace(
            kind="continuous", steer_range_deg=(-30.0, 30.0), speed_range_mps=(0.5, 2.0)
        )
    )
    path = tmp_path / "cont.tar.gz"
    make_bundle(path, "cont", n_out=2, metadata=space_meta)
    store = ModelStore(tmp_path / "store")
    assert store.install(path, activate=True).metadata.action_space.kind == "continuous"
    grid = ModelMetadata(
        action_space=discrete_grid(
            max_steer_deg=20, steer_levels=3, max_speed_mps=1, speed_levels=1
        )
    )
    bad = tmp_path / "grid.tar.gz"
    make_bundle(bad, "grid", n_out=10, metadata=grid)
    with pytest.raises(StoreError, match="output sizes \\[10\\]"):
        store.install(bad)


@pytest.mark.slow
def test_sigkill_at_arbitrary_instants_of_install_and_activation(tmp_path, bundles):
    """Beyond the named points: SIGKILL a real `racer models install --activate` at
    instants spread over its whole duration."""
    import signal
    import time

    root = tmp_path / "store"
    ModelStore(root).install(bundles["a"], activate=True)
    cmd = [
        sys.executable,
        "-m",
        "tools.cli",
        "models",
        "--store",
        str(root),
        "install",
        str(bundles["c"]),
        "--activate",
    ]
    # How long a whole install takes here (then undo it).
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=120)
    duration = time.monotonic() - t0
    ModelStore(root).rollback()
    ModelStore(root).remove("model-c")
    outcomes = set()
    for fraction in (0.2, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98):
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        outcomes.add(_assert_valid(root, {"model-a", "model-c"}))
        store = ModelStore(root)
        if store.active().name == "model-c":  # it finished: undo for the next round
            store.rollback()
        if "model-c" in [m.name for m in store.list()]:
            store.remove("model-c")
    assert "model-a" in outcomes
