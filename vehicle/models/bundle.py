"""The model bundle: one `.tar.gz` holding a TFLite policy, its metadata, a manifest and an
optional ed25519 signature. Written by `racer export`, read by the car's model store.

Runs on the car: no TensorFlow. `cryptography` is imported only when a bundle is signed or
a signature is checked against trusted keys (`vehicle.models.signing`).

Members (flat, regular files only; anything else is refused):
- `model.tflite`        the policy;
- `model_metadata.json` DeepRacer's file plus an `openracer` key (input spec, control rate,
                        preprocessing version, quantization parameters);
- `manifest.json`       `schema_version`, `format`, `name`, the sha256 and size of every
                        other member, provenance (`source`: run, checkpoint, tracks, reward
                        file hash), `parity` figures, `quantization`, `created_utc`,
                        `openracer_version`;
- `signature.json`      optional: the ed25519 signature of the exact bytes of
                        `manifest.json`, with the key id. Since the manifest holds every
                        other member's hash, the signature covers the whole bundle.
Reading checks, in order: the file's gzip stream (truncation), tar members (path
traversal, links, unexpected or duplicate members, sizes), the manifest, every hash and
size, the metadata, and the signature when trusted keys are given.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import re
import tarfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vehicle.errors import BundleError, MetadataError, UntrustedBundleError
from vehicle.files import atomic_write
from vehicle.metadata import ModelMetadata, parse_metadata

BUNDLE_FORMAT = "openracer-model-bundle"
"""The manifest's `format` value."""
SCHEMA_VERSION = 1
"""Manifest schema this code writes and reads."""
MODEL_MEMBER = "model.tflite"
METADATA_MEMBER = "model_metadata.json"
MANIFEST_MEMBER = "manifest.json"
SIGNATURE_MEMBER = "signature.json"
HASHED_MEMBERS = (MODEL_MEMBER, METADATA_MEMBER)
"""Members whose sha256 and size the manifest records."""
ALLOWED_MEMBERS = (MANIFEST_MEMBER, METADATA_MEMBER, MODEL_MEMBER, SIGNATURE_MEMBER)
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
"""Largest bundle file accepted (a float32 DeepRacer-size model is about 25 MB)."""
MAX_MODEL_BYTES = 256 * 1024 * 1024
MAX_JSON_BYTES = 4 * 1024 * 1024
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""Model names: a file name on every filesystem, no path separators, no leading dot."""


def check_name(name: str, source: str = "model name") -> str:
    """Return `name` if it is a valid model name, else raise BundleError."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise BundleError(
            f"{source} {name!r} is not a valid model name: use 1-64 letters, digits, '.', "
            "'_' or '-', starting with a letter or digit"
        )
    return name


def sha256_hex(data: bytes) -> str:
    """Lower-case hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def openracer_version() -> str:
    """The installed openracer version, or 'unknown' when running from a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openracer")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Bundle:
    """A bundle that passed every check: its members, parsed manifest and metadata."""

    files: dict[str, bytes]
    """Member name -> content, exactly as stored."""
    manifest: dict[str, Any]
    """The parsed `manifest.json`."""
    metadata: ModelMetadata
    """The parsed `model_metadata.json`."""
    signature: dict[str, Any] | None
    """The parsed `signature.json`, or None when the bundle is unsigned."""
    signed_by: str | None
    """Key id of the trusted key the signature was verified with (None: not checked)."""
    source: str
    """Where the bundle was read from (a path, for messages)."""
    sha256: str
    """sha256 of the whole bundle file (empty when built from members)."""

    @property
    def name(self) -> str:
        """The model's name (the manifest's `name`)."""
        return str(self.manifest["name"])

    @property
    def model_bytes(self) -> bytes:
        """The `.tflite` content."""
        return self.files[MODEL_MEMBER]

    def summary(self) -> dict[str, Any]:
        """The figures worth printing: name, sizes, provenance, parity, signature."""
        return {
            "name": self.name,
            "sha256": self.sha256,
            "model_size_bytes": len(self.model_bytes),
            "quantization": self.manifest.get("quantization", {}),
            "action_space": self.metadata.action_space.kind,
            "n_actions": self.metadata.action_space.n,
            "source": self.manifest.get("source", {}),
            "parity": self.manifest.get("parity", {}),
            "created_utc": self.manifest.get("created_utc"),
            "openracer_version": self.manifest.get("openracer_version"),
            "signed": self.signature is not None,
            "key_id": (self.signature or {}).get("key_id"),
            "signature_verified": self.signed_by is not None,
        }


# -- writing ---------------------------------------------------------------------------


def build_manifest(
    *,
    name: str,
    model_bytes: bytes,
    metadata_bytes: bytes,
    source: dict[str, Any] | None = None,
    parity: dict[str, Any] | None = None,
    quantization: dict[str, Any] | None = None,
    created_utc: str | None = None,
) -> dict[str, Any]:
    """The manifest for these members (see the module docstring for the fields)."""
    check_name(name)
    members = {
        MODEL_MEMBER: {"sha256": sha256_hex(model_bytes), "size_bytes": len(model_bytes)},
        METADATA_MEMBER: {
            "sha256": sha256_hex(metadata_bytes),
            "size_bytes": len(metadata_bytes),
        },
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "format": BUNDLE_FORMAT,
        "name": name,
        "members": members,
        "source": dict(source or {}),
        "parity": dict(parity or {}),
        "quantization": dict(quantization or {}),
        "created_utc": created_utc or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "openracer_version": openracer_version(),
    }


def write_bundle(
    path: str | Path,
    *,
    name: str,
    model_bytes: bytes,
    metadata: ModelMetadata,
    source: dict[str, Any] | None = None,
    parity: dict[str, Any] | None = None,
    quantization: dict[str, Any] | None = None,
    signing_key: Any = None,
) -> Bundle:
    """Write a bundle atomically (temp file in the same folder, fsync, rename).

    `signing_key` is a `vehicle.models.signing.SigningKey` or None. Returns the bundle as read
    back from disk, so what was written is known to verify.
    """
    path = Path(path)
    metadata_bytes = (json.dumps(metadata.to_json(), indent=2) + "\n").encode("utf-8")
    manifest = build_manifest(
        name=name,
        model_bytes=model_bytes,
        metadata_bytes=metadata_bytes,
        source=source,
        parity=parity,
        quantization=quantization,
    )
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    members = [
        (MANIFEST_MEMBER, manifest_bytes),
        (METADATA_MEMBER, metadata_bytes),
        (MODEL_MEMBER, model_bytes),
    ]
    trusted = None
    if signing_key is not None:
        signature = {
            "schema_version": SCHEMA_VERSION,
            "algorithm": "ed25519",
            "signed_member": MANIFEST_MEMBER,
            "key_id": signing_key.public.key_id,
            "public_key": signing_key.public.to_line().split()[1],
            "signature": _b64(signing_key.sign(manifest_bytes)),
        }
        members.append((SIGNATURE_MEMBER, (json.dumps(signature, indent=2) + "\n").encode()))
        trusted = [signing_key.public]
    mtime = int(time.time())
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for member, data in members:
                info = tarfile.TarInfo(member)
                info.size = len(data)
                info.mtime = mtime
                info.mode = 0o644
                info.uname = info.gname = "openracer"
                tar.addfile(info, io.BytesIO(data))
    atomic_write(path, raw.getvalue())
    return read_bundle(path, trusted_keys=trusted)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


# -- reading ---------------------------------------------------------------------------


def read_bundle(
    path: str | Path,
    *,
    trusted_keys: Sequence[Any] | None = None,
    expect_sha256: str | None = None,
) -> Bundle:
    """Read and check a bundle file. Raises BundleError naming the first problem.

    `trusted_keys`: `vehicle.models.signing.PublicKey`s; when non-empty the bundle must carry a
    signature by one of them. `expect_sha256`: the sha256 the whole file must have (the
    sender's figure, to catch a damaged transfer).
    """
    path = Path(path)
    where = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BundleError(f"{where}: cannot read the bundle ({exc.strerror})") from exc
    if size > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"{where}: {size} bytes is larger than the {MAX_BUNDLE_BYTES} byte limit for a "
            "bundle; this is not a model bundle"
        )
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{where}: cannot read the bundle ({exc.strerror})") from exc
    digest = sha256_hex(blob)
    if expect_sha256 is not None and not hmac.compare_digest(digest, expect_sha256.lower()):
        raise BundleError(
            f"{where}: sha256 {digest[:16]}... differs from the expected {expect_sha256[:16]}...; "
            "the file was damaged in transfer, copy it again"
        )
    files = _unpack(blob, where)
    return verify_members(files, source=where, trusted_keys=trusted_keys, sha256=digest)


def _unpack(blob: bytes, where: str) -> dict[str, bytes]:
    """The members of a gzipped tar, with every structural check."""
    if blob[:2] != b"\x1f\x8b":
        raise BundleError(
            f"{where}: not a gzip file; a model bundle is the .tar.gz written by `racer export`"
        )
    limit = MAX_MODEL_BYTES + 4 * MAX_JSON_BYTES
    try:
        inflater = zlib.decompressobj(wbits=31)
        tar_bytes = inflater.decompress(blob, limit)
        if inflater.unconsumed_tail:
            raise BundleError(f"{where}: unpacks to more than {limit} bytes; not a model bundle")
        if not inflater.eof:
            raise BundleError(
                f"{where}: the gzip stream ends early: the bundle is truncated; copy it again"
            )
    except zlib.error as exc:
        raise BundleError(
            f"{where}: corrupt gzip data ({exc}): the bundle is damaged; copy it again"
        ) from exc
    if inflater.unused_data.strip(b"\x00"):
        raise BundleError(f"{where}: unexpected data after the gzip stream; refusing the bundle")
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            for member in tar:
                name = member.name
                if name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name):
                    raise BundleError(
                        f"{where}: member {name!r} points outside the bundle (path "
                        "traversal); refusing the bundle"
                    )
                if member.issym() or member.islnk():
                    raise BundleError(
                        f"{where}: member {name!r} is a link to {member.linkname!r}; bundles "
                        "hold regular files only"
                    )
                if name not in ALLOWED_MEMBERS:
                    raise BundleError(
                        f"{where}: unexpected member {name!r}; a bundle holds only "
                        f"{', '.join(ALLOWED_MEMBERS)}"
                    )
                if not member.isreg():
                    raise BundleError(f"{where}: member {name!r} is not a regular file")
                if name in files:
                    raise BundleError(f"{where}: member {name!r} appears twice")
                cap = MAX_MODEL_BYTES if name == MODEL_MEMBER else MAX_JSON_BYTES
                if member.size > cap:
                    raise BundleError(
                        f"{where}: member {name!r} is {member.size} bytes, over the {cap} limit"
                    )
                fh = tar.extractfile(member)
                data = fh.read() if fh is not None else b""
                if len(data) != member.size:
                    raise BundleError(f"{where}: member {name!r} is truncated")
                files[name] = data
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(
            f"{where}: not a valid tar archive ({exc}); the bundle is damaged or not a bundle"
        ) from exc
    return files


def json_member(files: dict[str, bytes], name: str, where: str) -> Any:
    """A bundle member parsed as JSON (`where` names the bundle or folder it came from);
    a member that is not UTF-8 JSON is a `BundleError`."""
    try:
        return json.loads(files[name].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{where}: {name} is not valid JSON ({exc})") from exc


def verify_members(
    files: dict[str, bytes],
    *,
    source: str,
    trusted_keys: Sequence[Any] | None = None,
    sha256: str = "",
) -> Bundle:
    """Check a bundle's members (from a file or an installed model folder): manifest,
    hashes, sizes, metadata, and the signature when `trusted_keys` is non-empty."""
    where = source
    missing = [m for m in (MANIFEST_MEMBER, METADATA_MEMBER, MODEL_MEMBER) if m not in files]
    if missing:
        raise BundleError(
            f"{where}: missing {', '.join(missing)}; a bundle holds {', '.join(HASHED_MEMBERS)} "
            f"and {MANIFEST_MEMBER}"
        )
    manifest = json_member(files, MANIFEST_MEMBER, where)
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: {MANIFEST_MEMBER} is not a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        hint = (
            "it was made by a newer openracer; upgrade openracer on this machine"
            if isinstance(version, int) and version > SCHEMA_VERSION
            else "re-export the model with `racer export`"
        )
        raise BundleError(
            f"{where}: manifest schema_version {version!r} is not {SCHEMA_VERSION}; {hint}"
        )
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"{where}: manifest format {manifest.get('format')!r} is not {BUNDLE_FORMAT!r}"
        )
    check_name(str(manifest.get("name", "")), f"{where}: manifest name")
    listed = manifest.get("members")
    if not isinstance(listed, dict) or set(listed) != set(HASHED_MEMBERS):
        raise BundleError(
            f"{where}: manifest members {sorted(listed) if isinstance(listed, dict) else listed!r}"
            f" must list exactly {list(HASHED_MEMBERS)}"
        )
    for name in HASHED_MEMBERS:
        entry = listed[name]
        data = files[name]
        if not isinstance(entry, dict) or "sha256" not in entry or "size_bytes" not in entry:
            raise BundleError(f"{where}: manifest entry for {name} needs sha256 and size_bytes")
        if entry["size_bytes"] != len(data):
            raise BundleError(
                f"{where}: {name} is {len(data)} bytes but the manifest says "
                f"{entry['size_bytes']}: the bundle was truncated or altered"
            )
        actual = sha256_hex(data)
        if not hmac.compare_digest(actual, str(entry["sha256"]).lower()):
            raise BundleError(
                f"{where}: {name} sha256 {actual[:16]}... differs from the manifest's "
                f"{str(entry['sha256'])[:16]}...: the bundle was altered after export"
            )
    try:
        metadata = parse_metadata(
            json_member(files, METADATA_MEMBER, where), source=f"{where}: {METADATA_MEMBER}"
        )
    except MetadataError as exc:
        raise BundleError(str(exc)) from exc
    signature = None
    if SIGNATURE_MEMBER in files:
        signature = json_member(files, SIGNATURE_MEMBER, where)
        if not isinstance(signature, dict) or not isinstance(signature.get("key_id"), str):
            raise BundleError(f"{where}: {SIGNATURE_MEMBER} is malformed (no key_id)")
    signed_by = None
    if trusted_keys:
        signed_by = _check_signature(files, signature, trusted_keys, where)
    return Bundle(
        files=dict(files),
        manifest=manifest,
        metadata=metadata,
        signature=signature,
        signed_by=signed_by,
        source=where,
        sha256=sha256,
    )


def _check_signature(
    files: dict[str, bytes], signature: dict[str, Any] | None, trusted: Sequence[Any], where: str
) -> str:
    import base64
    import binascii

    ids = ", ".join(k.key_id for k in trusted)
    if signature is None:
        raise UntrustedBundleError(
            f"{where}: the bundle is unsigned but this car trusts only signed bundles "
            f"(keys {ids}); export with `racer export --sign KEY`"
        )
    if signature.get("algorithm") != "ed25519":
        raise BundleError(
            f"{where}: signature algorithm {signature.get('algorithm')!r} is not 'ed25519'"
        )
    key_id = signature["key_id"]
    key = next((k for k in trusted if k.key_id == key_id), None)
    if key is None:
        raise UntrustedBundleError(
            f"{where}: signed by key {key_id}, which this car does not trust (trusted: {ids}); "
            "add its .pub with `racer models trust KEY.pub` or sign with a trusted key"
        )
    try:
        sig = base64.b64decode(str(signature.get("signature", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(f"{where}: the signature is not valid base64 ({exc})") from exc
    if not key.verify(sig, files[MANIFEST_MEMBER]):
        raise BundleError(
            f"{where}: the signature does not match key {key_id}: the manifest was altered "
            "after signing or the signature is forged; refusing the bundle"
        )
    return str(key_id)
