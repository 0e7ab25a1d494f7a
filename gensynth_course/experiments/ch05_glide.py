"""Chapter 05's experiments: GLIDE in miniature on the Shapes world.

Four models, each trained once and cached under ``ch05``:

* ``base`` -- the text-conditional UNet at 32 × 32 (:class:`~gensynth_course.models.diffusion.glide.TextConditionalUNet`),
  trained with 20 % empty captions so that classifier-free guidance works; ``eval 05`` trains three
  training seeds to measure guidance over them;
* ``noisy_clip`` -- a CLIP whose image encoder reads x_t and t, for CLIP guidance;
* ``upsampler`` -- a text-conditional UNet at 32 × 32 that also reads the 8 × 8 image, upsampled
  bilinearly (GLIDE's second stage, by its factor of four);
* ``inpainting`` -- the base model fine-tuned with four zero-initialised input channels (the masked
  image and the mask) on random masks; ``eval 05`` fine-tunes three training seeds.

Every generated image is judged by networks that did not take part in making it: the attribute
evaluator (caption accuracy) and chapter 04's evaluator CLIP (R-precision, FD and diversity in its
feature space); the CLIP that guides is trained here, on noised images, and is never a judge.
"""

from __future__ import annotations

import copy
import random
import time

import torch
from torch.nn import functional as F

from gensynth_course.budget import by_budget
from gensynth_course.cache import load_or_train, load_study, save_study
from gensynth_course.data import shapes
from gensynth_course.data.fashion_mnist import to_model_range
from gensynth_course.data.tokenizer import Tokenizer, caption_list
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.attribute_evaluator import caption_accuracy, load_attribute_evaluator
from gensynth_course.evaluation.evaluator_clip import same_description
from gensynth_course.evaluation.judge import VALIDATION_SEED, Judge, judge_config, without_items
from gensynth_course.evaluation.metrics import recall_at_k
from gensynth_course.experiments import Training
from gensynth_course.models.contrastive.clip import TextTransformer, contrastive_loss
from gensynth_course.models.contrastive.noisy_clip import CLIPGuidance, NoisyCLIP, NoisyImageEncoder
from gensynth_course.models.diffusion.glide import BOS_ID, EOS_ID, PAD_ID, TextConditionalUNet, drop_captions
from gensynth_course.models.diffusion.guidance import ClassifierFreeGuidance
from gensynth_course.models.diffusion.schedulers import DDIMScheduler, DDPMScheduler, linear_betas, sample
from gensynth_course.models.diffusion.unet import add_condition_channels
from gensynth_course.train import fit

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
CONTEXT_LENGTH = 16
# GLIDE's upsampler multiplies the side by four (64 → 256); so does ours (8 → 32).
UPSAMPLING_FACTOR = 4
# The seed of the editing task's scenes, replacement objects and captions (see edit_set).
EDIT_SCENE_SEED = 11


def base_config(budget: str) -> dict:
    """The base model: chapter 01's recipe (linear β, min-SNR weighting, warm-up, EMA) with a cosine
    learning-rate decay, on 32 × 32 RGB scenes folded into 2 × 2 patches (the UNet runs at 16, 8 and
    4 pixels), a 2-layer caption transformer, p_uncond = 0.2 (GLIDE). The caption's tokens are keys
    and values of the attention at 8 and at 4 pixels, as GLIDE's are at every resolution with
    attention (attention at 16 pixels as well would cost 2.7 times as much per step).

    ``order_curriculum``: the share of the steps, at the start, whose two-object captions all name
    the upper or left object first; the rest name either object first, as the judged captions do
    (:func:`scene_batch_fn`)."""
    return dict(model="TextConditionalUNet", size=32, channels=[32, 64, 128], blocks=1, patch=2, attention_levels=[1],
                text_width=64, text_layers=2, text_heads=4, context_length=CONTEXT_LENGTH,
                schedule="linear", T=1000, p_uncond=0.2, min_snr_gamma=5.0, order_curriculum=0.5,
                train_scenes=by_budget(quick=500, standard=20_000, full=50_000, budget=budget),
                batch_size=32, lr=2e-3, lr_schedule="cosine", warmup=100, grad_clip=1.0, seed=0,
                ema_decay=by_budget(quick=0.9, standard=0.998, full=0.9995, budget=budget),
                steps=by_budget(quick=30, standard=6000, full=40_000, budget=budget))


def noisy_clip_config(budget: str) -> dict:
    """The guiding CLIP: the UNet's encoder half with its time embedding, attention pooling, a
    causal caption transformer; trained on x_t at uniformly drawn t, on captions that name either
    object first from the start (no order curriculum)."""
    return dict(model="NoisyCLIP", channels=[32, 64], blocks=1, patch=2, image_width=128, heads=4,
                order_curriculum=0.0,
                text_width=96, text_layers=2, embed_dim=64, context_length=CONTEXT_LENGTH, schedule="linear", T=1000,
                train_scenes=by_budget(quick=500, standard=20_000, full=50_000, budget=budget),
                batch_size=by_budget(quick=32, standard=128, full=256, budget=budget), lr=2e-3, weight_decay=0.1,
                warmup=by_budget(quick=5, standard=100, full=300, budget=budget), seed=2,
                steps=by_budget(quick=20, standard=1200, full=8000, budget=budget))


def upsampler_config(budget: str) -> dict:
    """The second stage, by GLIDE's factor of four (its 64 → 256 in miniature): 32 × 32 output
    conditioned on the caption and on the scene at 8 × 8, upsampled bilinearly to 32 × 32 (three
    more channels). At 8 pixels a shape is two or three pixels wide: interpolation blurs it, and
    the caption says what it was. The network is the base model's; its loss is the plain
    L_simple: min-SNR weighting would play down the nearly noise-free steps, and fine detail, the
    upsampler's whole job, is made there."""
    return dict(base_config(budget), model="Upsampler", base=base_config(budget), size=32, low_size=8,
                p_uncond=0.0, min_snr_gamma=None, lr=1e-3, seed=3,
                train_scenes=by_budget(quick=300, standard=10_000, full=50_000, budget=budget),
                steps=by_budget(quick=20, standard=2500, full=20_000, budget=budget))


def inpainting_config(budget: str) -> dict:
    """Fine-tuning the base model for inpainting: four zero-initialised channels (masked RGB image
    and mask), random masks, the base model's recipe at a lower learning rate."""
    return dict(base_config(budget), model="Inpainting", base=base_config(budget), lr=5e-4, warmup=50, seed=4,
                steps=by_budget(quick=20, standard=1200, full=10_000, budget=budget))


def sampling_config(budget: str) -> dict:
    """The guidance sweep: DDIM with clipped x̂_0, the same starting noise for every scale, judged on
    the fixed caption set of :mod:`~gensynth_course.evaluation.judge`. ``cfg_scales`` and
    ``clip_scales``: the full sweep of ``eval 05``; ``notebook_scales``: the shorter one the notebook
    samples (the unguided model, a moderate and a large scale of each method), enough to show the
    lesson and to choose each method's scale among them on the validation captions."""
    return dict(steps=by_budget(quick=10, standard=25, full=50, budget=budget), seed=0,
                cfg_scales=by_budget(quick=[0.0, 1.0, 3.0], standard=[0.0, 1.0, 2.0, 3.0, 5.0, 8.0], budget=budget),
                clip_scales=by_budget(quick=[0.0, 5.0], standard=[0.0, 1.0, 3.0, 10.0, 30.0], budget=budget),
                notebook_scales=by_budget(quick={"cfg": [1.0, 3.0], "clip": [0.0, 5.0]},
                                          standard={"cfg": [1.0, 2.0, 8.0], "clip": [0.0, 1.0, 30.0]}, budget=budget),
                upsampler_steps=by_budget(quick=5, standard=50, full=100, budget=budget),
                upsampler_scenes=by_budget(quick=8, standard=200, full=500, budget=budget),
                edit_scenes=by_budget(quick=8, standard=300, full=500, budget=budget),
                inpainting_seeds=by_budget(quick=1, standard=3, budget=budget),
                base_seeds=by_budget(quick=1, standard=3, budget=budget))


def measure_config(budget: str) -> dict:
    """Everything chapter 05 measures with at a budget: its models' configs, the fixed judge, the
    sampler. The measuring functions below take this and nothing else."""
    return dict(base=base_config(budget), noisy_clip=noisy_clip_config(budget), upsampler=upsampler_config(budget),
                inpainting=inpainting_config(budget), judge=judge_config(budget), sampling=sampling_config(budget))


# ----------------------------------------------------------------------------- building


def build_text_unet(config: dict, cond_channels: int = 0) -> TextConditionalUNet:
    return TextConditionalUNet(len(Tokenizer()), config["context_length"], config["text_width"], config["text_layers"],
                               config["text_heads"], in_channels=3, channels=tuple(config["channels"]),
                               blocks=config["blocks"], patch=config["patch"], cond_channels=cond_channels,
                               attention_levels=tuple(config["attention_levels"]))


def build_noisy_clip(config: dict) -> NoisyCLIP:
    visual = NoisyImageEncoder(tuple(config["channels"]), config["blocks"], config["image_width"], config["heads"],
                               config["patch"])
    text = TextTransformer(len(Tokenizer()), config["context_length"], config["text_width"], config["text_layers"],
                           config["heads"])
    return NoisyCLIP(visual, text, config["embed_dim"])


def scheduler(config: dict | None = None) -> DDPMScheduler:
    """The forward process every chapter 05 model is trained with (linear β, T = 1000)."""
    return DDPMScheduler(linear_betas((config or {}).get("T", 1000)))


def scene_batch_fn(config: dict, size: int = 32, condition=None):
    """A function ``batch(k, generator) -> (images in [−1, 1], caption ids, image condition)`` of
    random training scenes, each with a fresh caption (a new template and synonyms every time).
    ``condition(idx, x0, generator)`` gives the image condition of a batch (None: no condition).

    The order curriculum: in "A above B" and "B below A", either object may come first, so neither
    the word order nor the relation word alone says where an object goes; only the two together do.
    Trained on such captions from the start, the model learns neither and places the two objects
    by a coin toss. For the first ``order_curriculum`` share of the steps every two-object caption
    therefore names the upper or left object first, so the order alone says where each goes; after
    that either object comes first, and the relation word is what tells them apart (a curriculum:
    the easy examples first, Bengio et al. 2009)."""
    data = shapes.load_shapes("train", config["train_scenes"], seed=config["seed"], size=size)
    images = to_model_range(data.images)
    tokenizer = Tokenizer(context_length=config["context_length"])

    curriculum_steps = config["order_curriculum"] * config["steps"]

    def batch(step: int, generator: torch.Generator):
        subject_first = 1.0 if step < curriculum_steps else 0.5
        idx, captions = shapes.captioned_batch(data, config["batch_size"], generator, subject_first)
        x0, ids, cond = images[idx], tokenizer.encode(captions)[0], None
        if condition is not None:
            cond = condition(idx, x0, generator)
        return x0, ids, cond

    return batch


def random_masks(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 1, size, size) masks, 1 = to be generated: half the time one half of the image (left,
    right, top or bottom, the regions an edit of one object needs), otherwise a random rectangle
    covering a quarter to three quarters of each side."""
    masks = torch.zeros(n, 1, size, size)
    kind = torch.randint(0, 2, (n,), generator=generator)
    for i in range(n):
        if kind[i] == 0:
            half = int(torch.randint(0, 4, (1,), generator=generator))
            region = [(slice(None), slice(0, size // 2)), (slice(None), slice(size // 2, None)),
                      (slice(0, size // 2), slice(None)), (slice(size // 2, None), slice(None))][half]
            masks[i, 0][region] = 1
        else:
            h, w = (int(v) for v in torch.randint(size // 4, 3 * size // 4 + 1, (2,), generator=generator))
            top = int(torch.randint(0, size - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, size - w + 1, (1,), generator=generator))
            masks[i, 0, top:top + h, left:left + w] = 1
    return masks


def inpainting_condition(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """GLIDE's four extra channels: the image with the region to generate blanked out (set to 0,
    mid-grey in [−1, 1]), and the mask itself (1 = generate, 0 = keep)."""
    return torch.cat([images * (1 - masks), masks], 1)


def upsampler_condition(low: torch.Tensor, size: int) -> torch.Tensor:
    """The low-resolution image, bilinearly upsampled to ``size``: the upsampler's extra channels."""
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------- training


def text_diffusion_loss(config: dict):
    """The loss every ε-model of the chapter trains with, ``loss(model, batch, generator)`` on a batch
    of :func:`scene_batch_fn`: each caption dropped to the empty one with probability ``p_uncond``
    (one network is then both the conditional and the unconditional model that classifier-free
    guidance mixes), then DDPM's L_simple (Ho et al. 2020, eq. 14), min-SNR weighted when the
    config's ``min_snr_gamma`` says so, with the batch's image condition (if any) as extra input channels."""
    sched = scheduler(config)

    def loss(m, batch, generator):
        x0, ids, cond = batch
        ids = drop_captions(ids, config["p_uncond"], BOS_ID, EOS_ID, PAD_ID, generator)
        kwargs = {} if cond is None else {"cond": cond}
        return sched.loss(m, x0, generator, min_snr_gamma=config["min_snr_gamma"], ids=ids, **kwargs)

    return loss


def _load_text_diffusion(config: dict, name: str, build, condition=None, init=None,
                          preview=None, preview_every: int = 0, device: torch.device | str | None = None):
    """Train (or load) one ε-model on captioned scenes. ``condition(idx, x0, generator)`` returns
    the image condition of a batch (None for the base model); ``init(model)`` sets the starting
    weights (the inpainting fine-tune starts from the base model)."""
    def train(model, checkpoint):
        if init is not None:
            init(model)
        history = fit(model, text_diffusion_loss(config), scene_batch_fn(config, config["size"], condition), config["steps"],
                      lr=config["lr"], seed=config["seed"], schedule=config["lr_schedule"], ema_decay=config["ema_decay"],
                      warmup=config["warmup"], grad_clip=config["grad_clip"], preview=preview,
                      preview_every=preview_every, checkpoint=checkpoint, desc=f"training {name}", device=device)
        return {k: history[k] for k in ("losses", "steps", "seconds", "examples_per_second")}

    return load_or_train(CHAPTER, name, config, build, train, device=device)


def load_base(config: dict, preview=None, preview_every: int = 0, device: torch.device | str | None = None):
    """The text-conditional base model of ``config`` (:func:`base_config`), from the cache or trained
    now (standard: about 18 CPU minutes)."""
    return _load_text_diffusion(config, "base", lambda: build_text_unet(config),
                                 preview=preview, preview_every=preview_every, device=device)


def load_upsampler(config: dict, device: torch.device | str | None = None):
    """The 8 → 32 upsampler. It learns from real pairs: each 32 × 32 training render and the same
    scene rendered at 8 × 8 (what a perfect low-resolution model would have produced). It starts from the
    base model's weights with three zero-initialised condition channels (as the inpainting model
    does): the base already predicts noise precisely at every step, and trained from scratch for
    the same few minutes an upsampler's small errors at high noise grow into stains and grain.
    ``config``: :func:`upsampler_config`."""
    low = to_model_range(shapes.load_shapes("train", config["train_scenes"], seed=config["seed"],
                                            size=config["low_size"]).images)

    def condition(idx, x0, generator):
        return upsampler_condition(low[idx], config["size"])

    def init(model):
        base, _ = load_base(config["base"], device=device)
        model.load_state_dict(add_condition_channels_to(copy.deepcopy(base), 3).state_dict())

    return _load_text_diffusion(config, "upsampler", lambda: add_condition_channels_to(build_text_unet(config), 3),
                                 condition=condition, init=init, device=device)


def load_inpainting(config: dict, device: torch.device | str | None = None):
    """The base model fine-tuned for inpainting (GLIDE, section 3.3); ``config``: :func:`inpainting_config`."""

    def build():
        return add_condition_channels_to(build_text_unet(config), 4)

    def init(model):
        base, _ = load_base(config["base"], device=device)
        model.load_state_dict(add_condition_channels_to(copy.deepcopy(base), 4).state_dict())

    def condition(idx, x0, generator):
        return inpainting_condition(x0, random_masks(len(x0), config["size"], generator))

    return _load_text_diffusion(config, "inpainting", build, condition=condition, init=init, device=device)


def add_condition_channels_to(model: TextConditionalUNet, extra: int) -> TextConditionalUNet:
    add_condition_channels(model.unet, extra)
    return model


def load_noisy_clip(config: dict, device: torch.device | str | None = None) -> tuple[NoisyCLIP, dict]:
    """The noise-aware CLIP: symmetric InfoNCE between x_t (t uniform in 0 … T−1) and captions."""

    def train(model, checkpoint):
        sched = scheduler(config)

        def loss_fn(m, batch, generator):
            x0, ids, _ = batch
            t = torch.randint(0, sched.num_train_timesteps, (len(x0),), generator=generator).to(x0.device)
            x_t = sched.add_noise(x0, torch.randn(x0.shape, generator=generator).to(x0.device), t)
            return contrastive_loss(m(x_t, t, ids))

        history = fit(model, loss_fn, scene_batch_fn(config), config["steps"], lr=config["lr"], seed=config["seed"],
                      warmup=config["warmup"], schedule="cosine", weight_decay=config["weight_decay"],
                      checkpoint=checkpoint, desc="training noisy CLIP", device=device)
        return {k: history[k] for k in ("losses", "steps", "seconds")}

    return load_or_train(CHAPTER, "noisy_clip", config, lambda: build_noisy_clip(config), train, device=device)


@torch.no_grad()
def noisy_clip_accuracy(clip: NoisyCLIP, steps: list[int], n: int = 500, seed: int = 0) -> list[float]:
    """Image→caption top-1 accuracy of the noisy CLIP among ``n`` test captions, on x_t at each t
    (a right answer is any caption with the image's description)."""
    data = shapes.load_shapes("test", n, seed=seed)
    captions = shapes.captions(data.scenes, seed=seed + 1)
    tokenizer = Tokenizer(context_length=CONTEXT_LENGTH)
    ids, mask = tokenizer.encode(captions)
    relevant = same_description(data.descriptions(), data.descriptions())
    sched, generator = scheduler(), torch.Generator().manual_seed(seed)
    clip.eval()
    text = clip.encode_text(ids, mask, normalize=True)
    x0 = to_model_range(data.images)
    out = []
    for t in steps:
        tt = torch.full((n,), t)
        x_t = sched.add_noise(x0, torch.randn(x0.shape, generator=generator), tt)
        out.append(round(recall_at_k(clip.encode_image(x_t, tt, normalize=True) @ text.T, relevant, 1), 4))
    return out


# ----------------------------------------------------------------------------- sampling


def guided_model(model: TextConditionalUNet, method: str, scale: float, clip: NoisyCLIP | None = None):
    """The guided denoiser for ``method`` 'cfg' (classifier-free guidance at ``scale``) or 'clip'
    (the conditional model plus CLIP guidance at ``scale``, which the sampler applies)."""
    if method == "cfg":
        return ClassifierFreeGuidance(model, scale)
    if method == "clip":
        if clip is None:
            raise ValueError("CLIP guidance needs the noisy CLIP: pass clip=load_noisy_clip(...)[0].")
        return CLIPGuidance(model, clip.eval(), scale)
    raise ValueError(f"method must be 'cfg' or 'clip', not {method!r}")


def generate(model: TextConditionalUNet, captions: list[str], method: str = "cfg", scale: float = 3.0,
             clip: NoisyCLIP | None = None, steps: int = 25, seed: int = 0, progress: bool = True,
             frames: int = 0):
    """32 × 32 images (floats in [−1, 1]) for ``captions``, one per caption; an unknown word
    raises :class:`~gensynth_course.data.tokenizer.UnknownWordError` with suggestions."""
    captions = caption_list(captions)
    ids, _ = Tokenizer(context_length=CONTEXT_LENGTH).encode(captions)
    sampler = DDIMScheduler(linear_betas(), clip_sample=True)
    denoiser = guided_model(model, method, scale, clip)
    images, snapshots = sample(denoiser, sampler, (len(captions), 3, 32, 32), steps,
                               generator=torch.Generator().manual_seed(seed), progress=progress, frames=frames,
                               batch_size=250, y=ids)
    return (images, snapshots) if frames else images


def upsample(upsampler: TextConditionalUNet, low: torch.Tensor, captions: list[str], steps: int = 50,
             seed: int = 0, progress: bool = True) -> torch.Tensor:
    """Images four times the size of ``low`` (floats in [−1, 1]; 8 × 8 → 32 × 32 here) from those
    images and their captions, with stochastic DDIM (η = 1, fresh noise at every step). The
    deterministic sampler (η = 0) carries the network's small errors from step to step and ends in
    visible grain; fresh noise washes them out."""
    ids, _ = Tokenizer(context_length=CONTEXT_LENGTH).encode(caption_list(captions))
    size = UPSAMPLING_FACTOR * low.shape[-1]
    sampler = DDIMScheduler(linear_betas(), eta=1.0, clip_sample=True)
    images, _ = sample(upsampler, sampler, (len(low), 3, size, size), steps,
                       generator=torch.Generator().manual_seed(seed), progress=progress, batch_size=100, ids=ids,
                       cond=upsampler_condition(low, size))
    return images


def inpaint(model: TextConditionalUNet, images: torch.Tensor, masks: torch.Tensor, captions: list[str],
            scale: float = 3.0, steps: int = 25, seed: int = 0, naive: bool = False,
            progress: bool = True) -> torch.Tensor:
    """Fill the region where ``masks`` is 1 so that the whole image fits ``captions``, with
    classifier-free guidance at ``scale``.

    ``naive=False``: ``model`` is the fine-tuned inpainting model and sees the masked image and the
    mask. ``naive=True``: ``model`` is the base model, which never learned to inpaint; after every
    step the known region of x_t is overwritten by a fresh sample of q(x_t | x_0) of the original
    (the baseline GLIDE improves on). Either way the known pixels are pasted back at the end."""
    ids, _ = Tokenizer(context_length=CONTEXT_LENGTH).encode(caption_list(captions))
    sampler = DDIMScheduler(linear_betas(), clip_sample=True)
    sampler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    guided = ClassifierFreeGuidance(model, scale).eval()
    kwargs = {} if naive else {"cond": inpainting_condition(images, masks)}
    x = torch.randn(images.shape, generator=generator)
    timesteps = sampler.timesteps.tolist()
    with torch.no_grad():
        for i, t in enumerate(timesteps):
            tt = torch.full((len(x),), t, dtype=torch.long)
            x = sampler.step(guided(x, tt, ids, **kwargs), t, x)
            if naive and i + 1 < len(timesteps):
                t_prev = torch.full((len(x),), timesteps[i + 1], dtype=torch.long)
                known = sampler.add_noise(images, torch.randn(images.shape, generator=generator), t_prev)
                x = masks * x + (1 - masks) * known
    return (masks * x + (1 - masks) * images).clamp(-1, 1)


# ----------------------------------------------------------------------------- measuring


def guidance_sweep(m: dict, judge: Judge, progress: bool = True, scales: dict | None = None) -> dict:
    """Sample the caption set at every scale of CFG and of CLIP guidance and judge each set
    (``m``: :func:`measure_config`; ``judge``: a :class:`Judge` of ``m["judge"]``; ``scales``:
    {"cfg": [...], "clip": [...]}, by default the full sweep of ``m["sampling"]``). Returns {"cfg":
    [row per scale], "clip": [...], "cfg_scales": [...], "clip_scales": [...]}. Every scale of both
    methods starts from the same noise, so any two rows compare caption by caption. CLIP guidance
    at s = 0 is the conditional model, which CFG at s = 1 already sampled from that noise: its row
    is that one, not a second sampling of the same model."""
    config = m["sampling"]
    scales = scales or {method: config[f"{method}_scales"] for method in ("cfg", "clip")}
    if sorted(scales) != ["cfg", "clip"] or not all(scales.values()):
        raise ValueError(f"scales must give both methods at least one scale, as {{'cfg': [...], 'clip': [...]}}, "
                         f"not {scales!r}")
    base, _ = load_base(m["base"])
    clip, _ = load_noisy_clip(m["noisy_clip"])
    out = {"cfg_scales": list(scales["cfg"]), "clip_scales": list(scales["clip"]), "cfg": [], "clip": []}
    for method in ("cfg", "clip"):
        for scale in out[f"{method}_scales"]:
            if method == "clip" and scale == 0 and 1.0 in out["cfg_scales"]:
                out[method].append(out["cfg"][out["cfg_scales"].index(1.0)])
                continue
            images = generate(base, judge.prompts(), method, scale, clip, config["steps"], config["seed"], progress)
            out[method].append(judge(images))
    return out


def sweep_table(sweep: dict) -> dict:
    """A sweep's figures by method and measure, one value per scale ({"cfg": {"fd": [...], ...},
    "clip": {...}}; ``sweep``: :func:`guidance_sweep`), the per-item lists left out: the form
    ``eval 05`` keeps as ``cfg_sweep`` and ``clip_sweep``."""
    return {method: {key: [row[key] for row in sweep[method]] for key in without_items(sweep[method][0])}
            for method in ("cfg", "clip")}


# How the findings name each group's caption accuracy: one-object accuracy is the caption accuracy.
GROUP_KEYS = {"one_object": "caption_accuracy", "two_object": "two_object_accuracy", "heldout": "heldout_accuracy"}


def validation_judge(m: dict) -> Judge:
    """The judge of the validation captions, on which a guidance scale is chosen: drawn as the fixed
    set is, with another seed (:data:`~gensynth_course.evaluation.judge.VALIDATION_SEED`), half as
    many captions per group."""
    config = m["judge"]
    return Judge(dict(config, **{group: max(config[group] // 2, 2) for group in ("one_object", "two_object", "heldout")}),
                 seed=VALIDATION_SEED)


def best_scales(validation: dict) -> dict:
    """Each method's scale with guidance on (CFG: s ≠ 1; CLIP guidance: s > 0) where caption
    accuracy over all the validation captions is highest (``validation``: :func:`guidance_sweep`
    on :func:`validation_judge`); ties go to the smaller scale."""
    on = {"cfg": lambda s: s != 1.0, "clip": lambda s: s > 0}
    return {method: max((s for s in validation[f"{method}_scales"] if on[method](s)),
                        key=lambda s: (validation[method][validation[f"{method}_scales"].index(s)]["caption_accuracy"], -s))
            for method in ("cfg", "clip")}


def guidance_findings(sweep: dict, judge: Judge, validation: dict) -> dict:
    """The sweep's comparisons on the fixed captions (``sweep``: :func:`guidance_sweep` on
    ``judge``): the unguided model (CFG at s = 1), and each method at the scale chosen on the
    validation captions (:func:`best_scales`), so the fixed set is not also the one the choice was
    made on. Each measure with its 95 % bootstrap interval over the captions (one-object
    ``caption_accuracy``, ``two_object_accuracy``, ``heldout_accuracy``, ``r_precision``); and
    the three differences (each method − unguided, CFG − CLIP guidance), paired caption by caption,
    with ``verdict`` "higher", "lower" or "no difference" (the interval excludes zero or not); and
    for each, ``<name>_two_object_order``: how many two-object samples are right and how many show
    the caption the wrong way round (:meth:`~gensynth_course.evaluation.judge.Judge.order`)."""
    scales = best_scales(validation)
    rows = {"unguided": sweep["cfg"][sweep["cfg_scales"].index(1.0)],
            "cfg": sweep["cfg"][sweep["cfg_scales"].index(scales["cfg"])],
            "clip_guidance": sweep["clip"][sweep["clip_scales"].index(scales["clip"])]}
    out = {"cfg_best_scale": scales["cfg"], "clip_guidance_best_scale": scales["clip"],
           "scale_chosen_on": f"validation captions (seed {VALIDATION_SEED})"}
    measures = [("caption_accuracy", group, GROUP_KEYS[group]) for group in judge.sets] + [("r_precision", None, "r_precision")]
    for name, row in rows.items():
        for measure, group, key in measures:
            out[f"{name}_{key}"] = judge.interval(row, measure, group)
        out[f"{name}_two_object_order"] = judge.order(row)
    for a, b in (("cfg", "unguided"), ("clip_guidance", "unguided"), ("cfg", "clip_guidance")):
        for measure, group, key in measures:
            d = judge.compare(rows[a], rows[b], measure, group)
            out[f"{a}_minus_{b}_{key}"] = {**d, "verdict": stats.direction(d)}
    return out


def guidance_over_seeds(m: dict, judge: Judge, scale: float, first: dict | None = None, progress: bool = True) -> dict:
    """Classifier-free guidance at ``scale`` and the unguided model (CFG at s = 1) for every
    training seed of the base model (:func:`seeds_of`), on ``judge``'s fixed captions from the
    same noise. For each, per caption group, ``<name>_<key>_over_seeds``: each seed's caption
    accuracy, their mean and its 95 % t-interval over the seeds (:func:`stats.over_seeds`), and
    ``<name>_swapped_over_seeds``: the share of two-object samples drawn the wrong way round; and
    ``cfg_minus_unguided_<key>_over_seeds``. ``scale`` is the one chosen for the first seed on the
    validation captions, so the other seeds are measured at a scale not chosen for them.
    ``first``: the first seed's judged rows {"cfg": ..., "unguided": ...} where a sweep already
    has them."""
    config, rows = m["sampling"], {"cfg": [], "unguided": []}
    for i, seed in enumerate(seeds_of(m, "base")):
        if i == 0 and first is not None:
            for name in rows:
                rows[name].append(first[name])
            continue
        base, _ = load_base(dict(m["base"], seed=seed))
        for name, s in (("cfg", scale), ("unguided", 1.0)):
            rows[name].append(judge(generate(base, judge.prompts(), "cfg", s, None, config["steps"], config["seed"],
                                             progress)))
    out = {"base_seeds": seeds_of(m, "base")}
    for group in judge.sets:
        figures = {name: [row[f"caption_accuracy_{group}"] for row in rows[name]] for name in rows}
        for name in rows:
            out[f"{name}_{GROUP_KEYS[group]}_over_seeds"] = stats.rounded(stats.over_seeds(figures[name]))
        out[f"cfg_minus_unguided_{GROUP_KEYS[group]}_over_seeds"] = stats.rounded(
            stats.over_seeds([a - b for a, b in zip(figures["cfg"], figures["unguided"])]))
    for name in rows:
        swapped = [row["swapped_two_object"] for row in rows[name]]
        out[f"{name}_swapped_over_seeds"] = stats.rounded(stats.over_seeds(swapped))
    return out


INTERPOLATIONS = ("bilinear", "bicubic")


def upsampler_quality(m: dict, n: int | None = None) -> dict:
    """On ``n`` real test scenes (the config's number unless given; ``m``: :func:`measure_config`),
    where the truth is known: each scene's 8 × 8 render brought to 32 × 32 by the diffusion
    upsampler and by bilinear and bicubic interpolation, each compared with the true 32 × 32
    render. Per method: mean absolute error (in [0, 1] units), ``detail``, the mean difference
    between neighbouring pixels relative to the true render's (1 is right; below 1 is blurred,
    above 1 is grain or noise), and the caption accuracy the attribute evaluator reads from the
    result (the true renders' own is given as the ceiling). ``<interpolation>_minus_upsampler_mae``
    is the error difference with its paired 95 % bootstrap interval over the scenes (above zero:
    the upsampler is closer to the truth); ``upsampler_beats_bilinear`` is true only when both
    intervals, against bilinear and against bicubic, lie above zero."""
    n = n or m["sampling"]["upsampler_scenes"]
    upsampler, _ = load_upsampler(m["upsampler"])
    evaluator, _ = load_attribute_evaluator(m["judge"]["evaluator"])
    config = m["upsampler"]
    scenes = shapes.make_scenes(n, "test", seed=7)
    captions = shapes.captions(scenes, seed=8)
    low, high = (to_model_range(shapes.render(scenes, size)) for size in (config["low_size"], config["size"]))
    results = {"upsampler": upsample(upsampler, low, captions, m["sampling"]["upsampler_steps"], progress=False),
               **{name: F.interpolate(low, size=config["size"], mode=name, align_corners=False).clamp(-1, 1)
                  for name in INTERPOLATIONS}}

    def detail(x):
        return float((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean())

    def read(images):
        return caption_accuracy(images, captions, evaluator).float()

    out, errors = {"scenes": n, "true_render_caption_accuracy": stats.rounded(stats.interval(read(high)))}, {}
    for name, images in results.items():
        errors[name] = ((images - high).abs() / 2).flatten(1).mean(1)
        out[f"{name}_mae"] = round(float(errors[name].mean()), 4)
        out[f"{name}_detail"] = round(detail(images) / detail(high), 4)
        out[f"{name}_caption_accuracy"] = stats.rounded(stats.interval(read(images)))
    for name in INTERPOLATIONS:          # scene by scene: the same 8 × 8 input for every method
        out[f"{name}_minus_upsampler_mae"] = stats.rounded(stats.difference(errors[name], errors["upsampler"]))
    out["upsampler_beats_bilinear"] = stats.direction(*(out[f"{name}_minus_upsampler_mae"]
                                                         for name in INTERPOLATIONS)) == "higher"
    return out


def edit_set(n: int, seed: int = EDIT_SCENE_SEED) -> tuple[list[shapes.Scene], list[shapes.Scene], list[str], torch.Tensor]:
    """``n`` side-by-side test scenes; the same scenes with the left object replaced by another kind
    (a different shape and colour, the same size and place); a caption of each edited scene; and
    the left-half masks (1 = generate)."""
    rng = random.Random(seed)
    scenes = [s for s in shapes.make_scenes(6 * n, "test", seed=seed) if s.layout == "side by side"][:n]
    edited = []
    for scene in scenes:
        left, right = scene.objects
        while True:
            new = shapes.ShapeObject(rng.choice(shapes.SHAPES), rng.choice(shapes.COLOUR_NAMES), left.size, left.x, left.y)
            if (new.shape != left.shape and new.colour != left.colour and new.kind != right.kind
                    and (new.shape, new.colour) not in shapes.HELD_OUT):
                break
        edited.append(shapes.Scene((new, right), scene.layout))
    masks = torch.zeros(len(scenes), 1, 32, 32)
    masks[..., :16] = 1
    return scenes, edited, shapes.captions(edited, seed=seed), masks


def seam(images: torch.Tensor, column: int = 16) -> torch.Tensor:
    """Per image, the mean absolute difference between the two pixel columns either side of the
    mask's edge (in [0, 1] units): a visible seam makes it large."""
    return (images[..., column] - images[..., column - 1]).abs().flatten(1).mean(1) / 2


def seeds_of(m: dict, model: str, count: int | None = None) -> list[int]:
    """The training seeds of ``model`` ("base" or "inpainting") a measurement uses: the config's
    seed and the next ones, ``count`` of them (the sampling config's ``<model>_seeds`` unless
    given)."""
    return [m[model]["seed"] + i for i in range(count or m["sampling"][f"{model}_seeds"])]


def inpainting_quality(m: dict, n: int | None = None, scale: float = 3.0, training_seeds: int | None = None) -> dict:
    """The editing task on ``n`` scenes (the config's number unless given; ``m``:
    :func:`measure_config`) for the naive baseline (the base model) and for fine-tuned models of
    ``training_seeds`` seeds (:func:`seeds_of`), every method from the same noise: the
    whole edited image judged against the edit caption (``*_edit_accuracy``), the new left object
    alone (``*_left_accuracy``), the seam at the mask's edge (``*_seam``, the true edited scenes'
    as ``true_seam``). Fine-tuned figures are means over the seeds, per scene; each fine-tuned −
    naive difference carries its paired 95 % bootstrap interval over the scenes, and with several
    seeds ``..._over_seeds``, the seeds' differences with their t-interval. ``*_verdict`` is
    "higher", "lower" or "no difference": a direction only where every interval excludes zero."""
    n = n or m["sampling"]["edit_scenes"]
    steps = m["sampling"]["steps"]
    evaluator, _ = load_attribute_evaluator(m["judge"]["evaluator"])
    scenes, edited_scenes, captions, masks = edit_set(n)
    originals, truth = (to_model_range(shapes.render(x)) for x in (scenes, edited_scenes))
    wanted = [s.describe() for s in edited_scenes]

    def measure(model, naive):
        edited = inpaint(model, originals, masks, captions, scale, steps, naive=naive, progress=False)
        seen = shapes.labels_to_descriptions(evaluator.predict(edited))
        return {"edit_accuracy": torch.tensor([float(w == s) for w, s in zip(wanted, seen)]),
                "left_accuracy": torch.tensor([float(len(s.kinds) == 2 and w.kinds[0] == s.kinds[0])
                                               for w, s in zip(wanted, seen)]),
                "seam": seam(edited)}

    naive = measure(load_base(m["base"])[0], naive=True)
    seeds = seeds_of(m, "inpainting", training_seeds)
    tuned = [measure(load_inpainting(dict(m["inpainting"], seed=seed))[0], naive=False) for seed in seeds]
    out = {"scenes": n, "training_seeds": seeds, "true_seam": round(float(seam(truth).mean()), 4)}
    for key in ("edit_accuracy", "left_accuracy", "seam"):
        finetuned = torch.stack([run[key] for run in tuned]).mean(0)          # per scene, over the seeds
        out[f"naive_{key}"] = stats.rounded(stats.interval(naive[key]))
        out[f"finetuned_{key}"] = stats.rounded(stats.interval(finetuned))
        found = [stats.rounded(stats.difference(finetuned, naive[key]))]
        out[f"finetuned_minus_naive_{key}"] = found[0]
        if len(seeds) > 1:
            found.append(stats.rounded(stats.over_seeds([float((run[key] - naive[key]).mean()) for run in tuned])))
            out[f"finetuned_minus_naive_{key}_over_seeds"] = found[1]
        out[f"finetuned_minus_naive_{key}_verdict"] = stats.direction(*found)
    return out


def cached_study(base_info: dict, inpainting_info: dict) -> dict | None:
    """The results of the last ``eval 05`` that measured this base model and this seed's inpainting
    fine-tune (their infos, as the loaders returned them), or None."""
    return load_study(CHAPTER, {"base": base_info["model_id"], "inpainting": inpainting_info["model_id"]})


def trainings(budget: str) -> list[Training]:
    """What the notebook trains at ``budget``: the base model, the noise-aware CLIP, the upsampler
    and the inpainting fine-tune (seed 0)."""
    return [Training("base", base_config(budget), load_base),
            Training("noisy_clip", noisy_clip_config(budget), load_noisy_clip),
            Training("upsampler", upsampler_config(budget), load_upsampler),
            Training("inpainting", inpainting_config(budget), load_inpainting)]


def evaluate(budget: str) -> dict:
    """Chapter 05's measured results (``python -m gensynth_course eval 05``). The headline keys:
    ``cfg_caption_accuracy`` (one-object captions), ``cfg_two_object_accuracy`` and
    ``cfg_heldout_accuracy`` at the scale chosen on the validation captions (the first training
    seed's, with a bootstrap interval over the captions), the same as means over the base model's
    training seeds (``..._over_seeds``, :func:`guidance_over_seeds`), and
    ``upsampler_beats_bilinear``. The results are also kept as a study for the notebook."""
    m = measure_config(budget)
    start = time.perf_counter()
    base_infos = [load_base(dict(m["base"], seed=seed))[1] for seed in seeds_of(m, "base")]
    clip, clip_info = load_noisy_clip(m["noisy_clip"])
    upsampler, upsampler_info = load_upsampler(m["upsampler"])
    inpainting_infos = [load_inpainting(dict(m["inpainting"], seed=seed))[1] for seed in seeds_of(m, "inpainting")]
    trained = time.perf_counter()
    judge = Judge(m["judge"])
    validation = guidance_sweep(m, validation_judge(m), progress=False)
    sweep = guidance_sweep(m, judge, progress=False)
    per_scale = {f"{method}_sweep": table for method, table in sweep_table(sweep).items()}
    findings = guidance_findings(sweep, judge, validation)
    scale = findings["cfg_best_scale"]
    first = {name: sweep["cfg"][sweep["cfg_scales"].index(s)] for name, s in (("cfg", scale), ("unguided", 1.0))}
    over_seeds = guidance_over_seeds(m, judge, scale, first, progress=False)
    upsampling = upsampler_quality(m)
    results = {
        **findings, **{key: value for key, value in over_seeds.items() if key.endswith("_over_seeds")},
        "upsampler_beats_bilinear": upsampling.pop("upsampler_beats_bilinear"),
        "training_seeds": {"base": len(base_infos), "noisy_clip": 1, "upsampler": 1,
                           "inpainting": len(inpainting_infos)},
        "cfg_scales": sweep["cfg_scales"], "clip_scales": sweep["clip_scales"], **per_scale,
        "validation_caption_accuracy": {method: [row["caption_accuracy"] for row in validation[method]]
                                        for method in ("cfg", "clip")},
        "noisy_clip_accuracy_by_t": dict(zip(["t=0", "t=250", "t=500", "t=750"],
                                             noisy_clip_accuracy(clip, [0, 250, 500, 750]))),
        **{f"inpainting_{k}": v for k, v in inpainting_quality(m).items()},
        **{f"upsampling_{k}": v for k, v in upsampling.items()},
        "train_seconds": {"base": [round(info["seconds"], 1) for info in base_infos],
                          "noisy_clip": round(clip_info["seconds"], 1),
                          "upsampler": round(upsampler_info["seconds"], 1),
                          "inpainting": [round(info["seconds"], 1) for info in inpainting_infos]},
        "measure_seconds": round(time.perf_counter() - trained, 1), "train_and_measure_seconds": round(time.perf_counter() - start, 1),
    }
    save_study(CHAPTER, results, {"base": base_infos[0]["model_id"], "inpainting": inpainting_infos[0]["model_id"]})
    return results
