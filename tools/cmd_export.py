"""`racer export RUN --format int8|float16|float32 --out FILE`: convert a run to a TFLite model bundle.

Int8 is integer quantization with a uint8 input taking raw 0-255 pixels (full-integer for
continuous actions; for discrete ones the pixel scaling, pooling, first layer and the head
stay float32: "int8 with a float head and first layer"), calibrated
on the float policy's own frames in greedy laps under the run's randomization, and judged
by driving: float, int8 and a float32 control drive the same 10 seeded laps; int8 must
agree on 99.5 % of the frames both models visit and keep lap parity (as many laps, mean
lap time within 2 %; laps that the float model and its exact float32 conversion do not
share are left out as undetermined). When post-training quantization misses, a short
distillation of the rounded network toward the float policy is tried, then (discrete)
the hidden dense layer kept in float too. Every figure is
printed and stored in the bundle; a model that fails is refused (both figures named,
nothing written) unless --allow-parity-loss. float16/float32 are checked on held-out
random-pose frames (99 % agreement) and a few laps.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, TypeVar

from tools.export_options import add_parity_options, print_stages, report

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    from trainer.export import FORMATS, ExportConfig

    d = ExportConfig(run="")
    p = argparse.ArgumentParser(prog="racer export", description=__doc__.splitlines()[0])
    p.add_argument("run", help="run directory written by `racer train`")
    p.add_argument("--checkpoint", default=d.checkpoint, help="best, last or an iteration N")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--format", choices=FORMATS, default=d.format, help="TFLite format")
    for f in FORMATS:
        fmt.add_argument(
            f"--{f}", dest="format", action="store_const", const=f, help=f"= --format {f}"
        )
    p.add_argument(
        "--deepracer-car",
        action="store_true",
        help="instead of a bundle, write the archive a stock AWS DeepRacer car loads "
        "(model_metadata.json + agent/model.pb), proven with OpenVINO as the car converts it "
        "(>= 99.5%% agreement; --allow-parity-loss overrides)",
    )
    p.add_argument("--out", help="bundle path (default RUN/export/NAME.tar.gz)")
    p.add_argument("--name", help="model name in the bundle (default RUN-ITERATION-FORMAT)")
    p.add_argument("--sign", metavar="KEY", help="sign with this private key (`racer keys new`)")
    add_parity_options(
        p,
        d,
        min_agreement_help="fail below this action agreement (default 0.995 on-policy for "
        "int8, 0.99 on held-out frames for float16/float32)",
    )
    p.add_argument(
        "--laps",
        type=int,
        default=d.laps,
        help="evaluation laps per model (default 10 for int8, at least 10; 3 for float formats)",
    )
    p.add_argument(
        "--no-distill",
        dest="distill",
        action="store_false",
        help="int8: do not try distillation when post-training quantization fails",
    )
    p.add_argument(
        "--distill-steps",
        type=int,
        default=d.distill_steps,
        metavar="N",
        help=f"int8: distillation steps (default {d.distill_steps})",
    )
    p.add_argument("--randomize", help="randomization for frames and laps (default: the run's)")
    p.add_argument("--seed", type=int, default=d.seed, help="simulator seed")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p


def _config(cls: type[T], args: argparse.Namespace) -> T:
    """An ExportConfig or CarExportConfig from the options named like its fields (an
    option left out keeps the field's default)."""
    given = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{name: value for name, value in given.items() if value is not None})


def _fmt_laps(lap: dict[str, Any]) -> str:
    mean = lap.get("mean_lap_s")
    return (
        f"{lap.get('laps_completed', 0)}/{lap.get('trials', 0)} laps, "
        f"{lap.get('completion_pct', 0):.1f}% completion"
        + (f", mean lap {mean:.2f} s" if mean is not None else "")
        + (f", best {lap['best_lap_s']:.2f} s" if lap.get("best_lap_s") is not None else "")
    )


def _print_report(data: dict[str, Any]) -> None:
    par = data["parity"]
    kind = par["kind"]
    print(f"{data['format']} model {data['name']}")
    print(
        f"  size           {data['size_bytes']:,} bytes  "
        f"({100 * data['size_ratio_to_float32']:.1f}% of float32's {data['float32_size_bytes']:,})"
    )
    where = "on-policy" if par.get("frames_source") else "held-out"
    if kind == "discrete":
        rule = "argmax"
    elif par.get("steer_tolerance_deg") is not None:
        rule = (
            f"steering within {par['steer_tolerance_deg']} deg, speed within "
            f"{par['speed_tolerance_mps']:.3f} m/s"
        )
    else:
        rule = f"means within {par['continuous_tolerance']}"
    print(
        f"  agreement      {100 * par['agreement']:.2f}% of {par['frames']} {where} frames "
        f"({par['disagreements']} differ; {rule})"
    )
    if par.get("held_out"):
        held = par["held_out"]
        print(
            f"  random poses   {100 * held['agreement']:.2f}% of {held['frames']} held-out frames"
        )
    what = "probability" if kind == "discrete" else "action mean"
    print(f"  {what} error  max {par['max_abs_error']:.5f}, mean {par['mean_abs_error']:.5f}")
    if par.get("decisive_agreement") is not None:
        print(
            f"  decisive       {100 * par['decisive_agreement']:.2f}% agreement on the "
            f"{100 * par['decisive_fraction']:.1f}% of frames where the float model's top two "
            f"probabilities differ by >= {par['decisive_margin']}"
        )
    if par.get("float_margin_at_disagreement") is not None:
        print(
            f"  float top-2 margin where they differ (median): {par['float_margin_at_disagreement']:.5f}"
        )
    laps = data["laps"]
    if laps:
        print(f"  laps on {laps['track']} ({laps['randomize']}):")
        print(f"    float   {_fmt_laps(laps['float'])}")
        if "control" in laps:
            print(f"    control {_fmt_laps(laps['control'])}  (float32 TFLite of the same network)")
        print(f"    tflite  {_fmt_laps(laps['tflite'])}")
    lp = par.get("lap_parity")
    if lp:
        diff = lp["lap_time_diff"]
        print(
            f"  lap parity     {'ok' if lp['passed'] else 'FAILED'}: {lp['tflite_laps']} vs "
            f"{lp['float_laps']} laps of {lp['laps'] - len(lp['undetermined'])} determined"
            + (f", undetermined {lp['undetermined']}" if lp["undetermined"] else "")
            + (f", mean lap {100 * diff:+.2f}%" if diff is not None else "")
        )
        print(
            f"  method         {par['method']} (tried: "
            + ", ".join(a["method"] for a in par["attempts"])
            + f"); calibrated on {par['representative_frames']} on-policy frames"
        )
    q = data["quantization"]
    print(
        f"  tensors        in {q['input']['dtype']}{q['input']['shape']}, "
        f"out {q['output']['dtype']}{q['output']['shape']}"
    )
    if data["bundle"]:
        print(f"bundle: {data['bundle']}")


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    if args.deepracer_car:
        return _deepracer_car(args)
    from rich.console import Console

    from tools.progress import count_bar
    from trainer.export import ExportConfig, ParityError, export_run

    config = _config(ExportConfig, args)
    console = Console(stderr=True)
    if args.parity_frames < 2000:
        print(
            f"racer export: note: parity on {args.parity_frames} frames; the reference figure "
            "uses at least 2000 (the default)",
            file=sys.stderr,
        )
    with count_bar(
        console, transient=not console.is_terminal, disable=not console.is_terminal
    ) as progress:
        current: list[Any] = []

        def stage(description: str, total: int | None):
            if current:
                progress.update(current[-1], completed=progress.tasks[-1].total or 1)
            task = progress.add_task(description, total=total or 1)
            current.append(task)
            if not console.is_terminal:
                print(f"racer export: {description}", file=sys.stderr)
            return lambda n: progress.advance(task, n)

        def run() -> Any:
            result = export_run(config, stage=stage)
            if current:
                progress.update(current[-1], completed=progress.tasks[-1].total or 1)
            return result

        return report(run, ParityError, as_json=args.json, print_text=_print_report)


def _deepracer_car(args: argparse.Namespace) -> int:
    from trainer.deepracer_car import CarExportConfig, export_car
    from trainer.errors import DeepRacerModelError

    unused = [f for f, given in (("--sign", args.sign), ("--name", args.name)) if given]
    if unused:
        raise DeepRacerModelError(
            f"{' and '.join(unused)} cannot go with --deepracer-car: the AWS car's archive holds "
            "no signature and takes its name from the file; drop them (or name it with --out)"
        )
    config = _config(CarExportConfig, args)
    data = export_car(config, stage=print_stages("racer export")).to_json()
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    ov, v1 = data["openvino"], data["tf_compat_v1"]
    print(f"DeepRacer car archive {data['archive']} (graph {data['graph_size_bytes']:,} bytes)")
    print(
        f"  OpenVINO {ov['openvino_version'].split('-')[0]} (FP16, as the car converts it): "
        f"agreement {100 * ov['agreement']:.2f}% of {ov['frames']} held-out frames, "
        f"max error {ov['max_abs_error']:.5f}"
    )
    print(
        f"  tf.compat.v1 by tensor names: agreement {100 * v1['agreement']:.2f}%, "
        f"max error {v1['max_abs_error']:.2e}"
    )
    return 0
