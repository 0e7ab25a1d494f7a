"""Chapter 04's CLIP as the later chapters use it: loading it (trained once, by whichever chapter
asks first), and zero-shot classification into the descriptions of a lone object by prompt
ensembles (chapter 04 on images, chapter 07 on sounds)."""

from __future__ import annotations

import torch

from gensynth_course.data import shapes
from gensynth_course.data.tokenizer import Tokenizer
from gensynth_course.evaluation.evaluator_clip import embed_images, embed_texts, load_shapes_clip
from gensynth_course.models.contrastive.clip import CLIP

# Every description of a lone object (4 shapes × 6 colours × 2 sizes × 5 positions = 240 classes).
ONE_OBJECT = tuple(shapes.Description(((shape, colour, size),), position)
                   for shape in shapes.SHAPES for colour in shapes.COLOUR_NAMES
                   for size in shapes.SIZES for position in shapes.POSITIONS)
# What zero-shot classification reads off a lone-object description.
ZERO_SHOT_ATTRIBUTES = {
    "shape": lambda d: d.kinds[0][0], "colour": lambda d: d.kinds[0][1], "size": lambda d: d.kinds[0][2],
    "position": lambda d: d.layout, "shape_colour": lambda d: d.kinds[0][:2],
}


def load_clip(config: dict, preview=None, preview_every: int = 0,
              device: torch.device | str | None = None) -> tuple[CLIP, dict]:
    """Chapter 04's CLIP of ``config`` (:func:`clip_config`), trained once, then loaded by every
    chapter that needs it."""
    return load_shapes_clip(config, "clip", preview, preview_every, device)


@torch.no_grad()
def prompt_ensemble(model: CLIP, tokenizer: Tokenizer, descriptions: list) -> torch.Tensor:
    """One text embedding per description: the renormalised mean over every caption the grammar
    has for it (the paper's prompt ensembling, section 3.1.4)."""
    out = []
    for d in descriptions:
        mean = embed_texts(model, tokenizer, shapes.all_captions(d)).mean(0)
        out.append(mean / mean.norm())
    return torch.stack(out)


def classify_by_prompts(embeddings: torch.Tensor, prompts: torch.Tensor, scale: torch.Tensor | float) -> dict:
    """Zero-shot classification of unit-length embeddings (of images, or of sounds in chapter 07)
    into the 240 descriptions of :data:`ONE_OBJECT`, then of each attribute by summing the class
    probabilities that share its value. Returns the predicted value of every attribute of
    :data:`ZERO_SHOT_ATTRIBUTES` per embedding."""
    probabilities = (scale * embeddings @ prompts.T).softmax(1)     # (N, 240)
    out = {}
    for name, read in ZERO_SHOT_ATTRIBUTES.items():
        values = sorted({read(d) for d in ONE_OBJECT})
        index = torch.tensor([values.index(read(d)) for d in ONE_OBJECT])
        marginal = torch.zeros(len(embeddings), len(values)).index_add_(1, index, probabilities)
        out[name] = [values[i] for i in marginal.argmax(1).tolist()]
    return out


def zero_shot(model: CLIP, tokenizer: Tokenizer, images: torch.Tensor, prompts: torch.Tensor | None = None) -> dict:
    """:func:`classify_by_prompts` for images, with the prompt ensembles of :data:`ONE_OBJECT`."""
    prompts = prompt_ensemble(model, tokenizer, ONE_OBJECT) if prompts is None else prompts
    return classify_by_prompts(embed_images(model, images), prompts, model.scale().cpu())


def lone_objects(scenes: list) -> list[int]:
    """Indices of the scenes that hold one object (the ones zero-shot classification reads)."""
    return [i for i, s in enumerate(scenes) if len(s.objects) == 1]


def zero_shot_scores(predicted: dict, truth: list) -> dict:
    """Accuracy per attribute of :func:`classify_by_prompts`'s predictions against true descriptions."""
    return {name: round(sum(p == read(d) for p, d in zip(predicted[name], truth)) / len(truth), 4)
            for name, read in ZERO_SHOT_ATTRIBUTES.items()}


def zero_shot_accuracy(model: CLIP, tokenizer: Tokenizer, data: shapes.ShapesDataset,
                       prompts: torch.Tensor | None = None) -> dict:
    """Zero-shot accuracy per attribute over the lone-object scenes of ``data``."""
    lone = lone_objects(data.scenes)
    return zero_shot_scores(zero_shot(model, tokenizer, data.images[lone], prompts),
                            [data.scenes[i].describe() for i in lone])
