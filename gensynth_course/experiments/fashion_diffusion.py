"""Diffusion on Fashion-MNIST, as chapters 01 and 03 train it: the noise schedules by name, the
UNet's recipe, and one function that trains (or loads) any ε-prediction model of the course's
Fashion-MNIST chapters."""

from __future__ import annotations

import torch

from gensynth_course.budget import by_budget
from gensynth_course.cache import load_or_train
from gensynth_course.data.fashion_mnist import load_fashion_mnist
from gensynth_course.models.diffusion.guidance import drop_labels
from gensynth_course.models.diffusion.schedulers import DDPMScheduler, cosine_betas, linear_betas
from gensynth_course.models.diffusion.seed_unet import SeedUNet
from gensynth_course.models.diffusion.unet import UNet
from gensynth_course.train import fit


def unet_config(budget: str) -> dict:
    """Our UNet's recipe. Small batches and a high learning rate with warm-up that decays along a
    half cosine, EMA weights and min-SNR loss weighting are what make a few CPU minutes count; see
    chapter 01 for each choice."""
    return dict(model="UNet", channels=[24, 48], blocks=1, patch=2, schedule="linear", T=1000,
                batch_size=32, lr=2e-3, warmup=100, lr_schedule="cosine", grad_clip=1.0, min_snr_gamma=5.0, seed=0,
                ema_decay=by_budget(quick=0.99, standard=0.998, full=0.9995, budget=budget),
                steps=by_budget(quick=60, standard=7200, full=30_000, budget=budget))


def betas(schedule: str, T: int = 1000) -> torch.Tensor:
    if schedule == "linear":
        return linear_betas(T)
    if schedule == "cosine":
        return cosine_betas(T)
    raise ValueError(f"unknown schedule {schedule!r}; use 'linear' or 'cosine'")


def build(config: dict) -> torch.nn.Module:
    if config["model"] == "SeedUNet":
        return SeedUNet(config["T"], first_norm=config.get("first_norm", True))
    return UNet(channels=tuple(config["channels"]), blocks=config["blocks"], patch=config["patch"],
                num_classes=config.get("num_classes", 0), learn_sigma=config.get("learn_sigma", False))


def load_diffusion(config: dict, name: str, preview=None, preview_every: int = 0,
                   device: torch.device | str | None = None, chapter: str = "ch01_ddpm"):
    """Train (or load from the cache) one ε-prediction model described by ``config``, on ``device``
    (the course's device unless given), where the returned model stays. It is cached under ``chapter``.

    A config with ``num_classes`` trains a class-conditional UNet whose labels are replaced by the
    null label with probability ``p_uncond`` (classifier-free guidance, chapter 03); one with
    ``learn_sigma`` and ``vlb_weight`` = λ a UNet that also learns its variances, with the hybrid
    loss L_simple + λ L_vlb (Nichol & Dhariwal 2021, eq. 16; chapter 03). ``lr_schedule="cosine"``
    decays the learning rate to zero along a half cosine; ``hflip`` mirrors each training image
    left to right with probability 1/2."""
    def train(model, checkpoint):
        scheduler = DDPMScheduler(betas(config["schedule"], config["T"]))
        batch_fn = load_fashion_mnist("train").batch_fn(config["batch_size"], config["seed"],
                                                       drop_last=config["model"] != "SeedUNet")
        gamma, vlb_weight = config.get("min_snr_gamma"), config.get("vlb_weight", 0.0)

        def loss_fn(m, batch, generator):
            x, y = batch
            if config.get("hflip"):                   # each image mirrored left–right with probability 1/2
                flip = torch.rand(len(x), generator=generator).to(x.device) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            if not config.get("num_classes"):
                return scheduler.loss(m, x, generator, min_snr_gamma=gamma, vlb_weight=vlb_weight)
            y = drop_labels(y, config["p_uncond"], m.null_label, generator)
            return scheduler.loss(m, x, generator, min_snr_gamma=gamma, vlb_weight=vlb_weight, y=y)

        history = fit(model, loss_fn, batch_fn, config["steps"], lr=config["lr"], seed=config["seed"],
                      seconds=config.get("seconds"), ema_decay=config.get("ema_decay"), warmup=config.get("warmup", 0),
                      schedule=config.get("lr_schedule", "constant"),
                      grad_clip=config.get("grad_clip"), preview=preview, preview_every=preview_every,
                      checkpoint=checkpoint, desc=f"training {name}", device=device)
        return {k: history[k] for k in ("losses", "steps", "seconds", "examples_per_second")}

    return load_or_train(chapter, name, config, lambda: build(config), train, device=device)


def load_unet(config: dict, preview=None, preview_every: int = 0, device: torch.device | str | None = None):
    """Chapter 01's UNet of ``config`` (:func:`unet_config`), from the cache or trained now."""
    return load_diffusion(config, "unet", preview, preview_every, device, chapter="ch01_ddpm")
