"""Benchmark: the seed tutorial's UNet against the course's UNet, on Fashion-MNIST DDPM.

    python benchmarks/ddpm_unets.py --equal-time 300      # both UNets, 300 s of training each
    python benchmarks/ddpm_unets.py --seed-recipe         # the tutorial's full recipe, once (~1.5 h)
    python benchmarks/ddpm_unets.py --seed-recipe --device cuda   # the same in minutes on a GPU
    python benchmarks/ddpm_unets.py --recipe              # chapter 01's recipe, one change at a time (~2 h)
    python benchmarks/ddpm_unets.py --sampler-steps       # the committed UNet at 15 to 200 sampling steps (~10 min)

``--equal-time`` trains both networks for the same wall-clock time on this machine and prints
training images per second and FD-FMNIST of 2,048 samples for each (same DDIM sampler for both).
``--seed-recipe`` runs the tutorial's own recipe (20 epochs, batch 128, Adam 1e-3, linear β,
T = 1000) and keeps 2,048 of its samples under its own pipeline (1000-step ancestral sampling with
σ² = β_t, no clipping, each image min-max rescaled for display) and 2,048 of the same weights with
clipped x̂₀, as 8-bit PNG grids in ``gensynth_course/data/seed_recipe/`` with ``samples.json``
(how they were made). ``python -m gensynth_course eval 01`` measures them with the classifier of
the day as ``fd_seed_reference``. The recipe is the same on any device; the record says where it ran.
``--recipe`` trains chapter 01's standard UNet under each step of :data:`RECIPE_STEPS` (each one
change from the one before it) and under each of :data:`RECIPE_CHANGES` (one change each to the
committed recipe), and prints FD-FMNIST of 2,048 samples under deterministic DDIM and under respaced
ancestral sampling with σ² = β̃, both at 50 steps, with the floor at the same N. ``--sampler-steps``
samples the committed UNet with ancestral steps of each count in :data:`SAMPLER_STEPS`.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from gensynth_course.cache import config_hash
from gensynth_course.evaluation.fashion_classifier import classifier_config
from gensynth_course.experiments import ch01_ddpm, fashion_diffusion

# Chapter 01's recipe as it was built: each row is one change from the row before it, applied to
# the standard UNet config with its committed steps and schedule overridden.
RECIPE_STEPS = {
    "3,600 steps, constant learning rate": dict(steps=3600, lr_schedule="constant"),
    "... with a cosine decay": dict(steps=3600, lr_schedule="cosine"),
    "... and 7,200 steps": dict(steps=7200, lr_schedule="cosine"),
    "(aside: 3,600 cosine steps with horizontal flips)": dict(steps=3600, lr_schedule="cosine", hflip=True),
}
# One change each to the committed recipe (7,200 cosine steps, batch 32, peak learning rate 2e-3, EMA
# decay 0.998, linear β): which lever, if any, buys picture quality for the same minutes; the best
# lever and the recipe itself are also trained from a second seed.
RECIPE_CHANGES = {
    "EMA decay 0.999": dict(ema_decay=0.999),
    "cosine noise schedule": dict(schedule="cosine"),
    "batch 64, 3,600 steps (the same examples)": dict(batch_size=64, steps=3600),
    "peak learning rate 4e-3": dict(lr=4e-3),
    "peak learning rate 8e-3": dict(lr=8e-3),
    "peak learning rate 1.6e-2": dict(lr=1.6e-2),
    "training seed 1": dict(seed=1),
    "training seed 1 and peak learning rate 8e-3": dict(seed=1, lr=8e-3),
}
# The sampler's steps tried on the committed weights (respaced ancestral sampling with σ² = β̃).
SAMPLER_STEPS = (15, 25, 35, 50, 100, 200)


def machine(device: torch.device | None = None) -> str:
    cpu = f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or platform.system()}"
    if device is not None and device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (host {cpu})"
    return cpu


def seed_recipe(device: torch.device) -> None:
    """Train the tutorial's recipe once, sample it 2,048 times under each sampler of
    ``ch01_ddpm.SEED_SAMPLERS`` (the tutorial's own pipeline, and the same weights with clipped x̂₀),
    and store the samples as data beside a record of how they were made; ``eval 01`` measures them
    again with the classifier of the day. Prints what today's classifier makes of them."""
    commit = git_commit()                           # the code that trains, read before it runs
    model, info = ch01_ddpm.seed_reference_model(device)
    samples, seconds = {}, {}
    for name in ch01_ddpm.SEED_SAMPLERS:
        start = time.perf_counter()
        samples[name] = ch01_ddpm.sample_seed_recipe(model, name, device=device)
        seconds[name] = round(time.perf_counter() - start, 1)
    record = {
        "recipe": ch01_ddpm.SEED_RECIPE,
        "train_seconds": round(info["seconds"], 1),
        "sampling_seconds": seconds,
        "command": f"python benchmarks/ddpm_unets.py --seed-recipe --device {device.type}",
        "commit": commit,
        "date": datetime.date.today().isoformat(),
        "machine": machine(device),
        "torch": torch.__version__,
    }
    print(f"wrote {ch01_ddpm.save_seed_samples(samples, record)}")
    fd_metric, train_images = ch01_ddpm.fd_metric(classifier_config("standard"))
    stored = ch01_ddpm.seed_samples(ch01_ddpm.N_SEED_SAMPLES)
    for name, report in ch01_ddpm.seed_reference(fd_metric, train_images, stored).items():
        print(f"{name:<10} FD-FMNIST {report['fd']:8.2f} [{report['fd_ci_low']:.1f}, {report['fd_ci_high']:.1f}]  "
              f"floor {report['fd_floor_same_n']:.1f}  rarest class {report['rarest_class']} "
              f"{report['rarest_class_share']['value']:.3f}")


def git_commit() -> str | None:
    """The clone's commit, with ``-dirty`` when it has uncommitted changes; None outside a clone."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def equal_time(seconds: float) -> None:
    fd_metric, _ = ch01_ddpm.fd_metric(classifier_config("standard"))
    rows = []
    for name in ("seed", "ours"):
        model, info = ch01_ddpm.load_equal_time(ch01_ddpm.equal_time_config(name, seconds, "standard"))
        samples = ch01_ddpm.generate(model, "ddim", 100, n=ch01_ddpm.N_EVAL_SAMPLES, seed=0)
        rows.append((name, info["examples_per_second"], info["steps"], fd_metric(samples)))
    print(f"\nequal training time: {seconds:.0f} s each on {machine()}; {ch01_ddpm.N_EVAL_SAMPLES:,} samples, DDIM 100 steps")
    print(f"{'UNet':<6} {'train img/s':>12} {'steps':>7} {'FD-FMNIST':>10}")
    for name, ips, steps, fd_value in rows:
        print(f"{name:<6} {ips:>12.0f} {steps:>7d} {fd_value:>10.2f}")


def fd_judge(what: str):
    """FD-FMNIST with the standard classifier and the number of samples it is measured on, after a
    heading that names ``what`` is measured and the real-vs-real floor at that number."""
    fd_metric, train_images = ch01_ddpm.fd_metric(classifier_config("standard"))
    n = ch01_ddpm.N_EVAL_SAMPLES
    print(f"{what}; FD-FMNIST of {n:,} samples (real-vs-real floor "
          f"{fd_metric.real_vs_real(train_images, n):.2f}) on {machine()}")
    return fd_metric, n


def recipe() -> None:
    fd_metric, n = fd_judge("chapter 01's UNet at the standard budget")
    print(f"{'recipe':<52} {'train s':>8} {'DDIM 50':>9} {'ancestral β̃ 50':>15}")
    rows = {**RECIPE_STEPS, **{f"committed, then {name}": change for name, change in RECIPE_CHANGES.items()}}
    for name, change in rows.items():
        config = dict(fashion_diffusion.unet_config("standard"), **change)
        model, info = fashion_diffusion.load_diffusion(config, "recipe_" + config_hash(config))
        fds = [fd_metric(ch01_ddpm.generate(model, sampler, 50, n, seed=0, progress=False, variance="beta_tilde",
                                            schedule=config["schedule"]))
               for sampler in ("ddim", "ancestral")]
        print(f"{name:<52} {info['seconds']:>8.0f} {fds[0]:>9.1f} {fds[1]:>15.1f}")


def sampler_steps() -> None:
    """The committed UNet sampled with respaced ancestral steps (σ² = β̃) at each of
    :data:`SAMPLER_STEPS`: FD-FMNIST of 2,048 samples from the same seed, and the seconds it took."""
    model, _ = fashion_diffusion.load_unet(fashion_diffusion.unet_config("standard"))
    fd_metric, n = fd_judge("chapter 01's committed UNet")
    print(f"{'ancestral β̃ steps':>18} {'FD-FMNIST':>10} {'seconds':>8}")
    for steps in SAMPLER_STEPS:
        start = time.perf_counter()
        images = ch01_ddpm.generate(model, "ancestral", steps, n, seed=0, progress=False, variance="beta_tilde")
        seconds = time.perf_counter() - start
        print(f"{steps:>18d} {fd_metric(images):>10.1f} {seconds:>8.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed-recipe", action="store_true", help="run the tutorial's full recipe once")
    parser.add_argument("--equal-time", type=float, metavar="SECONDS", help="train both UNets this long")
    parser.add_argument("--recipe", action="store_true", help="chapter 01's recipe, one change at a time")
    parser.add_argument("--sampler-steps", action="store_true",
                        help="the committed UNet sampled with each of SAMPLER_STEPS ancestral steps")
    parser.add_argument("--device", default="cpu",
                        help="where --seed-recipe trains and samples: cpu (default), cuda or mps; "
                             "--equal-time always runs on the CPU, which is what it compares")
    args = parser.parse_args()
    if not (args.seed_recipe or args.equal_time or args.recipe or args.sampler_steps):
        parser.print_help()
        sys.exit(2)
    if args.equal_time:
        equal_time(args.equal_time)
    if args.seed_recipe:
        seed_recipe(torch.device(args.device))
    if args.recipe:
        recipe()
    if args.sampler_steps:
        sampler_steps()
