"""Chapter 07's experiments: AudioCLIP in miniature on sounding shapes.

AudioCLIP (Guzhov et al. 2021) trains its audio head in stages, and so do we:

1. the audio head alone, supervised on the scene's attributes (the paper pre-trains ESResNeXt on
   AudioSet labels);
2. *partial* training: the audio head learns to meet chapter 04's frozen image and text heads
   (audio–image and audio–text InfoNCE, each with its own learned temperature);
3. *full* training: all three heads learn with all three pair losses.

Partial and full training both start from stage 1 and chapter 04's CLIP and run the same steps,
so the two columns of the tables compare like with like. Sounds come from
:mod:`~gensynth_course.data.sounds`, one clip per scene, augmented as in the paper.

Measures, as in the paper's tables: the audio head's supervised attribute accuracy; zero-shot
classification of sounds by text prompts (the 240 lone-object descriptions, prompt-ensembled as in
chapter 04), on seen and on held-out shape–colour pairs; and querying among the lone-object test
scenes with P@1, R@1 and mAP, a candidate being right when it shows or sounds the same description.
Two controls of full training (:data:`CONTROLS`) ask whether the image head's loss on held-out
pairs after full training comes from the method or from the learning rate and weight decay at
which CLIP's pretrained heads move.

Downstream, as the paper fine-tunes its audio head on ESC-50 and UrbanSound8K: a label no stage
saw, the *likeness* of a two-object scene (do its objects share their shape, their colour, both or
neither; :data:`shapes.LIKENESS`), learnt from a few labelled clips by fine-tuning a head from
scratch, from stage 1 and from full training (:func:`downstream_study`), and read from AudioCLIP's
frozen sound and image embeddings, alone and fused (:func:`fused_classification`).
"""

from __future__ import annotations

import copy
import functools
import time
from statistics import fmean

import torch

from gensynth_course.budget import by_budget
from gensynth_course.cache import load_or_train, load_study, save_study
from gensynth_course.data import shapes, sounds
from gensynth_course.data.fashion_mnist import to_model_range
from gensynth_course.data.tokenizer import Tokenizer
from gensynth_course.device import model_device
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.attribute_evaluator import attribute_accuracy
from gensynth_course.evaluation.evaluator_clip import clip_config, embed_images, embed_texts, same_description
from gensynth_course.evaluation.metrics import mean_average_precision, precision_at_k, recall_of_relevant_at_k
from gensynth_course.experiments import Training
from gensynth_course.experiments.shapes_clip import (ONE_OBJECT, ZERO_SHOT_ATTRIBUTES, classify_by_prompts, load_clip,
                                                     lone_objects, prompt_ensemble, zero_shot, zero_shot_accuracy,
                                                     zero_shot_scores)
from gensynth_course.models.contrastive.audio_head import AudioEncoder, SoundClassifier
from gensynth_course.models.contrastive.audioclip import TRAINED_PAIRS, AudioCLIP
from gensynth_course.train import Objective, fit

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
# Clip i of a sound bank uses synthesis seed offset + i; each split has its own offset, so no two
# banks share phases.
SEED_OFFSET = {"train": 0, "test": 1_000_000, "heldout": 2_000_000, "all": 3_000_000,
               "likeness_train": 4_000_000, "likeness_test": 5_000_000}


def audio_config(budget: str) -> dict:
    """Stage 1: the audio head (a ~50 k-parameter ESResNeXt in miniature on a frozen 512-point STFT,
    hop 16 ms, up to 2 kHz) on attribute classification, AdamW with warm-up and cosine decay, batches
    of 64 augmented clips."""
    return dict(model="AudioEncoder", channels=[32, 64, 128], cardinality=8, embed_dim=64, trainable_frontend=False,
                hop=256, max_hz=2000,
                train_scenes=by_budget(quick=200, standard=6000, full=20_000, budget=budget),
                batch_size=64, lr=2e-3, weight_decay=1e-4, warmup=by_budget(quick=2, standard=100, budget=budget),
                seed=0, steps=by_budget(quick=10, standard=2000, full=10_000, budget=budget),
                eval_scenes=by_budget(quick=100, standard=1000, budget=budget))


def build_audio_encoder(config: dict) -> AudioEncoder:
    return AudioEncoder(tuple(config["channels"]), config["cardinality"], config["embed_dim"],
                        config["trainable_frontend"], hop=config["hop"], max_hz=config["max_hz"])


@functools.lru_cache(maxsize=4)
def sound_bank(split: str, n: int, seed: int = 0) -> tuple[shapes.ShapesDataset, torch.Tensor]:
    """``n`` scenes of a split (as :func:`shapes.load_shapes`) and their sounds (n, samples);
    kept in memory for the next stage (treat them as read-only)."""
    data = shapes.load_shapes(split, n, seed=seed)
    return data, sounds.synthesise_all(data.scenes, seed=SEED_OFFSET[split] + 10_000 * seed)


def augmented_batch_fn(config: dict):
    """A function ``batch(k, generator) -> (augmented clips, scene labels)`` of random scenes of the
    training bank."""
    data, waves = sound_bank("train", config["train_scenes"], seed=config["seed"])

    def batch(step: int, generator: torch.Generator):
        idx = torch.randint(0, len(data), (config["batch_size"],), generator=generator)
        return torch.stack([sounds.augment(waves[i], data.scenes[i], generator) for i in idx.tolist()]), data.labels[idx]

    return batch


def load_audio_head(config: dict, device: torch.device | str | None = None) -> tuple[AudioEncoder, dict]:
    """Stage 1, from the cache or trained now; ``info`` holds the training history and the
    per-attribute accuracy on test and held-out sounds."""

    def train(model, checkpoint):
        history = fit(model, lambda m, batch, generator: m.loss(*batch), augmented_batch_fn(config), config["steps"],
                      lr=config["lr"], seed=config["seed"], warmup=config["warmup"], schedule="cosine",
                      weight_decay=config["weight_decay"], checkpoint=checkpoint, desc="training the audio head",
                      device=device)
        n = config["eval_scenes"]
        accuracy = {}
        for split in ("test", "heldout"):
            data, waves = sound_bank(split, n, seed=1)
            accuracy[split] = attribute_accuracy(model, waves, data.labels)
        return {"losses": history["losses"], "steps": history["steps"], "seconds": history["seconds"], "accuracy": accuracy}

    return load_or_train(CHAPTER, "audio_head", config, lambda: build_audio_encoder(config), train, device=device)


# ----------------------------------------------------------------------------- stages 2 and 3


def contrastive_config(mode: str, budget: str, clip_lr: float | None = None,
                       clip_weight_decay: float | None = None, seed: int = 0) -> dict:
    """Partial or full training from stage 1's audio head and chapter 04's CLIP: batches of 128
    (sound, image, caption) triplets of training scenes, AdamW with warm-up and cosine decay.

    ``clip_lr``/``clip_weight_decay`` (full training only): CLIP's pretrained heads at a learning
    rate or weight decay of their own, the controls of :data:`CONTROLS`; unset, they train like
    the audio head. ``seed`` draws the training scenes, the batches, captions and augmentations
    (every seed starts from the same stage 1 and CLIP)."""
    if mode not in TRAINED_PAIRS:
        raise ValueError(f"mode must be one of {tuple(TRAINED_PAIRS)}, not {mode!r}")
    if mode != "full" and (clip_lr is not None or clip_weight_decay is not None):
        raise ValueError("only full training moves CLIP's heads: clip_lr and clip_weight_decay need mode='full'.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    config = dict(model="AudioCLIP", mode=mode, audio_head=audio_config(budget), clip=clip_config(budget),
                  train_scenes=by_budget(quick=200, standard=6000, full=20_000, budget=budget),
                  batch_size=by_budget(quick=32, standard=128, budget=budget), lr=1e-3, weight_decay=0.1,
                  warmup=by_budget(quick=2, standard=50, full=200, budget=budget), seed=seed,
                  steps=by_budget(quick=10, standard=600, full=5000, budget=budget))
    config.update({key: value for key, value in (("clip_lr", clip_lr), ("clip_weight_decay", clip_weight_decay))
                   if value is not None})
    return config


# Controls of full training: does the image head's loss on held-out pairs survive CLIP's heads
# moving at the paper's lower learning rate (it fine-tunes them with SGD at 1e-4 / 5e-5, not at the
# new head's 1e-3), or without weight decay pulling their pretrained weights towards zero?
CONTROLS = {"full_clip_lr_1e-4": {"clip_lr": 1e-4}, "full_clip_no_decay": {"clip_weight_decay": 0.0}}
# The training seeds of partial and full training in ``eval 07`` (the notebook trains seed 0).
SEEDS = (0, 1, 2)


def triplet_batch_fn(config: dict, tokenizer: Tokenizer):
    """A function ``batch(k, generator) -> (augmented sounds, images, ids, mask)`` of random training
    scenes, each with a fresh caption every time it is drawn, as chapter 04 trained CLIP."""
    data, waves = sound_bank("train", config["train_scenes"], seed=config["seed"])
    images = to_model_range(data.images)

    def batch(step: int, generator: torch.Generator):
        idx, captions = shapes.captioned_batch(data, config["batch_size"], generator)
        sound = torch.stack([sounds.augment(waves[i], data.scenes[i], generator) for i in idx.tolist()])
        return (sound, images[idx], *tokenizer.encode(captions))

    return batch


def load_audioclip(config: dict, device: torch.device | str | None = None,
                   retrain: bool = False) -> tuple[AudioCLIP, dict]:
    """Stage 2 (``mode="partial"``) or 3 (``"full"``), from the cache or trained now (stage 1 and
    chapter 04's CLIP are loaded, or trained first if the cache lacks them). ``info`` holds the
    losses of every pair and the logit scales along training. ``config``: :func:`contrastive_config`."""
    mode = config["mode"]
    audio, _ = load_audio_head(config["audio_head"], device=device)
    clip, _ = load_clip(config["clip"], device=device)
    tokenizer = Tokenizer(context_length=config["clip"]["context_length"])

    def build():
        return AudioCLIP(copy.deepcopy(audio), copy.deepcopy(clip)).set_training(mode)

    def train(model, checkpoint):
        pairs = TRAINED_PAIRS["full"]

        def loss_fn(m, batch, generator):
            losses = m.pair_losses(*batch)
            parts = {**{f"loss/{pair}": losses[pair].item() for pair in pairs},
                     **{f"scale/{pair}": m.scale(pair).item() for pair in pairs}}
            return sum(losses[pair] for pair in TRAINED_PAIRS[mode]), parts

        objective = loss_fn
        if "clip_lr" in config or "clip_weight_decay" in config:     # CLIP's heads in a group of their own
            clip_group = {"lr": config.get("clip_lr", config["lr"]),
                          "weight_decay": config.get("clip_weight_decay", config["weight_decay"])}
            objective = [Objective("loss", loss_fn, config["lr"], weight_decay=config["weight_decay"],
                                   params=lambda m: [{"params": m.audio.parameters()},
                                                     {"params": m.clip.parameters(), **clip_group}])]
        history = fit(model, objective, triplet_batch_fn(config, tokenizer), config["steps"], lr=config["lr"],
                      seed=config["seed"], warmup=config["warmup"], schedule="cosine",
                      weight_decay=config["weight_decay"], checkpoint=checkpoint, desc=f"{mode} training", device=device)
        return {"losses": history["losses"],
                "pair_losses": {pair: [p[f"loss/{pair}"] for p in history["parts"]] for pair in pairs},
                "logit_scales": {pair: [round(p[f"scale/{pair}"], 3) for p in history["parts"]] for pair in pairs},
                "steps": history["steps"], "seconds": history["seconds"]}

    return load_or_train(CHAPTER, f"audioclip_{mode}", config, build, train, retrain=retrain,
                         device=device)


# ----------------------------------------------------------------------------- measuring


@torch.no_grad()
def embed_sounds(model: AudioCLIP, waves: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Unit-length sound embeddings, on the CPU."""
    model.eval()
    device = model.logit_scale_audio_text.device
    return torch.cat([model.encode_audio(waves[i:i + batch_size].to(device), normalize=True).cpu()
                      for i in range(0, len(waves), batch_size)])


def evaluation_bank(split: str, n: int) -> tuple[shapes.ShapesDataset, torch.Tensor]:
    """``n`` test or held-out scenes, as every measure uses them (seed 1: no training run draws them)."""
    return sound_bank(split, n, seed=1)


def evaluation_scenes(budget: str) -> int:
    """How many test and held-out scenes the measures use at a budget."""
    return by_budget(quick=200, standard=1000, budget=budget)


def zero_shot_sounds(model: AudioCLIP, data: shapes.ShapesDataset, waves: torch.Tensor, prompts: torch.Tensor) -> dict:
    """Zero-shot accuracy per attribute of the lone-object sounds, classified by text prompts."""
    lone = lone_objects(data.scenes)
    predicted = classify_by_prompts(embed_sounds(model, waves[lone]), prompts, model.scale("audio_text").item())
    return zero_shot_scores(predicted, [data.scenes[i].describe() for i in lone])


QUERIES = ("text_to_image", "text_to_audio", "audio_to_image", "image_to_audio")


def querying(model: AudioCLIP, data: shapes.ShapesDataset, waves: torch.Tensor, captions: list[str]) -> dict:
    """P@1, R@1 and mAP of each query type of :data:`QUERIES` among all scenes of ``data`` (each
    scene's caption, image or sound queries every candidate of the other modality); a candidate is
    right when its scene has the query's description. ``*_chance_p1`` is what a random ranking gets."""
    tokenizer = Tokenizer(context_length=model.clip.text.position.shape[0])
    embeddings = {"text": embed_texts(model.clip, tokenizer, captions), "audio": embed_sounds(model, waves),
                  "image": embed_images(model.clip, to_model_range(data.images))}
    truth = data.descriptions()
    relevant = same_description(truth, truth)
    out = {}
    for task in QUERIES:
        query, candidate = task.split("_to_")
        similarity = embeddings[query] @ embeddings[candidate].T
        out[f"{task}_p1"] = round(precision_at_k(similarity, relevant, 1), 4)
        out[f"{task}_r1"] = round(recall_of_relevant_at_k(similarity, relevant, 1), 4)
        out[f"{task}_map"] = round(mean_average_precision(similarity, relevant), 4)
        out[f"{task}_chance_p1"] = round(float(relevant.double().mean()), 4)
    return out


def measure(model: AudioCLIP, n: int) -> dict:
    """Zero-shot classification of lone-object sounds (and, for comparison, images) on seen and
    held-out pairs, and querying among test scenes and among held-out scenes (``n`` of each)."""
    tokenizer = Tokenizer(context_length=model.clip.text.position.shape[0])
    prompts = prompt_ensemble(model.clip, tokenizer, ONE_OBJECT)
    test, heldout = evaluation_bank("test", n), evaluation_bank("heldout", n)
    seen, unseen = zero_shot_sounds(model, *test, prompts), zero_shot_sounds(model, *heldout, prompts)
    images_unseen = zero_shot_accuracy(model.clip, tokenizer, heldout[0], prompts)
    out = {"zero_shot_heldout_accuracy": unseen["shape_colour"], "zero_shot_seen_accuracy": seen["shape_colour"],
           "image_zero_shot_heldout_accuracy": images_unseen["shape_colour"]}
    for prefix, (data, waves) in (("", test), ("heldout_", heldout)):
        out.update({prefix + k: v for k, v in querying(model, data, waves, shapes.captions(data.scenes, seed=1)).items()})
    return {**out, "zero_shot_seen": seen, "zero_shot_heldout": unseen}


MODALITIES = ("image", "audio")


def heldout_pair_hits(model: AudioCLIP, n: int) -> dict[str, list[float]]:
    """For each modality of :data:`MODALITIES`: 1 for each lone held-out object (of ``n`` held-out
    scenes) whose shape–colour pair that head names zero-shot, else 0, object by object in the same
    order for both heads: the items a paired interval resamples."""
    tokenizer = Tokenizer(context_length=model.clip.text.position.shape[0])
    prompts = prompt_ensemble(model.clip, tokenizer, ONE_OBJECT)
    data, waves = evaluation_bank("heldout", n)
    lone = lone_objects(data.scenes)
    predicted = {"image": zero_shot(model.clip, tokenizer, data.images[lone], prompts),
                 "audio": classify_by_prompts(embed_sounds(model, waves[lone]), prompts, model.scale("audio_text").item())}
    read = ZERO_SHOT_ATTRIBUTES["shape_colour"]
    truth = [read(data.scenes[i].describe()) for i in lone]
    return {modality: [float(p == t) for p, t in zip(predicted[modality]["shape_colour"], truth)]
            for modality in MODALITIES}


def image_head_controls(controls: dict[str, dict], n: int, partial: AudioCLIP, full: AudioCLIP) -> dict:
    """How much the image head's held-out zero-shot accuracy (on ``n`` held-out scenes) falls from
    partial training (CLIP's own heads) to full training and to each control (name → its
    :func:`contrastive_config`), each fall with its paired 95 % interval over the same held-out
    objects (seed 0 of each), and whether it holds."""
    before = heldout_pair_hits(partial, n)["image"]
    out = {}
    runs = {"full": full, **{name: load_audioclip(config)[0] for name, config in controls.items()}}
    for name, model in runs.items():
        after = heldout_pair_hits(model, n)
        fall = stats.difference(before, after["image"])
        out[f"image_head_loss_{name}"] = stats.rounded(fall)
        out[f"image_head_loss_{name}_holds"] = bool(stats.excludes_zero(fall) and fall["value"] > 0)
        if name != "full":
            out[f"{name}_zero_shot_heldout_accuracy"] = round(fmean(after["audio"]), 4)
    return out


def seed_study(configs: dict[int, dict[str, dict]], n: int) -> dict:
    """Partial against full training from several seeds (``configs``: seed → mode →
    :func:`contrastive_config`; each seed draws its own training scenes, batches, captions and
    augmentations, and all start from the same stage 1 and CLIP), measured on ``n`` held-out scenes:
    each seed's held-out zero-shot accuracy of sounds and of images, the mean and its t-interval,
    and the seed-by-seed differences, the sound gain and the image head's loss."""
    accuracy = {(mode, modality): [] for mode in TRAINED_PAIRS for modality in MODALITIES}
    for by_mode in configs.values():
        for mode in TRAINED_PAIRS:
            hits = heldout_pair_hits(load_audioclip(by_mode[mode])[0], n)
            for modality in MODALITIES:
                accuracy[mode, modality].append(fmean(hits[modality]))
    out = {f"{mode}_{modality}_heldout_accuracy_over_seeds": stats.over_seeds(values)
           for (mode, modality), values in accuracy.items()}
    out["sound_gain_over_seeds"] = stats.over_seeds([f - p for f, p in zip(accuracy["full", "audio"],
                                                                            accuracy["partial", "audio"])])
    out["image_head_loss_over_seeds"] = stats.over_seeds([p - f for p, f in zip(accuracy["partial", "image"],
                                                                                accuracy["full", "image"])])
    return {"training_seeds": len(configs), **{key: stats.rounded(value) for key, value in out.items()}}


def cached_study(infos: dict[str, dict]) -> dict | None:
    """The results of the last ``eval 07`` that measured the seed-0 partial and full models whose
    infos (as :func:`load_audioclip` returned them, by mode) are given, or None."""
    return load_study(CHAPTER, {mode: infos[mode]["model_id"] for mode in TRAINED_PAIRS})


# ----------------------------------------------------------------------------- downstream


# Where a downstream classifier's audio head starts (AudioCLIP's Table 1 fine-tunes ESResNeXt from
# its audio pre-training and from AudioCLIP's partial and full training; we add training from scratch).
INITS = ("scratch", "stage1", "full")


def downstream_config(init: str, budget: str, seed: int = 0) -> dict:
    """A sound classifier for the likeness task (:data:`shapes.LIKENESS`, a label no earlier stage
    saw) fine-tuned from ``init`` (:data:`INITS`) on a few labelled clips: every weight trains,
    AdamW with warm-up and cosine decay, augmented clips as in stage 1. ``seed`` draws the labelled
    scenes, the new layer, the batches and augmentations; a head built from scratch has the
    architecture of :func:`audio_config`."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    config = dict(model="SoundClassifier", task="likeness", init=init, audio_head=audio_config(budget),
                  train_scenes=by_budget(quick=40, standard=240, full=1000, budget=budget), batch_size=32,
                  lr=1e-3, weight_decay=1e-4, warmup=by_budget(quick=2, standard=20, budget=budget), seed=seed,
                  steps=by_budget(quick=10, standard=300, full=1000, budget=budget),
                  eval_scenes=evaluation_scenes(budget))
    if init == "full":
        config["audioclip"] = contrastive_config("full", budget)
    return config


@functools.lru_cache(maxsize=4)
def likeness_bank(split: str, n: int, seed: int = 0) -> tuple[list[shapes.Scene], torch.Tensor, torch.Tensor]:
    """``n`` two-object scenes of the likeness task (train or test), their sounds and their labels."""
    scenes = shapes.likeness_scenes(n, split, seed)
    waves = sounds.synthesise_all(scenes, seed=SEED_OFFSET[f"likeness_{split}"] + 10_000 * seed)
    return scenes, waves, torch.tensor([shapes.likeness(scene) for scene in scenes])


def pretrained_head(config: dict, device: torch.device | str | None = None) -> AudioEncoder | None:
    """The audio head a downstream classifier starts from (None: from scratch)."""
    if config["init"] == "stage1":
        return load_audio_head(config["audio_head"], device=device)[0]
    if config["init"] == "full":
        return load_audioclip(config["audioclip"], device=device)[0].audio
    return None


def load_downstream(config: dict, device: torch.device | str | None = None) -> tuple[SoundClassifier, dict]:
    """A sound classifier of :func:`downstream_config`, from the cache or fine-tuned now (its
    pretrained head is loaded, or trained first). ``info["test_hits"]`` holds 1 or 0 for each test
    clip, in a fixed order for every classifier: the items a paired interval resamples."""
    head = pretrained_head(config, device)

    def build():
        return SoundClassifier(build_audio_encoder(config["audio_head"]) if head is None else copy.deepcopy(head),
                               len(shapes.LIKENESS))

    def train(model, checkpoint):
        scenes, waves, labels = likeness_bank("train", config["train_scenes"], config["seed"])

        def batch(step: int, generator: torch.Generator):
            idx = torch.randint(0, len(scenes), (config["batch_size"],), generator=generator)
            return (torch.stack([sounds.augment(waves[i], scenes[i], generator) for i in idx.tolist()]), labels[idx])

        history = fit(model, lambda m, b, generator: m.loss(*b), batch, config["steps"], lr=config["lr"],
                      seed=config["seed"], warmup=config["warmup"], schedule="cosine",
                      weight_decay=config["weight_decay"], checkpoint=checkpoint,
                      desc=f"fine-tuning on likeness ({config['init']})", device=device)
        _, test_waves, test_labels = likeness_bank("test", config["eval_scenes"])
        hits = (model.predict(test_waves) == test_labels).int().tolist()
        return {"losses": history["losses"], "steps": history["steps"], "seconds": history["seconds"],
                "test_hits": hits, "test_accuracy": round(fmean(hits), 4)}

    return load_or_train(CHAPTER, f"likeness_{config['init']}", config, build, train, device=device)


def downstream_study(configs: dict[str, list[dict]]) -> dict:
    """Fine-tuning from each of :data:`INITS` on the likeness task (``configs``: init → its
    :func:`downstream_config` of each training seed, seed 0 first): the accuracy of each (seed 0's
    with its bootstrap interval over the test clips, and over the seeds with its t-interval), and
    each pretrained start against scratch and full against stage 1, paired over the test clips
    (seed 0) and over the seeds."""
    hits = {init: [load_downstream(config)[1]["test_hits"] for config in configs[init]] for init in INITS}
    accuracy = {init: [fmean(h) for h in runs] for init, runs in hits.items()}
    out = {"downstream_task": "likeness", "downstream_classes": list(shapes.LIKENESS),
           "downstream_labelled_clips": configs["scratch"][0]["train_scenes"],
           "downstream_seeds": len(configs["scratch"]),
           "downstream_accuracy": {init: stats.rounded(stats.interval(hits[init][0])) for init in INITS},
           "downstream_accuracy_over_seeds": {init: stats.rounded(stats.over_seeds(accuracy[init])) for init in INITS}}
    pairs = {"stage1_minus_scratch": ("stage1", "scratch"), "full_minus_scratch": ("full", "scratch"),
             "full_minus_stage1": ("full", "stage1")}
    out["downstream_gain"] = {name: stats.rounded(stats.difference(hits[a][0], hits[b][0])) for name, (a, b) in pairs.items()}
    out["downstream_gain_over_seeds"] = {
        name: stats.rounded(stats.over_seeds([x - y for x, y in zip(accuracy[a], accuracy[b])]))
        for name, (a, b) in pairs.items()}
    return out


def fused_classification(model: AudioCLIP, config: dict, steps: int = 500) -> dict:
    """The likeness task read from AudioCLIP's frozen embeddings (AudioCLIP's section 4.3 combines
    its heads): a linear layer on the sound embedding, one on the image embedding, each trained on
    the same labelled scenes (features standardised by the training set), and their fusion, the sum
    of the two log-probabilities. Accuracy of each on the test scenes with its bootstrap interval,
    and fused − each alone, paired over the same scenes. ``config``: the full start's
    :func:`downstream_config` (its labelled and test scenes, its seed; the new layers start from
    it, so the same models give the same figures in the notebook and in ``eval 07``)."""
    seed = config["seed"]
    features, labels = {}, {}
    for split, n, data_seed in (("train", config["train_scenes"], seed), ("test", config["eval_scenes"], 0)):
        scenes, waves, labels[split] = likeness_bank(split, n, data_seed)
        features[split] = {"audio": embed_sounds(model, waves),
                           "image": embed_images(model.clip, to_model_range(shapes.render(scenes)))}
    log_probs = {}
    for modality in MODALITIES:
        train = features["train"][modality]
        mean, std = train.mean(0), train.std(0) + 1e-6
        with torch.random.fork_rng(devices=[]):        # the new layer's weights from the seed, not from history
            torch.manual_seed(seed)
            probe = torch.nn.Linear(train.shape[1], len(shapes.LIKENESS))
        x, y = (train - mean) / std, labels["train"]
        fit(probe, lambda m, batch, generator: torch.nn.functional.cross_entropy(m(batch[0]), batch[1]),
            lambda step, generator: (x, y), steps, lr=1e-2, seed=seed, weight_decay=1e-3,
            desc=f"linear probe on {modality}")
        with torch.no_grad():
            test = ((features["test"][modality] - mean) / std).to(model_device(probe))
            log_probs[modality] = probe(test).log_softmax(1).cpu()
    log_probs["fused"] = log_probs["audio"] + log_probs["image"]
    hits = {name: (lp.argmax(1) == labels["test"]).double().tolist() for name, lp in log_probs.items()}
    return {"fused_accuracy": {name: stats.rounded(stats.interval(h)) for name, h in hits.items()},
            "fused_gain": {f"fused_minus_{m}": stats.rounded(stats.difference(hits["fused"], hits[m])) for m in MODALITIES}}


def trainings(budget: str) -> list[Training]:
    """What the notebook trains at ``budget``: stage 1 (the audio head), then partial and full
    training against chapter 04's CLIP, then the downstream classifier from each start (seed 0)."""
    return [Training("audio_head", audio_config(budget), load_audio_head),
            *(Training(f"audioclip_{mode}", contrastive_config(mode, budget), load_audioclip)
              for mode in ("partial", "full")),
            *(Training(f"likeness_{init}", downstream_config(init, budget), load_downstream) for init in INITS)]


def evaluate(budget: str) -> dict:
    """Chapter 07's measured results (``python -m gensynth_course eval 07``): the audio head,
    partial against full training (seed 0 measured in full, three seeds on held-out pairs, two
    controls), and the downstream likeness task (three starts from three seeds; the fused heads)."""
    start = time.perf_counter()
    _, head_info = load_audio_head(audio_config(budget))
    results = {"chance": round(1 / (len(shapes.SHAPES) * len(shapes.COLOURS)), 4)}
    for split, table in head_info["accuracy"].items():
        results[f"audio_head_{split}_attribute_accuracy"] = min(v for k, v in table.items() if k != "scene")
        results[f"audio_head_{split}_scene_accuracy"] = table["scene"]
    rows, models, infos = {}, {}, {}
    for mode in TRAINED_PAIRS:
        models[mode], info = infos[mode] = load_audioclip(contrastive_config(mode, budget))
        rows[mode] = {**measure(models[mode], evaluation_scenes(budget)), "train_seconds": round(info["seconds"], 1)}
    for mode, row in rows.items():
        results.update({f"{mode}_{key}": value for key, value in row.items() if not isinstance(value, dict)})
    results["zero_shot_heldout_over_chance"] = {mode: round(row["zero_shot_heldout_accuracy"] / results["chance"], 2)
                                                for mode, row in rows.items()}
    results["full_minus_partial"] = {key: round(rows["full"][key] - rows["partial"][key], 4)
                                     for key, value in rows["full"].items()
                                     if isinstance(value, float) and "chance" not in key and key != "train_seconds"}
    # partial training keeps chapter 04's image and text heads, so its text→image row is CLIP's own
    controls = {name: contrastive_config("full", budget, **settings) for name, settings in CONTROLS.items()}
    results.update(image_head_controls(controls, evaluation_scenes(budget), models["partial"], models["full"]))
    results.update(seed_study({seed: {mode: contrastive_config(mode, budget, seed=seed) for mode in TRAINED_PAIRS}
                                for seed in SEEDS}, evaluation_scenes(budget)))
    results.update(downstream_study({init: [downstream_config(init, budget, seed) for seed in SEEDS] for init in INITS}))
    results.update(fused_classification(models["full"], downstream_config("full", budget)))
    results.update(audio_head_accuracy=head_info["accuracy"], zero_shot={mode: {split: row[f"zero_shot_{split}"]
                   for split in ("seen", "heldout")} for mode, row in rows.items()},
                   train_and_measure_seconds=round(time.perf_counter() - start, 1))
    save_study(CHAPTER, results, {mode: info["model_id"] for mode, (_, info) in infos.items()})
    return results
