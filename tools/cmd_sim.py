"""`racer sim view`: look at the simulator.

    racer sim view --track TRACK [--randomize PRESET] --out FILE.mp4 [--laps N]
    racer sim view --track TRACK --png FILE.png [--columns N] [--rgb]

`--out` records the privileged pure-pursuit car driving: the colour first-person camera
beside a top-down map with the car, its camera's field of view and its path, plus the
observation the model receives (after randomization and `vehicle.observation.preprocess`)
and live figures. `--png` writes a grid of observations, one row per randomization preset
(none, light, standard, heavy), each column a different episode and place on the lap.
Both may be given in one call. Files are written atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vehicle.files import atomic_path

PRESET_NAMES = ("none", "light", "standard", "heavy")
FPV_SIZE = (640, 480)
MAP_SIZE = 480


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="racer sim", description="Look at the simulator.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = sub.add_parser("view", help="MP4 of a pure-pursuit lap and/or a PNG grid of presets")
    v.add_argument("--track", default="reinvent_like", help="catalogue name or .npy path")
    v.add_argument("--randomize", default="none", choices=PRESET_NAMES, help="preset (none)")
    v.add_argument("--out", type=Path, help="write an MP4 video of the lap here")
    v.add_argument("--png", type=Path, help="write a grid of sample frames, one row per preset")
    v.add_argument("--laps", type=int, default=1, help="laps to record (1)")
    v.add_argument("--max-frames", type=int, default=0, help="stop the video after N frames")
    v.add_argument("--max-speed", type=float, default=1.5, help="expert top speed, m/s (1.5)")
    v.add_argument("--columns", type=int, default=6, help="frames per preset in --png (6)")
    v.add_argument("--rgb", action="store_true", help="--png shows colour observations")
    v.add_argument("--fisheye", action="store_true", help="use a 120-degree fisheye camera")
    v.add_argument("--seed", type=int, default=0, help="random seed (0)")
    v.add_argument("--json", action="store_true", help="print a JSON summary")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.out is None and args.png is None:
        print("racer sim view: error: give --out FILE.mp4 and/or --png FILE.png", file=sys.stderr)
        return 2
    if args.out is not None and args.out.suffix.lower() != ".mp4":
        print(f"racer sim view: error: --out {args.out} must end in .mp4", file=sys.stderr)
        return 2
    if args.png is not None and args.png.suffix.lower() != ".png":
        print(f"racer sim view: error: --png {args.png} must end in .png", file=sys.stderr)
        return 2
    if args.laps < 1 or args.columns < 1 or not 0.1 <= args.max_speed <= 4.0:
        print(
            "racer sim view: error: --laps and --columns must be >= 1, --max-speed 0.1-4",
            file=sys.stderr,
        )
        return 2
    summary: dict[str, Any] = {}
    if args.out is not None:
        summary["video"] = _video(args)
    if args.png is not None:
        summary["grid"] = _grid(args)
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def _env(args: argparse.Namespace, preset: str, observation: str = "gray") -> Any:
    import sim2real  # noqa: F401
    from sim2real.camera import CameraConfig
    from sim2real.env import RaceEnv
    from sim2real.world import WorldConfig

    world = (
        WorldConfig(camera=CameraConfig(model="fisheye", hfov_deg=120.0))
        if args.fisheye
        else WorldConfig()
    )
    space = {
        "action_space": {
            "steering_angle": {"low": -30.0, "high": 30.0},
            "speed": {"low": 0.3, "high": max(args.max_speed, 0.4)},
        },
        "action_space_type": "continuous",
    }
    return RaceEnv(
        track=args.track,
        action_space=space,
        randomize=preset,
        training=False,
        world=world,
        observation=observation,
        max_steps=100_000,
    )


class _TopDown:
    """The track from above, with the car and its path."""

    def __init__(self, world: Any) -> None:
        g = world.scene.ground_image
        img = world.scene.ground_image.image
        pts = np.vstack([world.track.inner, world.track.outer])
        px = g.to_px(pts)
        lo, hi = px.min(0) - 40, px.max(0) + 40
        lo = np.maximum(lo, 0).astype(int)
        hi = np.minimum(hi, [img.shape[1] - 1, img.shape[0] - 1]).astype(int)
        crop = img[lo[1] : hi[1], lo[0] : hi[0]]
        self.scale = MAP_SIZE / max(crop.shape[:2])
        self.base = cv2.resize(
            crop, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA
        )
        self.offset = lo
        self.ground = g
        self.path: list[tuple[int, int]] = []

    def px(self, xy: np.ndarray) -> np.ndarray:
        return (self.ground.to_px(np.atleast_2d(xy)) - self.offset) * self.scale

    def draw(self, world: Any) -> np.ndarray:
        x, y, th = world.pose
        p = self.px(np.array([x, y]))[0]
        self.path.append((int(round(p[0])), int(round(p[1]))))
        img = self.base.copy()
        if len(self.path) > 1:
            cv2.polylines(img, [np.array(self.path, np.int32)], False, (255, 80, 0), 2, cv2.LINE_AA)
        cam = world.camera
        half = math.radians(min(cam.hfov_deg, 170) / 2)
        reach = 1.5
        fov = [
            (x, y),
            (x + reach * math.cos(th + half), y + reach * math.sin(th + half)),
            (x + reach * math.cos(th - half), y + reach * math.sin(th - half)),
        ]
        poly = self.px(np.array(fov)).astype(np.int32)
        overlay = img.copy()
        cv2.fillPoly(overlay, [poly], (0, 200, 255))
        img = cv2.addWeighted(overlay, 0.25, img, 0.75, 0)
        body = [(0.17, 0.0), (-0.12, 0.08), (-0.12, -0.08)]
        c, s = math.cos(th), math.sin(th)
        car = np.array([(x + a * c - b * s, y + a * s + b * c) for a, b in body])
        cv2.fillPoly(img, [self.px(car).astype(np.int32)], (0, 0, 255), cv2.LINE_AA)
        return img


def _video(args: argparse.Namespace) -> dict[str, Any]:
    import imageio.v2 as imageio
    from rich.progress import Progress

    from sim2real.pure_pursuit import PurePursuit, PurePursuitConfig

    env = _env(args, args.randomize)
    obs, info = env.reset(seed=args.seed)
    world = env.world
    expert = PurePursuit(world, PurePursuitConfig(max_speed_mps=args.max_speed))
    top = _TopDown(world)
    frames: list[np.ndarray] = []
    laps, steps, status = 0, 0, info["episode_status"]
    limit = int(args.laps * world.lookup.length_m / 0.2 * env.base_world.rate_hz) + 200
    lap_times: list[float] = []
    lap_start = 0.0
    with Progress(transient=True) as progress:
        task = progress.add_task("recording", total=args.laps)
        if args.max_frames > 0:
            limit = min(limit, args.max_frames)
        while laps < args.laps and steps < limit:
            big = world.camera.resized(320, 240)
            fpv = cv2.resize(
                world.render(color=True, camera=big), FPV_SIZE, interpolation=cv2.INTER_LINEAR
            )
            frames.append(_compose(fpv, top.draw(world), obs, info, env, laps))
            obs, _, term, trunc, info = env.step(expert.action_for(env.action_def))
            steps += 1
            status = info["episode_status"]
            if status == "lap_complete":
                laps += 1
                t = info["params"]["sim_time"]
                lap_times.append(t - lap_start)
                lap_start = t
                progress.advance(task)
                if laps < args.laps:
                    # keep driving: next lap from here, as a continuous evaluation would
                    env.continue_lap()
            elif term or trunc:
                break
    with atomic_path(args.out, suffix=args.out.suffix) as tmp:
        imageio.mimwrite(
            str(tmp),
            [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames],
            fps=env.base_world.rate_hz,
            codec="libx264",
            quality=7,
            macro_block_size=8,
            format="FFMPEG",
        )
    env.close()
    print(
        f"wrote {args.out}: {len(frames)} frames, {laps} lap(s), ended {status}"
        + (f", lap times {', '.join(f'{t:.2f}s' for t in lap_times)}" if lap_times else ""),
        file=sys.stderr,
    )
    return {
        "path": str(args.out),
        "frames": len(frames),
        "laps": laps,
        "status": status,
        "lap_times_s": [round(t, 3) for t in lap_times],
    }


def _compose(
    fpv: np.ndarray, top: np.ndarray, obs: np.ndarray, info: dict, env: Any, laps: int
) -> np.ndarray:
    h = FPV_SIZE[1] + 240
    canvas = np.full((h, FPV_SIZE[0] + MAP_SIZE, 3), 24, np.uint8)
    canvas[: FPV_SIZE[1], : FPV_SIZE[0]] = fpv
    canvas[: top.shape[0], FPV_SIZE[0] : FPV_SIZE[0] + top.shape[1]] = top
    o = obs if obs.shape[2] == 3 else cv2.cvtColor(obs, cv2.COLOR_GRAY2BGR)
    o = cv2.resize(o, (320, 240), interpolation=cv2.INTER_NEAREST)
    canvas[FPV_SIZE[1] :, FPV_SIZE[0] : FPV_SIZE[0] + 320] = o
    p = info["params"]
    s = env.world.dynamics.state
    lines = [
        f"track {env.world.track.name}   randomize {_preset_name(env)}   step {p['steps']}",
        f"progress {p['progress']:6.2f} %   laps {laps}   status {info['episode_status']}",
        f"command  steer {p['steering_angle']:+6.1f} deg   speed {p['speed']:4.2f} m/s",
        f"actual   steer {math.degrees(s.steer_rad):+6.1f} deg   speed {s.speed_mps:4.2f} m/s",
        f"distance from centre {p['distance_from_center']:.3f} m   "
        f"all wheels on track {p['all_wheels_on_track']}",
        "left: camera (colour)   right: map, observation (model input)",
    ]
    for i, text in enumerate(lines):
        cv2.putText(
            canvas,
            text,
            (12, FPV_SIZE[1] + 30 + 34 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.55,
            (230, 230, 230),
            1,
            cv2.LINE_AA,
        )
    return canvas


def _preset_name(env: Any) -> str:
    from sim2real.randomization import PRESETS

    for name, cfg in PRESETS.items():
        if cfg == env.randomization:
            return name
    return "custom"


def _grid(args: argparse.Namespace) -> dict[str, Any]:
    from sim2real.pure_pursuit import PurePursuit, PurePursuitConfig

    cols = args.columns
    cell_w, cell_h = 320, 240
    label_w = 130
    grid = np.full((cell_h * len(PRESET_NAMES), label_w + cell_w * cols, 3), 255, np.uint8)
    for r, preset in enumerate(PRESET_NAMES):
        env = _env(args, preset, observation="rgb" if args.rgb else "gray")
        for c in range(cols):
            obs, info = env.reset(
                seed=args.seed + r if c == 0 else None,
                options={"start_progress": c / cols + 0.03},
            )
            expert = PurePursuit(env.world, PurePursuitConfig(max_speed_mps=args.max_speed))
            for _ in range(8):  # drive a moment so the speed is realistic
                obs, *_ = env.step(expert.action_for(env.action_def))
            img = obs if obs.shape[2] == 3 else cv2.cvtColor(obs, cv2.COLOR_GRAY2BGR)
            if obs.shape[2] == 3:
                img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            img = cv2.resize(img, (cell_w, cell_h), interpolation=cv2.INTER_NEAREST)
            y0, x0 = r * cell_h, label_w + c * cell_w
            grid[y0 : y0 + cell_h, x0 : x0 + cell_w] = img
            cv2.rectangle(grid, (x0, y0), (x0 + cell_w - 1, y0 + cell_h - 1), (255, 255, 255), 1)
        cv2.putText(
            grid,
            preset,
            (10, r * cell_h + cell_h // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.8,
            (0, 0, 0),
            2,
            cv2.LINE_AA,
        )
        env.close()

    with atomic_path(args.png, suffix=args.png.suffix) as tmp:
        if not cv2.imwrite(str(tmp), grid):
            raise OSError(f"{args.png}: OpenCV could not write the PNG")
    print(f"wrote {args.png}: {len(PRESET_NAMES)} presets x {cols} frames", file=sys.stderr)
    return {"path": str(args.png), "rows": list(PRESET_NAMES), "columns": cols}
