"""`racer flash`: through a real OpenSSH sshd on 127.0.0.1 (throwaway host and user keys),
into a store on this machine standing in for the car; and into a local store folder."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.vehicle.models.bundle_factory import make_bundle, tree_digest
from tools.cli import main as racer
from tools.flash import SshCar, parse_car
from vehicle.models.signing import SigningKey, save_key_pair
from vehicle.models.store import ModelStore

pytest.importorskip("tensorflow")
REPO = Path(__file__).resolve().parents[2]
REMOTE_RACER = str(Path(sys.executable).parent / "racer")
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1:<free port> accepting one throwaway user key."""
    if not os.path.exists(SSHD):
        pytest.fail("sshd is missing: run tools/install_test_deps.sh (Debian openssh-server)")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "user_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True
        )
    shutil.copy(d / "user_key.pub", d / "authorized_keys")
    port = _free_port()
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"sshd did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.1)
    ssh_args = [
        "-i",
        str(d / "user_key"),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
    ]
    yield {"port": port, "user": getpass.getuser(), "key": d / "user_key", "ssh_args": ssh_args}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _flash_args(sshd, store: Path, *extra: str) -> list[str]:
    return [
        "--car",
        f"{sshd['user']}@127.0.0.1:{sshd['port']}",
        "-i",
        str(sshd["key"]),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "--remote-racer",
        REMOTE_RACER,
        "--remote-store",
        str(store),
        *extra,
    ]


def _ssh(sshd, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-p", str(sshd["port"]), *sshd["ssh_args"], f"{sshd['user']}@127.0.0.1", command],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundles")
    make_bundle(d / "a.tar.gz", "model-a", quant="float32")
    make_bundle(d / "b.tar.gz", "model-b", quant="int8")
    make_bundle(d / "mismatch.tar.gz", "mismatch", n_out=5)
    return d


def test_parse_car():
    assert parse_car("pi@car.local") == SshCar("car.local", "pi", 22)
    assert parse_car("car.local:2222") == SshCar("car.local", None, 2222)
    assert parse_car("/media/usb/models") == Path("/media/usb/models")
    with pytest.raises(Exception, match="neither user@host"):
        parse_car("pi@car local")


@pytest.mark.slow
def test_flash_activate_and_rollback_over_real_ssh(sshd, bundles, tmp_path, capsys):
    store = tmp_path / "car-store"
    code = racer(["flash", str(bundles / "a.tar.gz"), *_flash_args(sshd, store, "--activate")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "installed and activated model-a" in out and f"127.0.0.1:{sshd['port']}" in out
    code = racer(
        ["flash", str(bundles / "b.tar.gz"), *_flash_args(sshd, store, "--activate", "--json")]
    )
    answer = json.loads(capsys.readouterr().out)
    assert code == 0 and answer["name"] == "model-b" and answer["active"] is True
    assert answer["quantization"] == "int8"
    car = ModelStore(store)
    assert car.active().name == "model-b"
    assert [(m.name, m.is_previous) for m in car.list()] == [("model-b", False), ("model-a", True)]
    # Rollback on the car, over the same SSH.
    result = _ssh(sshd, f"{REMOTE_RACER} models --store {store} rollback")
    assert result.returncode == 0, result.stderr
    assert "rolled back to" in result.stdout and car.active().name == "model-a"
    # The car's temp folder for the transfer was cleaned up.
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("openracer-flash.*"))


@pytest.mark.slow
def test_refused_over_ssh_is_one_line_exit_2_store_unchanged(sshd, bundles, tmp_path, capsys):
    store = tmp_path / "car-store"
    assert racer(["flash", str(bundles / "a.tar.gz"), *_flash_args(sshd, store, "--activate")]) == 0
    before = tree_digest(store)
    capsys.readouterr()
    code = racer(
        ["flash", str(bundles / "mismatch.tar.gz"), *_flash_args(sshd, store, "--activate")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "refused the bundle" in err[0] and "output sizes [5]" in err[0]
    assert tree_digest(store) == before
    # A car that trusts a key refuses an unsigned bundle, and accepts a signed one.
    key = SigningKey.generate("fleet")
    save_key_pair(key, tmp_path / "keys", "fleet")
    assert (
        _ssh(
            sshd, f"{REMOTE_RACER} models --store {store} trust {tmp_path / 'keys/fleet.pub'}"
        ).returncode
        == 0
    )
    before = tree_digest(store)
    assert racer(["flash", str(bundles / "b.tar.gz"), *_flash_args(sshd, store)]) == 2
    assert "unsigned but this car trusts only signed" in capsys.readouterr().err
    assert tree_digest(store) == before
    signed = tmp_path / "signed.tar.gz"
    make_bundle(signed, "signed", signing_key=key)
    assert racer(["flash", str(signed), *_flash_args(sshd, store, "--activate")]) == 0
    assert ModelStore(store).active().name == "signed"


@pytest.mark.slow
def test_unreachable_car_and_missing_remote_racer(sshd, bundles, tmp_path, capsys):
    args = _flash_args(sshd, tmp_path / "s")
    args[1] = f"{sshd['user']}@127.0.0.1:{_free_port()}"
    assert racer(["flash", str(bundles / "a.tar.gz"), *args]) == 2
    err = capsys.readouterr().err
    assert "cannot reach" in err and "Connection refused" in err
    args = _flash_args(sshd, tmp_path / "s")
    args[args.index("--remote-racer") + 1] = "/nonexistent/racer"
    assert racer(["flash", str(bundles / "a.tar.gz"), *args]) == 2
    assert "is not runnable on the car" in capsys.readouterr().err


def test_flash_into_a_local_store_folder(bundles, tmp_path, capsys):
    store = tmp_path / "usb" / "models"
    assert racer(["flash", str(bundles / "a.tar.gz"), "--car", str(store), "--activate"]) == 0
    assert "installed and activated model-a" in capsys.readouterr().out
    assert ModelStore(store).active().name == "model-a"
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes((bundles / "b.tar.gz").read_bytes()[:-50])
    before = tree_digest(store)
    assert racer(["flash", str(bad), "--car", str(store), "--activate"]) == 2
    assert "truncated" in capsys.readouterr().err
    assert tree_digest(store) == before
