"""A stand-in for the console in the loop-process tests: runs `LoopProcess` over the
simulated board whose port is argv[1] and reports on stdout, one JSON object a line,
what crosses the boundary (`started` with the loop process's pid, `rows` of each figure
batch, `end`). It reads commands on stdin: `estop`, `close`. The test freezes or kills
this process to play a console that is busy or dies."""

from __future__ import annotations

import functools
import json
import sys
import threading
from typing import Any

from tests.vehicle.console.console_parts import open_rig_drive
from vehicle.console.loop_process import DriveRecipe, FigureBatch, LoopProcess

_lock = threading.Lock()


def say(**fields: Any) -> None:
    with _lock:
        print(json.dumps(fields), flush=True)


def main() -> None:
    port = sys.argv[1]

    def rows(batch: FigureBatch) -> None:
        say(kind="rows", rows=[[f, t, ms, ev] for f, t, ms, _miss, ev in batch.rows])

    handle = LoopProcess(
        DriveRecipe(functools.partial(open_rig_drive, port)),
        None,
        max_speed_fraction=0.6,
        on_figures=rows,
        on_log=lambda text, level: say(kind="log", text=text, level=level),
        on_end=lambda reason, ok, summary: say(kind="end", reason=reason, ok=ok),
    )
    handle.start()
    say(kind="started", loop_pid=handle.process.pid)
    for line in sys.stdin:
        if line.strip() == "estop":
            handle.emergency_stop()
        elif line.strip() == "close":
            handle.close()
            say(kind="closed")
            return


if __name__ == "__main__":
    main()
