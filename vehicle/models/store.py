"""The model store on the car: installed model bundles, the active one, and rollback.

Runs on the car: no TensorFlow. Layout of a store folder (default
`~/.local/share/openracer/models`, or `$OPENRACER_STORE`):

    <name>/                 one installed model: model.tflite, model_metadata.json,
                            manifest.json [, signature.json], exactly as in its bundle
    _active.json            the pointer: {"schema_version", "active", "previous", ...}
    _active.json.bak        a second copy of the pointer, written after the first
    _trusted_keys/*.pub     public keys; when any exist, only bundles they signed install
    _staging/               half-written installs, swept away by the next operation
    _lock                   flock taken by every change

Model names start with a letter or digit, so they never collide with the `_` entries.

Crash safety. A model folder is written under `_staging/`, every file fsynced, then renamed
to `<name>/` and the store folder fsynced: a model folder either exists complete or not at
all. The pointer is written to a temp file, fsynced, renamed over `_active.json`, the
folder fsynced, then copied the same way to `_active.json.bak`. Whatever instant a process
dies or the power goes, one of the two pointer files names the old or the new active model,
and reading falls back (pointer -> backup pointer -> the pointer's previous model) to the
first model whose files match their hashes. `OPENRACER_STORE_CRASH_AT=<point>` makes the
process exit at one of `CRASH_POINTS`, for the tests that prove this.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vehicle.errors import BundleError, StoreError, UntrustedBundleError, VehicleError
from vehicle.files import atomic_path, atomic_write, fsync_directory
from vehicle.metadata import ModelMetadata
from vehicle.models.bundle import (
    ALLOWED_MEMBERS,
    MANIFEST_MEMBER,
    MODEL_MEMBER,
    SIGNATURE_MEMBER,
    Bundle,
    check_name,
    read_bundle,
    verify_members,
)
from vehicle.observation import OBS_SHAPE, PREPROCESSING_VERSION

STORE_ENV = "OPENRACER_STORE"
"""Environment variable naming the store folder."""
DEFAULT_STORE = Path("~/.local/share/openracer/models")
"""Store folder when neither --store nor $OPENRACER_STORE is given."""
POINTER_FILE = "_active.json"
POINTER_BACKUP = "_active.json.bak"
TRUSTED_DIR = "_trusted_keys"
STAGING_DIR = "_staging"
LOCK_FILE = "_lock"
POINTER_SCHEMA = 1
CRASH_ENV = "OPENRACER_STORE_CRASH_AT"
CRASH_POINTS = (
    "install:staging-file",
    "install:staged",
    "install:renamed",
    "pointer:temp-written",
    "pointer:renamed",
    "pointer:backup-temp-written",
    "pointer:backup-renamed",
    "remove:moved",
)
"""Named instants where `OPENRACER_STORE_CRASH_AT` kills the process (tests only)."""
_WRITE_ORDER = (MODEL_MEMBER, "model_metadata.json", SIGNATURE_MEMBER, MANIFEST_MEMBER)


def default_store_dir() -> Path:
    """`$OPENRACER_STORE`, else `~/.local/share/openracer/models`."""
    env = os.environ.get(STORE_ENV)
    return Path(env).expanduser() if env else DEFAULT_STORE.expanduser()


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os._exit(86)


@dataclass(frozen=True)
class InstalledModel:
    """One model folder of the store."""

    name: str
    """The model's name (its folder name)."""
    path: Path
    """The model's folder."""
    metadata: ModelMetadata | None
    """Its parsed metadata (None only when `problem` says why it cannot be read)."""
    manifest: dict[str, Any] = field(default_factory=dict)
    """Its parsed manifest (provenance, parity, quantization)."""
    is_active: bool = False
    """The pointer names it as active."""
    is_previous: bool = False
    """It is what `rollback` would activate."""
    signed_key_id: str | None = None
    """Key id of the signature it carries, or None when unsigned."""
    problem: str | None = None
    """Why the model is unusable (missing files, hash mismatch), else None."""
    note: str | None = None
    """For `active()`: why a fallback model was returned instead of the pointer's."""

    @property
    def tflite_path(self) -> Path:
        """The `.tflite` file to load."""
        return self.path / MODEL_MEMBER

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for `racer models list --json`."""
        meta = self.metadata
        try:
            size = self.tflite_path.stat().st_size
        except OSError:
            size = None
        return {
            "name": self.name,
            "active": self.is_active,
            "previous": self.is_previous,
            "path": str(self.path),
            "size_bytes": size,
            "quantization": self.manifest.get("quantization", {}).get("format"),
            "recipe": self.manifest.get("quantization", {}).get("recipe"),
            "float_ops": self.manifest.get("quantization", {}).get("float_ops"),
            "action_space": meta.action_space.kind if meta else None,
            "n_actions": meta.action_space.n if meta else None,
            "control_rate_hz": meta.control_rate_hz if meta else None,
            "source": self.manifest.get("source", {}),
            "parity": self.manifest.get("parity", {}),
            "created_utc": self.manifest.get("created_utc"),
            "signed_key_id": self.signed_key_id,
            "problem": self.problem,
        }


def probe_model(model: bytes | Path, metadata: ModelMetadata, where: str) -> dict[str, Any]:
    """Load a model in the car's interpreter (`vehicle.inference.Policy`), which checks
    its input and output shapes against the metadata, and run one inference on a mid-grey
    observation. Returns what the policy reports about itself; raises StoreError."""
    from vehicle.inference import Policy

    try:
        if isinstance(model, Path):
            policy = Policy.load(model, metadata)
        else:
            policy = Policy.from_bytes(model, metadata)
        obs = np.full(OBS_SHAPE, 128, dtype=np.uint8)
        action = policy.act(obs)
    except VehicleError as exc:
        raise StoreError(f"{where}: the car's interpreter refuses the model: {exc}") from exc
    info = policy.describe()
    info["probe_steer_deg"] = action.steer_deg
    info["probe_speed_mps"] = action.speed_mps
    return info


class ModelStore:
    """The car's model store in one folder (see the module docstring for the layout)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_dir()
        """The store folder."""

    # -- reading -----------------------------------------------------------------------

    def _pointer(self) -> tuple[dict[str, Any] | None, str | None]:
        """(pointer, note): the first readable pointer file, and a note if it was the backup."""
        problems: list[str] = []
        for fname in (POINTER_FILE, POINTER_BACKUP):
            path = self.root / fname
            if not path.exists():
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or data.get("schema_version") != POINTER_SCHEMA:
                    raise ValueError("not an openracer active-model pointer")
                for key in ("active", "previous"):
                    if data.get(key) is not None:
                        check_name(data[key])
                return data, (f"{fname} used: {'; '.join(problems)}" if problems else None)
            except (OSError, ValueError, UnicodeDecodeError, BundleError) as exc:
                problems.append(f"{fname} unreadable ({exc})")
        return None, ("; ".join(problems) or None)

    def _model_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
        )

    def _read_model(self, name: str, *, verify: bool, trusted: list[Any] | None = None) -> Bundle:
        """The model folder's members, checked like a bundle (hashes when `verify`)."""
        path = self.root / name
        if not path.is_dir():
            raise StoreError(
                f"model {name!r} is not installed in {self.root}; `racer models list` shows what is"
            )
        files: dict[str, bytes] = {}
        for entry in path.iterdir():
            if entry.name not in ALLOWED_MEMBERS or not entry.is_file() or entry.is_symlink():
                raise BundleError(f"{path}: unexpected entry {entry.name!r} in a model folder")
            if verify or entry.name != MODEL_MEMBER:
                files[entry.name] = entry.read_bytes()
        if not verify:
            return _light_bundle(files, path)
        return verify_members(files, source=str(path), trusted_keys=trusted)

    def _installed(
        self,
        name: str,
        pointer: dict[str, Any] | None,
        bundle: Bundle | None,
        problem: str | None = None,
        note: str | None = None,
    ) -> InstalledModel:
        pointer = pointer or {}
        return InstalledModel(
            name=name,
            path=self.root / name,
            metadata=bundle.metadata if bundle else None,
            manifest=bundle.manifest if bundle else {},
            is_active=pointer.get("active") == name,
            is_previous=pointer.get("previous") == name,
            signed_key_id=(bundle.signature or {}).get("key_id") if bundle else None,
            problem=problem,
            note=note,
        )

    def list(self) -> builtins.list[InstalledModel]:
        """Every model folder, active first then by name (sizes checked, not hashes)."""
        pointer, _ = self._pointer()
        out = []
        for name in self._model_names():
            try:
                out.append(self._installed(name, pointer, self._read_model(name, verify=False)))
            except (BundleError, StoreError, OSError, ValueError) as exc:
                out.append(self._installed(name, pointer, None, problem=str(exc)))
        return sorted(out, key=lambda m: (not m.is_active, not m.is_previous, m.name))

    def active(self) -> InstalledModel:
        """The active model, its files checked against their hashes. If the pointer is
        unreadable or its model damaged, falls back to the backup pointer, then to the
        previous model, and says so in `.note`. Raises StoreError when there is none."""
        pointer, note = self._pointer()
        if pointer is None or pointer.get("active") is None:
            raise StoreError(
                f"no active model in {self.root}"
                + (f" ({note})" if note else "")
                + "; install one with `racer flash BUNDLE --car ... --activate` or "
                "`racer models install BUNDLE --activate`"
            )
        candidates = [pointer["active"]]
        backup = self._read_pointer_file(POINTER_BACKUP)
        if backup and backup.get("active"):
            candidates.append(backup["active"])
        if pointer.get("previous"):
            candidates.append(pointer["previous"])
        failures = []
        trusted = self.trusted_keys()
        for name in dict.fromkeys(candidates):
            try:
                bundle = self._read_model(name, verify=True, trusted=trusted or None)
            except UntrustedBundleError as exc:
                # Never fall back past a trust failure: once keys are trusted, the car
                # drives only signed models, and the person must know why it will not.
                raise StoreError(
                    f"refusing to drive model {name!r}: {exc}; or install and activate a "
                    "bundle signed with a trusted key (`racer flash ... --activate`)"
                ) from exc
            except (BundleError, StoreError, OSError) as exc:
                failures.append(f"{name}: {exc}")
                continue
            if failures or note:
                note = "; ".join(filter(None, [note, *failures])) + f"; using {name!r}"
            return self._installed(name, pointer, bundle, note=note)
        raise StoreError(
            f"{self.root}: no usable active model: "
            + "; ".join(failures)
            + "; install a bundle again with `racer models install BUNDLE --activate`"
        )

    def _read_pointer_file(self, fname: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.root / fname).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def trusted_keys(self) -> builtins.list[Any]:
        """The public keys in `_trusted_keys/` (imports `cryptography` only if any exist)."""
        directory = self.root / TRUSTED_DIR
        if not directory.is_dir() or not any(directory.glob("*.pub")):
            return []
        from vehicle.models.signing import load_trusted_keys

        return load_trusted_keys(directory)

    def verify(self) -> dict[str, Any]:
        """Check every model (hashes, metadata, signature when keys are trusted, one
        inference) and the pointer. Returns a report; `report["ok"]` is False on any problem."""
        trusted = self.trusted_keys()
        pointer, note = self._pointer()
        models = []
        problems = []
        for name in self._model_names():
            entry: dict[str, Any] = {"name": name, "ok": True}
            try:
                bundle = self._read_model(name, verify=True, trusted=trusted)
                probe = probe_model(bundle.model_bytes, bundle.metadata, str(self.root / name))
                entry.update(backend=probe["backend"], signed_key_id=bundle.signed_by)
            except (BundleError, StoreError, OSError) as exc:
                entry.update(ok=False, problem=str(exc))
                problems.append(str(exc))
            models.append(entry)
        if note:
            problems.append(note)
        names = {m["name"] for m in models}
        for key in ("active", "previous"):
            ref = (pointer or {}).get(key)
            if ref is not None and ref not in names:
                problems.append(f"{self.root}: the {key} model {ref!r} is missing")
        staging = self.root / STAGING_DIR
        leftovers = sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
        return {
            "store": str(self.root),
            "ok": not problems,
            "active": (pointer or {}).get("active"),
            "previous": (pointer or {}).get("previous"),
            "trusted_key_ids": [k.key_id for k in trusted],
            "models": models,
            "problems": problems,
            "interrupted_installs": leftovers,
        }

    # -- changing ----------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's lock; sweep interrupted installs first."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"{self.root}: cannot open the model store ({exc.strerror}); pass a writable "
                "folder with --store or $OPENRACER_STORE"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            staging = self.root / STAGING_DIR
            if staging.is_dir():
                for leftover in staging.iterdir():
                    shutil.rmtree(leftover, ignore_errors=True)
            yield
        finally:
            os.close(fd)

    def install(
        self,
        bundle_path: str | Path,
        activate: bool = False,
        *,
        name: str | None = None,
        expect_sha256: str | None = None,
    ) -> InstalledModel:
        """Verify a bundle (hashes, signature when keys are trusted, metadata, shapes, one
        inference), copy it in atomically, and optionally make it active. Nothing in the
        store changes when any check fails."""
        with self._locked():
            trusted = self.trusted_keys()
            bundle = read_bundle(bundle_path, trusted_keys=trusted, expect_sha256=expect_sha256)
            name = check_name(name or bundle.name)
            where = f"{bundle_path}"
            meta = bundle.metadata
            if meta.preprocessing_version != PREPROCESSING_VERSION:
                raise StoreError(
                    f"{where}: made for preprocessing version {meta.preprocessing_version}, "
                    f"this car runs version {PREPROCESSING_VERSION}; re-export it with this "
                    "openracer version"
                )
            probe_model(bundle.model_bytes, meta, where)
            target = self.root / name
            if target.exists():
                try:
                    existing = self._read_model(name, verify=True)
                except (BundleError, OSError) as exc:
                    existing = None
                    damaged = str(exc)
                if existing is not None:
                    if existing.files.get(MANIFEST_MEMBER) != bundle.files[MANIFEST_MEMBER]:
                        raise StoreError(
                            f"model {name!r} is already installed with different content; "
                            "install under another name with --name NEW, or `racer models "
                            f"remove {name}` first"
                        )
                else:
                    self._discard(target, reason=damaged)
            if not target.exists():
                self._write_model_dir(name, bundle)
            if activate:
                self._activate_locked(name, trusted)
            pointer, _ = self._pointer()
            return self._installed(name, pointer, bundle)

    def _write_model_dir(self, name: str, bundle: Bundle) -> None:
        staging = self.root / STAGING_DIR
        staging.mkdir(exist_ok=True)
        tmp = staging / f"{name}.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.mkdir()
        for member in _WRITE_ORDER:
            if member not in bundle.files:
                continue
            with open(tmp / member, "wb") as fh:
                fh.write(bundle.files[member])
                fh.flush()
                _crash_point("install:staging-file")
                os.fsync(fh.fileno())
        fsync_directory(tmp)
        _crash_point("install:staged")
        os.rename(tmp, self.root / name)
        fsync_directory(self.root)
        fsync_directory(staging)
        _crash_point("install:renamed")

    def _discard(self, path: Path, reason: str) -> None:
        """Move a model folder out of the store atomically, then delete it."""
        staging = self.root / STAGING_DIR
        staging.mkdir(exist_ok=True)
        trash = staging / f"trash.{path.name}.{secrets.token_hex(4)}"
        os.rename(path, trash)
        fsync_directory(self.root)
        _crash_point("remove:moved")
        shutil.rmtree(trash, ignore_errors=True)

    def activate(self, name: str) -> InstalledModel:
        """Make an installed model active (its hashes and signature checked first); the
        model active before becomes the one `rollback` returns to."""
        check_name(name)
        with self._locked():
            bundle = self._activate_locked(name, self.trusted_keys())
            pointer, _ = self._pointer()
            return self._installed(name, pointer, bundle)

    def _activate_locked(self, name: str, trusted: builtins.list[Any]) -> Bundle:
        try:
            bundle = self._read_model(name, verify=True, trusted=trusted)
        except BundleError as exc:
            raise StoreError(f"cannot activate {name!r}: {exc}") from exc
        pointer, _ = self._pointer()
        old_active = (pointer or {}).get("active")
        old_previous = (pointer or {}).get("previous")
        if old_active == name:
            return bundle
        previous = old_active if old_active is not None else old_previous
        self._write_pointer(name, previous)
        return bundle

    def rollback(self) -> InstalledModel:
        """Swap the active and previous models (a second rollback undoes the first)."""
        with self._locked():
            pointer, _ = self._pointer()
            previous = (pointer or {}).get("previous")
            if previous is None:
                raise StoreError(
                    f"{self.root}: no previous model to roll back to; activate one by name "
                    "with `racer models activate NAME`"
                )
            if not (self.root / previous).is_dir():
                raise StoreError(
                    f"{self.root}: the previous model {previous!r} is no longer installed; "
                    "activate another with `racer models activate NAME`"
                )
            try:
                bundle = self._read_model(previous, verify=True, trusted=self.trusted_keys())
            except BundleError as exc:
                raise StoreError(f"cannot roll back to {previous!r}: {exc}") from exc
            self._write_pointer(previous, (pointer or {}).get("active"))
            pointer, _ = self._pointer()
            return self._installed(previous, pointer, bundle)

    def remove(self, name: str) -> None:
        """Delete an installed model that is not active (clears `previous` if it was)."""
        check_name(name)
        with self._locked():
            if not (self.root / name).is_dir():
                raise StoreError(
                    f"model {name!r} is not installed in {self.root}; `racer models list` "
                    "shows what is"
                )
            pointer, _ = self._pointer()
            if (pointer or {}).get("active") == name:
                raise StoreError(
                    f"model {name!r} is active; activate another model (or `racer models "
                    "rollback`) before removing it"
                )
            if pointer is not None and pointer.get("previous") == name:
                self._write_pointer(pointer.get("active"), None)
            self._discard(self.root / name, reason="removed")

    def trust(self, public_key_path: str | Path) -> Any:
        """Add a public key to the trusted keys; from then on only bundles signed by a
        trusted key install or activate."""
        from vehicle.models.signing import load_public_key

        key = load_public_key(public_key_path)
        with self._locked():
            directory = self.root / TRUSTED_DIR
            directory.mkdir(exist_ok=True)
            atomic_write(directory / f"{key.key_id}.pub", key.to_line().encode("ascii"))
        return key

    def untrust(self, key_id: str) -> None:
        """Remove a trusted key by its id."""
        path = self.root / TRUSTED_DIR / f"{key_id}.pub"
        with self._locked():
            if not path.is_file():
                raise StoreError(
                    f"key {key_id!r} is not trusted by {self.root}; `racer models trust "
                    "--list` shows the trusted keys"
                )
            path.unlink()
            fsync_directory(path.parent)

    def _write_pointer(self, active: str | None, previous: str | None) -> None:
        body = {
            "schema_version": POINTER_SCHEMA,
            "active": active,
            "previous": previous,
            "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        data = (json.dumps(body, indent=2) + "\n").encode("utf-8")
        for stale in self.root.glob(".*.tmp"):  # left by a write killed before its rename
            stale.unlink(missing_ok=True)
        _write_pointer_file(self.root / POINTER_FILE, data, crash_prefix="pointer:")
        _write_pointer_file(self.root / POINTER_BACKUP, data, crash_prefix="pointer:backup-")


def _light_bundle(files: dict[str, bytes], path: Path) -> Bundle:
    """An installed model's manifest and metadata, parsed without hashing the model (for
    `list`): the model file must exist and have the size the manifest records."""
    from vehicle.metadata import parse_metadata
    from vehicle.models.bundle import METADATA_MEMBER, json_member

    where = str(path)
    for member in (MANIFEST_MEMBER, METADATA_MEMBER):
        if member not in files:
            raise BundleError(f"{where}: {member} is missing")
    manifest = json_member(files, MANIFEST_MEMBER, where)
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: {MANIFEST_MEMBER} is not a JSON object")
    model = path / MODEL_MEMBER
    size = model.stat().st_size if model.is_file() else None
    listed = manifest.get("members", {})
    expected = listed.get(MODEL_MEMBER, {}).get("size_bytes") if isinstance(listed, dict) else None
    if size is None or size != expected:
        raise BundleError(
            f"{where}: {MODEL_MEMBER} is {'missing' if size is None else f'{size} bytes'}, "
            f"the manifest says {expected} bytes"
        )
    try:
        metadata = parse_metadata(json_member(files, METADATA_MEMBER, where), source=where)
    except VehicleError as exc:
        raise BundleError(str(exc)) from exc
    signature = json_member(files, SIGNATURE_MEMBER, where) if SIGNATURE_MEMBER in files else None
    return Bundle({**files, MODEL_MEMBER: b""}, manifest, metadata, signature, None, where, "")


def _write_pointer_file(path: Path, data: bytes, crash_prefix: str) -> None:
    """`vehicle.files.atomic_write` of one pointer file, with the tests' crash points."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        _crash_point(f"{crash_prefix}temp-written")
    _crash_point(f"{crash_prefix}renamed")
