"""Chapter 07's experiments: AudioCLIP in miniature on sounding shapes.

AudioCLIP (Guzhov et al. 2021) trains its audio head in three stages; this module holds the
first so far: the audio head alone, supervised on the scene's attributes (the paper pre-trains
ESResNeXt on AudioSet labels). Sounds come from :mod:`~gensynth_course.sounds`, one clip per
scene, augmented as in the paper.
"""

from __future__ import annotations

import torch

from . import shapes, sounds
from .attribute_evaluator import attribute_accuracy
from .audio_head import AudioEncoder
from .budget import by_budget, check_budget
from .cache import load_or_train
from .seeding import seed_everything
from .train import fit

CHAPTER = "ch07"
# Clip i of a sound bank uses synthesis seed offset + i; each split has its own offset, so no two
# banks share phases.
SEED_OFFSET = {"train": 0, "test": 1_000_000, "heldout": 2_000_000, "all": 3_000_000}


def audio_config(budget: str | None = None) -> dict:
    """Stage 1: the audio head (a ~0.2 M-parameter ESResNeXt in miniature on a frozen 512-point STFT)
    on attribute classification, AdamW with warm-up and cosine decay, batches of 64 augmented clips."""
    return dict(model="AudioEncoder", channels=[32, 64, 128], cardinality=8, embed_dim=64, trainable_frontend=False,
                train_scenes=by_budget(quick=200, standard=6000, full=20_000, budget=budget),
                batch_size=64, lr=2e-3, weight_decay=1e-4, warmup=by_budget(quick=2, standard=100, budget=budget),
                seed=0, steps=by_budget(quick=10, standard=2000, full=10_000, budget=budget))


def build_audio_encoder(config: dict) -> AudioEncoder:
    return AudioEncoder(tuple(config["channels"]), config["cardinality"], config["embed_dim"],
                        config["trainable_frontend"])


def sound_bank(split: str, n: int, seed: int = 0) -> tuple[shapes.ShapesDataset, torch.Tensor]:
    """``n`` scenes of a split (as :func:`shapes.load_shapes`) and their sounds (n, samples)."""
    data = shapes.load_shapes(split, n, seed=seed)
    return data, sounds.synthesise_all(data.scenes, seed=SEED_OFFSET[split] + 10_000 * seed)


def augmented_batches(config: dict, generator: torch.Generator):
    """Endless (augmented clips, scene labels) batches from the training bank."""
    data, waves = sound_bank("train", config["train_scenes"], seed=config["seed"])
    while True:
        idx = torch.randint(0, len(data), (config["batch_size"],), generator=generator)
        yield torch.stack([sounds.augment(waves[i], data.scenes[i], generator) for i in idx.tolist()]), data.labels[idx]


def load_audio_head(budget: str | None = None, device="cpu") -> tuple[AudioEncoder, dict]:
    """Stage 1, from the cache or trained now; ``info`` holds the training history and the
    per-attribute accuracy on test and held-out sounds."""
    budget = check_budget(budget)
    config = audio_config(budget)

    def train(model, checkpoint):
        generator = seed_everything(config["seed"])
        history = fit(model, lambda m, batch: m.loss(batch[0].to(device), batch[1].to(device)),
                      augmented_batches(config, generator), config["steps"], lr=config["lr"], warmup=config["warmup"],
                      schedule="cosine", weight_decay=config["weight_decay"], checkpoint=checkpoint,
                      desc="training the audio head", device=device)
        model.cpu()
        n = by_budget(quick=100, standard=1000, budget=budget)
        accuracy = {}
        for split in ("test", "heldout"):
            data, waves = sound_bank(split, n, seed=1)
            accuracy[split] = attribute_accuracy(model, waves, data.labels)
        return {"losses": history["losses"], "steps": history["steps"], "seconds": history["seconds"], "accuracy": accuracy}

    return load_or_train(CHAPTER, "audio_head", config, lambda: build_audio_encoder(config), train, budget=budget)
