"""Chapter 01's experiments: what is trained, at which budget, and how it is measured.

The chapter notebook, ``python -m gensynth_course eval 01`` and ``benchmarks/ddpm_unets.py`` all
call these functions, so the numbers in the book, on the command line and in the benchmark come
from the same code and the same cached models.
"""

from __future__ import annotations

import math
import time

import torch

from .budget import by_budget, check_budget
from .cache import config_hash, load_or_train
from .course import REPO_ROOT
from .classifier import classifier_config, load_classifier
from .data import load_fashion_mnist
from .diffusion import DDIMScheduler, DDPMScheduler, cosine_betas, linear_betas, sample
from .guidance import drop_labels
from .metrics import FashionFD, class_histogram
from .seed_unet import SeedUNet
from .seeding import seed_everything
from .train import fit
from .unet import UNet

CHAPTER = "ch01"
N_EVAL_SAMPLES = 1000
RESULTS_FILE = REPO_ROOT / "benchmarks" / "results" / "seed_reference.json"

# The seed tutorial's recipe: 20 epochs of batch 128 (469 steps an epoch), Adam 1e-3, T = 1000.
SEED_RECIPE = dict(model="SeedUNet", schedule="linear", T=1000, batch_size=128, lr=1e-3,
                   epochs=20, steps=20 * math.ceil(60_000 / 128), seed=0)


def unet_config(budget: str | None = None) -> dict:
    """Our UNet's recipe. Small batches and a high learning rate with warm-up, EMA weights and
    min-SNR loss weighting are what make a few CPU minutes count; see chapter 01 for each choice."""
    return dict(model="UNet", channels=[24, 48], blocks=1, patch=2, schedule="linear", T=1000,
                batch_size=32, lr=2e-3, warmup=100, grad_clip=1.0, min_snr_gamma=5.0, seed=0,
                ema_decay=by_budget(quick=0.99, standard=0.998, full=0.9995, budget=budget),
                steps=by_budget(quick=60, standard=3600, full=30_000, budget=budget))


def sampling_config(budget: str | None = None) -> dict:
    """How chapter 01 samples for its measurement: DDIM, clipped x̂_0, a fixed seed."""
    return dict(sampler="ddim", steps=by_budget(quick=10, standard=50, full=100, budget=budget),
                n=by_budget(quick=100, standard=N_EVAL_SAMPLES, budget=budget), seed=0)


def betas(schedule: str, T: int = 1000) -> torch.Tensor:
    if schedule == "linear":
        return linear_betas(T)
    if schedule == "cosine":
        return cosine_betas(T)
    raise ValueError(f"unknown schedule {schedule!r}; use 'linear' or 'cosine'")


def build(config: dict) -> torch.nn.Module:
    if config["model"] == "SeedUNet":
        return SeedUNet(config["T"])
    return UNet(channels=tuple(config["channels"]), blocks=config["blocks"], patch=config["patch"],
                num_classes=config.get("num_classes", 0))


def train_diffusion(config: dict, name: str, budget: str, preview=None, preview_every: int = 0,
                    device: torch.device | str = "cpu", chapter: str = CHAPTER):
    """Train (or load from the cache) one ε-prediction model described by ``config``, on ``device``.

    A config with ``num_classes`` trains a class-conditional UNet whose labels are replaced by the
    null label with probability ``p_uncond`` (classifier-free guidance, chapter 03). The returned
    model is on the CPU either way, so cached weights load anywhere. It is cached under ``chapter``."""
    def train(model, checkpoint):
        generator = seed_everything(config["seed"])
        scheduler = DDPMScheduler(betas(config["schedule"], config["T"]))
        data = load_fashion_mnist("train")
        batches = ((x.to(device), y.to(device)) for x, y in
                   data.batches(config["batch_size"], generator, drop_last=config["model"] != "SeedUNet"))
        gamma = config.get("min_snr_gamma")

        def loss_fn(m, batch):
            x, y = batch
            if not config.get("num_classes"):
                return scheduler.loss(m, x, generator, min_snr_gamma=gamma)
            y = drop_labels(y, config["p_uncond"], m.null_label, generator)
            return scheduler.loss(m, x, generator, min_snr_gamma=gamma, y=y)

        history = fit(model, loss_fn, batches,
                      config["steps"], lr=config["lr"], seconds=config.get("seconds"),
                      ema_decay=config.get("ema_decay"), warmup=config.get("warmup", 0),
                      grad_clip=config.get("grad_clip"), preview=preview, preview_every=preview_every,
                      checkpoint=checkpoint, desc=f"training {name}", device=device)
        model.cpu()
        return {k: history[k] for k in ("losses", "steps", "seconds", "images_per_second")}

    return load_or_train(chapter, name, config, lambda: build(config), train, budget=budget)


def train_unet(budget: str | None = None, preview=None, preview_every: int = 0):
    """Chapter 01's UNet at this budget, from the cache or trained now."""
    budget = check_budget(budget)
    return train_diffusion(unet_config(budget), "unet", budget, preview, preview_every)


def train_for_seconds(model_name: str, seconds: float, budget: str | None = None):
    """Train the seed tutorial's UNet ('seed') or ours ('ours') for ``seconds`` of wall-clock time,
    each with its own recipe (the seed's: batch 128, Adam 1e-3, no EMA), for equal-time comparisons."""
    if model_name == "seed":
        config = dict(SEED_RECIPE, steps=10**7, seconds=seconds)
    elif model_name == "ours":
        config = dict(unet_config(budget), steps=10**7, seconds=seconds)
    else:
        raise ValueError("model_name must be 'seed' or 'ours'")
    return train_diffusion(config, f"equal_time_{model_name}", check_budget(budget))


def seed_reference_model(device: torch.device | str = "cpu"):
    """The seed tutorial's UNet trained with its own full recipe (about 1.5 hours on 2 CPU cores,
    a few minutes on a GPU)."""
    return train_diffusion(SEED_RECIPE, "seed_unet_reference", budget="full", device=device)


def generate(model, sampler: str, steps: int, n: int, seed: int = 0, schedule: str = "linear",
             clip_sample: bool = True, frames: int = 0, progress: bool = True,
             device: torch.device | str = "cpu"):
    """Sample ``n`` images with ``sampler`` = 'ancestral' (Algorithm 2) or 'ddim', on ``device``;
    the images come back on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    b = betas(schedule)
    scheduler = (DDPMScheduler(b, clip_sample=clip_sample) if sampler == "ancestral"
                 else DDIMScheduler(b, clip_sample=clip_sample))
    images, snapshots = sample(model.to(device), scheduler, (n, 1, 28, 28), steps, generator=generator,
                               frames=frames, progress=progress, device=device)
    model.cpu()
    return (images, snapshots) if frames else images


def fd_metric(budget: str | None = None) -> tuple[FashionFD, torch.Tensor]:
    """FD-FMNIST with the course classifier, plus the training images for the real-vs-real baseline."""
    classifier, _ = load_classifier(budget)
    return FashionFD(classifier, load_fashion_mnist("test").images), load_fashion_mnist("train").images


def seed_reference() -> dict | None:
    """The seed recipe's recorded result (``benchmarks/results/seed_reference.json``), if it was run."""
    import json

    if not RESULTS_FILE.exists():
        return None
    return json.loads(RESULTS_FILE.read_text())


def evaluate(budget: str | None = None) -> dict:
    """``python -m gensynth_course eval 01``: train or load our UNet, sample, and measure."""
    budget = check_budget(budget)
    fd_metric_, train_images = fd_metric(budget)            # the cached classifier is not timed
    _, classifier_info = load_classifier(budget)
    start = time.perf_counter()
    model, info = train_unet(budget)
    s = sampling_config(budget)
    samples = generate(model, s["sampler"], s["steps"], s["n"], seed=s["seed"])
    shares = class_histogram(fd_metric_.classifier, samples)
    reference = seed_reference()
    same_classifier = reference is not None and reference.get("classifier_config_hash") == config_hash(classifier_config("standard"))
    result = {
        "fd": round(fd_metric_(samples), 3),
        "fd_real_vs_real": round(fd_metric_.real_vs_real(train_images, s["n"]), 3),
        "fd_noise": round(fd_metric_.noise(s["n"]), 3),
        "fd_seed_reference": None,
        "fd_seed_reference_best_sampler": None,
        "min_class_share": round(float(shares.min()), 4),
        "class_shares": [round(float(v), 4) for v in shares],
        "classifier_test_accuracy": classifier_info["test_accuracy"],
        "samples": s["n"],
        "sampler": f"{s['sampler']}, {s['steps']} steps",
        "train_steps": info["steps"],
        "train_seconds": round(info["seconds"], 1),
        "seconds": round(time.perf_counter() - start, 1),
        "budget": budget,
    }
    if same_classifier and s["n"] == reference["samples"]:
        result["fd_seed_reference"] = reference["fd_seed_reference"]
        result["fd_seed_reference_best_sampler"] = reference.get("fd_seed_reference_best_sampler")
    else:
        result["note"] = ("fd_seed_reference is missing: run `python benchmarks/ddpm_unets.py --seed-recipe` once "
                          "(about 1.5 hours on 2 CPU cores, 5 minutes with --device cuda); it is only comparable "
                          "at the standard budget.")
    return result
