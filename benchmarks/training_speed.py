"""Benchmark: can a training step of the course's costliest models be made cheaper on this machine?

    python benchmarks/training_speed.py                 # chapter 01's UNet, 60 timed steps per variant (about 5 minutes on 2 cores)
    python benchmarks/training_speed.py --model ch05    # chapter 05's text-conditional base model (about 8 minutes)
    python benchmarks/training_speed.py --steps 200

Each variant trains the standard model (``ch01``: ``ch01_ddpm.unet_config("standard")``, ε-prediction
with min-SNR weighting on Fashion-MNIST; ``ch05``: ``ch05_glide.base_config("standard")``, the same
loss on captioned scenes with GLIDE's dropped captions) from the same initial weights on the same
batches with the chapter's loss and Adam at the chapter's learning rate, one change at a time:

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
from typing import Callable

import torch

from gensynth_course.data.fashion_mnist import load_fashion_mnist
from gensynth_course.experiments import ch05_glide, fashion_diffusion
from gensynth_course.experiments.ch01_ddpm import unet_config
from gensynth_course.models.diffusion.schedulers import DDPMScheduler

VARIANTS = ("eager", "channels-last", "torch.compile")
MODELS = ("ch01", "ch05")


def timed_model(name: str) -> tuple[dict, Callable, Callable, Callable]:
    """``(config, build, batch_fn, loss)`` of the model ``name`` times: ``build()`` makes it with
    fresh weights, and ``loss(network, batch, generator, memory_format)`` is its chapter's loss."""
    if name == "ch01":
        config = unet_config("standard")
        scheduler = DDPMScheduler(fashion_diffusion.betas(config["schedule"], config["T"]))

        def loss(network, batch, generator, memory):
            return scheduler.loss(network, batch[0].contiguous(memory_format=memory), generator,
                                  min_snr_gamma=config["min_snr_gamma"])

        batch_fn = load_fashion_mnist("train").batch_fn(config["batch_size"], config["seed"], drop_last=True)
        return config, lambda: fashion_diffusion.build(config), batch_fn, loss
    config = ch05_glide.base_config("standard")
    chapter_loss = ch05_glide.text_diffusion_loss(config)

    def loss(network, batch, generator, memory):
        x0, *rest = batch
        return chapter_loss(network, (x0.contiguous(memory_format=memory), *rest), generator)

    return config, lambda: ch05_glide.build_text_unet(config), ch05_glide.scene_batch_fn(config), loss


def train_steps(variant: str, timed: tuple, steps: int, warmup: int) -> dict:
    """Train ``warmup + steps`` steps of ``timed`` (:func:`timed_model`) under ``variant``; the
    seconds of the warm-up, seconds per timed step, and every step's loss."""
    config, build, batch_fn, loss_fn = timed
    torch.manual_seed(config["seed"])
    model = build()
    memory = torch.channels_last if variant == "channels-last" else torch.contiguous_format
    model = model.to(memory_format=memory)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    network = torch.compile(model) if variant == "torch.compile" else model
    generator = torch.Generator().manual_seed(config["seed"])
    losses = []
    start = time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            timed_from = time.perf_counter()
        loss = loss_fn(network, batch_fn(step, generator), generator, memory)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])
        optimizer.step()
        losses.append(loss.item())
    return {"first_steps_seconds": timed_from - start, "seconds_per_step": (time.perf_counter() - timed_from) / steps,
            "losses": losses}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per variant, after the warm-up")
    parser.add_argument("--warmup", type=int, default=5, help="steps before the timing starts (compilation included)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--model", choices=MODELS, default="ch01",
                        help="chapter 01's UNet or chapter 05's text-conditional base model")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        raise SystemExit("--steps and --warmup must be at least 1.")
    timed = timed_model(args.model)
    config = timed[0]
    print(f"chapter {args.model[2:]}'s {config['model']} {config['channels']}, batch {config['batch_size']}, "
          f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; {args.warmup} warm-up "
          f"steps, {args.steps} timed")
    rows = {}
    for variant in args.variants:
        rows[variant] = train_steps(variant, timed, args.steps, args.warmup)
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
