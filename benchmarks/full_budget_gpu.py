"""The full budget on one GPU, in one run: chapter 01 trained and measured at ``full``, and the
seconds per step of every chapter's ``full`` configuration, written as one JSON file.

    python benchmarks/full_budget_gpu.py                  # on a GPU: about 9 minutes, results/full.json
    python benchmarks/full_budget_gpu.py --tiny --out F   # the same code path on a CPU in a few minutes
    python benchmarks/full_budget_gpu.py --tiny --out F --precisions fp32   # fp32 only (bf16 is slow on a CPU)

1. Chapter 01 at ``standard`` and at ``full`` (training capped at ``--train-seconds``, six minutes
   by default), each sampled ``--n`` times (2,048) by its budget's sampler and measured by the
   course's FD-FMNIST protocol (the standard classifier's features, same config hash as every
   chapter): FD with its 95 % bootstrap interval, KID, and the real-vs-real floor at the same N as
   the mean of ``--floor-draws`` draws (five), so FD / floor compares with fast.ai's course22p2
   (FID 3.73 against a floor of 1.91 at N = 2,048, a ratio of about 2.0). ``full_beats_standard``
   holds only when the two FD intervals do not overlap.
2. Every chapter's ``full`` trainings, each for ``--time-steps`` steps in a throwaway cache, in
   fp32 and in bf16 autocast (:func:`gensynth_course.full_budget.run_trainings`): seconds per step,
   and each chapter's training minutes at ``full`` (:func:`~gensynth_course.full_budget.training_minutes`),
   the figures ``book.toml``'s full minutes are computed from.

Everything runs in a throwaway model cache; nothing already cached is touched. ``--tiny`` shrinks
every number (training seconds, N, floor draws, steps, and the data and batches of every training,
:func:`~gensynth_course.full_budget.shrink`) so that the script checks itself on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from gensynth_course.cache import config_hash, write_atomic
from gensynth_course.device import PRECISIONS, pick_device
from gensynth_course.evaluation.fashion_classifier import classifier_config
from gensynth_course.experiments import ch01_ddpm
from gensynth_course.full_budget import run_trainings, throwaway_cache, training_minutes
from gensynth_course.train import step_limit

RESULTS = Path(__file__).resolve().parents[1] / "results" / "full.json"
# fast.ai course22p2, notebook 20_DDIM: a 25-epoch DDPM at FID 3.73 (1,000 steps, 2,048 samples)
# against a real-data floor of 1.91 in its own classifier's feature space.
FASTAI_RATIO = round(3.73 / 1.91, 2)


def chapter01(budgets: dict[str, dict], n: int, floor_draws: int) -> dict:
    """Chapter 01's UNet at each budget of ``budgets`` (budget -> its config), sampled ``n`` times
    and measured; the floor is the mean FD of ``floor_draws`` draws of ``n`` real training images."""
    fd_metric, train_images = ch01_ddpm.fd_metric(classifier_config("standard"))
    floors = [fd_metric.real_vs_real(train_images, n, seed=k) for k in range(floor_draws)]
    floor = statistics.mean(floors)
    out = {"n": n, "classifier_hash": config_hash(classifier_config("standard")),
           "floor_draws": [round(f, 3) for f in floors], "floor": round(floor, 3), "fastai_ratio": FASTAI_RATIO}
    for budget, config in budgets.items():
        model, info = ch01_ddpm.load_unet(config)
        s = ch01_ddpm.sampling_config(budget)
        start = time.perf_counter()
        samples = ch01_ddpm.generate(model, s["sampler"], s["steps"], n, seed=s["seed"], progress=False,
                                     variance=s["variance"], eta=s["eta"])
        report = fd_metric.report(samples, train_images)
        out[budget] = {**report, "ratio": round(report["fd"] / floor, 3),
                       "ratio_ci_low": round(report["fd_ci_low"] / floor, 3),
                       "ratio_ci_high": round(report["fd_ci_high"] / floor, 3),
                       "train_steps": info["steps"], "train_seconds": round(info["seconds"], 1),
                       "sampler": ch01_ddpm.sampler_name(s),
                       "sample_seconds": round(time.perf_counter() - start, 1)}
    if {"standard", "full"} <= set(budgets):
        out["full_beats_standard"] = out["full"]["fd_ci_high"] < out["standard"]["fd_ci_low"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes (default: results/full.json)")
    parser.add_argument("--train-seconds", type=float, default=360.0, help="chapter 01's full training cap")
    parser.add_argument("--n", type=int, default=2048, help="samples measured per budget")
    parser.add_argument("--floor-draws", type=int, default=5)
    parser.add_argument("--time-steps", type=int, default=100, help="steps timed per full training")
    parser.add_argument("--tiny", action="store_true", help="shrink everything: check the script on a CPU")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                        help="the precisions every full training is timed in (default: both)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.train_seconds, args.n, args.floor_draws, args.time_steps = 2.0, 64, 2, 2
        if args.out == RESULTS:
            raise SystemExit("--tiny results are not results: give --out a path outside results/.")
    device = pick_device()
    if device.type != "cuda" and not args.tiny:
        raise SystemExit(f"this run is meant for a GPU, and the device is {device}; use --tiny to check it on a CPU.")
    start = time.perf_counter()
    # --tiny: every training stops after two steps (the classifier's included)
    with throwaway_cache(), (step_limit(2) if args.tiny else contextlib.nullcontext()):
        full = dict(ch01_ddpm.unet_config("full"), seconds=args.train_seconds)
        ddpm = chapter01({"standard": ch01_ddpm.unet_config("standard"), "full": full}, args.n, args.floor_draws)
        print(f"chapter 01: {json.dumps(ddpm)}", flush=True)
    rows = []
    for precision in args.precisions:
        rows += run_trainings("full", steps=args.time_steps, precision=precision, tiny=args.tiny)
        print(f"timed every full training in {precision}", flush=True)
    minutes = {precision: training_minutes([r for r in rows if r["precision"] == precision])
               for precision in args.precisions}
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.machine()})",
              "torch": torch.__version__, "tiny": args.tiny,
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "chapter01": ddpm, "seconds_per_step": rows, "training_minutes": minutes,
              "time_steps": args.time_steps, "seconds": round(time.perf_counter() - start, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(json.dumps(result, indent=1).encode("utf-8"), args.out)
    print(f"wrote {args.out} after {result['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
