"""Running the sim2real robustness map: one policy through every `sim2real.conditions`
condition, each a time trial of `laps` laps from the start line with the same seeds, so a
user sees where the model breaks before the car does.

Every condition is its own `WorldConfig` handed to `trainer.evaluate.evaluate`, so lap
semantics are exactly those of `racer eval`. The result is the summary `sweep.json`
holds; `tools/sweep.py` draws the heatmaps and the report around it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sim2real.conditions import AXES, Condition, default_conditions


def run_sweep(
    policy_fn: Callable[..., Any],
    metadata: Any,
    track: Any,
    laps: int,
    *,
    conditions: list[Condition] | None = None,
    seed: int = 0,
    parallel: int = 3,
    max_episode_steps: int = 3000,
    progress: Callable[[Condition, Any], None] | None = None,
) -> dict[str, Any]:
    """Evaluate `policy_fn` in every condition (default: `default_conditions()`); returns
    the summary: track, laps per cell, seed, limit lap time, one row per condition and the
    weakest level of each axis. `progress(condition, None)` is called as a condition
    starts and `progress(condition, report)` with its `EvalReport` when it is done."""
    from trainer.evaluate import evaluate

    conditions = conditions or default_conditions()
    results = []
    limit = None
    for condition in conditions:
        if progress is not None:
            progress(condition, None)
        report = evaluate(
            policy_fn,
            track,
            laps,
            "none",
            metadata=metadata,
            seed=seed,
            parallel=min(parallel, laps),
            max_episode_steps=max_episode_steps,
            world=condition.world(),
        )
        limit = report.limit_lap_time_s
        results.append(
            {
                "axis": condition.axis,
                "label": condition.label,
                "nominal": condition.nominal,
                "laps": laps,
                "laps_completed": report.laps_completed,
                "completion_pct": round(float(report.completion_pct), 2),
                "best_lap_s": _finite(report.best_lap_s),
                "mean_lap_s": _finite(report.mean_lap_s),
                "off_track": int(sum(lap.off_track for lap in report.laps)),
                "statuses": [lap.status for lap in report.laps],
            }
        )
        if progress is not None:
            progress(condition, report)
    return {
        "track": str(getattr(track, "name", track)),
        "laps_per_cell": laps,
        "seed": seed,
        "limit_lap_s": _finite(limit),
        "cells": results,
        "weakest": weakest(results),
    }


def _finite(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 3)


def weakest(results: list[dict]) -> list[dict]:
    """The cells where completion drops most below the nominal cell of the same axis."""
    out = []
    for axis in AXES:
        row = [r for r in results if r["axis"] == axis]
        nominal = next((r for r in row if r["nominal"]), None)
        if not row or nominal is None:
            continue
        worst = min(row, key=lambda r: (r["completion_pct"], -(r["mean_lap_s"] or 0)))
        out.append(
            {
                "axis": axis,
                "label": worst["label"],
                "completion_pct": worst["completion_pct"],
                "drop_pct": round(nominal["completion_pct"] - worst["completion_pct"], 2),
            }
        )
    return sorted(out, key=lambda r: -r["drop_pct"])
