"""Ed25519 keys that sign model bundles, and the car's list of trusted public keys.

Runs on the car. `cryptography` is imported lazily, only when a key is made, loaded or a
signature checked, so a car that trusts no keys never needs it.

Files:
- private key `NAME.key`: PEM, PKCS#8, unencrypted, mode 0600 (OpenSSL reads it too);
- public key `NAME.pub`: one line `openracer-ed25519 <base64 of the 32 raw bytes> <comment>`
  (a PEM `PUBLIC KEY` file is accepted as well).
A key is named by its id: the first 16 hex digits of the sha256 of its 32 raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vehicle.errors import SigningError
from vehicle.files import atomic_write

PUBLIC_KEY_PREFIX = "openracer-ed25519"
"""First word of a public-key line."""
PUBLIC_KEY_SUFFIX = ".pub"
PRIVATE_KEY_SUFFIX = ".key"
_RAW_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
_COMMENT_OK = re.compile(r"^[\w.@+-]*$")


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise SigningError(
            "signing or checking bundle signatures needs the 'cryptography' package, which "
            "is not installed; install it with `pip install cryptography` (it is part of "
            "`pip install 'openracer[car]'`)"
        ) from exc
    return ed25519


def key_id_of(raw: bytes) -> str:
    """A public key's id: the first 16 hex digits of sha256(raw 32 bytes)."""
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    """An ed25519 public key that bundles can be checked against."""

    raw: bytes
    """The 32 raw key bytes."""
    comment: str = ""
    """Free text from the key file (usually the key's name)."""

    @property
    def key_id(self) -> str:
        """First 16 hex digits of sha256(raw): how manifests and the store name the key."""
        return key_id_of(self.raw)

    def to_line(self) -> str:
        """The one-line `.pub` file form."""
        b64 = base64.b64encode(self.raw).decode("ascii")
        return f"{PUBLIC_KEY_PREFIX} {b64} {self.comment}".rstrip() + "\n"

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when `signature` is this key's ed25519 signature of `data`."""
        ed = _ed25519()
        from cryptography.exceptions import InvalidSignature

        if len(signature) != _SIGNATURE_BYTES:
            return False
        try:
            ed.Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


class SigningKey:
    """An ed25519 private key that signs bundles."""

    def __init__(self, private: Any, comment: str = "") -> None:
        self._private = private
        self.comment = comment
        """The key's name, written into the public-key line."""
        from cryptography.hazmat.primitives import serialization

        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public = PublicKey(raw, comment)
        """The matching public key."""

    @classmethod
    def generate(cls, comment: str = "") -> SigningKey:
        """A fresh random key."""
        return cls(_ed25519().Ed25519PrivateKey.generate(), comment)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte ed25519 signature of `data`."""
        return bytes(self._private.sign(data))

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        from cryptography.hazmat.primitives import serialization

        return bytes(
            self._private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def save_key_pair(
    key: SigningKey, directory: str | Path, name: str, *, force: bool = False
) -> tuple[Path, Path]:
    """Write `NAME.key` (mode 0600) and `NAME.pub` into `directory`; returns both paths.
    Refuses to overwrite an existing key unless `force`."""
    if not name or not _COMMENT_OK.match(name):
        raise SigningError(
            f"key name {name!r} must be letters, digits, '.', '_', '-', '@' or '+' only"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / f"{name}{PRIVATE_KEY_SUFFIX}"
    pub_path = directory / f"{name}{PUBLIC_KEY_SUFFIX}"
    for path in (key_path, pub_path):
        if path.exists() and not force:
            raise SigningError(
                f"{path} already exists; choose another name or pass --force to replace it "
                "(bundles signed with the old key will no longer verify against the new one)"
            )
    atomic_write(key_path, key.private_pem(), mode=0o600)
    atomic_write(pub_path, key.public.to_line().encode("ascii"), mode=0o644)
    return key_path, pub_path


def load_signing_key(path: str | Path) -> SigningKey:
    """Read a private key written by `racer keys new` (PKCS#8 PEM, ed25519)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(
            f"{path}: cannot read the signing key ({exc.strerror}); make one with "
            "`racer keys new NAME`"
        ) from exc
    ed = _ed25519()
    from cryptography.hazmat.primitives import serialization

    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(
            f"{path}: not an unencrypted PEM private key ({exc}); pass the .key file made by "
            "`racer keys new` (not the .pub)"
        ) from exc
    if not isinstance(private, ed.Ed25519PrivateKey):
        raise SigningError(f"{path}: is a {type(private).__name__}, not an ed25519 key")
    return SigningKey(private, path.stem)


def parse_public_key(text: str, source: str = "public key") -> PublicKey:
    """Parse a `.pub` line (`openracer-ed25519 BASE64 [comment]`) or a PEM public key."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN PUBLIC KEY-----"):
        ed = _ed25519()
        from cryptography.hazmat.primitives import serialization

        try:
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        except (ValueError, TypeError) as exc:
            raise SigningError(f"{source}: unreadable PEM public key ({exc})") from exc
        if not isinstance(key, ed.Ed25519PublicKey):
            raise SigningError(f"{source}: is a {type(key).__name__}, not an ed25519 key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey(raw, Path(source).stem)
    parts = stripped.split()
    if len(parts) < 2 or parts[0] != PUBLIC_KEY_PREFIX:
        raise SigningError(
            f"{source}: not a public key; expected a line '{PUBLIC_KEY_PREFIX} BASE64 NAME' "
            "as written by `racer keys new` (pass the .pub file, not the .key)"
        )
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningError(f"{source}: the key is not valid base64 ({exc})") from exc
    if len(raw) != _RAW_KEY_BYTES:
        raise SigningError(f"{source}: the key is {len(raw)} bytes, an ed25519 key is 32")
    return PublicKey(raw, " ".join(parts[2:]))


def load_public_key(path: str | Path) -> PublicKey:
    """Read a public key file (`.pub` line or PEM)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningError(f"{path}: cannot read the public key ({exc})") from exc
    return parse_public_key(text, str(path))


def load_trusted_keys(directory: str | Path) -> list[PublicKey]:
    """Every `*.pub` in `directory` (none if it does not exist), sorted by key id."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    keys = [load_public_key(p) for p in sorted(directory.glob(f"*{PUBLIC_KEY_SUFFIX}"))]
    return sorted(keys, key=lambda k: k.key_id)
