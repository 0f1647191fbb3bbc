"""vehicle.models.signing: ed25519 keys, their files, and the car's trusted public keys."""

from __future__ import annotations

import base64
import hashlib
import stat
import sys
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa  # noqa: E402

from vehicle.errors import VehicleError  # noqa: E402
from vehicle.models.signing import (  # noqa: E402
    PUBLIC_KEY_PREFIX,
    PublicKey,
    SigningError,
    SigningKey,
    key_id_of,
    load_public_key,
    load_signing_key,
    load_trusted_keys,
    parse_public_key,
    save_key_pair,
)


def _fixed_key(seed: int = 1, comment: str = "builder") -> SigningKey:
    return SigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32), comment)


def test_sign_and_verify() -> None:
    key = _fixed_key()
    sig = key.sign(b"manifest")
    assert len(sig) == 64
    assert key.public.verify(sig, b"manifest")
    assert not key.public.verify(sig, b"manifest!")  # other data
    assert not _fixed_key(2).public.verify(sig, b"manifest")  # other key
    assert not key.public.verify(sig[:-1], b"manifest")  # truncated: False, not an exception


def test_key_id_is_the_sha256_prefix_of_the_raw_key() -> None:
    key = _fixed_key()
    assert len(key.public.raw) == 32
    assert key.public.key_id == key_id_of(key.public.raw)
    assert key.public.key_id == hashlib.sha256(key.public.raw).hexdigest()[:16]
    assert key.public.key_id != _fixed_key(2).public.key_id


def test_public_line_round_trip() -> None:
    pub = _fixed_key().public
    line = pub.to_line()
    assert line.startswith(f"{PUBLIC_KEY_PREFIX} ") and line.endswith(" builder\n")
    assert parse_public_key(line) == pub
    assert parse_public_key(PublicKey(pub.raw).to_line()) == PublicKey(pub.raw, "")


def test_a_pem_public_key_is_accepted(tmp_path: Path) -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "laptop.pem").write_bytes(pem)
    key = load_public_key(tmp_path / "laptop.pem")
    assert key.raw == _fixed_key().public.raw and key.comment == "laptop"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ssh-ed25519 AAAA builder", "not a public key.*pass the .pub file"),
        (f"{PUBLIC_KEY_PREFIX} not*base64 x", "not valid base64"),
        (f"{PUBLIC_KEY_PREFIX} {base64.b64encode(b'short').decode()} x", "is 5 bytes.*32"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "unreadable PEM"),
    ],
)
def test_bad_public_keys_are_named_errors(text: str, message: str) -> None:
    with pytest.raises(SigningError, match=message):
        parse_public_key(text, "keys/x.pub")


def test_an_rsa_public_key_is_refused() -> None:
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SigningError, match="not an ed25519 key"):
        parse_public_key(pem.decode(), "rsa.pub")


def test_save_and_load_a_key_pair(tmp_path: Path) -> None:
    key = _fixed_key(comment="builder")
    key_path, pub_path = save_key_pair(key, tmp_path / "keys", "builder")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600  # private: owner only
    assert stat.S_IMODE(pub_path.stat().st_mode) == 0o644
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_signing_key(key_path)
    assert loaded.public.raw == key.public.raw and loaded.comment == "builder"
    assert load_public_key(pub_path) == key.public
    assert not list((tmp_path / "keys").glob(".*tmp*"))


def test_save_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    save_key_pair(_fixed_key(1), tmp_path, "k")
    with pytest.raises(SigningError, match="already exists.*--force"):
        save_key_pair(_fixed_key(2), tmp_path, "k")
    assert load_public_key(tmp_path / "k.pub").raw == _fixed_key(1).public.raw
    save_key_pair(_fixed_key(2), tmp_path, "k", force=True)
    assert load_public_key(tmp_path / "k.pub").raw == _fixed_key(2).public.raw


@pytest.mark.parametrize("name", ["", "../escape", "with space", "a/b"])
def test_key_names_are_checked(tmp_path: Path, name: str) -> None:
    with pytest.raises(SigningError, match="key name"):
        save_key_pair(_fixed_key(), tmp_path, name)


def test_load_signing_key_errors(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="cannot read the signing key.*racer keys new"):
        load_signing_key(tmp_path / "missing.key")
    save_key_pair(_fixed_key(), tmp_path, "k")
    with pytest.raises(SigningError, match="not an unencrypted PEM private key.*not the .pub"):
        load_signing_key(tmp_path / "k.pub")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "rsa.key").write_bytes(rsa_pem)
    with pytest.raises(SigningError, match="not an ed25519 key"):
        load_signing_key(tmp_path / "rsa.key")


def test_trusted_keys_are_every_pub_sorted_by_id(tmp_path: Path) -> None:
    assert load_trusted_keys(tmp_path / "none") == []
    for i in range(1, 4):
        save_key_pair(_fixed_key(i), tmp_path, f"k{i}")
    keys = load_trusted_keys(tmp_path)
    assert [k.key_id for k in keys] == sorted(_fixed_key(i).public.key_id for i in range(1, 4))
    (tmp_path / "broken.pub").write_text("garbage\n")
    with pytest.raises(SigningError, match="broken.pub: not a public key"):
        load_trusted_keys(tmp_path)  # a bad trusted key is loud, never skipped


def test_without_cryptography_signing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith("cryptography")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(SigningError, match="needs the 'cryptography' package.*openracer\\[car\\]"):
        SigningKey.generate()
    with pytest.raises(SigningError) as info:
        parse_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
    assert isinstance(info.value, VehicleError) and info.value.exit_code == 2
