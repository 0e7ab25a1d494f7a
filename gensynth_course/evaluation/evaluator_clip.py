"""CLIP on the Shapes world, as a judge: the recipe every Shapes CLIP is trained with, and the
evaluator CLIP that later chapters measure R-precision with.

Two CLIPs are trained with :func:`load_shapes_clip`, from different seeds, on different draws of training
scenes and captions: chapter 04's model (:func:`clip_config`, an attention-pooled ConvNet and a
causal text transformer read out at ``[EOS]``), which chapters 05–07 may guide or condition
generators with; and the *evaluator* CLIP (:func:`evaluator_clip_config`, a ViT and a bidirectional
text transformer with mean pooling), which only measures, so that no generator is judged by the
network that guided it.
"""

from __future__ import annotations

import torch

from gensynth_course.budget import by_budget
from gensynth_course.cache import load_or_train
from gensynth_course.data import shapes
from gensynth_course.data.fashion_mnist import as_model_input, to_model_range
from gensynth_course.data.tokenizer import Tokenizer, caption_list
from gensynth_course.models.contrastive.clip import CLIP, contrastive_loss, make_clip
from gensynth_course.train import fit


def clip_config(budget: str) -> dict:
    """The chapter's CLIP: ~0.4 M parameters, batch 256 (255 negatives per positive), Adam with
    decoupled weight decay and a cosine schedule as in the paper, about three CPU minutes."""
    return dict(model="CLIP", image="conv", channels=[32, 64], blocks=1, image_width=128, heads=4,
                text_width=96, text_layers=2, causal=True, pool="eos", embed_dim=64, context_length=16,
                train_scenes=by_budget(quick=2000, standard=20_000, full=50_000, budget=budget),
                batch_size=by_budget(quick=64, standard=256, full=512, budget=budget), lr=2e-3, weight_decay=0.1,
                warmup=by_budget(quick=5, standard=100, full=300, budget=budget), seed=0,
                steps=by_budget(quick=25, standard=700, full=5000, budget=budget))


def evaluator_clip_config(budget: str) -> dict:
    """The evaluator CLIP: another seed, other training draws, and other architectures on both sides
    (a ViT; a bidirectional text transformer with mean pooling)."""
    return dict(clip_config(budget), image="vit", patch=4, image_width=64, image_layers=3,
                causal=False, pool="mean", seed=1, steps=by_budget(quick=25, standard=600, full=5000, budget=budget))


def build_clip(config: dict, tokenizer: Tokenizer | None = None) -> CLIP:
    tokenizer = tokenizer or Tokenizer(context_length=config["context_length"])
    keys = ("image", "embed_dim", "channels", "blocks", "patch", "image_width", "image_layers", "text_width",
            "text_layers", "heads", "causal", "pool", "context_length")
    return make_clip(len(tokenizer), **{k: config[k] for k in keys if k in config})


def load_shapes_clip(config: dict, name: str, preview=None, preview_every: int = 0,
               device: torch.device | str | None = None, chapter: str = "ch04_clip") -> tuple[CLIP, dict]:
    """A CLIP from the cache, or trained now on ``device`` (the course's device unless given), where
    it stays. Each batch holds random training scenes, each with a fresh caption; ``info`` has the
    losses and the logit scale per step."""
    tokenizer = Tokenizer(context_length=config["context_length"])

    def train(model, checkpoint):
        data = shapes.load_shapes("train", config["train_scenes"], seed=config["seed"])
        images = to_model_range(data.images)

        def batch_fn(step, generator):
            idx, captions = shapes.captioned_batch(data, config["batch_size"], generator)
            return (images[idx], *tokenizer.encode(captions))

        def loss_fn(m, batch, generator):
            return contrastive_loss(m(*batch)), {"logit_scale": m.scale().item()}

        history = fit(model, loss_fn, batch_fn, config["steps"], lr=config["lr"], seed=config["seed"],
                      warmup=config["warmup"], schedule="cosine", weight_decay=config["weight_decay"],
                      preview=preview, preview_every=preview_every, checkpoint=checkpoint, desc=name.replace("_", " "),
                      device=device)
        return {"losses": history["losses"], "logit_scale": [round(p["logit_scale"], 3) for p in history["parts"]],
                "seconds": history["seconds"], "steps": history["steps"],
                "examples_per_second": history["examples_per_second"]}

    return load_or_train(chapter, name, config, lambda: build_clip(config, tokenizer), train, device=device)


def load_evaluator_clip(config: dict, device: torch.device | str | None = None) -> tuple[CLIP, dict]:
    """The independent CLIP of ``config`` (:func:`evaluator_clip_config`) that later chapters measure
    R-precision with, from the cache or trained now."""
    return load_shapes_clip(config, "evaluator_clip", device=device)


@torch.no_grad()
def embed_images(model: CLIP, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Unit-length image embeddings (on the CPU) of uint8 images, or floats in [−1, 1]."""
    model.eval()
    device = model.logit_scale.device
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        out.append(model.encode_image(as_model_input(x), normalize=True).cpu())
    return torch.cat(out)


@torch.no_grad()
def embed_texts(model: CLIP, tokenizer: Tokenizer, texts: list[str], batch_size: int = 2000) -> torch.Tensor:
    """Unit-length caption embeddings of a list of captions, on the CPU (an unknown word raises
    ``UnknownWordError``)."""
    texts = caption_list(texts)
    model.eval()
    device = model.logit_scale.device
    return torch.cat([model.encode_text(*(t.to(device) for t in tokenizer.encode(texts[i:i + batch_size])),
                                        normalize=True).cpu()
                      for i in range(0, len(texts), batch_size)])


def same_description(queries: list, candidates: list) -> torch.Tensor:
    """Bool matrix: candidate j is a right answer for query i when they describe the same scene."""
    return torch.tensor([[q == c for c in candidates] for q in queries])
