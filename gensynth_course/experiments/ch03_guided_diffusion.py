"""Chapter 03's experiments: the guidance models, the guidance-scale sweep and its measurement.

Classifier guidance steers chapter 01's unconditional UNet (loaded from the cache, or trained) with
a noise-aware classifier; classifier-free guidance uses a class-conditional UNet of the same size
and recipe, trained with label dropout. Every sample is judged by the course's Fashion-MNIST
classifier, a different network from the guidance classifier, trained on clean images only.

The class-conditional UNet also learns its variances, as GLIDE's and ADM's do (Nichol & Dhariwal
2021): :func:`variance_study` samples it with few respaced ancestral steps under its learned Σ and
under the two fixed choices, and :func:`conditional_guidance` guides it with the classifier, in
its conditional mode and in its unconditional one.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from gensynth_course.budget import by_budget
from gensynth_course.cache import load_or_train
from gensynth_course.data.fashion_mnist import load_fashion_mnist, to_model_range
from gensynth_course.device import model_device
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.fashion_classifier import classifier_config, load_classifier
from gensynth_course.evaluation.metrics import FashionFD, features, mean_pairwise_distance
from gensynth_course.experiments import Training, fashion_diffusion
from gensynth_course.models.diffusion.guidance import ClassifierFreeGuidance, ClassifierGuidance
from gensynth_course.models.diffusion.noisy_classifier import NoisyClassifier
from gensynth_course.models.diffusion.schedulers import DDIMScheduler, DDPMScheduler, sample, split_output
from gensynth_course.train import fit

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
NUM_CLASSES = 10


def cfg_unet_config(budget: str) -> dict:
    """Chapter 01's UNet and recipe, plus a label embedding and label dropout p_uncond = 0.1
    (Ho & Salimans found 0.1 to 0.2 best), for a third fewer steps: the label makes the task easier,
    and the classifier of classifier guidance needs the time more. It learns its variances too, with
    the hybrid loss L_simple + 0.001 L_vlb (Nichol & Dhariwal 2021, eq. 16), as GLIDE's UNet does."""
    return dict(fashion_diffusion.unet_config(budget), num_classes=NUM_CLASSES, p_uncond=0.1,
                learn_sigma=True, vlb_weight=0.001, lr_schedule="constant",
                steps=by_budget(quick=60, standard=2400, full=30_000, budget=budget))


def noisy_classifier_config(budget: str) -> dict:
    return dict(model="NoisyClassifier", channels=[32, 64], blocks=1, patch=2, schedule="linear", T=1000,
                batch_size=64, lr=2e-3, warmup=100, seed=0,
                steps=by_budget(quick=40, standard=3000, full=12_000, budget=budget))


def sweep_config(budget: str, for_eval: bool = False) -> dict:
    """The guidance-scale sweep: DDIM with clipped x̂_0, the same initial noise at every scale.
    ``for_eval``: the larger sample ``eval 03`` draws, for narrower intervals than the notebook's
    minutes allow."""
    return dict(sampler="ddim", steps=by_budget(quick=10, standard=25, full=50, budget=budget),
                per_class=by_budget(quick=2, standard=40 if for_eval else 15, full=100, budget=budget), seed=0,
                cfg_scales=by_budget(quick=[0.0, 1.0, 3.0], standard=[0.0, 1.0, 2.0, 3.0, 5.0, 8.0], budget=budget),
                cg_scales=by_budget(quick=[0.0, 4.0], standard=[0.0, 1.0, 4.0, 8.0, 16.0, 32.0], budget=budget))


def variance_config(budget: str, for_eval: bool = False) -> dict:
    """The learned-variance study: respaced ancestral sampling of the class-conditional UNet (s = 1,
    no guidance) at each number of steps, under each variance, from the same noise; and classifier
    guidance of the same UNet in its conditional and its unconditional mode, with the learned Σ.
    ``for_eval``: what ``eval 03`` samples, a longer chain and more guided samples than the notebook.
    ``diagnosis_images``: the noised test images the diagnosis measures x̂_0 and Σ on, at each step."""
    return dict(steps=by_budget(quick=[5, 10], standard=[10, 25, 50, 100] if for_eval else [10, 25],
                                full=[10, 25, 50, 100, 250, 1000], budget=budget),
                variances=["learned", "beta", "beta_tilde", "kl_optimal"],
                per_class=by_budget(quick=2, standard=30, full=100, budget=budget),
                guidance_steps=by_budget(quick=5, standard=25, full=50, budget=budget),
                guidance_scales=by_budget(quick=[0.0, 2.0], standard=[0.0, 2.0, 8.0], full=[0.0, 1.0, 2.0, 4.0, 8.0],
                                          budget=budget),
                guidance_per_class=by_budget(quick=2, standard=20 if for_eval else 12, full=100, budget=budget),
                diagnosis_images=by_budget(quick=100, standard=500, budget=budget), seed=0)


def load_cfg_unet(config: dict, preview=None, preview_every: int = 0, device: torch.device | str | None = None):
    """The class-conditional UNet for classifier-free guidance, from the cache or trained now."""
    return fashion_diffusion.load_diffusion(config, "cfg_unet", preview, preview_every, device, chapter=CHAPTER)


def noised_test_images(steps: list[int], n: int, seed: int = 0):
    """For each step t of ``steps``: (t repeated once per image, the first ``n`` test images x_0,
    x_t ~ q(x_t | x_0), their labels), one noise draw per step from a generator seeded with ``seed``."""
    test = load_fashion_mnist("test")
    x0, y = to_model_range(test.images[:n]), test.labels[:n]
    scheduler = DDPMScheduler(fashion_diffusion.betas("linear"))
    generator = torch.Generator().manual_seed(seed)
    for t in steps:
        tt = torch.full((len(x0),), t, dtype=torch.long)
        yield tt, x0, scheduler.add_noise(x0, torch.randn(x0.shape, generator=generator), tt), y


@torch.no_grad()
def accuracy_by_step(classifier: NoisyClassifier, steps: list[int], n: int = 2000, seed: int = 0) -> list[float]:
    """Test accuracy of the noise-aware classifier on x_t ~ q(x_t | x_0) at each step t."""
    classifier.eval()
    device = model_device(classifier)
    return [round(float((classifier(x_t.to(device), tt.to(device)).argmax(1).cpu() == y).float().mean()), 4)
            for tt, _, x_t, y in noised_test_images(steps, n, seed)]


def load_noisy_classifier(config: dict, device: torch.device | str | None = None):
    """p_φ(y | x_t, t) trained with cross-entropy on x_t at uniformly drawn steps t."""

    def build():
        return NoisyClassifier(channels=tuple(config["channels"]), blocks=config["blocks"], patch=config["patch"])

    def train(model, checkpoint):
        scheduler = DDPMScheduler(fashion_diffusion.betas(config["schedule"], config["T"]))

        def loss_fn(m, batch, generator):
            x0, y = batch
            t = torch.randint(0, config["T"], (len(x0),), generator=generator).to(x0.device)
            x_t = scheduler.add_noise(x0, torch.randn(x0.shape, generator=generator).to(x0.device), t)
            return nn.functional.cross_entropy(m(x_t, t), y)

        history = fit(model, loss_fn, load_fashion_mnist("train").batch_fn(config["batch_size"], config["seed"]),
                      config["steps"], lr=config["lr"], seed=config["seed"], warmup=config["warmup"],
                      checkpoint=checkpoint, desc="noise-aware classifier", device=device)
        steps = [0, 250, 500, 750, 999]
        return {"seconds": history["seconds"], "steps": history["steps"], "losses": history["losses"],
                "accuracy_steps": steps, "accuracy_by_step": accuracy_by_step(model, steps)}

    return load_or_train(CHAPTER, "noisy_classifier", config, build, train, device=device)


def class_labels(per_class: int) -> torch.Tensor:
    """0, 0, …, 1, 1, …, 9: ``per_class`` requests of each class."""
    return torch.arange(NUM_CLASSES).repeat_interleave(per_class)


def guided_sample(guided: nn.Module, labels: torch.Tensor, s: dict, progress: bool = True) -> torch.Tensor:
    """Sample one image per label with a guided denoiser, with the sweep's sampler and noise
    (``s``: :func:`sweep_config`)."""
    scheduler = DDIMScheduler(fashion_diffusion.betas("linear"), clip_sample=True)
    generator = torch.Generator().manual_seed(s["seed"])
    images, _ = sample(guided, scheduler, (len(labels), 1, 28, 28), s["steps"], generator=generator,
                       progress=progress, y=labels)
    return images


def measure(images: torch.Tensor, labels: torch.Tensor, judge: nn.Module, fd_metric: FashionFD) -> dict:
    """Fidelity (the judge's accuracy on the requested class), FD-FMNIST and within-class
    diversity; ``hits`` (1 where the judge agrees with the request) and ``features`` (the judge's,
    one row per image) are kept for the intervals of :func:`summarize`."""
    with torch.no_grad():
        predictions = judge(images.to(model_device(judge))).argmax(1).cpu()
        feats = features(judge, images).cpu()
    hits = (predictions == labels).double()
    return {"accuracy": round(float(hits.mean()), 4), "fd": round(fd_metric(images), 3),
            "diversity": round(mean_pairwise_distance(feats, labels), 4), "hits": hits, "features": feats}


def _diversity_of_rows(rows) -> float:
    """Within-class diversity of rows that hold an image's features and, last, its label."""
    rows = torch.as_tensor(rows)
    return mean_pairwise_distance(rows[:, :-1], rows[:, -1])


def non_increasing(values: list[float]) -> bool:
    return all(b <= a for a, b in zip(values, values[1:]))


def run_sweep(unet: nn.Module, cfg_unet: nn.Module, classifier: NoisyClassifier, judge: nn.Module,
              fd_metric: FashionFD, s: dict) -> dict:
    """Sample ``per_class`` images of every class at every guidance scale of both methods, and
    measure each set. Returns ``{"cfg": [row, …], "cg": [row, …], "labels": labels}``, a row being
    ``{"scale", "images", "accuracy", "fd", "diversity"}``; ``s`` is the :func:`sweep_config`."""
    labels = class_labels(s["per_class"])
    sweep = {"labels": labels}
    for method, scales in (("cfg", s["cfg_scales"]), ("cg", s["cg_scales"])):
        sweep[method] = []
        for scale in scales:
            guided = (ClassifierFreeGuidance(cfg_unet, scale) if method == "cfg"
                      else ClassifierGuidance(unet, classifier, scale))
            images = guided_sample(guided, labels, s)
            sweep[method].append({"scale": scale, "images": images, **measure(images, labels, judge, fd_metric)})
            row = sweep[method][-1]
            print(f"{method:>3} s = {scale:<5g} accuracy {row['accuracy']:.3f}  FD {row['fd']:7.1f}  "
                  f"diversity {row['diversity']:.3f}")
    return sweep


METHODS = {"cfg": "cfg", "cg": "classifier_guidance"}      # sweep key → name in the results


def summarize(sweep: dict, fd_metric: FashionFD) -> dict:
    """The sweep's numbers as ``eval 03`` reports them: the per-scale lists; for each method its
    most accurate scale, that accuracy, its gain over the unguided sampler (s = 0) and the change
    in within-class diversity that came with it, each with a paired 95 % bootstrap interval (every
    scale starts from the same noise, so sample i of two scales is a pair); FD-FMNIST by the
    course's protocol at s = 0 and at the scale where it is lowest; and the two methods' best
    accuracies compared, paired the same way. The best scale is chosen on the measured samples, so
    its accuracy is optimistic by the selection."""
    labels = sweep["labels"]
    result = {}
    for method in METHODS:
        rows = sweep[method]
        result[f"{method}_scales"] = [row["scale"] for row in rows]
        for key in ("accuracy", "fd", "diversity"):
            result[f"{method}_{key}"] = [row[key] for row in rows]
    train_images = load_fashion_mnist("train").images
    best = {}
    for method, name in METHODS.items():
        rows = sweep[method]
        unguided = next((row for row in rows if row["scale"] == 0), None)
        best[method] = max(rows, key=lambda row: row["accuracy"])
        lowest_fd = min(rows, key=lambda row: row["fd"])
        result[f"{name}_best_scale"] = best[method]["scale"]
        result[f"{name}_best_accuracy"] = stats.rounded(stats.interval(best[method]["hits"]))
        result[f"{name}_lowest_fd_scale"] = lowest_fd["scale"]
        result[f"{name}_lowest_fd"] = fd_metric.report(lowest_fd["images"], train_images)
        if unguided is None:
            continue
        result[f"{name}_accuracy_gain"] = stats.rounded(stats.difference(best[method]["hits"], unguided["hits"]))
        result[f"{name}_diversity_change"] = stats.rounded(stats.difference(
            *(torch.cat([row["features"], labels[:, None].double()], 1) for row in (best[method], unguided)),
            statistic=_diversity_of_rows))
        result[f"{name}_unguided_fd"] = fd_metric.report(unguided["images"], train_images)
    n = len(labels)
    result.update({
        "cfg_minus_classifier_guidance_best_accuracy": stats.rounded(stats.difference(best["cfg"]["hits"],
                                                                                      best["cg"]["hits"])),
        "diversity_monotone": non_increasing(result["cfg_diversity"]) and non_increasing(result["cg_diversity"]),
        "fd_noise": round(fd_metric.noise(n), 3),
        "samples_per_scale": n,
    })
    return result


def ancestral_sample(model: nn.Module, labels: torch.Tensor, steps: int, variance: str | dict, seed: int,
                     progress: bool = True) -> torch.Tensor:
    """One image per label by respaced ancestral sampling (Nichol & Dhariwal 2021, section 4) in
    ``steps`` steps with σ² = the learned Σ, β, β̃ or a table {t: σ_t²} of the kept steps (the
    KL-optimal reference), clipping x̂_0; the same ``seed`` gives the same
    initial noise and the same draws z (scaled by each variance's σ), so sample i is a pair across
    variances and step counts of one length."""
    scheduler = DDPMScheduler(fashion_diffusion.betas("linear"), variance=variance, clip_sample=True)
    images, _ = sample(model, scheduler, (len(labels), 1, 28, 28), steps,
                       generator=torch.Generator().manual_seed(seed), progress=progress, y=labels)
    return images


@torch.no_grad()
def learned_interpolation(cfg_unet: nn.Module, steps: list[int], n: int = 500, seed: int = 0) -> list[float]:
    """Where the network puts its Σ between the two bounds, per step t: the mean of (v + 1) / 2 over
    ``n`` noised test images with their labels, 0 meaning σ² = β̃_t and 1 meaning σ² = β_t."""
    device, out = model_device(cfg_unet), []
    was_training = cfg_unet.training
    cfg_unet.eval()
    for tt, _, x_t, y in noised_test_images(steps, n, seed):
        _, v = split_output(cfg_unet(x_t.to(device), tt.to(device), y.to(device)).float().cpu(), x_t)
        out.append(round(float(((v + 1) / 2).mean()), 4))
    cfg_unet.train(was_training)
    return out


def kept_steps(steps: int) -> list[int]:
    """The time steps a respaced sampler with ``steps`` steps visits, from T − 1 down to 0."""
    scheduler = DDPMScheduler(fashion_diffusion.betas("linear"))
    scheduler.set_timesteps(steps)
    return scheduler.timesteps.tolist()


@torch.no_grad()
def x0_error_by_step(cfg_unet: nn.Module, timesteps: list[int], n: int = 500, seed: int = 0) -> list[float]:
    """E‖x_0 − x̂_0‖² / d at each step t of ``timesteps``: the mean squared error per pixel of the
    clipped x̂_0 that the network predicts from x_t of ``n`` test images, with their labels."""
    device, out = model_device(cfg_unet), []
    scheduler = DDPMScheduler(fashion_diffusion.betas("linear"))
    was_training = cfg_unet.training
    cfg_unet.eval()
    for tt, x0, x_t, y in noised_test_images(timesteps, n, seed):
        eps, _ = split_output(cfg_unet(x_t.to(device), tt.to(device), y.to(device)).float().cpu(), x_t)
        x0_hat = scheduler.predict_x0(eps, tt, x_t).clamp(-1, 1)
        out.append(float((x0_hat - x0).pow(2).mean()))
    cfg_unet.train(was_training)
    return out


def kl_optimal_variances(timesteps: list[int], x0_errors: list[float]) -> dict[int, float]:
    """The variance of each respaced step t → t′ that a Gaussian with the network's mean should have
    to be closest (in KL) to the true reverse step q(x_t′ | x_t): the true step is the posterior
    N(c_0 x_0 + c_t x_t, β̃) averaged over the x_0 that x_t may come from, the model puts x̂_0 in the
    place of x_0, and matching second moments gives σ*² = β̃ + c_0² · E‖x_0 − x̂_0‖² / d, with
    c_0 = √ᾱ_t′ β / (1 − ᾱ_t) and β = 1 − ᾱ_t / ᾱ_t′ (the argument of Analytic-DPM, Bao et al.
    2022, with the network's measured error in x̂_0 in place of their estimate). An oracle of the
    variance, not a sampler a learner has: it needs test images at every step."""
    alpha_bars = DDPMScheduler(fashion_diffusion.betas("linear")).alpha_bars
    out = {}
    for t, t_prev, error in zip(timesteps, timesteps[1:] + [-1], x0_errors):
        ab, ab_prev = alpha_bars[t].item(), alpha_bars[t_prev].item() if t_prev >= 0 else 1.0
        beta = 1 - ab / ab_prev
        c0 = ab_prev ** 0.5 * beta / (1 - ab)
        out[t] = (1 - ab_prev) / (1 - ab) * beta + c0 ** 2 * error
    return out


def variance_fractions(timesteps: list[int], variances: dict[int, float]) -> list[float]:
    """Each respaced step's variance as the interpolation fraction of eq. 15: 0 at β̃, 1 at β (in log
    space), the scale on which the network's learned Σ is read (the last step, whose β̃ is 0, left out)."""
    alpha_bars = DDPMScheduler(fashion_diffusion.betas("linear")).alpha_bars
    out = []
    for t, t_prev in zip(timesteps[:-1], timesteps[1:]):
        ab, ab_prev = alpha_bars[t].item(), alpha_bars[t_prev].item()
        beta = 1 - ab / ab_prev
        beta_tilde = (1 - ab_prev) / (1 - ab) * beta
        out.append(round((math.log(variances[t]) - math.log(beta_tilde)) / (math.log(beta) - math.log(beta_tilde)), 4))
    return out


def variance_diagnosis(cfg_unet: nn.Module, steps: list[int], n: int = 500) -> dict:
    """Why the learned Σ samples as it does, for each number of respaced steps: the kept steps t,
    the network's x̂_0 error at each (:func:`x0_error_by_step`), the KL-optimal variance that error
    implies (:func:`kl_optimal_variances`) and, on eq. 15's scale from β̃ (0) to β (1), where that
    optimum lies and where the network puts its Σ (:func:`learned_interpolation`)."""
    out = {}
    for k in steps:
        timesteps = kept_steps(k)
        errors = x0_error_by_step(cfg_unet, timesteps, n)
        optimal = kl_optimal_variances(timesteps, errors)
        out[str(k)] = {"t": timesteps, "x0_mse": [round(e, 5) for e in errors],
                       "kl_optimal_variance": [round(optimal[t], 7) for t in timesteps],
                       "optimal_fraction": variance_fractions(timesteps, optimal),
                       "learned_fraction": learned_interpolation(cfg_unet, timesteps[:-1], n)}
    return out


def variance_study(cfg_unet: nn.Module, judge: nn.Module, fd_metric: FashionFD, v: dict) -> dict:
    """FD-FMNIST of the class-conditional UNet's samples against the number of respaced ancestral
    steps, under its learned Σ, under the fixed σ² = β and σ² = β̃, and under the KL-optimal
    variance of its measured x̂_0 error (``"kl_optimal"``, :func:`kl_optimal_variances`, when
    ``v["variances"]`` names it) (``v``: :func:`variance_config`). One network, one training: only
    the variance it is sampled with changes. Returns ``{"steps", "images": {variance: [images per
    step count]}, "fd": {variance: [FD per step count]}, "learned_minus": {other variance:
    [difference per step count]}, "diagnosis"}`` (:func:`variance_diagnosis`); each difference,
    learned Σ minus the other σ², is a paired bootstrap over the samples (the same noise), FD
    recomputed in every resample."""
    labels = class_labels(v["per_class"])
    study = {"steps": v["steps"], "images": {}, "fd": {}, "learned_minus": {},
             "diagnosis": variance_diagnosis(cfg_unet, v["steps"], v["diagnosis_images"])}
    feats = {}
    for variance in v["variances"]:
        study["images"][variance], study["fd"][variance], feats[variance] = [], [], []
        for steps in v["steps"]:
            diagnosis = study["diagnosis"][str(steps)]
            sigma = (dict(zip(diagnosis["t"], diagnosis["kl_optimal_variance"])) if variance == "kl_optimal"
                     else variance)
            images = ancestral_sample(cfg_unet, labels, steps, sigma, v["seed"])
            feats[variance].append(features(judge, images).numpy())
            study["images"][variance].append(images)
            study["fd"][variance].append(round(fd_metric.of_features(feats[variance][-1]), 3))
            print(f"{variance:>10} Σ, {steps:>4} steps: FD {study['fd'][variance][-1]:7.1f}")
    for variance in v["variances"]:
        if variance != "learned":
            study["learned_minus"][variance] = [
                stats.rounded(stats.difference(a, b, statistic=fd_metric.of_features), 3)
                for a, b in zip(feats["learned"], feats[variance])]
    return study


def conditional_guidance(cfg_unet: nn.Module, classifier: NoisyClassifier, judge: nn.Module, fd_metric: FashionFD,
                         v: dict) -> dict:
    """Classifier guidance with the learned Σ, μ̂ = μ(x_t | y) + s Σ ∇ log p_φ(y | x_t) (Dhariwal &
    Nichol 2021, Algorithm 1), of the class-conditional UNet in its conditional mode and in its
    unconditional mode (the null label), at each scale of ``v["guidance_scales"]``, from the same
    noise. Returns ``{"scales", "conditional": [row, …], "unconditional": [row, …], "labels"}`` with
    :func:`measure`'s rows."""
    labels = class_labels(v["guidance_per_class"])
    out = {"scales": v["guidance_scales"], "labels": labels}
    for mode in ("conditional", "unconditional"):
        out[mode] = []
        for scale in v["guidance_scales"]:
            guided = ClassifierGuidance(cfg_unet, classifier, scale, conditional=mode == "conditional")
            images = ancestral_sample(guided, labels, v["guidance_steps"], "learned", v["seed"])
            out[mode].append({"scale": scale, "images": images, **measure(images, labels, judge, fd_metric)})
            row = out[mode][-1]
            print(f"{mode:>13} model, s = {scale:<4g} accuracy {row['accuracy']:.3f}  FD {row['fd']:7.1f}")
    return out


def summarize_variances(study: dict, fd_metric: FashionFD) -> dict:
    """The learned-variance study as ``eval 03`` reports it: FD by the course's protocol (with its
    interval) for every variance and number of steps, and the paired differences."""
    train_images = load_fashion_mnist("train").images

    def by_steps(values):
        return {str(steps): value for steps, value in zip(study["steps"], values)}

    reports = {variance: by_steps([fd_metric.report(images, train_images) for images in sets])
               for variance, sets in study["images"].items()}
    return {"learned_sigma_fd_by_steps": reports.pop("learned"),
            "fixed_sigma_fd_by_steps": reports,
            "learned_minus_fixed_sigma_fd": {variance: by_steps(diffs)
                                             for variance, diffs in study["learned_minus"].items()},
            "variance_diagnosis": study["diagnosis"]}


def summarize_guidance(guidance: dict) -> dict:
    """:func:`conditional_guidance` as ``eval 03`` reports it: accuracy and FD at every scale for
    both modes, each mode's most accurate scale with its accuracy, and the two best accuracies
    compared, paired over the samples (the same noise and requests)."""
    modes = ("conditional", "unconditional")
    best = {mode: max(guidance[mode], key=lambda row: row["accuracy"]) for mode in modes}
    return {
        "scales": guidance["scales"],
        **{f"{mode}_{key}": [row[key] for row in guidance[mode]] for mode in modes for key in ("accuracy", "fd")},
        **{f"{mode}_best_scale": best[mode]["scale"] for mode in modes},
        **{f"{mode}_best_accuracy": stats.rounded(stats.interval(best[mode]["hits"])) for mode in modes},
        "conditional_minus_unconditional_best_accuracy": stats.rounded(stats.difference(
            best["conditional"]["hits"], best["unconditional"]["hits"])),
        "samples_per_scale": len(guidance["labels"]),
    }


def trainings(budget: str) -> list[Training]:
    """What the notebook trains at ``budget``: the class-conditional UNet, the noise-aware classifier,
    chapter 01's UNet (the unguided reference) and the classifier that judges."""
    return [Training("cfg_unet", cfg_unet_config(budget), load_cfg_unet),
            Training("noisy_classifier", noisy_classifier_config(budget), load_noisy_classifier),
            Training("unet", fashion_diffusion.unet_config(budget), fashion_diffusion.load_unet),
            Training("fashion_classifier", classifier_config(budget), load_classifier)]


def evaluate(budget: str) -> dict:
    """``python -m gensynth_course eval 03``: train or load the three networks, sweep both
    guidance scales, and measure accuracy, FD-FMNIST and diversity at each scale; then FD by the
    number of sampling steps under learned and fixed variances, and classifier guidance of the
    conditional model against the unconditional one."""
    judge, judge_info = load_classifier(classifier_config(budget))      # the cached judge is not timed
    fd_metric = FashionFD(judge, load_fashion_mnist("test").images)
    start = time.perf_counter()
    unet, unet_info = fashion_diffusion.load_unet(fashion_diffusion.unet_config(budget))
    cfg_unet, cfg_info = load_cfg_unet(cfg_unet_config(budget))
    classifier, classifier_info = load_noisy_classifier(noisy_classifier_config(budget))
    sweep_start = time.perf_counter()
    s = sweep_config(budget, for_eval=True)
    result = summarize(run_sweep(unet, cfg_unet, classifier, judge, fd_metric, s), fd_metric)
    sweep_seconds = round(time.perf_counter() - sweep_start, 1)
    variance_start = time.perf_counter()
    v = variance_config(budget, for_eval=True)
    result.update(summarize_variances(variance_study(cfg_unet, judge, fd_metric, v), fd_metric))
    result["conditional_guidance"] = summarize_guidance(conditional_guidance(cfg_unet, classifier, judge, fd_metric, v))
    result.update({
        "noisy_classifier_accuracy_by_step": dict(zip(map(str, classifier_info["accuracy_steps"]),
                                                      classifier_info["accuracy_by_step"])),
        "judge_test_accuracy": judge_info["test_accuracy"],
        "sampler": f"{s['sampler']}, {s['steps']} steps, clipped x0",
        "train_seconds": {"unet (chapter 01)": round(unet_info["seconds"], 1),
                          "cfg_unet": round(cfg_info["seconds"], 1),
                          "noisy_classifier": round(classifier_info["seconds"], 1)},
        "sweep_seconds": sweep_seconds,
        "variance_seconds": round(time.perf_counter() - variance_start, 1),
        "measure_seconds": round(time.perf_counter() - start, 1),
    })
    return result
