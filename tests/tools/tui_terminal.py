"""A real terminal for end-to-end TUI tests: tmux on a private socket, send-keys and
capture-pane, with waits on what the screen shows.

The program runs under a small Python parent in the pane (`WRAPPER`) that writes the
program's pid and, when it ends, its exit code to files: tmux 3.3 marks a pane dead when
its pty closes, and sometimes never reports the exit status of a program killed by a
signal (`#{pane_dead_status}` and `#{pane_dead_signal}` both stay empty), so neither the
end nor the exit code is read from tmux. The program stays in the pane's foreground
process group, so it owns the terminal as it would in a shell.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WRAPPER = (
    "import os, signal, subprocess, sys\n"
    "pid_file, rc_file, *argv = sys.argv[1:]\n"
    "child = subprocess.Popen(argv)\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the program's to handle\n"
    "open(pid_file + '.tmp', 'w').write(str(child.pid))\n"
    "os.replace(pid_file + '.tmp', pid_file)\n"
    "code = child.wait()\n"
    "open(rc_file + '.tmp', 'w').write(str(code))\n"
    "os.replace(rc_file + '.tmp', rc_file)\n"
)
"""The pane's command: runs argv as a child, records its pid and exit code (minus the
signal number if a signal ended it, as `subprocess` reports it)."""


class Terminal:
    """One tmux session running one command at a fixed size."""

    def __init__(self, name: str, width: int = 80, height: int = 24) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        self.socket = f"openracer-{name}-{os.getpid()}"
        self.name = name
        self.width, self.height = width, height
        self._files = Path(tempfile.mkdtemp(prefix=f"openracer-tmux-{name}-"))
        self._pid_file = self._files / "pid"
        self._rc_file = self._files / "exit_code"

    def _tmux(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def start(self, argv: list[str], env: dict[str, str]) -> None:
        """Run `argv` under `WRAPPER` with `env` added."""
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        wrapped = [sys.executable, "-c", WRAPPER, str(self._pid_file), str(self._rc_file), *argv]
        command = f"cd {shlex.quote(str(ROOT))} && exec env {exports} {shlex.join(wrapped)}"
        # remain-on-exit is set in the same tmux call, before the pane exists, so the last
        # screen stays readable after the program ends; -f /dev/null keeps a user's
        # ~/.tmux.conf out of the tests.
        self._tmux(
            "-f",
            "/dev/null",
            "start-server",
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            command,
        )

    def pid(self, timeout_s: float = 30.0) -> int:
        """The program's pid (not the wrapper's)."""
        deadline = time.monotonic() + timeout_s
        while not self._pid_file.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"the program did not start within {timeout_s} s")
            time.sleep(0.05)
        return int(self._pid_file.read_text())

    def dead(self) -> bool:
        """The program has ended (its exit code is recorded)."""
        return self._rc_file.exists()

    def exit_status(self) -> int:
        """The program's exit code, minus the signal number if a signal ended it."""
        if not self.dead():
            raise AssertionError(f"no exit status: the program has not ended\n{self.screen()}")
        return int(self._rc_file.read_text())

    def keys(self, *keys: str, delay_s: float = 0.05) -> None:
        """Send tmux key names (Left, Enter, Space, ...) or literal text, one by one."""
        for key in keys:
            self._tmux("send-keys", "-t", self.name, key)
            time.sleep(delay_s)

    def text(self, value: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", value)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def wait_for(self, needle: str, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if needle in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not on screen within {timeout_s} s:\n{screen}")

    def wait_for_any(self, *needles: str, timeout_s: float = 60.0) -> str:
        """The screen, once any of `needles` is on it."""
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if any(n in screen for n in needles):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"none of {needles!r} on screen within {timeout_s} s:\n{screen}")

    def wait_dead(self, timeout_s: float = 45.0) -> None:
        """Wait until the program has ended."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.dead():
                return
            time.sleep(0.1)
        raise AssertionError(f"program still running after {timeout_s} s:\n{self.screen()}")

    def close(self) -> None:
        self._tmux("kill-server", check=False)
        shutil.rmtree(self._files, ignore_errors=True)
