"""vehicle.models.bundle: the bundle format, hashes, structural refusals and signatures."""

from __future__ import annotations

import json

import pytest

from tests.vehicle.models.bundle_factory import link, make_bundle, members, regular, rewrite
from vehicle.models.bundle import (
    MANIFEST_MEMBER,
    METADATA_MEMBER,
    MODEL_MEMBER,
    SIGNATURE_MEMBER,
    BundleError,
    read_bundle,
    sha256_hex,
)
from vehicle.models.signing import SigningKey, load_public_key, load_signing_key, save_key_pair

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("b") / "tiny.tar.gz"
    make_bundle(path)
    return path


def test_round_trip_holds_members_hashes_and_provenance(good):
    bundle = read_bundle(good)
    assert sorted(bundle.files) == sorted([MANIFEST_MEMBER, METADATA_MEMBER, MODEL_MEMBER])
    m = bundle.manifest
    assert m["schema_version"] == 1 and m["format"] == "openracer-model-bundle"
    assert m["name"] == "tiny"
    for member in (MODEL_MEMBER, METADATA_MEMBER):
        assert m["members"][member]["sha256"] == sha256_hex(bundle.files[member])
        assert m["members"][member]["size_bytes"] == len(bundle.files[member])
    assert m["source"]["run"] == "runs/test" and m["parity"]["agreement"] == 1.0
    assert m["created_utc"].endswith("Z") and m["openracer_version"]
    assert bundle.sha256 == sha256_hex(good.read_bytes())
    meta = json.loads(bundle.files[METADATA_MEMBER])
    # DeepRacer keys at the top level, openracer's beside them
    assert meta["action_space_type"] == "discrete" and len(meta["action_space"]) == 10
    assert meta["openracer"]["input_shape"] == [120, 160, 1]
    assert meta["openracer"]["control_rate_hz"] == 15.0
    assert bundle.metadata.action_space.n == 10


def test_expected_sha256_catches_a_damaged_transfer(good):
    read_bundle(good, expect_sha256=sha256_hex(good.read_bytes()))
    with pytest.raises(BundleError, match="damaged in transfer"):
        read_bundle(good, expect_sha256="0" * 64)


@pytest.mark.parametrize("cut", [10, 200, 0.5, -30, -4, -1])
def test_truncated_bundle_is_refused(good, tmp_path, cut):
    blob = good.read_bytes()
    n = int(len(blob) * cut) if isinstance(cut, float) else (cut if cut > 0 else len(blob) + cut)
    bad = tmp_path / "cut.tar.gz"
    bad.write_bytes(blob[:n])
    with pytest.raises(BundleError, match="truncated|damaged|corrupt|not a valid tar"):
        read_bundle(bad)


def test_not_a_gzip_file_is_refused(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"TFL3" + b"\0" * 100)
    with pytest.raises(BundleError, match="not a gzip file"):
        read_bundle(bad)


def test_tampered_model_fails_its_hash(good, tmp_path):
    entries = members(good)
    out = []
    for info, data in entries:
        if info.name == MODEL_MEMBER:
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        out.append((info, data))
    with pytest.raises(BundleError, match="model.tflite sha256 .* differs from the manifest"):
        read_bundle(rewrite(good, tmp_path / "t.tar.gz", out))


def test_tampered_metadata_size_is_caught(good, tmp_path):
    out = []
    for info, data in members(good):
        if info.name == METADATA_MEMBER:
            data = data.replace(b'"speed": 0.4', b'"speed": 4.0')
        out.append((info, data))
    with pytest.raises(BundleError, match="model_metadata.json"):
        read_bundle(rewrite(good, tmp_path / "t.tar.gz", out))


@pytest.mark.parametrize(
    "extra, message",
    [
        (regular("../evil.sh", b"rm -rf /"), "path traversal"),
        (regular("/etc/cron.d/evil", b"x"), "path traversal"),
        (regular("sub/../../x", b"x"), "path traversal"),
        (link(MODEL_MEMBER + ".lnk", "/etc/passwd"), "unexpected member|is a link"),
        (regular("notes.txt", b"hello"), "unexpected member 'notes.txt'"),
        (regular("./model.tflite", b"x"), "unexpected member"),
    ],
)
def test_structural_attacks_are_refused(good, tmp_path, extra, message):
    entries = [extra, *members(good)]
    with pytest.raises(BundleError, match=message):
        read_bundle(rewrite(good, tmp_path / "t.tar.gz", entries))


@pytest.mark.parametrize("hard", [False, True])
def test_links_under_a_member_name_are_refused(good, tmp_path, hard):
    entries = [e for e in members(good) if e[0].name != MODEL_MEMBER]
    entries.append(link(MODEL_MEMBER, "/etc/passwd", hard=hard))
    with pytest.raises(BundleError, match="is a link"):
        read_bundle(rewrite(good, tmp_path / "t.tar.gz", entries))


def test_duplicate_and_missing_members_are_refused(good, tmp_path):
    entries = members(good)
    with pytest.raises(BundleError, match="appears twice"):
        read_bundle(rewrite(good, tmp_path / "d.tar.gz", entries + [entries[-1]]))
    without_model = [e for e in entries if e[0].name != MODEL_MEMBER]
    with pytest.raises(BundleError, match="missing model.tflite"):
        read_bundle(rewrite(good, tmp_path / "m.tar.gz", without_model))


def test_newer_manifest_schema_asks_for_an_upgrade(good, tmp_path):
    out = []
    for info, data in members(good):
        if info.name == MANIFEST_MEMBER:
            m = json.loads(data)
            m["schema_version"] = 7
            data = json.dumps(m).encode()
        out.append((info, data))
    with pytest.raises(BundleError, match="newer openracer; upgrade"):
        read_bundle(rewrite(good, tmp_path / "t.tar.gz", out))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    good_key, other = SigningKey.generate("builder"), SigningKey.generate("stranger")
    save_key_pair(good_key, d, "builder")
    save_key_pair(other, d, "stranger")
    return d


def test_key_files_round_trip_and_private_key_is_private(keys):
    key = load_signing_key(keys / "builder.key")
    pub = load_public_key(keys / "builder.pub")
    assert key.public.raw == pub.raw and len(pub.key_id) == 16
    assert (keys / "builder.key").stat().st_mode & 0o077 == 0
    assert pub.verify(key.sign(b"data"), b"data")
    assert not pub.verify(key.sign(b"data"), b"date")


def test_signed_bundle_verifies_only_against_its_key(tmp_path, keys):
    signer = load_signing_key(keys / "builder.key")
    trusted = [load_public_key(keys / "builder.pub")]
    stranger = [load_public_key(keys / "stranger.pub")]
    path = tmp_path / "s.tar.gz"
    make_bundle(path, signing_key=signer)
    bundle = read_bundle(path, trusted_keys=trusted)
    assert bundle.signed_by == signer.public.key_id
    assert SIGNATURE_MEMBER in bundle.files
    with pytest.raises(BundleError, match="does not trust"):
        read_bundle(path, trusted_keys=stranger)
    # Without trusted keys the signature is carried but not checked.
    assert read_bundle(path).signed_by is None


def test_unsigned_bundle_is_refused_when_keys_are_trusted(good, keys):
    with pytest.raises(BundleError, match="unsigned but this car trusts only signed"):
        read_bundle(good, trusted_keys=[load_public_key(keys / "builder.pub")])


def test_altered_manifest_breaks_the_signature(tmp_path, keys):
    signer = load_signing_key(keys / "builder.key")
    path = tmp_path / "s.tar.gz"
    make_bundle(path, signing_key=signer)
    out = []
    for info, data in members(path):
        if info.name == MANIFEST_MEMBER:
            m = json.loads(data)
            m["parity"]["agreement"] = 0.42  # hashes still match; the signature must not
            data = json.dumps(m).encode()
        out.append((info, data))
    with pytest.raises(BundleError, match="signature does not match"):
        read_bundle(
            rewrite(path, tmp_path / "t.tar.gz", out),
            trusted_keys=[load_public_key(keys / "builder.pub")],
        )


def test_signature_from_another_key_claiming_the_trusted_id_fails(tmp_path, keys):
    signer = load_signing_key(keys / "builder.key")
    forger = load_signing_key(keys / "stranger.key")
    path = tmp_path / "s.tar.gz"
    make_bundle(path, signing_key=signer)
    out = []
    for info, data in members(path):
        if info.name == SIGNATURE_MEMBER:
            import base64

            sig = json.loads(data)
            manifest_bytes = next(d for i, d in members(path) if i.name == MANIFEST_MEMBER)
            sig["signature"] = base64.b64encode(forger.sign(manifest_bytes)).decode()
            data = json.dumps(sig).encode()
        out.append((info, data))
    with pytest.raises(BundleError, match="signature does not match"):
        read_bundle(
            rewrite(path, tmp_path / "t.tar.gz", out),
            trusted_keys=[load_public_key(keys / "builder.pub")],
        )
