"""`racer analyze` on a training run: figures, key numbers and the HTML report.

`analyze_run` takes a loaded `RunLog` (any supported layout), writes the PNGs and
`report.html` into the output folder, and returns the key figures as a dict (what
`--json` prints and `summary.json` keeps).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from tools.analysis import plots
from tools.analysis.episodes import best_laps, episode_table, iteration_table, steps_of
from tools.analysis.errors import AnalysisWarning
from tools.analysis.logs import RunLog
from tools.analysis.outline import find_outline, with_racing_line
from tools.analysis.report import Report
from vehicle.files import atomic_write_json


def _num(v: Any) -> Any:
    """JSON-safe number: NaN -> None, numpy -> python."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    if math.isnan(f):
        return None
    return int(f) if float(f).is_integer() and not isinstance(v, float) else round(f, 4)


def summarize(run: RunLog) -> dict[str, Any]:
    """Key figures of a run without drawing anything (used by analyze and compare)."""
    source = {
        "drfc": "deepracer-for-cloud model folder (single worker)",
        "drfc-multi": "deepracer-for-cloud model folder (multiple workers)",
        "console": "AWS DeepRacer console export",
        "droa": "DeepRacer-on-AWS / new console export",
        "upload": "model folder with evaluations only",
    }[run.layout]
    if run.layout == "drfc" and run.config and "schema_version" in run.config:
        source = "openracer run (DRfC single-worker layout)"
    out: dict[str, Any] = {"run": str(run.root), "layout": run.layout, "source": source}
    if run.training is not None:
        eps = episode_table(run.training)
        iters = iteration_table(eps)
        last = iters.iloc[-1]
        out.update(
            iterations=int(len(iters)),
            training_episodes=int(len(eps)),
            training_steps=int(len(run.training)),
            simulated_s=_num(eps["time_s"].sum()),
            last_iteration_reward_mean=_num(last["reward_mean"]),
            last_iteration_progress_mean=_num(last["progress_mean"]),
            last_iteration_completion_rate=_num(last["completion_rate"]),
            best_training_lap_s=_num(eps["lap_time_s"].min()),
        )
    if run.evaluation is not None:
        ev = episode_table(run.evaluation)
        out.update(
            evaluations=int(ev["stream"].nunique()),
            evaluation_episodes=int(len(ev)),
            evaluation_completion_rate=_num(ev["complete"].mean()),
            evaluation_progress_mean=_num(ev["progress"].mean()),
            best_evaluation_lap_s=_num(ev["lap_time_s"].min()),
            mean_evaluation_lap_s=_num(ev["lap_time_s"].mean()),
        )
    return out


def analyze_run(run: RunLog, out_dir: Path, track: str | None = None) -> dict[str, Any]:
    """Write every figure and `report.html` for `run` into `out_dir`; return key figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(run)
    outline, how = find_outline(track, run.track_hint, run.track_length_m)
    if outline is not None:
        outline = with_racing_line(outline)
        summary["track"] = outline.name
        summary["limit_lap_s"] = _num(outline.limit_lap_s)
    report = Report(f"openracer analysis: {run.name}", f"{run.root} ({run.layout} layout)")
    notes = list(run.notes)
    if outline is None:
        notes.append(how)
        warnings.warn(f"{run.root}: {how}", AnalysisWarning, stacklevel=1)
    else:
        notes.append(f"track {outline.name}: {how}")

    if run.training is not None:
        eps = episode_table(run.training)
        iters = iteration_table(eps)
        sec = report.section("Training")
        sec.figure(
            plots.training_curves(iters, out_dir / "training_curves.png", f"{run.name}: training"),
            "Mean reward (band: ±1 std), mean and best progress, and laps completed, per iteration.",
        )
        rounds = (run.imitation or {}).get("dagger") or []
        if rounds:
            sec.figure(
                plots.dagger_rounds(rounds, out_dir / "dagger_rounds.png"),
                "Before PPO: laps completed in each DAgger round's episodes (mostly the "
                "student driving), and their mean lap time.",
            )
        sec.figure(
            plots.status_breakdown(iters, out_dir / "episode_status.png"),
            "Final status of every training episode, per iteration.",
        )
        if run.metrics is not None and {"episode", "phase", "completion_percentage"} <= set(
            run.metrics.columns
        ):
            per = int((run.hyperparameters or {}).get("num_episodes_between_training", 20))
            sec.figure(
                plots.metrics_curves(run.metrics, per, out_dir / "metrics_completion.png"),
                "From metrics/TrainingMetrics.json: training and evaluation completion, as the "
                "DeepRacer console graphs it.",
            )
        sec.table(
            ["iteration", "episodes", "reward mean", "progress mean", "completed", "best lap s"],
            [
                [
                    int(r.iteration),
                    int(r.episodes),
                    float(r.reward_mean),
                    float(r.progress_mean),
                    f"{100 * r.completion_rate:.0f} %",
                    float(r.best_lap_s),
                ]
                for r in iters.itertuples()
            ],
        )
        sec = report.section("Where the car drives")
        for value, label, cmap, caption in (
            ("speed", "speed (m/s)", "plasma", "speed"),
            ("reward", "reward", "viridis", "reward"),
            ("action", "action index", "tab10", "action"),
        ):
            if value == "action" and not (run.training["action"] >= 0).any():
                continue
            sec.figure(
                plots.track_heatmap(
                    run.training, outline, value, out_dir / f"heatmap_{value}.png", label, cmap
                ),
                f"Every training position, coloured by {caption}.",
            )
        report.section("Actions").figure(
            plots.action_histograms(run.training, run.metadata, out_dir / "actions.png"),
            "Share of each action, and the steering and speed distributions (training).",
        )
        laps = []
        best = best_laps(eps, 3)
        if len(best) == 0:
            best = eps.sort_values("progress", ascending=False).head(3)
        for _, row in best.iterrows():
            label = f"iteration {int(row.iteration)} episode {int(row.episode)}: " + (
                f"{row.lap_time_s:.2f} s"
                if row.complete
                else f"{row.progress:.0f} % ({row.status})"
            )
            laps.append((label, steps_of(run.training, row)))
        sec = report.section("Best training laps")
        sec.figure(
            plots.laps_over_track(
                laps, outline, out_dir / "best_laps.png", "Best training episodes"
            ),
            "The fastest completed laps (or the furthest episodes) over the track"
            + (
                " and its racing line"
                if outline is not None and outline.racing_line is not None
                else ""
            )
            + ", coloured by speed.",
        )

    if run.evaluation is not None:
        ev = episode_table(run.evaluation)
        sec = report.section("Evaluation")
        limit = outline.limit_lap_s if outline is not None else None
        sec.figure(
            plots.eval_lap_times(ev, limit, out_dir / "evaluation_laps.png"),
            "Evaluation lap times"
            + (f" against the racing line's limit of {limit:.2f} s" if limit else "")
            + "; red bars are laps not completed, labelled with their progress.",
        )
        sec.table(
            [
                "evaluation",
                "episode",
                "progress %",
                "status",
                "lap time s",
                "steps",
                "off-track steps",
            ],
            [
                [
                    r.stream,
                    int(r.episode),
                    float(r.progress),
                    r.status,
                    float(r.lap_time_s),
                    int(r.steps),
                    int(r.off_track_steps),
                ]
                for r in ev.itertuples()
            ],
        )
        best_ev = best_laps(ev, 3)
        if len(best_ev):
            laps = [
                (
                    f"evaluation {r.stream} #{int(r.episode)}: {r.lap_time_s:.2f} s",
                    steps_of(run.evaluation, r),
                )
                for _, r in best_ev.iterrows()
            ]
            sec.figure(
                plots.laps_over_track(
                    laps, outline, out_dir / "best_evaluation_laps.png", "Best evaluation laps"
                ),
                "The fastest evaluation laps over the track, coloured by speed.",
            )
    _model_section(report, run)
    if notes:
        sec = report.section("Notes")
        for n in notes:
            sec.note(n)
    report.figures = [(k.replace("_", " "), v) for k, v in summary.items() if k not in ("run",)]
    path = report.write(out_dir)
    summary["report"] = str(path)
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def _model_section(report: Report, run: RunLog) -> None:
    if not (run.metadata or run.hyperparameters or run.reward_source):
        return
    sec = report.section("Model")
    md = run.metadata or {}
    space = md.get("action_space")
    if isinstance(space, list):
        sec.text(
            f"Discrete action space, {len(space)} actions; network "
            f"{md.get('neural_network', '?')}, algorithm {md.get('training_algorithm', 'clipped_ppo')}."
        )
        sec.table(
            ["index", "steering (deg)", "speed (m/s)"],
            [
                [i, float(a.get("steering_angle", 0)), float(a.get("speed", 0))]
                for i, a in enumerate(space)
            ],
        )
    elif isinstance(space, dict):
        sec.text(
            "Continuous action space: steering "
            f"{space['steering_angle']['low']}..{space['steering_angle']['high']} deg, speed "
            f"{space['speed']['low']}..{space['speed']['high']} m/s."
        )
    if run.hyperparameters:
        sec.table(
            ["hyperparameter", "value"], [[k, v] for k, v in sorted(run.hyperparameters.items())]
        )
    if run.reward_source:
        sec.text("Reward function:")
        sec.code(run.reward_source)
