"""Chapter 01's experiments: what is trained, at which budget, and how it is measured.

The chapter notebook, ``python -m gensynth_course eval 01`` and ``benchmarks/ddpm_unets.py`` all
call these functions, so the numbers in the book, on the command line and in the benchmark come
from the same code and the same cached models.
"""

from __future__ import annotations

import math
import time

import torch

from gensynth_course.budget import by_budget
from gensynth_course.cache import config_hash, load_study, save_study
from gensynth_course.course import REPO_ROOT
from gensynth_course.data.fashion_mnist import load_fashion_mnist
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.fashion_classifier import classifier_config, load_classifier
from gensynth_course.evaluation.metrics import FashionFD, class_histogram
from gensynth_course.experiments import Training
from gensynth_course.experiments.fashion_diffusion import betas, load_diffusion, load_unet, unet_config
from gensynth_course.models.diffusion.schedulers import DDIMScheduler, DDPMScheduler, sample

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
N_EVAL_SAMPLES = 1000
RESULTS_FILE = REPO_ROOT / "benchmarks" / "results" / "seed_reference.json"

# The seed tutorial's recipe: 20 epochs of batch 128 (469 steps an epoch), Adam 1e-3, T = 1000.
SEED_RECIPE = dict(model="SeedUNet", schedule="linear", T=1000, batch_size=128, lr=1e-3,
                   epochs=20, steps=20 * math.ceil(60_000 / 128), seed=0)


def sampling_config(budget: str) -> dict:
    """How chapter 01 samples for its measurement: DDIM, clipped x̂_0, a fixed seed."""
    return dict(sampler="ddim", steps=by_budget(quick=10, standard=50, full=100, budget=budget),
                n=by_budget(quick=100, standard=N_EVAL_SAMPLES, budget=budget), seed=0)


def equal_time_config(model_name: str, seconds: float, budget: str) -> dict:
    """The seed tutorial's UNet ('seed') or ours ('ours'), each with its own recipe (the seed's: batch
    128, Adam 1e-3, no EMA), trained for ``seconds`` of wall-clock time: equal-time comparisons."""
    if model_name == "seed":
        return dict(SEED_RECIPE, steps=10**7, seconds=seconds)
    if model_name == "ours":
        return dict(unet_config(budget), steps=10**7, seconds=seconds)
    raise ValueError("model_name must be 'seed' or 'ours'")


def load_equal_time(config: dict, device: torch.device | str | None = None):
    """The model of :func:`equal_time_config`, from the cache or trained now for its seconds."""
    return load_diffusion(config, f"equal_time_{'seed' if config['model'] == 'SeedUNet' else 'ours'}", device=device)


def seed_reference_model(device: torch.device | str | None = None):
    """The seed tutorial's UNet trained with its own full recipe (about 1.5 hours on 2 CPU cores,
    a few minutes on a GPU)."""
    return load_diffusion(SEED_RECIPE, "seed_unet_reference", device=device)


def generate(model, sampler: str, steps: int, n: int, seed: int = 0, schedule: str = "linear",
             clip_sample: bool = True, frames: int = 0, progress: bool = True,
             device: torch.device | str | None = None):
    """Sample ``n`` images with ``sampler`` = 'ancestral' (Algorithm 2) or 'ddim', on ``device``
    (where the model is, unless given); the images come back on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    b = betas(schedule)
    scheduler = (DDPMScheduler(b, clip_sample=clip_sample) if sampler == "ancestral"
                 else DDIMScheduler(b, clip_sample=clip_sample))
    if device is not None:
        model.to(device)
    images, snapshots = sample(model, scheduler, (n, 1, 28, 28), steps, generator=generator,
                               frames=frames, progress=progress)
    return (images, snapshots) if frames else images


def fd_metric(classifier: dict) -> tuple[FashionFD, torch.Tensor]:
    """FD-FMNIST with the course classifier of config ``classifier`` (:func:`classifier_config`), plus
    the training images for the real-vs-real baseline."""
    classifier, _ = load_classifier(classifier)
    return FashionFD(classifier, load_fashion_mnist("test").images), load_fashion_mnist("train").images


def seed_reference() -> dict | None:
    """The seed recipe's recorded result (``benchmarks/results/seed_reference.json``), if it was run."""
    import json

    if not RESULTS_FILE.exists():
        return None
    return json.loads(RESULTS_FILE.read_text())


def drift_config(first_norm: bool, budget: str) -> dict:
    """The tutorial's recipe, cut to a few minutes of training, with (``first_norm``) or without the
    LayerNorm on its input: the drift experiment's two networks."""
    return dict(SEED_RECIPE, first_norm=first_norm, steps=10**7,
                seconds=by_budget(quick=3, standard=150, full=150, budget=budget))


def unseen_shift(model, scale: float = 1.7, shift: float = 0.3, n: int = 8, seed: int = 0) -> float:
    """The largest change of ε̂(x, t) when every input image x is stretched by ``scale`` and shifted
    by ``shift`` (random x and t): 0 for a network that cannot see an image's mean or scale."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=generator)
    t = torch.randint(0, 1000, (n,), generator=generator)
    device = next(model.parameters()).device
    with torch.no_grad():
        a, b = (model(v.to(device), t.to(device)).cpu() for v in (x, scale * x + shift))
    return float((a - b).abs().max())


def unseen_mean_spread(schedule: str = "linear", pixels: int = 28 * 28) -> float:
    """The standard deviation of an image's final mean pixel under ancestral sampling (σ² = β_t, no
    clipping) by a network blind to that mean: the mean of x_T (variance 1/pixels) and of each
    step's fresh noise (β_t/pixels) is divided by √α_t at every later step and never corrected,
    so V_{t−1} = V_t / α_t + β_t / pixels from V_T = 1/pixels (Ho et al. 2020, Algorithm 2)."""
    b = betas(schedule)
    variance = 1.0 / pixels
    for t in range(len(b) - 1, 0, -1):
        variance = variance / (1 - float(b[t])) + float(b[t]) / pixels
    return math.sqrt(variance / (1 - float(b[0])))


DRIFT_RUNS = {"tutorial": True, "without_first_layernorm": False}      # name → first_norm


def drift_study(configs: dict[str, dict], n: int) -> dict:
    """Why the tutorial's sampler drifts: its UNet trained for a few minutes with and without the
    LayerNorm on its input (``configs``: name of :data:`DRIFT_RUNS` → :func:`drift_config`), each
    sampled as the tutorial does (``n`` images, 1000 ancestral steps, σ² = β_t, no clipping, the
    same noise for both), and measured by each image's mean pixel (its spread and its size, with
    95 % bootstrap intervals over the images), the share of pixels in [−1, 1], the network's
    blindness to an image's mean and scale (:func:`unseen_shift`), and the spread that blindness
    alone predicts (:func:`unseen_mean_spread`)."""
    out, sizes = {}, {}
    for name, config in configs.items():
        model, info = load_diffusion(config, f"drift_{name}")
        raw, _ = sample(model, DDPMScheduler(betas("linear"), clip_sample=False), (n, 1, 28, 28), 1000,
                        generator=torch.Generator().manual_seed(0), progress=False, clip=False)
        means = raw.flatten(1).mean(1)
        sizes[name] = means.abs()
        out[name] = {"unseen_shift": round(unseen_shift(model), 6),
                     "image_mean_spread": stats.rounded(stats.interval(means.numpy(), lambda m: float(m.std(ddof=1)))),
                     "image_mean_size": stats.rounded(stats.interval(sizes[name])),
                     "share_in_range": stats.rounded(stats.interval((raw.abs() <= 1).double().flatten(1).mean(1))),
                     "train_steps": info["steps"], "train_seconds": round(info["seconds"], 1)}
    out["predicted_spread_if_blind"] = round(unseen_mean_spread(), 3)
    out["size_difference"] = stats.rounded(stats.difference(sizes["tutorial"], sizes["without_first_layernorm"]))
    out["images"] = n
    return out


def trainings(budget: str) -> list[Training]:
    """What the notebook trains at ``budget`` for a number of steps: the UNet and the classifier whose
    features FD-FMNIST reads (the equal-time runs train for a number of seconds instead)."""
    return [Training("unet", unet_config(budget), load_unet),
            Training("fashion_classifier", classifier_config(budget), load_classifier)]


def evaluate(budget: str, drift: bool = True) -> dict:
    """``python -m gensynth_course eval 01``: train or load our UNet, sample, and measure it by the
    course's FD-FMNIST protocol (what the notebook shows, with ``drift=False``); then the drift
    experiment (:func:`drift_study`, a few minutes more), kept in the cache for the notebook."""
    fd_metric_, train_images = fd_metric(classifier_config(budget))     # the cached classifier is not timed
    _, classifier_info = load_classifier(classifier_config(budget))
    start = time.perf_counter()
    model, info = load_unet(unet_config(budget))
    s = sampling_config(budget)
    samples = generate(model, s["sampler"], s["steps"], s["n"], seed=s["seed"])
    shares = class_histogram(fd_metric_.classifier, samples)
    reference = seed_reference()
    # The seed recipe's FD is comparable only if it was measured with this very classifier: the same
    # config and the same code (the feature space of FD-FMNIST is that network's).
    same_classifier = (reference is not None
                       and reference.get("classifier_config_hash") == config_hash(classifier_config("standard"))
                       and reference.get("classifier_code_hash") == classifier_info["code_hash"])
    result = {
        **fd_metric_.report(samples, train_images),
        "fd_noise": round(fd_metric_.noise(s["n"]), 3),
        "fd_seed_reference": None,
        "fd_seed_reference_best_sampler": None,
        "min_class_share": round(float(shares.min()), 4),
        "class_shares": [round(float(v), 4) for v in shares],
        "classifier_test_accuracy": classifier_info["test_accuracy"],
        "classifier_hash": f"{config_hash(classifier_config(budget))}-{classifier_info['code_hash']}",
        "samples": s["n"],
        "sampler": f"{s['sampler']}, {s['steps']} steps",
        "train_steps": info["steps"],
        "train_seconds": round(info["seconds"], 1),
        "measure_seconds": round(time.perf_counter() - start, 1),
    }
    if same_classifier and s["n"] == reference["samples"]:
        result["fd_seed_reference"] = reference["fd_seed_reference"]
        result["fd_seed_reference_best_sampler"] = reference.get("fd_seed_reference_best_sampler")
    else:
        result["note"] = ("fd_seed_reference is missing: run `python benchmarks/ddpm_unets.py --seed-recipe` once "
                          "(about 1.5 hours on 2 CPU cores, 5 minutes with --device cuda); it is only comparable "
                          "at the standard budget, measured with this very classifier (config and code).")
    if drift:
        result["drift"] = drift_study({name: drift_config(first_norm, budget) for name, first_norm in DRIFT_RUNS.items()},
                                      by_budget(quick=8, standard=64, full=256, budget=budget))
        save_study(CHAPTER, result, {"unet": info["model_id"]})
    return result


def cached_study(unet_info: dict) -> dict | None:
    """The results of the last ``eval 01`` measured beside the UNet whose info (as
    :func:`~gensynth_course.experiments.fashion_diffusion.load_unet` returned it) is given, or None."""
    return load_study(CHAPTER, {"unet": unet_info["model_id"]})
