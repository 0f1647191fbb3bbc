"""The live training display: one panel refreshed during rollouts and after every iteration.

Shows the iteration, episodes, mean reward, mean progress, lap completion rate, env steps
per second, losses, entropy, KL, the last evaluation, the best checkpoint, time left, and
the CPU and memory of the trainer and its simulator processes. On a terminal it is a
`rich` live panel; when output is not a terminal (logs, CI) it prints one plain line per
iteration instead, and `quiet=True` prints nothing.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import psutil
from rich.console import Console
from rich.live import Live
from rich.table import Table


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


class ProgressDisplay:
    """Context manager; call `rollout(...)` during collection and `iteration(stats)` after."""

    def __init__(
        self, title: str, budget_s: float, *, quiet: bool = False, live: bool | None = None
    ):
        self.title = title
        self.budget_s = budget_s
        self.quiet = quiet
        self.console = Console(stderr=False)
        self.live_mode = (not quiet) and (sys.stdout.isatty() if live is None else live)
        self._live: Live | None = None
        self._proc = psutil.Process(os.getpid())
        self._proc.cpu_percent(None)
        self._children: dict[int, psutil.Process] = {}
        self.stats: dict[str, Any] = {}
        self.rollout_text = ""
        self._last_refresh = 0.0

    def __enter__(self) -> ProgressDisplay:
        if self.live_mode:
            self._live = Live(self._render(), console=self.console, refresh_per_second=2)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)
            self._live = None

    def message(self, text: str) -> None:
        """A line above the panel (or on its own when not live)."""
        if self.quiet:
            return
        self.console.print(text)

    def usage(self) -> tuple[float, float]:
        """CPU percent (trainer + simulator processes) and resident memory in MB."""
        cpu = self._proc.cpu_percent(None)
        mem = self._proc.memory_info().rss
        try:
            for child in self._proc.children(recursive=True):
                known = self._children.setdefault(child.pid, child)
                cpu += known.cpu_percent(None)
                mem += known.memory_info().rss
        except psutil.Error:
            pass
        return cpu, mem / 1e6

    def rollout(self, iteration: int, steps: int, episodes_done: int, episodes: int) -> None:
        """Progress inside a rollout (cheap: refreshed at most twice a second)."""
        now = time.time()
        if now - self._last_refresh < 0.5:
            return
        self._last_refresh = now
        self.rollout_text = (
            f"iteration {iteration}: collecting, {steps} steps, {episodes_done}/{episodes} episodes"
        )
        if self._live is not None:
            self._live.update(self._render())

    def iteration(self, stats: dict[str, Any]) -> None:
        """Record an iteration's statistics and refresh (or print a line)."""
        if "cpu_pct" in stats:
            cpu, mem = stats["cpu_pct"], stats["memory_mb"]
        else:
            cpu, mem = self.usage()
        self.stats = {**stats, "cpu_pct": cpu, "memory_mb": mem}
        self.rollout_text = ""
        if self._live is not None:
            self._live.update(self._render())
        elif not self.quiet:
            s = self.stats
            print(
                f"it {s.get('iteration')} ep {s.get('episodes')} "
                f"reward {_fmt(s.get('mean_reward'))} progress {_fmt(s.get('mean_progress'))}% "
                f"laps {_fmt(s.get('lap_rate'))} sps {_fmt(s.get('env_steps_per_s'))} "
                f"loss {_fmt(s.get('loss'))} ent {_fmt(s.get('entropy'))} "
                f"kl {_fmt(s.get('approx_kl'))} eval {_fmt(s.get('eval_progress'))}% "
                f"cpu {cpu:.0f}% mem {mem:.0f}MB",
                flush=True,
            )

    def _render(self) -> Table:
        s = self.stats
        table = Table(title=self.title, show_header=False, expand=False, min_width=60)
        table.add_column("what", style="bold")
        table.add_column("value")
        table.add_column("what", style="bold")
        table.add_column("value")
        elapsed = s.get("elapsed_s", 0.0) or 0.0
        rows = [
            ("iteration", _fmt(s.get("iteration")), "episodes", _fmt(s.get("episodes"))),
            ("env steps", _fmt(s.get("env_steps")), "steps/s", _fmt(s.get("env_steps_per_s"))),
            (
                "mean reward",
                _fmt(s.get("mean_reward")),
                "mean progress",
                f"{_fmt(s.get('mean_progress'))} %",
            ),
            ("lap rate", _fmt(s.get("lap_rate")), "entropy", _fmt(s.get("entropy"))),
            ("policy loss", _fmt(s.get("policy_loss")), "value loss", _fmt(s.get("value_loss"))),
            ("KL", _fmt(s.get("approx_kl")), "clip frac", _fmt(s.get("clip_fraction"))),
            (
                "eval progress",
                f"{_fmt(s.get('eval_progress'))} %",
                "eval laps",
                _fmt(s.get("eval_laps")),
            ),
            ("best ckpt", _fmt(s.get("best")), "eval lap s", _fmt(s.get("eval_lap_s"))),
            (
                "elapsed",
                f"{elapsed / 60:.1f} min",
                "left",
                f"{max(self.budget_s - elapsed, 0) / 60:.1f} min",
            ),
            ("CPU", f"{s.get('cpu_pct', 0):.0f} %", "memory", f"{s.get('memory_mb', 0):.0f} MB"),
        ]
        for row in rows:
            table.add_row(*row)
        if self.rollout_text:
            table.caption = self.rollout_text
        return table
