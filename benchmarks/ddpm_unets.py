"""Benchmark: the seed tutorial's UNet against the course's UNet, on Fashion-MNIST DDPM.

    python benchmarks/ddpm_unets.py --equal-time 300      # both UNets, 300 s of training each
    python benchmarks/ddpm_unets.py --seed-recipe         # the tutorial's full recipe, once (~1.5 h)
    python benchmarks/ddpm_unets.py --seed-recipe --device cuda   # the same in minutes on a GPU

``--equal-time`` trains both networks for the same wall-clock time on this machine and prints
training images per second and FD-FMNIST of 1,000 samples for each (same DDIM sampler for both).
``--seed-recipe`` runs the tutorial's own recipe (20 epochs, batch 128, Adam 1e-3, linear β,
T = 1000, 1000-step ancestral sampling with σ² = β_t, no clipping, each image min-max rescaled
for display) and records its FD-FMNIST, and that of the same weights under three other samplers, in
``benchmarks/results/seed_reference.json``, which ``python -m gensynth_course eval 01`` reports
as ``fd_seed_reference``. The recipe is the same on any device; the file records where it ran.
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

from gensynth_course.cache import config_hash
from gensynth_course.evaluation.fashion_classifier import classifier_config, load_classifier
from gensynth_course.experiments import ch01_ddpm
from gensynth_course.models.diffusion.schedulers import DDIMScheduler, DDPMScheduler, sample

RESULTS = Path(__file__).parent / "results" / "seed_reference.json"


def machine(device: torch.device | None = None) -> str:
    cpu = f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or platform.system()}"
    if device is not None and device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (host {cpu})"
    return cpu


def rescale_per_image(x: torch.Tensor) -> torch.Tensor:
    """The tutorial's own output step: each image is stretched from its own min..max to the full
    range (its ``generate_new_images`` and ``show_images`` both do this), here to [-1, 1]."""
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - low) / (high - low).clamp_min(1e-8) * 2 - 1


def seed_recipe(device: torch.device) -> None:
    """Train the tutorial's recipe once and measure its samples four ways (1,000 each, seed 0).

    ``fd_seed_reference`` is the tutorial's own pipeline: 1000 ancestral steps with σ² = β_t, no
    clipping, each image min-max rescaled. The other rows keep the weights and change only the
    sampler, so the comparison with our UNet cannot be blamed on the seed's sampler."""
    model, info = ch01_ddpm.seed_reference_model(device)
    fd_metric, train_images = ch01_ddpm.fd_metric(classifier_config("standard"))
    n = ch01_ddpm.N_EVAL_SAMPLES
    variants = {
        "ancestral 1000, unclipped, per-image min-max (the tutorial's pipeline)":
            ("ancestral", 1000, False, True),
        "ancestral 1000, unclipped, clamped to [-1, 1]": ("ancestral", 1000, False, False),
        "ancestral 1000, clipped x0": ("ancestral", 1000, True, False),
        "ddim 50, clipped x0 (chapter 01's sampler)": ("ddim", 50, True, False),
    }
    fds, seconds = {}, {}
    for name, (sampler, steps, clip_x0, per_image) in variants.items():
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(0)
        scheduler = (DDPMScheduler if sampler == "ancestral" else DDIMScheduler)(
            ch01_ddpm.betas("linear"), clip_sample=clip_x0)
        raw, _ = sample(model.to(device), scheduler, (n, 1, 28, 28), steps, generator=generator,
                                device=device, clip=not per_image)
        images = rescale_per_image(raw) if per_image else raw
        fds[name] = round(fd_metric(images), 3)
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"{name:<72} FD-FMNIST {fds[name]:8.2f}  ({seconds[name]:.0f} s)")
    result = {
        "fd_seed_reference": next(iter(fds.values())),
        "fd_seed_reference_best_sampler": min(fds.values()),
        "fd_by_sampler": fds,
        "fd_real_vs_real": round(fd_metric.real_vs_real(train_images, n), 3),
        "fd_noise": round(fd_metric.noise(n), 3),
        "samples": n,
        "recipe": ch01_ddpm.SEED_RECIPE,
        "train_seconds": round(info["seconds"], 1),
        "sampling_seconds": seconds,
        "classifier_config_hash": config_hash(classifier_config("standard")),
        "classifier_code_hash": load_classifier(classifier_config("standard"))[1]["code_hash"],
        "command": f"python benchmarks/ddpm_unets.py --seed-recipe --device {device.type}",
        "date": datetime.date.today().isoformat(),
        "machine": machine(device),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def equal_time(seconds: float) -> None:
    fd_metric, _ = ch01_ddpm.fd_metric(classifier_config("standard"))
    rows = []
    for name in ("seed", "ours"):
        model, info = ch01_ddpm.load_equal_time(ch01_ddpm.equal_time_config(name, seconds, "standard"))
        samples = ch01_ddpm.generate(model, "ddim", 100, n=ch01_ddpm.N_EVAL_SAMPLES, seed=0)
        rows.append((name, info["examples_per_second"], info["steps"], fd_metric(samples)))
    print(f"\nequal training time: {seconds:.0f} s each on {machine()}; 1,000 samples, DDIM 100 steps")
    print(f"{'UNet':<6} {'train img/s':>12} {'steps':>7} {'FD-FMNIST':>10}")
    for name, ips, steps, fd_value in rows:
        print(f"{name:<6} {ips:>12.0f} {steps:>7d} {fd_value:>10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed-recipe", action="store_true", help="run the tutorial's full recipe once")
    parser.add_argument("--equal-time", type=float, metavar="SECONDS", help="train both UNets this long")
    parser.add_argument("--device", default="cpu",
                        help="where --seed-recipe trains and samples: cpu (default), cuda or mps; "
                             "--equal-time always runs on the CPU, which is what it compares")
    args = parser.parse_args()
    if not (args.seed_recipe or args.equal_time):
        parser.print_help()
        sys.exit(2)
    if args.equal_time:
        equal_time(args.equal_time)
    if args.seed_recipe:
        seed_recipe(torch.device(args.device))
