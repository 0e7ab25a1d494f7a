"""Benchmark: the seed tutorial's UNet against the course's UNet, on Fashion-MNIST DDPM.

    python benchmarks/ddpm_unets.py --equal-time 300      # both UNets, 300 s of training each
    python benchmarks/ddpm_unets.py --seed-recipe         # the tutorial's full recipe, once (~1.5 h)

``--equal-time`` trains both networks for the same wall-clock time on this machine and prints
training images per second and FD-FMNIST of 1,000 samples for each (same DDIM sampler for both).
``--seed-recipe`` runs the tutorial's own recipe (20 epochs, batch 128, Adam 1e-3, linear β,
T = 1000, 1000-step ancestral sampling with σ² = β_t) and records its FD-FMNIST in
``benchmarks/results/seed_reference.json``, which ``python -m gensynth_course eval 01`` reports
as ``fd_seed_reference``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch

from gensynth_course import ddpm_experiments as recipes
from gensynth_course.cache import config_hash
from gensynth_course.classifier import classifier_config

RESULTS = Path(__file__).parent / "results" / "seed_reference.json"


def machine() -> str:
    return f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or platform.system()}"


def seed_recipe() -> None:
    model, info = recipes.seed_reference_model()
    fd_metric, train_images = recipes.fd_metric("standard")
    start = time.perf_counter()
    samples = recipes.generate(model, "ancestral", 1000, n=recipes.N_EVAL_SAMPLES, seed=0, clip_sample=False)
    sampling_seconds = time.perf_counter() - start
    result = {
        "fd_seed_reference": round(fd_metric(samples), 3),
        "fd_real_vs_real": round(fd_metric.real_vs_real(train_images, recipes.N_EVAL_SAMPLES), 3),
        "fd_noise": round(fd_metric.noise(recipes.N_EVAL_SAMPLES), 3),
        "samples": recipes.N_EVAL_SAMPLES,
        "sampler": "ancestral, 1000 steps, sigma^2 = beta_t",
        "recipe": recipes.SEED_RECIPE,
        "train_seconds": round(info["seconds"], 1),
        "sampling_seconds": round(sampling_seconds, 1),
        "classifier_config_hash": config_hash(classifier_config("standard")),
        "command": "python benchmarks/ddpm_unets.py --seed-recipe",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def equal_time(seconds: float) -> None:
    fd_metric, _ = recipes.fd_metric("standard")
    rows = []
    for name in ("seed", "ours"):
        model, info = recipes.train_for_seconds(name, seconds)
        samples = recipes.generate(model, "ddim", 100, n=recipes.N_EVAL_SAMPLES, seed=0)
        rows.append((name, info["images_per_second"], info["steps"], fd_metric(samples)))
    print(f"\nequal training time: {seconds:.0f} s each on {machine()}; 1,000 samples, DDIM 100 steps")
    print(f"{'UNet':<6} {'train img/s':>12} {'steps':>7} {'FD-FMNIST':>10}")
    for name, ips, steps, fd_value in rows:
        print(f"{name:<6} {ips:>12.0f} {steps:>7d} {fd_value:>10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed-recipe", action="store_true", help="run the tutorial's full recipe once")
    parser.add_argument("--equal-time", type=float, metavar="SECONDS", help="train both UNets this long")
    args = parser.parse_args()
    if not (args.seed_recipe or args.equal_time):
        parser.print_help()
        sys.exit(2)
    if args.equal_time:
        equal_time(args.equal_time)
    if args.seed_recipe:
        seed_recipe()
