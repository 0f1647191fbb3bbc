"""`racer tracks`: list, show, inspect, import and generate tracks.

    racer tracks list [--json]
    racer tracks info TRACK [--json] [--max-speed MPS] [--max-lateral-accel MPS2] ...
    racer tracks show TRACK --png FILE [--racing-line] [--size PX]
    racer tracks import FILE.npy --name NAME [--force]
    racer tracks export TRACK --out FILE.npy
    racer tracks remove NAME
    racer tracks generate --seed N --out FILE.npy [--png FILE] [--width M] ...

TRACK is a catalogue name (built-in or imported) or a path to a DeepRacer `.npy` route
file everywhere. Bad track files give a one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from tracks import catalogue
from tracks.errors import TrackError
from tracks.geometry import TrackGeometry
from tracks.racing_line import RacingLineConfig, racing_line
from tracks.track import Track


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer tracks",
        description="List, show, inspect, import and generate tracks. TRACK is a catalogue "
        "name or a path to a DeepRacer .npy route file.",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    ls = sub.add_parser("list", help="built-in and user tracks with length, width, direction")
    ls.add_argument("--json", action="store_true", help="print a JSON list")

    defaults = RacingLineConfig()
    info = sub.add_parser("info", help="figures of one track, including the lap-time limit")
    info.add_argument("track", metavar="TRACK")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument(
        "--max-speed",
        type=float,
        default=defaults.max_speed_mps,
        metavar="MPS",
        help=f"top speed for the lap-time limit, m/s (default {defaults.max_speed_mps})",
    )
    info.add_argument(
        "--max-lateral-accel",
        type=float,
        default=defaults.max_lateral_accel_mps2,
        metavar="MPS2",
        help=f"grip limit, m/s^2 (default {defaults.max_lateral_accel_mps2})",
    )
    info.add_argument(
        "--max-accel",
        type=float,
        default=defaults.max_accel_mps2,
        metavar="MPS2",
        help=f"acceleration limit, m/s^2 (default {defaults.max_accel_mps2})",
    )
    info.add_argument(
        "--max-brake",
        type=float,
        default=defaults.max_brake_mps2,
        metavar="MPS2",
        help=f"braking limit, m/s^2 (default {defaults.max_brake_mps2})",
    )

    show = sub.add_parser("show", help="write a top-down PNG picture of a track")
    show.add_argument("track", metavar="TRACK")
    show.add_argument("--png", required=True, metavar="FILE", help="output .png file")
    show.add_argument(
        "--racing-line", action="store_true", help="draw the racing line coloured by speed"
    )
    show.add_argument("--size", type=int, default=1200, metavar="PX", help="longer side, pixels")

    imp = sub.add_parser("import", help="validate a .npy route file and add it to your catalogue")
    imp.add_argument("file", metavar="FILE.npy")
    imp.add_argument("--name", required=True, help="catalogue name for the track")
    imp.add_argument("--force", action="store_true", help="replace a user track of that name")
    imp.add_argument("--json", action="store_true", help="print JSON")

    exp = sub.add_parser("export", help="write any track as a DeepRacer .npy route file")
    exp.add_argument("track", metavar="TRACK")
    exp.add_argument("--out", required=True, metavar="FILE.npy")

    rm = sub.add_parser("remove", help="delete a track from your user catalogue")
    rm.add_argument("name", metavar="NAME")

    gen = sub.add_parser("generate", help="write a procedurally generated track (.npy)")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", required=True, metavar="FILE.npy")
    gen.add_argument("--width", type=float, default=0.76, metavar="M", help="road width, m")
    gen.add_argument("--min-length", type=float, default=14.0, metavar="M")
    gen.add_argument("--max-length", type=float, default=30.0, metavar="M")
    gen.add_argument("--clockwise", action="store_true")
    gen.add_argument("--png", metavar="FILE", help="also write a picture")
    gen.add_argument("--json", action="store_true", help="print JSON")
    return p


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    return {
        "list": _list,
        "info": _info,
        "show": _show,
        "import": _import,
        "export": _export,
        "remove": _remove,
        "generate": _generate,
    }[args.action](args)


def _summary(track: Track) -> dict:
    widths = track.widths_m
    return {
        "name": track.name,
        "length_m": round(track.length_m, 6),
        "width_m": round(float(widths.mean()), 4),
        "direction": track.direction,
        "closed": track.closed,
    }


def _list(args) -> int:
    rows = []
    for name in catalogue.BUILTIN:
        row = _summary(catalogue.builtin(name))
        row.update(source="built-in", description=catalogue.BUILTIN[name].description)
        rows.append(row)
    for name in catalogue.user_names():
        if name in catalogue.BUILTIN:
            continue
        path = catalogue.user_dir() / f"{name}.npy"
        try:
            row = _summary(catalogue.resolve(name))
            row.update(source=str(path), description="")
        except TrackError as exc:
            row = {"name": name, "source": str(path), "error": str(exc)}
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<18} {'length':>8} {'width':>7} {'dir':<5} source")
    for r in rows:
        if "error" in r:
            print(
                f"{r['name']:<18} {'-':>8} {'-':>7} {'-':<5} {r['source']}  INVALID: {r['error']}"
            )
            continue
        print(
            f"{r['name']:<18} {r['length_m']:>7.2f}m {r['width_m']:>6.2f}m {r['direction']:<5} "
            f"{r['source']}"
        )
    print(f"\nuser tracks directory: {catalogue.user_dir()}")
    return 0


def _info(args) -> int:
    track = catalogue.resolve(args.track)
    try:
        config = RacingLineConfig(
            max_speed_mps=args.max_speed,
            max_lateral_accel_mps2=args.max_lateral_accel,
            max_accel_mps2=args.max_accel,
            max_brake_mps2=args.max_brake,
        )
    except TrackError as exc:
        raise TrackError(f"{exc}; pass a positive value") from exc
    geom = TrackGeometry(track)
    widths = track.widths_m
    line = racing_line(track, config)
    inner_len = float(np.linalg.norm(np.diff(track.inner, axis=0), axis=1).sum())
    outer_len = float(np.linalg.norm(np.diff(track.outer, axis=0), axis=1).sum())
    info = {
        "name": track.name,
        "source": track.source,
        "description": track.description,
        "closed": track.closed,
        "direction": track.direction,
        "waypoints": len(track.waypoints),
        "length_m": geom.length_m,
        "inner_length_m": inner_len,
        "outer_length_m": outer_len,
        "width_min_m": float(widths.min()),
        "width_mean_m": float(widths.mean()),
        "width_max_m": float(widths.max()),
        "min_radius_m": _min_radius(geom),
        "racing_line_length_m": line.length_m,
        "limit_lap_time_s": line.limit_lap_time_s,
        "standing_lap_time_s": line.standing_lap_time_s,
        "racing_line_min_speed_mps": float(line.speed_mps.min()),
        "max_speed_mps": config.max_speed_mps,
        "max_lateral_accel_mps2": config.max_lateral_accel_mps2,
        "max_accel_mps2": config.max_accel_mps2,
        "max_brake_mps2": config.max_brake_mps2,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<26} {text}")
    return 0


def _min_radius(geom: TrackGeometry) -> float | None:
    """Tightest centre-line radius (from the curvature at the waypoints); None if straight."""
    k = float(np.abs(geom.curvature).max())
    return 1.0 / k if k > 1e-9 else None


def _show(args) -> int:
    from tracks.render import render, save_png

    track = catalogue.resolve(args.track)
    if args.size < 200 or args.size > 8000:
        raise TrackError(f"--size {args.size} is out of range; use 200 to 8000 pixels")
    line = racing_line(track) if args.racing_line else None
    info = f"{track.name}  {track.length_m:.2f} m  {track.direction}"
    if line is not None:
        info += f"  limit lap {line.limit_lap_time_s:.2f} s"
    out = save_png(render(track, racing_line=line, max_size_px=args.size, info=info), args.png)
    print(f"wrote {out}")
    return 0


def _import(args) -> int:
    target = catalogue.import_track(args.file, args.name, force=args.force)
    track = catalogue.resolve(args.name)
    if args.json:
        print(json.dumps({**_summary(track), "path": str(target)}, indent=2))
    else:
        print(
            f"imported {args.file} as {args.name!r} ({track.length_m:.2f} m, "
            f"{track.direction}) -> {target}"
        )
    return 0


def _export(args) -> int:
    from tracks.track import save_npy

    track = catalogue.resolve(args.track)
    out = save_npy(track, args.out)
    print(f"wrote {out} ({len(track.center)} rows, {track.length_m:.2f} m, {track.direction})")
    return 0


def _remove(args) -> int:
    path = catalogue.remove_track(args.name)
    print(f"removed {args.name!r} ({path})")
    return 0


def _generate(args) -> int:
    from tracks.generator import generate
    from tracks.track import save_npy

    track = generate(
        args.seed,
        length_range_m=(args.min_length, args.max_length),
        width_m=args.width,
        clockwise=args.clockwise,
    )
    out = save_npy(track, args.out)
    if args.png:
        from tracks.render import render, save_png

        save_png(render(track), args.png)
    if args.json:
        print(json.dumps({**_summary(track), "path": str(out)}, indent=2))
    else:
        print(f"wrote {out} ({track.length_m:.2f} m, {track.direction}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
