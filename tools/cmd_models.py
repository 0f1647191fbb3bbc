"""`racer models`: the car's model store: list, info, install, activate, rollback, remove,
verify. `list` and `info` show each model's parity with its float original as export
measured it (int8: agreement on the frames both models visit, and lap parity).

Runs on the car: no TensorFlow. `racer models import` (a DeepRacer model as openracer bundles)
is the exception: it converts on the training side (`trainer/deepracer_import.py`, imported
only for it). The store folder is `--store DIR`, else `$OPENRACER_STORE`,
else `~/.local/share/openracer/models` (see `vehicle/models/store.py` for its layout and crash
safety). Every refusal is one line on stderr and exit code 2, with the store unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.export_options import add_parity_options, print_stages, report
from vehicle.errors import StoreError
from vehicle.models.store import STORE_ENV, InstalledModel, ModelStore, default_store_dir


def _parser() -> argparse.ArgumentParser:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help=f"model store folder (default ${STORE_ENV} or {default_store_dir()})",
    )
    parser = argparse.ArgumentParser(
        prog="racer models",
        description="The car's model store: installed bundles, the active model, rollback.",
        parents=[store],
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", parents=[store], help="installed models, active first")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("info", parents=[store], help="one model: provenance and parity figures")
    p.add_argument("name", help="an installed model's name")
    p.add_argument("--json", action="store_true", help="print JSON (the whole manifest)")
    p = sub.add_parser(
        "install",
        parents=[store],
        help="verify a bundle (hashes, signature, shapes, one inference) and install it",
    )
    p.add_argument("bundle", help="the .tar.gz bundle written by `racer export`")
    p.add_argument("--activate", action="store_true", help="make it the active model")
    p.add_argument("--name", help="install under this name instead of the bundle's")
    p.add_argument(
        "--expect-sha256", metavar="HEX", help="refuse the file unless its sha256 is HEX"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("activate", parents=[store], help="make an installed model active")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("rollback", parents=[store], help="swap back to the previously active model")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("remove", parents=[store], help="delete an installed, inactive model")
    p.add_argument("name")
    p = sub.add_parser(
        "verify",
        parents=[store],
        help="check every model's hashes, signature and one inference; exit 2 on a problem",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser(
        "trust",
        parents=[store],
        help="trust a public key: from then on only bundles it signed install",
    )
    p.add_argument("key", nargs="?", help="a .pub file made by `racer keys new`")
    p.add_argument("--list", action="store_true", help="list the trusted keys")
    p.add_argument("--remove", metavar="KEY_ID", help="stop trusting this key id")
    p.add_argument("--json", action="store_true", help="print JSON")
    _import_parser(sub)
    return parser


def _import_parser(sub: Any) -> None:
    from trainer.deepracer_import import ImportConfig

    d = ImportConfig(archive="")
    p = sub.add_parser(
        "import",
        help="a DeepRacer model (console or deepracer-for-cloud .tar.gz, or a folder) as "
        "int8 and float16 bundles, with parity against its original graph (training side)",
    )
    p.add_argument("archive", help="the model's .tar.gz/.tgz/.tar, or a folder")
    p.add_argument(
        "--graph", metavar="PB", help="which .pb when it holds several (e.g. model/model_48.pb)"
    )
    p.add_argument(
        "--out-dir", default=d.out_dir, metavar="DIR", help="where the bundles go (default .)"
    )
    p.add_argument("--name", help="model name (default: the archive's name)")
    p.add_argument("--sign", metavar="KEY", help="sign the bundles with this private key")
    p.add_argument(
        "--track", default=d.track, help=f"track of the frames and laps (default {d.track})"
    )
    p.add_argument(
        "--randomize", default=d.randomize, help=f"randomization (default {d.randomize})"
    )
    add_parity_options(
        p,
        d,
        min_agreement_help="refuse a format below this agreement with the graph "
        f"(default {d.min_agreement})",
    )
    p.add_argument(
        "--laps", type=int, default=d.laps, help=f"laps of graph and int8 (default {d.laps})"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="simulator seed")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")  # fmt: skip


def _import(args: argparse.Namespace) -> int:
    from trainer.deepracer_import import ImportConfig, import_model

    config = ImportConfig(
        archive=args.archive,
        graph=args.graph,
        out_dir=args.out_dir,
        name=args.name,
        sign=args.sign,
        track=args.track,
        randomize=args.randomize,
        representative_frames=args.representative_frames,
        parity_frames=args.parity_frames,
        min_agreement=args.min_agreement,
        allow_parity_loss=args.allow_parity_loss,
        laps=args.laps,
        seed=args.seed,
    )

    from trainer.errors import ImportParityError

    return report(
        lambda: import_model(config, stage=print_stages("racer models import")),
        ImportParityError,
        as_json=args.json,
        print_text=_print_import,
    )


def _print_import(data: dict[str, Any]) -> None:
    a = data["archive"]
    print(f"imported {a['deepracer_archive']} ({a['graph']}, sha256 {a['graph_sha256'][:12]})")
    print(f"  input  {a['graph_input']}\n  output {a['graph_output']}")
    for fmt, f in data["formats"].items():
        par = f["parity"]
        line = (
            f"  {fmt:<8} {f['size_bytes']:>11,} bytes  agreement with the graph "
            f"{100 * par['agreement']:.2f}% of {par['frames']} frames on {par['track']} "
            f"({par['randomize']}), max error {par['max_abs_error']:.5f}"
        )
        print(line + f"\n           bundle {f.get('bundle') or 'not written'}")
    laps = data["laps"]
    for label in ("graph", "int8"):
        if label in laps:
            lap = laps[label]
            mean = lap.get("mean_lap_s")
            print(
                f"  laps {label:<6} {lap['laps_completed']}/{lap['trials']} on {laps['track']}, "
                f"{lap['completion_pct']:.1f}% completion"
                + (f", mean {mean:.2f} s" if mean is not None else "")
            )


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _line(model: InstalledModel) -> str:
    d = model.describe()
    flag = "*" if model.is_active else ("<" if model.is_previous else " ")
    if model.problem:
        return f"{flag} {model.name:<28} DAMAGED: {model.problem}"
    fmt = d["quantization"] or "?"
    short = {  # an int8 model with float layers says so (`racer models info`: which)
        "int8 with a float head": " (float head)",
        "int8 with a float head and first layer": " (float ends)",
        "int8 with float first and dense layers": " (float dense)",
    }
    fmt += short.get(d.get("recipe") or "", "")
    bits = [
        f"{fmt:<7}",
        f"{_size(d['size_bytes']):>9}",
        f"{d['action_space']}({d['n_actions']})",
        f"{d['control_rate_hz']:g} Hz",
    ]
    figures = parity_figures(d["parity"] or {})
    if figures:
        bits.append(figures)
    src = d["source"] or {}
    if src.get("run"):
        bits.append(f"from {src.get('run')}:{src.get('checkpoint', '?')}")
    bits.append("signed " + d["signed_key_id"] if d["signed_key_id"] else "unsigned")
    return f"{flag} {model.name:<28} " + "  ".join(bits)


def parity_figures(parity: dict[str, Any]) -> str:
    """One line: the agreement (on-policy or held-out) and, for int8, the lap parity."""
    agree = parity.get("agreement")
    if agree is None:
        return ""
    where = "on-policy" if parity.get("frames_source") else "held-out"
    text = f"agreement {100 * agree:.2f}% {where}"
    lp = parity.get("lap_parity")
    if lp:
        text += (
            f", laps {lp['tflite_laps']}/{lp['float_laps']} of float's"
            + (
                f" (mean lap {100 * lp['lap_time_diff']:+.1f}%)"
                if lp["lap_time_diff"] is not None
                else ""
            )
            + (" ok" if lp["passed"] else " FAILED")
        )
    if parity.get("passed") is False:
        text += " (written with --allow-parity-loss)"
    return text


def _info(model: InstalledModel) -> str:
    """Every figure worth reading about one model."""
    d = model.describe()
    if model.problem:
        return f"{model.name}: DAMAGED: {model.problem}"
    par = d["parity"] or {}
    src = d["source"] or {}
    lines = [
        f"{model.name}" + ("  (active)" if model.is_active else ""),
        f"  format       {d['quantization'] or '?'}"
        + (
            f" ({d['recipe']}: {', '.join(d['float_ops'])} in float32)"
            if d.get("float_ops")
            else ""
        )
        + f", {_size(d['size_bytes'])}, "
        f"{d['action_space']}({d['n_actions']}), {d['control_rate_hz']:g} Hz",
        f"  from         {src.get('run', '?')} checkpoint {src.get('iteration', '?')} "
        f"({src.get('network', '?')}; tracks {', '.join(map(str, src.get('tracks', [])))})",
        f"  created      {d['created_utc']}, "
        + ("signed " + d["signed_key_id"] if d["signed_key_id"] else "unsigned"),
    ]
    if par.get("agreement") is not None:
        where = "on-policy" if par.get("frames_source") else "held-out"
        rule = "argmax"
        if par.get("steer_tolerance_deg") is not None:
            rule = (
                f"steering within {par['steer_tolerance_deg']} deg, speed within "
                f"{par['speed_tolerance_mps']:.3f} m/s"
            )
        elif par.get("kind") == "continuous":
            rule = f"means within {par.get('continuous_tolerance')}"
        need = par.get("min_agreement")
        lines.append(
            f"  agreement    {100 * par['agreement']:.2f}% of {par.get('frames')} {where} "
            f"frames ({rule}" + (f"; needs {100 * need:.1f}%)" if need is not None else ")")
        )
    held = par.get("held_out")
    if held:
        lines.append(f"  random poses {100 * held['agreement']:.2f}% of {held['frames']} frames")
    laps = par.get("laps") or {}
    for label in ("float", "control", "tflite"):
        lap = laps.get(label)
        if lap:
            mean = lap.get("mean_lap_s")
            lines.append(
                f"  laps {label:<8}{lap.get('laps_completed')}/{lap.get('trials')}"
                + (f", mean {mean:.2f} s" if mean is not None else "")
                + (
                    f"  ({laps.get('track')}, {laps.get('randomize')}, seed {laps.get('seed')})"
                    if label == "float"
                    else ""
                )
            )
    lp = par.get("lap_parity")
    if lp:
        diff = lp["lap_time_diff"]
        lines.append(
            f"  lap parity   {'ok' if lp['passed'] else 'FAILED'}: {lp['tflite_laps']} laps vs "
            f"float's {lp['float_laps']} of {lp['laps'] - len(lp['undetermined'])} determined"
            + (f" (undetermined: {lp['undetermined']})" if lp["undetermined"] else "")
            + (
                f", mean lap {100 * diff:+.2f}% (within {100 * lp['lap_time_tolerance']:.0f}%)"
                if diff is not None
                else ""
            )
        )
    if par.get("method"):
        lines.append(
            f"  quantization {par['method']}, calibrated on {par.get('representative_frames')} "
            "on-policy frames"
        )
    if par.get("passed") is False:
        lines.append("  written with --allow-parity-loss: it failed the parity check")
    return "\n".join(lines)


def _emit(as_json: bool, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if as_json else text)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.action == "import":
        return _import(args)
    store = ModelStore(getattr(args, "store", None))
    as_json = bool(getattr(args, "json", False))
    if args.action == "list":
        models = store.list()
        data = {"store": str(store.root), "models": [m.describe() for m in models]}
        if not models:
            text = f"no models installed in {store.root}"
        else:
            text = "\n".join(
                [f"{store.root}  (* active, < previous: `racer models rollback` returns to it)"]
                + [_line(m) for m in models]
            )
        _emit(as_json, data, text)
        return 0
    if args.action == "info":
        found = [m for m in store.list() if m.name == args.name]
        if not found:
            names = ", ".join(m.name for m in store.list()) or "none"
            raise StoreError(
                f"no model named {args.name!r} in {store.root} (installed: {names}); "
                "see `racer models list`"
            )
        model = found[0]
        _emit(as_json, {**model.describe(), "manifest": model.manifest}, _info(model))
        return 0
    if args.action == "install":
        model = store.install(
            args.bundle, activate=args.activate, name=args.name, expect_sha256=args.expect_sha256
        )
        state = "installed and activated" if model.is_active else "installed"
        _emit(as_json, {"action": "install", **model.describe()}, f"{state}: {_line(model)}")
        return 0
    if args.action == "activate":
        model = store.activate(args.name)
        _emit(as_json, {"action": "activate", **model.describe()}, f"activated: {_line(model)}")
        return 0
    if args.action == "rollback":
        model = store.rollback()
        _emit(
            as_json, {"action": "rollback", **model.describe()}, f"rolled back to: {_line(model)}"
        )
        return 0
    if args.action == "remove":
        store.remove(args.name)
        print(f"removed {args.name} from {store.root}")
        return 0
    if args.action == "verify":
        report = store.verify()
        if as_json:
            print(json.dumps(report, indent=2))
        else:
            for m in report["models"]:
                mark = "ok     " if m["ok"] else "DAMAGED"
                print(f"{mark} {m['name']}" + ("" if m["ok"] else f": {m['problem']}"))
            print(
                f"active: {report['active']}, previous: {report['previous']}, trusted keys: "
                f"{', '.join(report['trusted_key_ids']) or 'none'}"
            )
            for problem in report["problems"]:
                print(f"racer models: error: {problem}", file=sys.stderr)
        return 0 if report["ok"] else 2
    if args.action == "trust":
        if args.remove:
            store.untrust(args.remove)
            print(f"no longer trusting key {args.remove}")
            return 0
        if args.key:
            key = store.trust(args.key)
            print(
                f"trusting key {key.key_id} ({key.comment or 'no comment'}); from now on "
                f"{store.root} installs only bundles signed by a trusted key"
            )
            if not args.list:
                return 0
        keys = store.trusted_keys()
        rows = [{"key_id": k.key_id, "comment": k.comment} for k in keys]
        text = "\n".join(f"{k.key_id}  {k.comment}" for k in keys) or (
            f"{store.root} trusts no keys: unsigned bundles install"
        )
        _emit(as_json, {"trusted_keys": rows}, text)
        return 0
    raise AssertionError(args.action)
