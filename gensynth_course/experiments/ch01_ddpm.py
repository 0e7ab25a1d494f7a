"""Chapter 01's experiments: what is trained, at which budget, and how it is measured.

The chapter notebook, ``python -m gensynth_course eval 01`` and ``benchmarks/ddpm_unets.py`` all
call these functions, so the numbers in the book, on the command line and in the benchmark come
from the same code and the same cached models.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch

from gensynth_course.budget import by_budget
from gensynth_course.cache import config_hash, load_study, save_study, write_atomic
from gensynth_course.data.fashion_mnist import CLASSES, load_fashion_mnist
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.fashion_classifier import classifier_config, load_classifier
from gensynth_course.evaluation.metrics import FashionFD, features, predicted_classes
from gensynth_course.experiments import Training
from gensynth_course.experiments.fashion_diffusion import betas, load_diffusion, load_unet, unet_config
from gensynth_course.images import to_uint8
from gensynth_course.models.diffusion.schedulers import DDIMScheduler, DDPMScheduler, sample

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
N_EVAL_SAMPLES = 2048

# The seed tutorial's recipe: 20 epochs of batch 128 (469 steps an epoch), Adam 1e-3, T = 1000.
SEED_RECIPE = dict(model="SeedUNet", schedule="linear", T=1000, batch_size=128, lr=1e-3,
                   epochs=20, steps=20 * math.ceil(60_000 / 128), seed=0)

# The seed recipe's samples, kept as data (8-bit PNG grids, 64 images a row) so that every eval
# measures them again with the classifier of the day: ``benchmarks/ddpm_unets.py --seed-recipe``
# trains the recipe once and writes them, with how they were made, into this folder.
SEED_SAMPLES = Path(__file__).resolve().parents[1] / "data" / "seed_recipe"
N_SEED_SAMPLES = 2048
SEED_SAMPLERS = {
    "tutorial": dict(sampler="ancestral", steps=1000, clip_sample=False, per_image_minmax=True,
                     about="the tutorial's own pipeline: 1000 ancestral steps with σ² = β_t, no clipping, "
                           "each image stretched from its own minimum to its own maximum"),
    "clipped": dict(sampler="ancestral", steps=1000, clip_sample=True, per_image_minmax=False,
                    about="the tutorial's weights under the course's sampler: 1000 ancestral steps with "
                          "σ² = β_t and x̂₀ clipped to [−1, 1]"),
}


def sampling_config(budget: str) -> dict:
    """How chapter 01 samples for its measurement: Algorithm 2 respaced to a few steps with
    σ² = β̃_t (DDPM eq. 7; the same chain as DDIM with η = 1), clipped x̂_0, a fixed seed, N samples
    (as many as the seed recipe's stored samples at the standard budget). On the standard UNet it
    beat deterministic DDIM at 50 steps (``benchmarks/ddpm_unets.py`` and the chapter's section 7
    measure both)."""
    return dict(sampler="ancestral", variance="beta_tilde", eta=0.0,
                steps=by_budget(quick=10, standard=50, full=100, budget=budget),
                n=by_budget(quick=100, standard=N_EVAL_SAMPLES, budget=budget), seed=0)


def sampler_name(s: dict) -> str:
    """A sampling config (:func:`sampling_config`) in words: 'ddim, 50 steps', 'ancestral (β̃), 100 steps'."""
    kind = (f"ancestral ({'β' if s['variance'] == 'beta' else 'β̃'})" if s["sampler"] == "ancestral"
            else "ddim" if not s["eta"] else f"ddim (η = {s['eta']:g})")
    return f"{kind}, {s['steps']} steps"


def equal_time_config(model_name: str, seconds: float, budget: str) -> dict:
    """The seed tutorial's UNet ('seed') or ours ('ours'), each with its own recipe (the seed's: batch
    128, Adam 1e-3, no EMA), trained for ``seconds`` of wall-clock time: equal-time comparisons."""
    if model_name == "seed":
        return dict(SEED_RECIPE, steps=10**7, seconds=seconds)
    if model_name == "ours":
        return dict(unet_config(budget), lr_schedule="constant", steps=10**7, seconds=seconds)
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
             device: torch.device | str | None = None, clip: bool = True, variance: str = "beta", eta: float = 0.0):
    """Sample ``n`` images with ``sampler`` = 'ancestral' (Algorithm 2, respaced when ``steps`` < T,
    with σ² = ``variance``: 'beta' or 'beta_tilde') or 'ddim' (with noise ``eta``: 0 is deterministic,
    1 is as stochastic as ancestral sampling with β̃), on ``device`` (where the model is, unless
    given); the images come back on the CPU, clamped to [−1, 1] unless ``clip`` is False."""
    generator = torch.Generator().manual_seed(seed)
    b = betas(schedule)
    if sampler not in ("ancestral", "ddim"):
        raise ValueError(f"sampler must be 'ancestral' or 'ddim', not {sampler!r}")
    scheduler = (DDPMScheduler(b, variance=variance, clip_sample=clip_sample) if sampler == "ancestral"
                 else DDIMScheduler(b, eta=eta, clip_sample=clip_sample))
    if device is not None:
        model.to(device)
    images, snapshots = sample(model, scheduler, (n, 1, 28, 28), steps, generator=generator,
                               frames=frames, progress=progress, clip=clip)
    return (images, snapshots) if frames else images


def fd_metric(classifier: dict) -> tuple[FashionFD, torch.Tensor]:
    """FD-FMNIST with the course classifier of config ``classifier`` (:func:`classifier_config`), plus
    the training images for the real-vs-real baseline."""
    classifier, _ = load_classifier(classifier)
    return FashionFD(classifier, load_fashion_mnist("test").images), load_fashion_mnist("train").images


def per_image_minmax(x: torch.Tensor) -> torch.Tensor:
    """The tutorial's own output step: each image stretched from its own minimum to its own maximum
    (its ``generate_new_images`` and ``show_images`` both do this), here to [−1, 1]."""
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - low) / (high - low).clamp_min(1e-8) * 2 - 1


def sample_seed_recipe(model, name: str, n: int = N_SEED_SAMPLES, seed: int = 0,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """``n`` images of the seed recipe's ``model`` under the sampler ``name`` of :data:`SEED_SAMPLERS`,
    from the generator seeded with ``seed``, in [−1, 1]."""
    how = SEED_SAMPLERS[name]
    raw = generate(model, how["sampler"], how["steps"], n, seed=seed, clip_sample=how["clip_sample"],
                   device=device, clip=not how["per_image_minmax"])
    return per_image_minmax(raw) if how["per_image_minmax"] else raw


def _seed_samples_file(name: str) -> Path:
    return SEED_SAMPLES / f"{name}.png"


def save_seed_samples(samples: dict[str, torch.Tensor], record: dict) -> Path:
    """Write each sampler's images (``samples``: name of :data:`SEED_SAMPLERS` → images in [−1, 1]) as an
    8-bit PNG grid of 64 a row, and ``samples.json`` with ``record`` (recipe, machine, seconds), how
    each set was sampled and its SHA-256. Every file is written atomically."""
    files = {}
    for name, images in samples.items():
        if len(images) % 64:
            raise ValueError(f"{len(images)} images do not fill rows of 64; sample a multiple of 64.")
        tiles = to_uint8(images)[:, 0].reshape(-1, 64, 28, 28).permute(0, 2, 1, 3).reshape(-1, 64 * 28)
        buffer = io.BytesIO()
        imageio.imwrite(buffer, tiles.numpy(), format="png")
        write_atomic(buffer.getvalue(), _seed_samples_file(name))
        files[name] = {**SEED_SAMPLERS[name], "images": len(images), "seed": 0,
                       "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
    manifest = SEED_SAMPLES / "samples.json"
    write_atomic((json.dumps({**record, "samples": files}, indent=2, ensure_ascii=False) + "\n").encode(), manifest)
    return manifest


def load_seed_samples(name: str) -> torch.Tensor:
    """The stored samples of the seed recipe under sampler ``name`` as uint8 (N, 1, 28, 28), checked
    against the SHA-256 that ``samples.json`` records; a missing or altered file says what to do."""
    redo = "run `python benchmarks/ddpm_unets.py --seed-recipe` in a clone to write them again"
    try:
        entry = json.loads((SEED_SAMPLES / "samples.json").read_text())["samples"][name]
        data = _seed_samples_file(name).read_bytes()
    except (OSError, ValueError, KeyError) as error:
        raise FileNotFoundError(f"the seed recipe's {name!r} samples are missing from {SEED_SAMPLES} "
                                f"({type(error).__name__}); {redo}.") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ValueError(f"{_seed_samples_file(name)} does not match its SHA-256 in samples.json; restore it "
                         f"from the repository (git checkout -- gensynth_course/data/seed_recipe) or {redo}.")
    tiles = torch.from_numpy(np.asarray(imageio.imread(io.BytesIO(data)), dtype=np.uint8))
    images = tiles.reshape(-1, 28, 64, 28).permute(0, 2, 1, 3).reshape(-1, 1, 28, 28)
    return images[:entry["images"]]


def class_shares(classifier: torch.nn.Module, images: torch.Tensor) -> dict:
    """Which classes the classifier sees in ``images``: the share of each class (Fashion-MNIST has 10 %
    of each), and the rarest class by name with its share and 95 % bootstrap interval over the images."""
    predicted = predicted_classes(classifier, images)
    shares = torch.bincount(predicted, minlength=len(CLASSES)).double() / len(predicted)
    rarest = int(shares.argmin())
    return {"class_shares": [round(float(v), 4) for v in shares], "rarest_class": CLASSES[rarest],
            "rarest_class_share": stats.rounded(stats.interval((predicted == rarest).double()))}


def seed_samples(n: int) -> dict[str, torch.Tensor]:
    """The first ``n`` stored samples of the seed recipe under each of :data:`SEED_SAMPLERS`, uint8."""
    return {name: load_seed_samples(name)[:n] for name in SEED_SAMPLERS}


def seed_reference(fd_metric_: FashionFD, train_images: torch.Tensor, samples: dict[str, torch.Tensor]) -> dict:
    """The seed recipe measured today, by the classifier of ``fd_metric_``, on its stored ``samples``
    (:func:`seed_samples`): FD-FMNIST with its interval and KID
    (:meth:`~gensynth_course.evaluation.metrics.FashionFD.report`), and the class shares
    (:func:`class_shares`), for each sampler."""
    return {name: {**fd_metric_.report(images, train_images), **class_shares(fd_metric_.classifier, images)}
            for name, images in samples.items()}


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


def evaluate(budget: str, studies: bool = True) -> dict:
    """``python -m gensynth_course eval 01``: train or load our UNet, sample, and measure it by the
    course's FD-FMNIST protocol (what the notebook shows, with ``studies=False``): FD with its interval
    and KID at N samples, the real-vs-real floor at the same N and the ratio of the two, and the
    class shares; beside it the seed recipe's stored samples, measured now with the same classifier
    (:func:`seed_reference`), and our FD minus theirs with an (unpaired) bootstrap interval. Then
    two studies the notebook reads from the cache: ``sampler_minus_ddim``, the chapter's sampler
    minus deterministic DDIM at as many steps on the same N (what chose the sampler), and the drift
    experiment (:func:`drift_study`, a few minutes more)."""
    fd_metric_, train_images = fd_metric(classifier_config(budget))     # the cached classifier is not timed
    _, classifier_info = load_classifier(classifier_config(budget))
    start = time.perf_counter()
    model, info = load_unet(unet_config(budget))
    s = sampling_config(budget)
    samples = generate(model, s["sampler"], s["steps"], s["n"], seed=s["seed"], variance=s["variance"], eta=s["eta"])
    ours = fd_metric_.report(samples, train_images)
    floor = ours["fd_floor_same_n"]
    seeds = seed_samples(s["n"])                                        # read and checked once
    seed_recipe = seed_reference(fd_metric_, train_images, seeds)
    feats = {name: features(fd_metric_.classifier, images).numpy() for name, images in {"ours": samples, **seeds}.items()}
    result = {
        **ours,
        f"fd_ratio_{s['n']}": {"value": round(ours["fd"] / floor, 2), "ci_low": round(ours["fd_ci_low"] / floor, 2),
                               "ci_high": round(ours["fd_ci_high"] / floor, 2), "n": s["n"]},
        "fd_noise": round(fd_metric_.noise(s["n"]), 3),
        "fd_seed_reference": seed_recipe["tutorial"]["fd"],
        "fd_seed_reference_best_sampler": seed_recipe["clipped"]["fd"],
        "seed_reference": seed_recipe,
        **{f"fd_minus_seed_reference{'' if name == 'tutorial' else '_best_sampler'}": stats.rounded(stats.difference(
            feats["ours"], feats[name], statistic=fd_metric_.of_features, paired=False), 3) for name in SEED_SAMPLERS},
        **class_shares(fd_metric_.classifier, samples),
        "classifier_test_accuracy": classifier_info["test_accuracy"],
        "classifier_hash": f"{config_hash(classifier_config(budget))}-{classifier_info['code_hash']}",
        "samples": s["n"],
        "sampler": sampler_name(s),
        "train_steps": info["steps"],
        "train_seconds": round(info["seconds"], 1),
        "measure_seconds": round(time.perf_counter() - start, 1),
    }
    if studies:
        ddim = generate(model, "ddim", s["steps"], s["n"], seed=s["seed"], progress=False)
        result["ddim_fd"] = round(fd_metric_(ddim), 3)
        result["sampler_minus_ddim"] = stats.rounded(stats.difference(
            feats["ours"], features(fd_metric_.classifier, ddim).numpy(), statistic=fd_metric_.of_features,
            paired=False), 3)
        result["drift"] = drift_study({name: drift_config(first_norm, budget) for name, first_norm in DRIFT_RUNS.items()},
                                      by_budget(quick=8, standard=64, full=256, budget=budget))
        save_study(CHAPTER, result, {"unet": info["model_id"]})
    return result


def cached_study(unet_info: dict) -> dict | None:
    """The results of the last ``eval 01`` measured beside the UNet whose info (as
    :func:`~gensynth_course.experiments.fashion_diffusion.load_unet` returned it) is given, or None."""
    return load_study(CHAPTER, {"unet": unet_info["model_id"]})
