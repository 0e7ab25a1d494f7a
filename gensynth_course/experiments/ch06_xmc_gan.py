"""Chapter 06's experiments: XMC-GAN in miniature on the Shapes world, and its ablation.

One generator–discriminator pair is trained per row of the paper's ablations (Zhang et al. 2021:
Table 4 for the losses, Table 5 for the modulation), every row with the same recipe and number of
steps; only the weights of the contrastive losses (and, for Table 5, the kind of self-modulation)
differ. ``eval 06`` trains three seeds of the rows of the headline comparisons (``baseline``,
``all``, ``all_plain``) and seed 0 of the others:

* ``baseline`` -- hinge loss with a projection discriminator, no contrastive loss;
* ``sentence``, ``word``, ``image``, ``encoder`` -- one contrastive loss alone: image–sentence,
  region–word, image–image on the discriminator's features, image–image on a separately trained
  image encoder (the paper's VGG term);
* ``sentence_word`` -- the two cross-modal losses;
* ``all`` -- all four, with attentional self-modulation (XMC-GAN);
* ``all_plain`` -- all four with plain self-modulation (the paper's table 5);
* ``all_head2`` -- all four with a two-layer MLP as the discriminator's contrastive head (the
  paper's Fig. 5: deeper heads win the contrastive game on generated images and give worse FID);
* ``all_perceptual`` -- all four with the encoder's image–image term as a perceptual L2 loss
  instead of a contrastive one (the paper's Table 6).

Three training seeds of ``baseline`` and ``all`` also measure the paper's remark that the
contrastive losses stabilise training: the spread of FD over seeds, and how many runs collapsed
(:func:`stability`).

The text encoder is chapter 04's CLIP text tower, frozen: its token features are the word
embeddings e_w and its caption embedding is e_s (the paper uses a pretrained BERT). Chapter 04's
CLIP image tower, frozen, is the image encoder of the ``encoder`` term. Neither judges: samples are
scored by the attribute evaluator (caption accuracy) and chapter 04's *evaluator* CLIP
(FD, R-precision), networks that took no part in training.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from gensynth_course.budget import by_budget
from gensynth_course.cache import cache_dir, config_hash, load_or_train, load_study, save_study
from gensynth_course.data import shapes
from gensynth_course.data.fashion_mnist import to_model_range
from gensynth_course.data.tokenizer import Tokenizer, caption_list
from gensynth_course.device import model_device, resolve
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.attribute_evaluator import attribute_accuracy
from gensynth_course.evaluation.evaluator_clip import clip_config
from gensynth_course.evaluation.judge import MEASURES, Judge, judge_config
from gensynth_course.experiments import Training
from gensynth_course.experiments.shapes_clip import load_clip
from gensynth_course.models.contrastive.clip import CLIP
from gensynth_course.models.gan import xmc_losses
from gensynth_course.models.gan.xmc_gan import XMCGAN, Discriminator, Generator, discriminator_loss, generator_loss
from gensynth_course.train import Objective, fit

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
LOSSES = ("sentence", "word", "image", "encoder")
# Which contrastive losses each run of the ablation uses (weight 1.0 each, as in the paper).
RUNS = {"baseline": (), "sentence": ("sentence",), "word": ("word",), "image": ("image",),
        "encoder": ("encoder",), "sentence_word": ("sentence", "word"), "all": LOSSES, "all_plain": LOSSES,
        "all_head2": LOSSES, "all_perceptual": LOSSES}
TABLE_4 = ("baseline", "sentence", "word", "image", "encoder", "sentence_word", "all")   # the loss ablation
# ``eval 06`` trains every run with seed 0, and the runs of the headline comparisons (all against
# baseline, attentional against plain, the head's depth, contrastive against perceptual) with every
# seed of TRAINING_SEEDS (the first two at the quick budget, which only proves that the study runs:
# an interval over seeds needs two).
TRAINING_SEEDS = (0, 1, 2)
SEEDED_RUNS = ("baseline", "all", "all_plain", "all_head2", "all_perceptual")
NOTEBOOK_RUNS = ("all", "baseline")         # what the chapter trains itself (seed 0)
# The measures of a run that the study summarises over seeds (one-object shape accuracy and the
# other attributes alone are the partial credit of :func:`ablation`).
SUMMARY = ("caption_accuracy", "caption_accuracy_one_object", "caption_accuracy_two_object", "caption_accuracy_heldout",
           "r_precision", "fd", "diversity", "one_object_shape_accuracy", "one_object_colour_accuracy",
           "one_object_size_accuracy", "one_object_position_accuracy", "fake_contrastive_accuracy")


def gan_config(run: str, budget: str, seed: int = 0) -> dict:
    """One run of the ablation, trained with ``seed``. The recipe is the paper's (Adam,
    β = (0.5, 0.999), one D step per G step, learning rates 4e-4 for D and 1e-4 for G) with both
    rates raised for a short run, to 8e-4 and 4e-4 (in a one-seed probe, doubling our former 4e-4
    and 2e-4 raised one-object shape accuracy at 1,500 steps from 0.39 to 0.57), smaller networks
    and batches, and an EMA of the generator's weights to sample from."""
    if run not in RUNS:
        raise ValueError(f"run must be one of {', '.join(RUNS)}, not {run!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    return dict(model="XMCGAN", run=run, weights={name: float(name in RUNS[run]) for name in LOSSES},
                attentional=run != "all_plain", head_depth=2 if run == "all_head2" else 1,
                encoder_loss="perceptual" if run == "all_perceptual" else "contrastive",
                z_dim=64, g_channels=[64, 64, 32, 16], d_channels=[32, 64, 64],
                text_encoder=clip_config(budget),
                train_scenes=by_budget(quick=500, standard=20_000, full=50_000, budget=budget),
                batch_size=by_budget(quick=16, standard=32, budget=budget), g_lr=4e-4, d_lr=8e-4, betas=[0.5, 0.999],
                ema_decay=0.999, seed=seed,
                steps=by_budget(quick=10, standard=2000, full=10_000, budget=budget))


class CaptionEncoder:
    """Chapter 04's CLIP text tower, frozen: captions → (e_s (B, 64), e_w (B, T, 96), word mask
    (B, T)). e_s is CLIP's unit caption embedding times √64, so that its entries have the scale of
    the noise z beside which the generator reads it (the contrastive losses use cosines and do not
    see the scale). The word features are the transformer's outputs at each token, so each
    word is read in the context of the words before it (the encoder is causal; BERT reads both sides)."""

    def __init__(self, clip: CLIP):
        self.clip = clip.eval().requires_grad_(False)
        self.tokenizer = Tokenizer(context_length=clip.text.position.shape[0])
        self.sentence_dim = clip.text_projection.out_features
        self.word_dim = clip.text.width

    @torch.no_grad()
    def __call__(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids, mask = (t.to(model_device(self.clip)) for t in self.tokenizer.encode(captions))
        sentence = self.clip.encode_text(ids, mask, normalize=True) * self.sentence_dim ** 0.5
        return sentence, self.clip.text.tokens(ids, mask), mask


def build_gan(config: dict, text: CaptionEncoder) -> XMCGAN:
    return XMCGAN(config["z_dim"], text.sentence_dim, text.word_dim, tuple(config["g_channels"]),
                  tuple(config["d_channels"]), config["attentional"], config["head_depth"])


def train_gan(model: XMCGAN, config: dict, text: CaptionEncoder, image_encoder: nn.Module | None,
              checkpoint=None, preview=None, preview_every: int = 0, desc: str = "training XMC-GAN",
              device: torch.device | str | None = None) -> dict:
    """XMC-GAN's Algorithm 1 in the course's one training loop: per batch of real scenes (each with
    a fresh caption), one discriminator step (hinge loss on real and generated images, contrastive
    losses on real pairs), then one generator step (adversarial plus contrastive losses) on the same
    generated images. At the end the generator holds its EMA weights. Returns the loss history
    (``d_losses``, ``g_losses``, ``parts``) and timings."""
    data = shapes.load_shapes("train", config["train_scenes"], seed=config["seed"])
    images = to_model_range(data.images)
    weights, step = config["weights"], {}           # ``step``: what the generator's turn reuses

    def batch_fn(k, generator):
        idx, captions = shapes.captioned_batch(data, config["batch_size"], generator)
        return images[idx], captions, torch.randn(len(idx), config["z_dim"], generator=generator)

    def d_loss(m, batch, generator):
        real, captions, z = batch
        step["real"], step["text"] = real, text(captions)
        step["fake"] = m.generator(z, *step["text"])
        return discriminator_loss(m.discriminator, real, step["fake"], *step["text"], weights["sentence"],
                                  weights["word"])

    def g_loss(m, batch, generator):
        return generator_loss(m.discriminator, step["real"], step["fake"], *step["text"], image_encoder,
                              weights["sentence"], weights["word"], weights["image"], weights["encoder"],
                              config["encoder_loss"])

    betas = tuple(config["betas"])
    objectives = [Objective("d", d_loss, config["d_lr"], lambda m: m.discriminator.parameters(), betas, grad_clip=None),
                  Objective("g", g_loss, config["g_lr"], lambda m: m.generator.parameters(), betas, grad_clip=None)]
    return fit(model, objectives, batch_fn, config["steps"], seed=config["seed"], ema_decay=config["ema_decay"],
               ema_of="generator", preview=preview, preview_every=preview_every, checkpoint=checkpoint, desc=desc,
               device=device)


_FROZEN_CLIPS: dict = {}


def _chapter04_clip(config: dict, device: torch.device | str | None) -> CLIP:
    """Chapter 04's CLIP of ``config``, frozen, loaded once per config, cache folder and device (every
    run of the ablation uses it)."""
    device = resolve(device)
    key = (config_hash(config), str(cache_dir()), str(device))
    if key not in _FROZEN_CLIPS:
        _FROZEN_CLIPS[key] = load_clip(config, device=device)[0].eval().requires_grad_(False)
    return _FROZEN_CLIPS[key]


def load_text_encoder(config: dict, device: torch.device | str | None = None) -> CaptionEncoder:
    """Chapter 04's CLIP of ``config`` (a run's ``text_encoder``; from the cache, or trained now: about
    three CPU minutes) as the caption encoder."""
    return CaptionEncoder(_chapter04_clip(config, device))


def load_image_encoder(config: dict, device: torch.device | str | None = None) -> nn.Module:
    """Chapter 04's CLIP image tower, frozen: the stand-in for the paper's pretrained VGG in the
    second image–image loss. Its features (before CLIP's projection) are what the loss compares."""
    return _chapter04_clip(config, device).visual


def load_gan(config: dict, preview=None, preview_every: int = 0, retrain: bool = False,
             device: torch.device | str | None = None) -> tuple[XMCGAN, dict]:
    """One run of the ablation (``config``: :func:`gan_config`), from the cache or trained now
    (standard: a few CPU minutes)."""
    run = config["run"]
    text = load_text_encoder(config["text_encoder"], device)
    image_encoder = load_image_encoder(config["text_encoder"], device) if config["weights"]["encoder"] else None

    def train(model, checkpoint):
        history = train_gan(model, config, text, image_encoder, checkpoint, preview=preview,
                            preview_every=preview_every, desc=f"training XMC-GAN ({run})", device=device)
        history["seconds"] = round(history["seconds"], 1)
        return history

    return load_or_train(CHAPTER, f"gan_{run}", config, lambda: build_gan(config, text), train,
                         retrain=retrain, device=device)


@torch.no_grad()
def generate(generator: Generator, text: CaptionEncoder, captions: list[str], seed: int = 0,
             batch_size: int = 500) -> torch.Tensor:
    """One image per caption from ``generator`` (a trained pair's ``.generator``), in [−1, 1];
    the noise comes from ``seed``."""
    captions = caption_list(captions)
    noise = torch.Generator().manual_seed(seed)
    generator.eval()
    out = []
    for i in range(0, len(captions), batch_size):
        chunk = captions[i:i + batch_size]
        z = torch.randn(len(chunk), generator.z_dim, generator=noise).to(model_device(generator))
        out.append(generator(z, *text(chunk)).cpu())
    return torch.cat(out)


@torch.no_grad()
def contrastive_accuracy(discriminator: Discriminator, text: CaptionEncoder, captions: list[str],
                         images: torch.Tensor, batch_size: int = 32) -> float:
    """The paper's contrastive accuracy on generated images (its Fig. 5): in batches of
    ``batch_size`` (the training batch), how often the discriminator's contrastive head picks each
    generated image's own caption among the batch's by S_sent, the game its image–sentence loss
    plays. Whole batches only; ``images`` (N, 3, 32, 32) were drawn for ``captions`` (N)."""
    if len(captions) != len(images) or len(captions) < batch_size:
        raise ValueError(f"contrastive_accuracy: give one image per caption and at least {batch_size} of each, "
                         f"not {len(images)} images for {len(captions)} captions")
    discriminator.eval()
    device, hits = model_device(discriminator), []
    for i in range(0, len(captions) - batch_size + 1, batch_size):
        sentence = text(captions[i:i + batch_size])[0]
        _, embedding, _ = discriminator(images[i:i + batch_size].to(device), sentence)
        picked = xmc_losses.sentence_scores(embedding, sentence).argmax(1)
        hits.append(picked == torch.arange(batch_size, device=device))
    return round(float(torch.cat(hits).float().mean()), 4)


def ablation(configs: dict[str, dict], judge: Judge) -> dict:
    """Train (or load) every run of ``configs`` (name → :func:`gan_config`) and judge each on the fixed
    caption set (``judge``: a :class:`~gensynth_course.evaluation.judge.Judge`). Returns name →
    measures: caption accuracy (all attributes right) per group, R-precision, FD and diversity, and
    for one-object captions the accuracy of each attribute alone (partial credit, to see *what* a
    run gets right), and the discriminator's :func:`contrastive_accuracy` on its generated images.
    Every run draws the same captions from the same noise z, so two runs compare caption by
    caption (:func:`findings`)."""
    prompts = judge.prompts()
    one_object = [i for i, group in enumerate(judge.group * judge.repeats) if group == "one_object"]
    labels = shapes.description_labels([shapes.parse_caption(prompts[i]) for i in one_object])
    out = {}
    for name, config in configs.items():
        model, info = load_gan(config)
        text = load_text_encoder(config["text_encoder"])
        images = generate(model.generator, text, prompts)
        by_attribute = attribute_accuracy(judge.evaluator, images[one_object], labels)
        out[name] = {**judge(images), **{f"one_object_{attribute}_accuracy": by_attribute[key] for attribute, key in
                                         (("position", "layout"), ("shape", "shape_0"), ("colour", "colour_0"),
                                          ("size", "size_0"))},
                     "fake_contrastive_accuracy": contrastive_accuracy(model.discriminator, text, prompts, images,
                                                                       config["batch_size"]),
                     "train_seconds": info["seconds"], "model_id": info["model_id"]}
    return out


def findings(rows: dict[str, list[dict]], judge: Judge) -> dict:
    """Each run of ``rows`` (run → its :func:`ablation` rows, one per training seed, in the order of
    :data:`TRAINING_SEEDS`) against ``baseline``, and ``all`` against each of its variants
    (``all_plain``: plain self-modulation; ``all_head2``: the deeper head; ``all_perceptual``: the
    perceptual term), on each measure of the judge, over the seeds both runs have:

    * ``{run}_vs_{other}_{measure}``: the difference with its paired 95 % bootstrap interval over
      the captions (images, for FD), every seed's samples of a caption resampled together;
    * ``..._over_seeds`` (with two seeds or more): the seeds' differences and their t-interval;
    * ``..._verdict``: "better" or "worse" only where every interval excludes zero (FD: lower is
      better), else "no difference"; ``..._seeds``: how many training seeds the comparison has."""
    pairs = [(run, "baseline") for run in rows if run != "baseline"]
    pairs += [("all", variant) for variant in ("all_plain", "all_head2", "all_perceptual")
              if {"all", variant} <= set(rows)]
    out = {}
    for run, other in pairs:
        seeds = min(len(rows[run]), len(rows[other]))
        a, b = judge.pooled(rows[run][:seeds]), judge.pooled(rows[other][:seeds])
        for measure in MEASURES:
            key = f"{run}_vs_{other}_{measure}"
            found = [judge.compare(a, b, measure)]
            out[key] = found[0]
            if seeds > 1:
                found.append(stats.rounded(stats.over_seeds([x[measure] - y[measure] for x, y in
                                                             zip(rows[run][:seeds], rows[other][:seeds])])))
                out[f"{key}_over_seeds"] = found[1]
            sign = stats.direction(*found)
            out[f"{key}_verdict"] = ("no difference" if sign == "no difference"
                                     else "better" if (sign == "higher") == (measure != "fd") else "worse")
            out[f"{key}_seeds"] = seeds
    return out


def stability(rows: dict[str, list[dict]], blank_fd: float) -> dict:
    """The paper's remark that the contrastive losses stabilise training, measured over the seeds of
    each run of ``rows`` that has several: the spread of FD over its seeds (sample standard
    deviation, lowest and highest) and how many of its seeds collapsed, i.e. ended with FD no better
    than ``blank_fd``, the FD of a canvas with no object on it. With both ``baseline`` and ``all``,
    ``baseline_over_all_fd_variance``: the ratio of their FD variances with its F interval."""
    out = {"blank_fd": blank_fd, "runs": {}}
    for run, seed_rows in rows.items():
        fds = [row["fd"] for row in seed_rows]
        if len(fds) > 1:
            out["runs"][run] = {"fd_sd": round(float(torch.tensor(fds).std()), 4), "fd_lowest": min(fds),
                                "fd_highest": max(fds), "collapsed": sum(fd >= blank_fd for fd in fds),
                                "seeds": len(fds)}
    if {"baseline", "all"} <= set(out["runs"]):
        out["baseline_over_all_fd_variance"] = stats.rounded(stats.variance_ratio(
            [row["fd"] for row in rows["baseline"]], [row["fd"] for row in rows["all"]]))
    return out


def variant_study(runs: dict, found: dict, rows: dict[str, list[dict]], variant: str) -> dict:
    """``all`` against one of its variants: both runs' figures over seeds (the judge's measures and
    the discriminator's contrastive accuracy on generated images), and the differences all − variant
    from :func:`findings` with their verdicts; the contrastive accuracy's difference over seeds."""
    measures = MEASURES + ("fake_contrastive_accuracy", "one_object_shape_accuracy")
    seeds = min(len(rows["all"]), len(rows[variant]))
    parts = (("pooled", ""), ("over_seeds", "_over_seeds"), ("verdict", "_verdict"))
    differences = {measure: {part: found[f"all_vs_{variant}_{measure}{suffix}"] for part, suffix in parts
                             if f"all_vs_{variant}_{measure}{suffix}" in found} for measure in MEASURES}
    if seeds > 1:
        differences["fake_contrastive_accuracy"] = {"over_seeds": stats.rounded(stats.over_seeds(
            [a["fake_contrastive_accuracy"] - b["fake_contrastive_accuracy"]
             for a, b in zip(rows["all"][:seeds], rows[variant][:seeds])]))}
        sign = stats.direction(differences["fake_contrastive_accuracy"]["over_seeds"])
        differences["fake_contrastive_accuracy"]["verdict"] = ("no difference" if sign == "no difference" else sign)
    return {"runs": {run: {measure: runs[run][measure] for measure in measures} for run in ("all", variant)},
            "all_minus_variant": differences, "seeds": seeds}


def headline(all_run: dict) -> dict:
    """The ``all`` run's headline figures (its measures over seeds, as :func:`study` keeps them),
    means over its seeds, each named for the captions it counts: the shape drawn for one-object
    captions, and whole captions right over all captions, one-object and two-object captions."""
    return {"all_one_object_shape_accuracy": all_run["one_object_shape_accuracy"]["mean"],
            "all_caption_accuracy": all_run["caption_accuracy"]["mean"],
            "all_caption_accuracy_one_object": all_run["caption_accuracy_one_object"]["mean"],
            "all_caption_accuracy_two_object": all_run["caption_accuracy_two_object"]["mean"]}


def study_config(budget: str) -> dict[str, list[dict]]:
    """Every run of the ablation with its training seeds: all of :data:`TRAINING_SEEDS` for the
    :data:`SEEDED_RUNS` (the first two at the quick budget), seed 0 for the others."""
    seeds = by_budget(quick=TRAINING_SEEDS[:2], standard=TRAINING_SEEDS, budget=budget)
    return {run: [gan_config(run, budget, seed) for seed in (seeds if run in SEEDED_RUNS else seeds[:1])] for run in RUNS}


def study(configs: dict[str, list[dict]], judge: Judge) -> dict:
    """Train (or load) and judge every run and seed of ``configs`` (:func:`study_config`). Returns
    ``runs`` (run → measure → the seeds' figures with their mean and t-interval), the
    :func:`findings`, ``seeds`` (run → its training seeds), the :func:`headline` figures of the
    ``all`` run, ``head_depth`` and ``contrastive_vs_perceptual`` (:func:`variant_study` of
    ``all_head2`` and ``all_perceptual``) and ``stability`` (:func:`stability`)."""
    rows = {run: [ablation({run: config}, judge)[run] for config in run_configs] for run, run_configs in configs.items()}
    runs = {run: {measure: stats.rounded(stats.over_seeds([row[measure] for row in seed_rows])) for measure in SUMMARY}
            for run, seed_rows in rows.items()}
    out = {"seeds": {run: [config["seed"] for config in run_configs] for run, run_configs in configs.items()}}
    if "all" in runs:
        out.update(headline(runs["all"]))
    found = findings(rows, judge)
    for key, variant in (("head_depth", "all_head2"), ("contrastive_vs_perceptual", "all_perceptual")):
        if {"all", variant} <= set(runs):
            out[key] = variant_study(runs, found, rows, variant)
    blank = to_model_range(shapes.render([shapes.Scene((), "centre")] * len(judge.prompts())))
    out["stability"] = stability(rows, judge(blank)["fd"])
    out.update(runs=runs, **found,
               train_seconds={run: [row["train_seconds"] for row in seed_rows] for run, seed_rows in rows.items()},
               models={run: seed_rows[0]["model_id"] for run, seed_rows in rows.items() if run in NOTEBOOK_RUNS})
    return out


def cached_study(infos: dict[str, dict]) -> dict | None:
    """The results of the last ``eval 06`` whose seed-0 runs of :data:`NOTEBOOK_RUNS` are these very
    models (run → its info, as :func:`load_gan` returned it), or None."""
    return load_study(CHAPTER, {run: infos[run]["model_id"] for run in NOTEBOOK_RUNS})


def trainings(budget: str) -> list[Training]:
    """What the notebook trains at ``budget``: seed 0 of the ``all`` run (and of ``baseline`` at the
    quick budget, where the comparison costs seconds)."""
    runs = NOTEBOOK_RUNS if budget == "quick" else ("all",)
    return [Training(f"gan_{run}", gan_config(run, budget), load_gan) for run in runs]


def evaluate(budget: str) -> dict:
    """Chapter 06's measured results (``python -m gensynth_course eval 06``): the ablation, the head and
    perceptual studies and stability, with three training seeds for each run of :data:`SEEDED_RUNS`
    (:func:`study`). Kept as a study for the notebook."""
    start = time.perf_counter()
    results = study(study_config(budget), Judge(judge_config(budget)))
    models = results.pop("models")
    results["train_and_measure_seconds"] = round(time.perf_counter() - start, 1)
    save_study(CHAPTER, results, models)
    return results
