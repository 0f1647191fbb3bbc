"""A real terminal for end-to-end TUI tests: tmux on a private socket, send-keys and
capture-pane, with waits on what the screen shows."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Terminal:
    """One tmux session running one command at a fixed size."""

    def __init__(self, name: str, width: int = 80, height: int = 24) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        self.socket = f"openracer-{name}-{os.getpid()}"
        self.name = name
        self.width, self.height = width, height

    def _tmux(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def start(self, argv: list[str], env: dict[str, str]) -> None:
        """Run `argv` (exec'd, so the pane's pid is the program's) with `env` added."""
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = f"cd {shlex.quote(str(ROOT))} && exec env {exports} {shlex.join(argv)}"
        # remain-on-exit is set in the same tmux call, before the pane exists, so a program
        # that ends at once still leaves its pane (and exit status) behind; -f /dev/null
        # keeps a user's ~/.tmux.conf out of the tests.
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

    def pid(self) -> int:
        return int(self._tmux("display-message", "-p", "-t", self.name, "#{pane_pid}").strip())

    def dead(self) -> bool:
        return self._tmux("display-message", "-p", "-t", self.name, "#{pane_dead}").strip() == "1"

    def _dead_status(self) -> int | None:
        """The exit code, minus the signal number if a signal ended it, or None while tmux
        has not collected it. tmux marks a pane dead when its pty closes and records the
        status later, when it handles SIGCHLD, so the two can be seen apart."""
        out = self._tmux(
            "display-message", "-p", "-t", self.name, "#{pane_dead_status}/#{pane_dead_signal}"
        ).strip()
        status, _, sig = out.partition("/")
        if status:
            return int(status)
        return -int(sig) if sig else None

    def exit_status(self) -> int:
        """The program's exit code (minus the signal number if a signal ended it), once
        the program has ended and tmux has collected it (see `wait_dead`)."""
        status = self._dead_status()
        if status is None:
            raise AssertionError(f"no exit status: the program has not ended\n{self.screen()}")
        return status

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

    def wait_dead(self, timeout_s: float = 45.0) -> None:
        """Wait until the program has ended and tmux has collected its exit status."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.dead() and self._dead_status() is not None:
                return
            time.sleep(0.1)
        raise AssertionError(f"program still running after {timeout_s} s:\n{self.screen()}")

    def close(self) -> None:
        self._tmux("kill-server", check=False)
