"""Small, realistic DeepRacer-format log folders for the analysis tests.

A stadium-shaped track (DeepRacer route array, (N, 6), counter-clockwise, loop) and a
simple driver that follows the centre line with a lateral random walk: it starts sloppy
and gets steadier and faster over iterations, so curves rise, some episodes end
`off_track` and later ones `lap_complete`. Rows follow the simapp's SIM_TRACE_LOG columns
exactly (compat reference section 2.1): a `prepare` row first, 15 Hz `tstamp`, the
round-robin start advancing 5 % per episode, `True`/`False` literals.

Writers: `write_drfc(root)` (deepracer-for-cloud single worker = openracer run layout),
`write_console(root)` (old console export with a robomaker log), `write_multi(root)`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

HEADER_19 = (
    "episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,progress,"
    "closest_waypoint,track_len,tstamp,episode_status,pause_duration,obstacle_crash_counter,"
    "wall_clock"
)
HEADER_17 = HEADER_19.rsplit(",", 2)[0]
ACTIONS = [(s, v) for s in (-30.0, -15.0, 0.0, 15.0, 30.0) for v in (0.4, 0.8)]
HYPER = {
    "batch_size": 64,
    "beta_entropy": 0.01,
    "discount_factor": 0.999,
    "e_greedy_value": 0.05,
    "epsilon_steps": 10000,
    "exploration_type": "categorical",
    "loss_type": "huber",
    "lr": 0.0003,
    "num_episodes_between_training": 10,
    "num_epochs": 10,
    "stack_size": 1,
    "term_cond_avg_score": 350.0,
    "term_cond_max_episodes": 1000,
}


def stadium_track(n: int = 80, straight_m: float = 4.0, radius_m: float = 1.5, width_m=0.76):
    """A loop route array (n + 1, 6): centre, inner, outer; last row repeats the first."""
    perimeter = 2 * straight_m + 2 * math.pi * radius_m
    pts = []
    for k in range(n):
        s = perimeter * k / n
        if s < straight_m:  # bottom straight, heading +x
            c, h = (s - straight_m / 2, -radius_m), 0.0
        elif s < straight_m + math.pi * radius_m:
            a = (s - straight_m) / radius_m - math.pi / 2
            c, h = (
                (straight_m / 2 + radius_m * math.cos(a), radius_m * math.sin(a)),
                a + math.pi / 2,
            )
        elif s < 2 * straight_m + math.pi * radius_m:
            d = s - straight_m - math.pi * radius_m
            c, h = (straight_m / 2 - d, radius_m), math.pi
        else:
            a = (s - 2 * straight_m - math.pi * radius_m) / radius_m + math.pi / 2
            c, h = (
                (-straight_m / 2 + radius_m * math.cos(a), radius_m * math.sin(a)),
                a + math.pi / 2,
            )
        left = (-math.sin(h), math.cos(h))  # inside of a CCW loop
        half = width_m / 2
        pts.append(
            [
                c[0],
                c[1],
                c[0] + half * left[0],
                c[1] + half * left[1],
                c[0] - half * left[0],
                c[1] - half * left[1],
            ]
        )
    pts.append(pts[0])
    return np.array(pts, dtype=np.float64)


def _drive(route, rng, skill: float, start_frac: float, t0: float, max_steps=400):
    """One episode as simtrace rows (list of dicts) for a driver of `skill` in [0, 1]."""
    center = route[:, :2]
    seg = np.diff(center, axis=0)
    seglen = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(seglen)])
    length = float(cum[-1])
    width = float(np.hypot(*(route[0, 2:4] - route[0, 4:6])))

    def at(s):
        s = s % length
        i = int(np.searchsorted(cum, s, side="right") - 1)
        i = min(i, len(seg) - 1)
        f = (s - cum[i]) / seglen[i]
        p = center[i] + f * seg[i]
        h = math.atan2(seg[i, 1], seg[i, 0])
        return p, h, i

    s0 = start_frac * length
    s = s0 + 0.14
    offset = 0.0
    rows = []
    noise = 0.06 * (1.2 - skill)
    fast = skill > 0.5
    for step in range(1, max_steps + 1):
        p, h, i = at(s)
        left = np.array([-math.sin(h), math.cos(h)])
        pos = p + offset * left
        progress = min(100.0, 100.0 * (s - s0) / length)
        steer_cmd = float(np.clip(-offset * 60.0 + rng.normal(0, 8), -30, 30))
        idx = int(np.argmin([abs(a[0] - steer_cmd) for a in ACTIONS])) // 2 * 2
        idx += 1 if fast and rng.random() < 0.7 else 0
        steer, speed = ACTIONS[idx]
        off = abs(offset) > width / 2
        done = off or progress >= 100.0 or step == max_steps
        status = "prepare" if step == 1 else "in_progress"
        if progress >= 100.0:
            status = "lap_complete"
        elif off:
            status = "off_track"
        reward = 0.0 if step == 1 else (1.0 if abs(offset) < 0.1 * width else 0.5) * (not off)
        rows.append(
            {
                "steps": float(step),
                "X": pos[0],
                "Y": pos[1],
                "yaw": math.degrees(h),
                "steer": steer,
                "throttle": speed,
                "action": idx,
                "reward": reward if not off else 0.001,
                "done": done,
                "on_track": not off,
                "progress": progress,
                "wp": (i + 1) % (len(center) - 1),
                "len": length,
                "t": t0 + step / 15.0,
                "status": status,
            }
        )
        if done:
            break
        s += speed / 15.0
        offset += rng.normal(0, noise) - 0.05 * offset
    return rows


def _format(episode: int, r: dict, width: int, log_line: bool = False) -> str:
    fields = [
        str(episode),
        str(int(r["steps"])) if log_line else f"{r['steps']:.1f}",
        f"{r['X']:.4f}",
        f"{r['Y']:.4f}",
        f"{r['yaw']:.4f}",
        f"{r['steer']:.2f}",
        f"{r['throttle']:.2f}",
        str(r["action"]),
        f"{r['reward']:.4f}",
        str(bool(r["done"])),
        str(bool(r["on_track"])),
        f"{r['progress']:.4f}",
        str(r["wp"]),
        f"{r['len']:.2f}",
        f"{r['t']:.3f}",
        r["status"],
        "0.00",
    ]
    if width == 19:
        fields += ["0", f"{1763780000.0 + r['t']:.4f}"]
    return ",".join(fields)


def _episodes(route, iterations, per_iter, seed, eval_eps=0):
    rng = np.random.default_rng(seed)
    out, t, ep = [], 100.0, 0
    for it in range(iterations):
        skill = min(1.0, 0.15 + it / max(1, iterations - 1))
        for _ in range(per_iter):
            rows = _drive(route, rng, skill, (ep * 0.05) % 1.0, t)
            t = rows[-1]["t"] + 1.0
            out.append((it, ep, rows))
            ep += 1
    evals = []
    for e in range(eval_eps):
        rows = _drive(route, rng, 1.0, 0.0, t)
        t = rows[-1]["t"] + 1.0
        evals.append((e, rows))
    return out, evals


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _metadata() -> dict:
    return {
        "action_space": [
            {"steering_angle": s, "speed": v, "index": i} for i, (s, v) in enumerate(ACTIONS)
        ],
        "sensor": ["FRONT_FACING_CAMERA"],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo",
        "action_space_type": "discrete",
        "version": "5",
    }


def _metrics(episodes, evals) -> dict:
    metrics = []
    for it, ep, rows in episodes:
        last = rows[-1]
        metrics.append(
            {
                "reward_score": int(sum(r["reward"] for r in rows)),
                "metric_time": int(last["t"] * 1000),
                "start_time": int(rows[0]["t"] * 1000),
                "elapsed_time_in_milliseconds": int((last["t"] - rows[0]["t"]) * 1000),
                "episode": ep + 1,
                "trial": ep % HYPER["num_episodes_between_training"] + 1,
                "phase": "training",
                "completion_percentage": int(last["progress"]),
                "episode_status": "Lap complete"
                if last["status"] == "lap_complete"
                else "Off track",
            }
        )
        if (ep + 1) % HYPER["num_episodes_between_training"] == 0:
            for trial in range(1, 3):
                metrics.append(
                    {
                        "reward_score": 0,
                        "metric_time": int(last["t"] * 1000),
                        "start_time": int(last["t"] * 1000),
                        "elapsed_time_in_milliseconds": 20000,
                        "episode": ep + 1,
                        "trial": trial,
                        "phase": "evaluation",
                        "completion_percentage": min(100, 20 * it + 30),
                        "episode_status": "Off track",
                    }
                )
    return {"metrics": metrics, "version": "2", "best_model_metric": "progress"}


def write_drfc(root: Path, iterations: int = 4, seed: int = 0, with_eval: bool = True) -> Path:
    """A deepracer-for-cloud single-worker model folder (the openracer run layout)."""
    route = stadium_track()
    per = HYPER["num_episodes_between_training"]
    episodes, evals = _episodes(route, iterations, per, seed, eval_eps=3 if with_eval else 0)
    for it in range(iterations):
        lines = [HEADER_19] + [
            _format(ep, r, 19) for i, ep, rows in episodes if i == it for r in rows
        ]
        _write(root / "training-simtrace" / f"{it}-iteration.csv", "\n".join(lines) + "\n")
    if evals:
        lines = [HEADER_19] + [_format(e, r, 19) for e, rows in evals for r in rows]
        _write(
            root / "evaluation-20261122031500" / "evaluation-simtrace" / "0-iteration.csv",
            "\n".join(lines) + "\n",
        )
    _write(root / "metrics" / "TrainingMetrics.json", json.dumps(_metrics(episodes, evals)))
    _write(root / "model" / "model_metadata.json", json.dumps(_metadata(), indent=2))
    _write(root / "ip" / "hyperparameters.json", json.dumps(HYPER, indent=2))
    _write(root / "reward_function.py", "def reward_function(params):\n    return 1.0\n")
    np.save(root.parent / "stadium.npy", route)
    return root


def write_multi(root: Path, workers: int = 2, iterations: int = 3, seed: int = 1) -> Path:
    """A deepracer-for-cloud multi-worker folder (`<w>/training-simtrace/`)."""
    route = stadium_track()
    for w in range(workers):
        episodes, _ = _episodes(route, iterations, 5, seed + w)
        for it in range(iterations):
            lines = [HEADER_17] + [
                _format(ep, r, 17) for i, ep, rows in episodes if i == it for r in rows
            ]
            _write(root / str(w) / "training-simtrace" / f"{it}-iteration.csv", "\n".join(lines))
    _write(root / "model" / "model_metadata.json", json.dumps(_metadata()))
    _write(root / "ip" / "hyperparameters.json", json.dumps(HYPER))
    return root


def write_console(root: Path, iterations: int = 3, seed: int = 2) -> Path:
    """An old-style AWS console export: sim-trace CSVs plus a robomaker log."""
    route = stadium_track()
    per = HYPER["num_episodes_between_training"]
    episodes, evals = _episodes(route, iterations, per, seed, eval_eps=2)
    base = root / "sim-trace" / "training" / "training-simtrace"
    for it in range(iterations):
        lines = [HEADER_17] + [
            _format(ep, r, 17) for i, ep, rows in episodes if i == it for r in rows
        ]
        _write(base / f"{it}-iteration.csv", "\n".join(lines) + "\n")
    lines = [HEADER_17] + [_format(e, r, 17) for e, rows in evals for r in rows]
    _write(
        root
        / "sim-trace"
        / "evaluation"
        / "20261122031500-abcdef"
        / "evaluation-simtrace"
        / "0-iteration.csv",
        "\n".join(lines) + "\n",
    )
    log = [
        " * /WORLD_NAME: stadium",
        "Using the following hyper-parameters",
        json.dumps(HYPER, indent=2),
        "Action space from file: " + json.dumps(_metadata()["action_space"]),
        "Sensor list ['FRONT_FACING_CAMERA'], network DEEP_CONVOLUTIONAL_NETWORK_SHALLOW, "
        "simapp_version 5.0",
    ]
    log += [
        f"SIM_TRACE_LOG:{_format(ep, r, 17, log_line=True)}\t"
        for _, ep, rows in episodes
        for r in rows
    ]
    _write(root / "logs" / "training" / "training-20261122-robomaker.log", "\n".join(log) + "\n")
    _write(root / "model" / "model_metadata.json", json.dumps(_metadata()))
    _write(root / "ip" / "hyperparameters.json", json.dumps(HYPER))
    np.save(root.parent / "stadium.npy", route)
    return root


def write_droa(root: Path, iterations: int = 2, seed: int = 3) -> Path:
    """A new-style console / DeepRacer-on-AWS export:
    `sim-trace/training/<ts>-<name>/training-simtrace/*.csv` and
    `sim-trace/evaluation/<ts>-<name>/evaluation-simtrace/0-iteration.csv`."""
    route = stadium_track()
    per = HYPER["num_episodes_between_training"]
    episodes, evals = _episodes(route, iterations, per, seed, eval_eps=2)
    base = (
        root / "sim-trace" / "training" / "2026-11-22T03-00-00.000Z-my-model" / "training-simtrace"
    )
    for it in range(iterations):
        lines = [HEADER_19] + [
            _format(ep, r, 19) for i, ep, rows in episodes if i == it for r in rows
        ]
        _write(base / f"{it}-iteration.csv", "\n".join(lines) + "\n")
    lines = [HEADER_19] + [_format(e, r, 19) for e, rows in evals for r in rows]
    _write(
        root
        / "sim-trace"
        / "evaluation"
        / "20261122033000-my-eval"
        / "evaluation-simtrace"
        / "0-iteration.csv",
        "\n".join(lines) + "\n",
    )
    _write(root / "model" / "model_metadata.json", json.dumps(_metadata()))
    _write(root / "ip" / "hyperparameters.json", json.dumps(HYPER))
    return root
