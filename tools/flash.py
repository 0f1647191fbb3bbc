"""Putting a model bundle on a car: over SSH with the system OpenSSH client, or straight
into a local or mounted model store (DeepRacer's USB-stick route).

Over SSH one connection does everything: the bundle travels on the connection's stdin into
a private temp folder on the car, and the car's own `racer models install` checks it
(hashes, the sha256 of the whole file as sent, signature when the car trusts keys, shapes,
one inference) and installs it atomically. The car's answer (JSON) comes back and is
printed; a refusal comes back as the car's one-line error.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.errors import FlashError
from vehicle.models.bundle import read_bundle, sha256_hex

_SSH_TARGET = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9._-]+)(?::(?P<port>\d+))?$"
)
REMOTE_EXIT_SSH = 255
"""OpenSSH's exit status when the connection itself failed."""


@dataclass(frozen=True)
class SshCar:
    """A car reached over SSH."""

    host: str
    """Host name or address."""
    user: str | None = None
    """Login name (None: ssh's default)."""
    port: int = 22
    """TCP port of the car's sshd."""

    def __str__(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


def parse_car(spec: str) -> SshCar | Path:
    """`user@host[:port]` or `host` -> SshCar; a path (has '/', or starts with '.' or '~')
    -> the store folder."""
    if "/" in spec or spec.startswith((".", "~")):
        return Path(spec).expanduser()
    m = _SSH_TARGET.match(spec)
    if not m:
        raise FlashError(
            f"--car {spec!r} is neither user@host[:port] nor a store folder path; e.g. "
            "--car pi@car.local or --car /media/usb/models"
        )
    port = int(m["port"]) if m["port"] else 22
    if not 0 < port < 65536:
        raise FlashError(f"--car {spec!r}: port {port} is not 1-65535")
    return SshCar(host=m["host"], user=m["user"], port=port)


def flash_local(
    bundle_path: Path, store_dir: Path, *, activate: bool, name: str | None
) -> dict[str, Any]:
    """Install into a store folder on this machine (or a mounted card / stick)."""
    from vehicle.models.store import ModelStore

    bundle = read_bundle(bundle_path)
    model = ModelStore(store_dir).install(
        bundle_path, activate=activate, name=name, expect_sha256=bundle.sha256
    )
    return {"car": str(store_dir), "action": "install", **model.describe()}


def remote_script(
    *, remote_racer: str, remote_store: str | None, sha256: str, activate: bool, name: str | None
) -> str:
    """The POSIX shell script the car runs: receive stdin into a private temp folder,
    install it with `racer models install`, clean up whatever happens."""
    install = [remote_racer, "models"]
    if remote_store:
        install += ["--store", remote_store]
    install += ["install", '"$d/bundle.tar.gz"', "--expect-sha256", sha256, "--json"]
    if activate:
        install.append("--activate")
    if name:
        install += ["--name", name]
    quoted = " ".join(a if a == '"$d/bundle.tar.gz"' else shlex.quote(a) for a in install)
    return (
        "set -e; umask 077; "
        'd=$(mktemp -d "${TMPDIR:-/tmp}/openracer-flash.XXXXXX"); '
        "trap 'rm -rf \"$d\"' EXIT; "
        'cat > "$d/bundle.tar.gz"; '
        f"{quoted}"
    )


def ssh_command(
    car: SshCar,
    script: str,
    *,
    ssh: str = "ssh",
    identity: str | None = None,
    options: list[str] | None = None,
    connect_timeout_s: float = 15.0,
) -> list[str]:
    """The ssh argv: batch mode (never a password prompt), the car, the script."""
    cmd = [ssh, "-p", str(car.port), "-o", "BatchMode=yes"]
    cmd += ["-o", f"ConnectTimeout={int(connect_timeout_s)}"]
    if identity:
        cmd += ["-i", identity]
    for opt in options or []:
        cmd += ["-o", opt]
    target = f"{car.user}@{car.host}" if car.user else car.host
    return [*cmd, "--", target, script]


def flash_ssh(
    bundle_path: Path,
    car: SshCar,
    *,
    activate: bool,
    name: str | None,
    remote_racer: str = "racer",
    remote_store: str | None = None,
    ssh: str = "ssh",
    identity: str | None = None,
    options: list[str] | None = None,
    timeout_s: float = 300.0,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Send a bundle over SSH and install it on the car; returns the car's JSON answer."""
    bundle = read_bundle(bundle_path)  # refuse a broken bundle before using the network
    blob = Path(bundle_path).read_bytes()
    script = remote_script(
        remote_racer=remote_racer,
        remote_store=remote_store,
        sha256=sha256_hex(blob),
        activate=activate,
        name=name,
    )
    cmd = ssh_command(car, script, ssh=ssh, identity=identity, options=options)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=err)
        except FileNotFoundError as exc:
            raise FlashError(
                f"ssh client {ssh!r} not found; install OpenSSH (`apt install "
                "openssh-client`) or pass --ssh PATH"
            ) from exc
        try:
            _send(proc, blob, f"{bundle.name} -> {car}", show_progress)
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            raise FlashError(
                f"{car}: no answer within {timeout_s:.0f} s; is the car busy?"
            ) from exc
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "XNNPACK" not in ln]
    if code == REMOTE_EXIT_SSH:
        last = lines[-1] if lines else "no message"
        raise FlashError(
            f"cannot reach {car} over SSH: {last}; check the address, that sshd runs on the "
            "car and that your key is in its authorized_keys"
        )
    if code != 0:
        refusal = next((ln for ln in reversed(lines) if "error:" in ln), None)
        if code == 127 or (refusal is None and "not found" in stderr):
            raise FlashError(
                f"{car}: {remote_racer!r} is not runnable on the car ({lines[-1] if lines else code}); "
                "install openracer there or pass --remote-racer /path/to/racer"
            )
        raise FlashError(
            f"{car} refused the bundle: "
            + (
                refusal.split("error:", 1)[1].strip()
                if refusal
                else (lines[-1] if lines else f"exit {code}")
            )
        )
    try:
        answer = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise FlashError(f"{car}: unexpected answer from the car: {stdout[-200:]!r}") from exc
    answer["car"] = str(car)
    return answer


def _send(proc: subprocess.Popen, blob: bytes, label: str, show_progress: bool) -> None:
    """Write the bundle to ssh's stdin in chunks (with a progress bar on a terminal)."""
    assert proc.stdin is not None
    chunk = 256 * 1024
    try:
        if show_progress:
            from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

            with Progress(
                *Progress.get_default_columns(),
                DownloadColumn(),
                TransferSpeedColumn(),
                transient=True,
            ) as bar:
                task = bar.add_task(label, total=len(blob))
                for i in range(0, len(blob), chunk):
                    proc.stdin.write(blob[i : i + chunk])
                    bar.advance(task, len(blob[i : i + chunk]))
        else:
            proc.stdin.write(blob)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the connection failed; its exit status and stderr say why


def show_progress_default() -> bool:
    """Progress bars only on an interactive terminal."""
    return sys.stderr.isatty()
