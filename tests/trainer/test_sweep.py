"""`trainer.sweep`: the weakest level of each axis is the one furthest below its nominal."""

from __future__ import annotations

from trainer.sweep import weakest


def _row(axis, label, pct, nominal=False, lap=None):
    return {
        "axis": axis,
        "label": label,
        "nominal": nominal,
        "completion_pct": pct,
        "mean_lap_s": lap,
    }


def test_weakest_levels_are_sorted_by_their_drop_below_nominal():
    rows = [
        _row("lighting", "dark", 10.0),
        _row("lighting", "nominal", 100.0, nominal=True, lap=20.0),
        _row("battery", "empty", 100.0, lap=25.0),
        _row("battery", "nominal", 100.0, nominal=True, lap=20.0),
        _row("texture", "plain", 0.0),  # no nominal level: not ranked
    ]
    out = weakest(rows)
    assert [(w["axis"], w["label"], w["drop_pct"]) for w in out] == [
        ("lighting", "dark", 90.0),
        ("battery", "empty", 0.0),
    ]
