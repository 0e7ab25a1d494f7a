"""Chapter 02's experiments: VQ-VAE against VQGAN at the same code grid, then a transformer prior.

The notebook, ``python -m gensynth_course eval 02`` and the tests call these functions, so every
number comes from the same code and the same cached models. Four autoencoders share one
architecture, a 7×7 grid of codes from a 128-entry codebook, and one training budget:

* ``vqvae``          MSE, plain codebook (dead codes stay dead);
* ``vqvae_restart``  MSE, dead-code restart;
* ``l1_perceptual``  L1 + perceptual, dead-code restart, no GAN: the control that separates what
  the perceptual term buys from what the PatchGAN buys (``eval 02`` only);
* ``vqgan``          L1 + perceptual + PatchGAN with adaptive λ, dead-code restart.

The prior is trained on the VQGAN's codes, as in the paper. ``eval 02`` trains the three compared
autoencoders from :data:`SEEDS` (the notebook trains seed 0) and states each comparison as the mean
over seeds with its t-interval. It also studies the downsampling factor f (:func:`factor_study`: the
VQGAN at f = 2, 4 and 7, each with a prior trained for the same time) and times the transformer on
raw pixels against on codes (:func:`pixels_vs_codes`).
"""

from __future__ import annotations

import math
import time

import torch

from gensynth_course.budget import by_budget
from gensynth_course.cache import config_hash, load_or_train, load_study, save_study
from gensynth_course.data.fashion_mnist import load_fashion_mnist, to_model_range
from gensynth_course.device import model_device, resolve
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.fashion_classifier import classifier_config, load_classifier
from gensynth_course.evaluation.metrics import FashionFD
from gensynth_course.evaluation.perceptual import PerceptualLoss, perceptual_net_config
from gensynth_course.experiments import Training
from gensynth_course.models.vq.prior import CodePrior, sample_sliding_window
from gensynth_course.models.vq.quantizer import CodeUsage
from gensynth_course.models.vq.vqgan import GRID_SIDE, VQAutoencoder, VQGANTrainer, check_factor
from gensynth_course.train import fit

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
AUTOENCODERS = ("vqvae", "vqvae_restart", "l1_perceptual", "vqgan")
# The methods compared as methods, each trained from the seeds of ``seed_config`` by ``eval 02``;
# the measures compared over those seeds.
COMPARED = ("vqvae_restart", "l1_perceptual", "vqgan")
SEEDS = (0, 1, 2)
MEASURES = ("recon_fd", "l1", "psnr", "sharpness")


def seed_config(budget: str) -> dict:
    """``{"seeds": …}``, the seeds ``eval 02`` trains each compared method from: :data:`SEEDS`, or
    its first two at the quick budget, which only proves that the study runs (an interval over
    seeds needs two)."""
    return dict(seeds=by_budget(quick=SEEDS[:2], standard=SEEDS, budget=budget))


def autoencoder_config(kind: str, budget: str, seed: int = 0, factor: int = 4) -> dict:
    """One recipe for every autoencoder; only the loss and the restart switch differ. ``seed``
    sets the initial weights and the order of the training batches; ``factor`` is the downsampling
    factor f (4: the chapter's 7×7 grid; 2 and 7 for :func:`factor_study`)."""
    check_factor(factor)
    if kind not in AUTOENCODERS:
        raise ValueError(f"unknown autoencoder {kind!r}; choose one of {AUTOENCODERS}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    steps = by_budget(quick=20, standard=800, full=6000, budget=budget)
    config = dict(kind=kind, widths=[32, 64], dim=16, num_codes=128, beta=0.25,
                  restart_dead=kind != "vqvae", batch_size=64, lr=1e-3, betas=[0.5, 0.9], seed=seed, steps=steps,
                  factor=factor)
    if kind in ("l1_perceptual", "vqgan"):
        config.update(perceptual=perceptual_net_config(budget))
    if kind == "vqgan":
        # A small GAN weight on top of the adaptive λ: at 0.5 the adversarial gradient swamped the
        # reconstruction in our runs; at 0.1 the discriminator learns and sharpens (see chapter 02).
        config.update(gan_weight=0.1, disc_width=32,
                      disc_start=by_budget(quick=10, standard=400, full=3000, budget=budget))
    return config


def build_trainer(config: dict) -> VQGANTrainer:
    autoencoder = VQAutoencoder(tuple(config["widths"]), config["dim"], config["num_codes"], config["beta"],
                                ema=config.get("ema", False), restart_dead=config["restart_dead"], factor=config["factor"])
    perceptual = PerceptualLoss("course", config["perceptual"]) if "perceptual" in config else None
    if config["kind"] != "vqgan":
        return VQGANTrainer(autoencoder, perceptual=perceptual, gan=False)
    return VQGANTrainer(autoencoder, perceptual, gan=True, disc_start=config["disc_start"],
                        gan_weight=config["gan_weight"], disc_width=config["disc_width"])


def load_autoencoder(config: dict, preview=None, preview_every: int = 0, device: torch.device | str | None = None):
    """``(autoencoder, info)`` of ``config`` (:func:`autoencoder_config`), from the cache or trained now.

    ``info`` holds the per-step loss terms (``terms``: rec, vq and, for VQGAN, g, d and λ).
    """
    kind = config["kind"]

    def train(trainer, checkpoint):
        batch_fn = load_fashion_mnist("train").batch_fn(config["batch_size"], config["seed"])

        def loss_fn(model, batch, generator):
            loss = model.loss(batch[0])
            return loss, model.last_terms

        history = fit(trainer, loss_fn, batch_fn, config["steps"], lr=config["lr"], betas=tuple(config["betas"]),
                      seed=config["seed"], grad_clip=None, preview=preview, preview_every=preview_every,
                      checkpoint=checkpoint, desc=f"training {kind}", device=device)
        return {"terms": history["parts"], "losses": history["losses"], "steps": history["steps"],
                "seconds": history["seconds"]}

    trainer, info = load_or_train(CHAPTER, kind, config, lambda: build_trainer(config), train,
                                  device=device)
    return trainer.autoencoder.eval(), info


@torch.no_grad()
def encode_dataset(autoencoder: VQAutoencoder, images_uint8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Code grids (N, grid, grid) of a whole image set."""
    autoencoder.eval()
    device = model_device(autoencoder)
    return torch.cat([autoencoder.encode(to_model_range(images_uint8[i:i + batch_size].to(device)))[1].cpu()
                      for i in range(0, len(images_uint8), batch_size)])


@torch.no_grad()
def reconstruction_report(autoencoder: VQAutoencoder, images_uint8: torch.Tensor, fd_metric: FashionFD | None,
                          batch_size: int = 1000) -> dict:
    """L1, PSNR (images in [0, 1]), FD-FMNIST of the reconstructions, code usage over the set, and
    ``sharpness``: the mean gradient magnitude (neighbour differences) of the reconstructions over
    that of the originals. 1 is ideal; blur falls below it, and noise cannot game it without also
    raising the pixel error."""
    autoencoder.eval()
    usage, recons, l1, se = CodeUsage(autoencoder.num_codes), [], 0.0, 0.0
    edges = {"reconstruction": 0.0, "original": 0.0}
    for i in range(0, len(images_uint8), batch_size):
        x = to_model_range(images_uint8[i:i + batch_size].to(model_device(autoencoder)))
        x_rec, indices, _ = autoencoder(x)
        x, x_rec, indices = x.cpu(), x_rec.clamp(-1, 1).cpu(), indices.cpu()
        usage.add(indices)
        recons.append(x_rec)
        l1 += ((x_rec - x).abs() / 2).sum().item()            # in [0, 1] units
        for name, image in (("reconstruction", x_rec), ("original", x)):
            edges[name] += (image.diff(dim=-1).abs().sum() + image.diff(dim=-2).abs().sum()).item()
        se += ((x_rec - x) / 2).pow(2).flatten(1).mean(1).sum().item()
    n = len(images_uint8)
    mse = se / n
    report = {"l1": l1 / (n * images_uint8[0].numel()), "psnr": 10 * math.log10(1 / mse),
              "used_code_fraction": usage.used_fraction(), "perplexity": usage.perplexity(),
              "sharpness": edges["reconstruction"] / edges["original"],
              "usage_counts": usage.counts.tolist()}
    if fd_metric is not None:
        report["recon_fd"] = fd_metric(torch.cat(recons))
    return report


def prior_config(budget: str) -> dict:
    return dict(model="CodePrior", codes_from=config_hash(autoencoder_config("vqgan", budget)), factor=4, dim=128,
                layers=3, heads=4, dropout=0.0, batch_size=64, lr=1e-3, warmup=100, unconditional_share=0.1, seed=0,
                steps=by_budget(quick=30, standard=800, full=8000, budget=budget),
                train_images=by_budget(quick=2000, standard=60_000, budget=budget))


def factor_prior_config(factor: int, budget: str, seed: int = 0) -> dict:
    """The prior of :func:`prior_config` (same size and recipe) over the codes of the VQGAN with
    downsampling factor ``factor`` trained from ``seed``, trained for a fixed wall-clock time
    rather than a number of steps: every factor gets the same compute, as in the paper's study."""
    return dict(prior_config(budget), codes_from=config_hash(autoencoder_config("vqgan", budget, seed, factor)),
                factor=check_factor(factor), seed=seed, steps=10**7,
                seconds=by_budget(quick=1, standard=100, full=900, budget=budget))


def build_prior(config: dict, num_codes: int) -> CodePrior:
    return CodePrior(num_codes, GRID_SIDE[config["factor"]] ** 2, 10, config["dim"], config["layers"], config["heads"],
                     config["dropout"])


def _code_batch(codes: torch.Tensor, labels: torch.Tensor, batch_size: int, unconditional_share: float,
                generator: torch.Generator, n_classes: int = 10):
    """One ``(cond, codes)`` batch of random training items; a share of the class tokens becomes
    the start token (no class: the unconditional prior)."""
    idx = torch.randint(0, len(codes), (batch_size,), generator=generator)
    cond = labels[idx].clone()
    cond[torch.rand(batch_size, generator=generator) < unconditional_share] = n_classes
    return cond, codes[idx].flatten(1)


def load_prior(autoencoder: VQAutoencoder, config: dict, device: torch.device | str | None = None):
    """The class-conditional (and unconditional) prior of ``config`` (:func:`prior_config`) over the
    VQGAN's training-set codes, from the cache or trained now."""
    def train(prior, checkpoint):
        train_set = load_fashion_mnist("train")
        codes = encode_dataset(autoencoder, train_set.images[:config["train_images"]])

        def batch_fn(step, generator):
            return _code_batch(codes, train_set.labels, config["batch_size"], config["unconditional_share"], generator)

        history = fit(prior, lambda m, batch, generator: m.loss(*batch), batch_fn, config["steps"], lr=config["lr"],
                      seed=config["seed"], warmup=config["warmup"], seconds=config.get("seconds"),
                      checkpoint=checkpoint, desc="training the code prior", device=device)
        return {"losses": history["losses"], "steps": history["steps"], "seconds": history["seconds"]}

    return load_or_train(CHAPTER, "code_prior", config, lambda: build_prior(config, autoencoder.num_codes), train,
                         device=device)


def page_prior_config(budget: str) -> dict:
    return dict(prior_config(budget), model="CodePrior on catalogue pages", page=2, lr=5e-4, warmup=0,
                steps=by_budget(quick=10, standard=300, full=2000, budget=budget))


def page_window(codes: torch.Tensor, batch_size: int, generator: torch.Generator, page: int = 2, window: int = 7):
    """A batch of random ``window × window`` crops of "catalogue pages": ``page × page`` code grids
    of random items side by side. Unlike single centred items, these windows have the same
    statistics wherever they are cut: the data is spatially invariant."""
    side = page * codes.shape[1]
    pick = torch.randint(len(codes), (batch_size, page * page), generator=generator)
    pages = codes[pick].reshape(batch_size, page, page, window, window).permute(0, 1, 3, 2, 4)
    pages = pages.reshape(batch_size, side, side)
    top, left = torch.randint(side - window + 1, (2,), generator=generator).tolist()
    crop = pages[:, top:top + window, left:left + window].reshape(batch_size, -1)
    return torch.full((batch_size,), 10), crop


def load_page_prior(autoencoder: VQAutoencoder, prior: CodePrior, config: dict,
                    device: torch.device | str | None = None):
    """The item prior fine-tuned on windows of catalogue pages (``config``: :func:`page_prior_config`),
    for sliding-window sampling; from the cache or trained now."""
    def train(model, checkpoint):
        model.load_state_dict(prior.state_dict())
        codes = encode_dataset(autoencoder, load_fashion_mnist("train").images[:config["train_images"]])
        history = fit(model, lambda m, batch, generator: m.loss(*batch),
                      lambda step, generator: page_window(codes, config["batch_size"], generator),
                      config["steps"], lr=config["lr"], seed=config["seed"], checkpoint=checkpoint,
                      desc="fine-tuning on catalogue pages", device=device)
        return {"losses": history["losses"], "steps": history["steps"], "seconds": history["seconds"]}

    return load_or_train(CHAPTER, "page_prior", config, lambda: build_prior(config, autoencoder.num_codes), train,
                         device=device)


def sampling_config(budget: str) -> dict:
    """How the chapter samples and how many test images it measures on."""
    return dict(temperature=0.8, top_k=16, per_class=by_budget(quick=10, standard=100, budget=budget), seed=0,
                eval_images=by_budget(quick=200, standard=2000, full=10_000, budget=budget))


@torch.no_grad()
def sample_images(autoencoder: VQAutoencoder, prior: CodePrior, cond: torch.Tensor, temperature: float = 1.0,
                  top_k: int | None = 16, seed: int = 0, progress: bool = True) -> torch.Tensor:
    """Codes from the prior for conditions ``cond``, decoded to images in [−1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    codes = prior.generate(cond, temperature, top_k, generator, progress=progress)
    return autoencoder.decode_indices(codes.reshape(-1, autoencoder.grid, autoencoder.grid)).clamp(-1, 1)


@torch.no_grad()
def sliding_window_images(autoencoder: VQAutoencoder, prior: CodePrior, cond: torch.Tensor, height: int,
                          width: int, temperature: float = 1.0, top_k: int | None = 16, seed: int = 0) -> torch.Tensor:
    """A ``height × width`` code canvas by sliding-window sampling, decoded (4× larger in pixels)."""
    generator = torch.Generator().manual_seed(seed)
    codes = sample_sliding_window(prior, cond, height, width, 7, temperature, top_k, generator)
    return autoencoder.decode_indices(codes).clamp(-1, 1)


def prior_report(vqgan: VQAutoencoder, prior: CodePrior, classifier, fd_metric: FashionFD, s: dict) -> dict:
    """The prior measured: bits per code of held-out test images' codes (with and without the
    class), and ``per_class`` class-conditional samples per class: the share the course classifier
    puts in the requested class (with its bootstrap interval) and their FD-FMNIST by the course's
    protocol (:meth:`FashionFD.report`), beside pure noise. ``s``: :func:`sampling_config`."""
    test = load_fashion_mnist("test")
    images, labels = test.images[:s["eval_images"]], test.labels[:s["eval_images"]]
    test_codes = encode_dataset(vqgan, images).flatten(1)
    asked = torch.arange(10).repeat_interleave(s["per_class"])
    samples = sample_images(vqgan, prior, asked, s["temperature"], s["top_k"], s["seed"])
    with torch.no_grad():
        predicted = torch.cat([classifier(samples[i:i + 1000].to(model_device(classifier))).argmax(1).cpu()
                               for i in range(0, len(samples), 1000)])
    return {
        "num_codes": vqgan.num_codes,
        "prior_bits_per_code": round(prior.bits_per_code(labels, test_codes), 3),
        "prior_bits_per_code_unconditional": round(
            prior.bits_per_code(torch.full_like(labels, prior.unconditional), test_codes), 3),
        "uniform_bits_per_code": round(math.log2(vqgan.num_codes), 3),
        "cond_sample_accuracy": stats.rounded(stats.interval((predicted == asked).double())),
        **{f"sample_{key}": value for key, value in fd_metric.report(samples, load_fashion_mnist("train").images).items()},
        "fd_noise": round(fd_metric.noise(len(samples)), 3),
        "samples": len(samples),
        "test_images": len(images),
        "sampler": f"temperature {s['temperature']}, top-k {s['top_k']}",
    }


FACTORS = (2, 4, 7)


def factor_study_config(budget: str) -> dict:
    """What :func:`factor_study` trains and measures at ``budget``: a run for each f of
    :data:`FACTORS` and each seed (the VQGAN's config at that f and its prior's,
    :func:`factor_prior_config`), the sampler of :func:`sampling_config` with ``per_class`` samples
    per class for every run, and the test images measured."""
    sampling = sampling_config(budget)
    seeds = seed_config(budget)["seeds"]
    return dict(runs=[dict(factor=factor, seed=seed, autoencoder=autoencoder_config("vqgan", budget, seed, factor),
                           prior=factor_prior_config(factor, budget, seed)) for factor in FACTORS for seed in seeds],
                temperature=sampling["temperature"], top_k=sampling["top_k"], sample_seed=sampling["seed"],
                per_class=by_budget(quick=2, standard=50, full=100, budget=budget),
                eval_images=sampling["eval_images"])


def factor_study(config: dict, classifier, fd_metric: FashionFD) -> dict:
    """The downsampling factor f on a fixed 28×28 image (seed 002; Esser et al. 2021, section 4.3):
    for each run of ``config`` (:func:`factor_study_config`: an f and a seed), the VQGAN recipe at
    that f and a prior of one size trained for the same wall-clock time, then the reconstruction
    FD-FMNIST of the test images, the bits per code of their codes, and ``per_class`` class-conditional
    samples per class: their FD-FMNIST and the share the course classifier puts in the requested
    class. A smaller f keeps more detail but gives the prior a longer sequence to learn in the same
    time. Returns ``{"fd_by_f": {f: {measure: over seeds}}, "f_differences": {"a_minus_b": {measure:
    over seeds}}}``, seed s of two factors paired."""
    test = load_fashion_mnist("test")
    images, labels = test.images[:config["eval_images"]], test.labels[:config["eval_images"]]
    asked = torch.arange(10).repeat_interleave(config["per_class"])
    runs = {}
    for run in config["runs"]:
        autoencoder, ae_info = load_autoencoder(run["autoencoder"])
        prior, prior_info = load_prior(autoencoder, run["prior"])
        test_codes = encode_dataset(autoencoder, images).flatten(1)
        samples = sample_images(autoencoder, prior, asked, config["temperature"], config["top_k"],
                                config["sample_seed"], progress=False)
        with torch.no_grad():
            predicted = classifier(samples.to(model_device(classifier))).argmax(1).cpu()
        runs.setdefault(run["factor"], []).append({
            "recon_fd": reconstruction_report(autoencoder, images, fd_metric)["recon_fd"],
            "bits_per_code": prior.bits_per_code(labels, test_codes),
            "sample_fd": fd_metric(samples),
            "sample_accuracy": float((predicted == asked).double().mean()),
            "prior_steps": prior_info["steps"], "prior_seconds": prior_info["seconds"],
            "autoencoder_seconds": ae_info["seconds"]})
    measures = ("recon_fd", "bits_per_code", "sample_fd", "sample_accuracy")
    by_f = {str(factor): {"grid": GRID_SIDE[factor], "tokens": GRID_SIDE[factor] ** 2,
                          **{m: stats.rounded(stats.over_seeds([r[m] for r in rows])) for m in measures},
                          **{m: [round(r[m], 1) for r in rows] for m in ("prior_steps", "prior_seconds",
                                                                         "autoencoder_seconds")}}
            for factor, rows in runs.items()}
    differences = {f"{a}_minus_{b}": {m: stats.rounded(stats.over_seeds([x[m] - y[m] for x, y in zip(runs[a], runs[b])]))
                                      for m in measures}
                   for a, b in ((2, 4), (7, 4))}
    return {"fd_by_f": by_f, "f_differences": differences, "f_samples_per_run": len(asked)}


@torch.no_grad()
def _seconds_per_sample(prior: CodePrior, n: int) -> float:
    start = time.perf_counter()
    prior.generate(torch.zeros(n, dtype=torch.long, device=model_device(prior)), generator=None)
    return (time.perf_counter() - start) / n


def pixels_vs_codes_config(budget: str) -> dict:
    """The transformer of :func:`prior_config` (its size, learning rate and batch) and how long
    :func:`pixels_vs_codes` times it: ``timed_steps`` training steps and ``sampled_images`` images.
    The quick budget times one step of a smaller batch, only to check that it runs."""
    prior = prior_config(budget)
    return dict({k: prior[k] for k in ("dim", "layers", "heads", "lr")},
                batch_size=by_budget(quick=8, standard=prior["batch_size"], budget=budget),
                timed_steps=by_budget(quick=1, standard=10, full=20, budget=budget),
                sampled_images=by_budget(quick=1, standard=4, full=16, budget=budget))


def pixels_vs_codes(config: dict, device: torch.device | str | None = None) -> dict:
    """What the code grid saves the transformer (seed 002): one transformer of ``config``'s size
    (:func:`pixels_vs_codes_config`) over raw pixels (784 tokens of 256 grey levels) and over the
    chapter's codes (49 tokens of 128), timed on ``device``: seconds per training step (a batch of
    ``batch_size`` sequences, forward, backward and the update, the median of ``timed_steps`` after
    a warm-up) and per sampled image (one token at a time). Timing does not depend on the weights,
    so neither is trained."""
    device, batch_size = resolve(device), config["batch_size"]
    out = {}
    for name, (num_codes, length) in (("pixels", (256, 28 * 28)), ("codes", (128, 49))):
        torch.manual_seed(0)
        prior = CodePrior(num_codes, length, 10, config["dim"], config["layers"], config["heads"]).to(device)
        optimizer = torch.optim.AdamW(prior.parameters(), lr=config["lr"])
        cond = torch.zeros(batch_size, dtype=torch.long, device=device)
        tokens = torch.randint(num_codes, (batch_size, length), device=device)
        step_seconds = []
        for _ in range(config["timed_steps"] + 1):            # the first step warms up
            start = time.perf_counter()
            optimizer.zero_grad()
            prior.loss(cond, tokens).backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            step_seconds.append(time.perf_counter() - start)
        out[name] = {"tokens": length, "vocabulary": num_codes,
                     "seconds_per_step": round(float(torch.tensor(step_seconds[1:]).median()), 4),
                     "seconds_per_image": round(_seconds_per_sample(prior, config["sampled_images"]), 4)}
    out["step_ratio"] = round(out["pixels"]["seconds_per_step"] / out["codes"]["seconds_per_step"], 1)
    out["sample_ratio"] = round(out["pixels"]["seconds_per_image"] / out["codes"]["seconds_per_image"], 1)
    out["batch_size"] = batch_size
    return out


def seed_study(reports: dict[str, list[dict]]) -> dict:
    """``reports[kind][i]``: :func:`reconstruction_report` of ``kind`` trained from the i-th seed of :func:`seed_config`
    → each measure of each kind over the seeds (each seed's figure, the mean and its t-interval), and
    the differences between the kinds, seed by seed (seed s of two kinds saw the same batches)."""
    out = {f"{kind}_{measure}": stats.over_seeds([r[measure] for r in runs])
           for kind, runs in reports.items() for measure in MEASURES}
    for a, b in (("vqgan", "vqvae_restart"), ("l1_perceptual", "vqvae_restart"), ("vqgan", "l1_perceptual")):
        for measure in MEASURES:
            out[f"{a}_minus_{b}_{measure}"] = stats.over_seeds([x[measure] - y[measure]
                                                                for x, y in zip(reports[a], reports[b])])
    return {key: stats.rounded(result) for key, result in out.items()}


# The seed-0 models the notebook trains too: a kept study is found by their model_id.
NOTEBOOK_MODELS = ("vqvae_restart", "vqgan")


def cached_study(infos: dict[str, dict]) -> dict | None:
    """The results of the last ``eval 02`` that measured the seed-0 models of :data:`NOTEBOOK_MODELS`
    whose infos (as :func:`load_autoencoder` returned them, by kind) are given, or None."""
    return load_study(CHAPTER, {kind: infos[kind]["model_id"] for kind in NOTEBOOK_MODELS})


def trainings(budget: str) -> list[Training]:
    """What the notebook trains at ``budget``: the four autoencoders, then the code prior and the
    page prior on the VQGAN's codes, and the classifier that judges samples. The priors' configs
    carry the VQGAN's config under ``"autoencoder"``, so that a shrunk plan (``full_budget``) finds
    the VQGAN it trained."""
    def split(config):
        return load_autoencoder(config["autoencoder"])[0], {k: v for k, v in config.items() if k != "autoencoder"}

    def prior(config):
        return load_prior(*split(config))

    def page_prior(config):
        autoencoder, own = split(config)
        return load_page_prior(autoencoder, load_prior(autoencoder, own["code_prior"])[0],
                               {k: v for k, v in own.items() if k != "code_prior"})

    vqgan = autoencoder_config("vqgan", budget)
    return [*(Training(kind, autoencoder_config(kind, budget), load_autoencoder) for kind in AUTOENCODERS),
            Training("code_prior", dict(prior_config(budget), autoencoder=vqgan), prior),
            Training("page_prior", dict(page_prior_config(budget), autoencoder=vqgan, code_prior=prior_config(budget)),
                     page_prior),
            Training("fashion_classifier", classifier_config(budget), load_classifier)]


def evaluate(budget: str) -> dict:
    """``python -m gensynth_course eval 02``: train or load everything, then measure; then the study
    of the downsampling factor (:func:`factor_study`) and the transformer's cost on pixels against
    codes (:func:`pixels_vs_codes`)."""
    classifier, _ = load_classifier(classifier_config(budget))     # the cached evaluation classifier is not timed
    test = load_fashion_mnist("test")
    fd_metric = FashionFD(classifier, test.images)
    start = time.perf_counter()
    images = test.images[:sampling_config(budget)["eval_images"]]
    reports, infos, seconds = {kind: [] for kind in COMPARED}, {}, {}
    seeds = seed_config(budget)["seeds"]
    for kind in AUTOENCODERS:
        for seed in seeds if kind in COMPARED else (0,):
            autoencoder, info = load_autoencoder(autoencoder_config(kind, budget, seed))
            report = reconstruction_report(autoencoder, images, fd_metric)
            seconds[f"{kind}_seed{seed}"] = round(info["seconds"], 1)
            if kind in COMPARED:
                reports[kind].append(report)
            else:
                plain = report
            if seed == 0:
                infos[kind] = info
                if kind == "vqgan":
                    vqgan = autoencoder
    prior, prior_info = load_prior(vqgan, prior_config(budget))
    vae, gan = reports["vqvae_restart"][0], reports["vqgan"][0]
    results = {
        **seed_study(reports),
        "training_seeds": len(seeds),
        "used_code_fraction": round(vae["used_code_fraction"], 3),
        "perplexity": round(vae["perplexity"], 2),
        "used_code_fraction_no_restart": round(plain["used_code_fraction"], 3),
        "perplexity_no_restart": round(plain["perplexity"], 2),
        "vqgan_used_code_fraction": round(gan["used_code_fraction"], 3),
        "vqgan_perplexity": round(gan["perplexity"], 2),
        **prior_report(vqgan, prior, classifier, fd_metric, sampling_config(budget)),
        "train_seconds": seconds | {"prior": round(prior_info["seconds"], 1)},
    }
    factor_start = time.perf_counter()
    results.update(factor_study(factor_study_config(budget), classifier, fd_metric))
    results["pixels_vs_codes"] = pixels_vs_codes(pixels_vs_codes_config(budget))
    results["factor_seconds"] = round(time.perf_counter() - factor_start, 1)
    results["measure_seconds"] = round(time.perf_counter() - start, 1)
    save_study(CHAPTER, results, {kind: infos[kind]["model_id"] for kind in NOTEBOOK_MODELS})
    return results
