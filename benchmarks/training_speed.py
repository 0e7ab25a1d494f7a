"""Benchmark: can a training step of chapter 01's UNet be made cheaper on this machine?

    python benchmarks/training_speed.py                 # 60 timed steps per variant (about 5 minutes on 2 cores)
    python benchmarks/training_speed.py --steps 200

Each variant trains the standard UNet of chapter 01 (``ch01_ddpm.unet_config("standard")``) from
the same initial weights on the same Fashion-MNIST batches with the chapter's loss (ε-prediction,
min-SNR weighting) and Adam at the chapter's learning rate, one change at a time:

* ``eager``: the model as the course trains it;
* ``channels-last``: weights and images in channels-last memory format;
* ``torch.compile``: the model compiled by TorchInductor (its first steps compile; they are timed
  apart, as ``first steps``, and a learner pays them once per process).

It prints, per variant, the seconds of the first ``--warmup`` steps, the seconds per step after
them, the speed-up over eager, and the largest difference of the per-step loss from eager's (a
faster step that trains another model is no speed-up). Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from gensynth_course.data.fashion_mnist import load_fashion_mnist
from gensynth_course.experiments import fashion_diffusion
from gensynth_course.experiments.ch01_ddpm import unet_config
from gensynth_course.models.diffusion.schedulers import DDPMScheduler

VARIANTS = ("eager", "channels-last", "torch.compile")


def train_steps(variant: str, config: dict, steps: int, warmup: int) -> dict:
    """Train ``warmup + steps`` steps under ``variant``; the seconds of the warm-up, seconds per
    timed step, and every step's loss."""
    torch.manual_seed(config["seed"])
    model = fashion_diffusion.build(config)
    scheduler = DDPMScheduler(fashion_diffusion.betas(config["schedule"], config["T"]))
    batch_fn = load_fashion_mnist("train").batch_fn(config["batch_size"], config["seed"], drop_last=True)
    memory = torch.channels_last if variant == "channels-last" else torch.contiguous_format
    model = model.to(memory_format=memory)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    network = torch.compile(model) if variant == "torch.compile" else model
    generator = torch.Generator().manual_seed(config["seed"])
    losses = []
    start = time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            timed = time.perf_counter()
        x, _ = batch_fn(step, generator)
        loss = scheduler.loss(network, x.contiguous(memory_format=memory), generator,
                              min_snr_gamma=config["min_snr_gamma"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])
        optimizer.step()
        losses.append(loss.item())
    return {"first_steps_seconds": timed - start, "seconds_per_step": (time.perf_counter() - timed) / steps,
            "losses": losses}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per variant, after the warm-up")
    parser.add_argument("--warmup", type=int, default=5, help="steps before the timing starts (compilation included)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        raise SystemExit("--steps and --warmup must be at least 1.")
    config = unet_config("standard")
    print(f"chapter 01's UNet {config['channels']}, batch {config['batch_size']}, {platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; {args.warmup} warm-up steps, "
          f"{args.steps} timed")
    rows = {}
    for variant in args.variants:
        rows[variant] = train_steps(variant, config, args.steps, args.warmup)
    base = rows.get("eager")
    print(f"{'variant':<15} {'first steps (s)':>16} {'s/step':>8} {'speed-up':>9} {'max |Δ loss| vs eager':>22}")
    for variant, row in rows.items():
        speedup = f"{base['seconds_per_step'] / row['seconds_per_step']:.2f}×" if base else "—"
        gap = (f"{max(abs(a - b) for a, b in zip(row['losses'], base['losses'])):.2e}" if base else "—")
        print(f"{variant:<15} {row['first_steps_seconds']:>16.2f} {row['seconds_per_step']:>8.4f} {speedup:>9} {gap:>22}")
    steps = config["steps"]
    if base:
        print(f"\nat {steps:,} steps (the standard budget), eager trains for {steps * base['seconds_per_step'] / 60:.1f} "
              "minutes on this machine; each variant's minutes, first steps included:")
        for variant, row in rows.items():
            print(f"  {variant:<15} {(row['first_steps_seconds'] + steps * row['seconds_per_step']) / 60:.1f}")


if __name__ == "__main__":
    main()
