"""Chapter 04's experiments: CLIP trained on the Shapes world, its evaluator twin, and the measures
of what they learned (retrieval, zero-shot classification, compositional zero-shot).

Two CLIPs are trained, from different seeds, on different draws of training scenes and captions:

* ``clip`` -- the chapter's model: attention-pooled ConvNet and causal text transformer read out
  at ``[EOS]``; chapters 05 and 06 may guide or condition generators with it;
* ``evaluator_clip`` -- a ViT and a bidirectional text transformer with mean pooling; later
  chapters measure R-precision with it only, so no generator is judged by the network that
  guided it.

Retrieval is measured in blocks of 100 test scenes: each image ranks the 100 captions, each caption
the 100 images (R@1, R@5). A candidate counts as right when its description equals the query's:
two scenes that both show "a small red circle on the left" are the same answer.
"""

from __future__ import annotations

import random

import torch

from . import shapes
from .attribute_evaluator import caption_accuracy, load_attribute_evaluator
from .budget import by_budget, check_budget
from .cache import load_or_train
from .clip import CLIP, contrastive_loss, make_clip
from .data import as_model_input, to_model_range
from .device import pick_device
from .metrics import recall_at_k
from .seeding import seed_everything
from .tokenizer import Tokenizer, caption_list
from .train import fit

CHAPTER = "ch04"
CANDIDATES = 100
# Every description of a lone object (4 shapes × 6 colours × 2 sizes × 5 positions = 240 classes).
ONE_OBJECT = tuple(shapes.Description(((shape, colour, size),), position)
                   for shape in shapes.SHAPES for colour in shapes.COLOUR_NAMES
                   for size in shapes.SIZES for position in shapes.POSITIONS)
# What zero-shot classification reads off a lone-object description.
ZERO_SHOT_ATTRIBUTES = {
    "shape": lambda d: d.kinds[0][0], "colour": lambda d: d.kinds[0][1], "size": lambda d: d.kinds[0][2],
    "position": lambda d: d.layout, "shape_colour": lambda d: d.kinds[0][:2],
}


def clip_config(budget: str | None = None) -> dict:
    """The chapter's CLIP: ~0.4 M parameters, batch 256 (255 negatives per positive), Adam with
    decoupled weight decay and a cosine schedule as in the paper, about three CPU minutes."""
    return dict(model="CLIP", image="conv", channels=[32, 64], blocks=1, image_width=128, heads=4,
                text_width=96, text_layers=2, causal=True, pool="eos", embed_dim=64, context_length=16,
                train_scenes=by_budget(quick=2000, standard=20_000, full=50_000, budget=budget),
                batch_size=by_budget(quick=64, standard=256, full=512, budget=budget), lr=2e-3, weight_decay=0.1,
                warmup=by_budget(quick=5, standard=100, full=300, budget=budget), seed=0,
                steps=by_budget(quick=25, standard=700, full=5000, budget=budget))


def evaluator_clip_config(budget: str | None = None) -> dict:
    """The evaluator CLIP: another seed, other training draws, and other architectures on both sides
    (a ViT; a bidirectional text transformer with mean pooling)."""
    return dict(clip_config(budget), image="vit", patch=4, image_width=64, image_layers=3,
                causal=False, pool="mean", seed=1, steps=by_budget(quick=25, standard=600, full=5000, budget=budget))


def build_clip(config: dict, tokenizer: Tokenizer | None = None) -> CLIP:
    tokenizer = tokenizer or Tokenizer(context_length=config["context_length"])
    keys = ("image", "embed_dim", "channels", "blocks", "patch", "image_width", "image_layers", "text_width",
            "text_layers", "heads", "causal", "pool", "context_length")
    return make_clip(len(tokenizer), **{k: config[k] for k in keys if k in config})


def caption_batches(config: dict, tokenizer: Tokenizer, generator: torch.Generator):
    """Endless (images, ids, mask) batches: random training scenes, each with a fresh caption (a
    new template and synonyms every time it is drawn, so the text never becomes a fixed code)."""
    data = shapes.load_shapes("train", config["train_scenes"], seed=config["seed"])
    images = to_model_range(data.images)
    rng = random.Random(config["seed"])
    while True:
        idx = torch.randint(0, len(data), (config["batch_size"],), generator=generator)
        ids, mask = tokenizer.encode([shapes.caption(data.scenes[i], rng) for i in idx.tolist()])
        yield images[idx], ids, mask


def train_clip(config: dict, name: str, budget: str | None = None, preview=None, preview_every: int = 0,
               device: torch.device | str = "cpu", chapter: str = CHAPTER) -> tuple[CLIP, dict]:
    """A CLIP from the cache, or trained now on ``device``; ``info`` has the losses and the logit
    scale per step. The model comes back on the CPU."""
    budget = check_budget(budget)
    tokenizer = Tokenizer(context_length=config["context_length"])

    def train(model, checkpoint):
        generator = seed_everything(config["seed"])
        scales = []

        def loss_fn(m, batch):
            x, ids, mask = (t.to(device) for t in batch)
            scales.append(round(m.scale().item(), 3))
            return contrastive_loss(m(x, ids, mask))

        history = fit(model, loss_fn, caption_batches(config, tokenizer, generator), config["steps"],
                      lr=config["lr"], warmup=config["warmup"], schedule="cosine", weight_decay=config["weight_decay"],
                      preview=preview, preview_every=preview_every, checkpoint=checkpoint, desc=name.replace("_", " "),
                      device=device)
        model.cpu()
        return {"losses": history["losses"], "logit_scale": scales, "seconds": history["seconds"],
                "steps": history["steps"], "images_per_second": history["images_per_second"]}

    return load_or_train(chapter, name, config, lambda: build_clip(config, tokenizer), train, budget=budget)


def load_clip(budget: str | None = None, preview=None, preview_every: int = 0,
              device: torch.device | str = "cpu") -> tuple[CLIP, dict]:
    """Chapter 04's CLIP (trained once, then loaded by every chapter that needs it)."""
    return train_clip(clip_config(budget), "clip", budget, preview, preview_every, device)


def load_evaluator_clip(budget: str | None = None, device: torch.device | str = "cpu") -> tuple[CLIP, dict]:
    """The independent CLIP that later chapters measure R-precision with."""
    return train_clip(evaluator_clip_config(budget), "evaluator_clip", budget, device=device)


# ----------------------------------------------------------------------------- measuring


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


def retrieval(model: CLIP, tokenizer: Tokenizer, data: shapes.ShapesDataset, captions: list[str],
              candidates: int = CANDIDATES) -> dict:
    """R@1 and R@5 image→text and text→image, in blocks of ``candidates`` scenes, averaged."""
    images, texts = embed_images(model, data.images), embed_texts(model, tokenizer, captions)
    descriptions = data.descriptions()
    totals = {"i2t_r1": 0.0, "i2t_r5": 0.0, "t2i_r1": 0.0, "t2i_r5": 0.0}
    blocks = len(data) // candidates
    for b in range(blocks):
        part = slice(b * candidates, (b + 1) * candidates)
        similarity = images[part] @ texts[part].T
        relevant = same_description(descriptions[part], descriptions[part])
        for k in (1, 5):
            totals[f"i2t_r{k}"] += recall_at_k(similarity, relevant, k) / blocks
            totals[f"t2i_r{k}"] += recall_at_k(similarity.T, relevant.T, k) / blocks
    return {key: round(value, 4) for key, value in totals.items()}


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


def evaluation_sets(budget: str | None = None) -> dict:
    """Test and held-out scenes (seed 0 streams no model trains on), one caption each (seed 1)."""
    n = by_budget(quick=200, standard=1000, budget=budget)
    out = {}
    for split in ("test", "heldout"):
        data = shapes.load_shapes(split, n, seed=0)
        out[split] = (data, shapes.captions(data.scenes, seed=1))
    return out


def measure_clip(model: CLIP, budget: str | None = None, sets: dict | None = None) -> dict:
    """Retrieval on test and held-out scenes, and zero-shot accuracy on seen and held-out pairs."""
    tokenizer = Tokenizer(context_length=model.text.position.shape[0])
    sets = sets or evaluation_sets(budget)
    prompts = prompt_ensemble(model, tokenizer, ONE_OBJECT)
    test, heldout = sets["test"], sets["heldout"]
    seen, unseen = (zero_shot_accuracy(model, tokenizer, data, prompts) for data, _ in (test, heldout))
    return {**retrieval(model, tokenizer, *test),
            **{f"heldout_{k}": v for k, v in retrieval(model, tokenizer, *heldout).items()},
            "heldout_zero_shot": unseen["shape_colour"], "seen_zero_shot": seen["shape_colour"],
            "zero_shot_seen": seen, "zero_shot_heldout": unseen}


def evaluate(budget: str | None = None) -> dict:
    """Chapter 04's measured results (``python -m gensynth_course eval 04``)."""
    budget = check_budget(budget)
    evaluator, evaluator_info = load_attribute_evaluator(budget)
    accuracy = evaluator_info["accuracy"]
    per_attribute = {f"{split}/{name}": value for split, table in accuracy.items()
                     for name, value in table.items() if name != "scene"}
    device = pick_device()
    clip, clip_info = load_clip(budget, device=device)
    evaluator_clip, evaluator_clip_info = load_evaluator_clip(budget, device=device)
    sets = evaluation_sets(budget)
    results = measure_clip(clip, budget, sets)
    twin = measure_clip(evaluator_clip, budget, sets)
    test_data, test_captions = sets["test"]
    return {
        "i2t_r1": results["i2t_r1"], "t2i_r1": results["t2i_r1"],
        "i2t_r5": results["i2t_r5"], "t2i_r5": results["t2i_r5"],
        "heldout_zero_shot": results["heldout_zero_shot"], "seen_zero_shot": results["seen_zero_shot"],
        "zero_shot_chance": round(1 / (len(shapes.SHAPES) * len(shapes.COLOURS)), 4),
        "heldout_i2t_r1": results["heldout_i2t_r1"], "heldout_t2i_r1": results["heldout_t2i_r1"],
        "attribute_eval_accuracy": min(per_attribute.values()),
        "attribute_eval_scene_accuracy": min(table["scene"] for table in accuracy.values()),
        "evaluator_caption_accuracy_on_real": round(float(
            caption_accuracy(test_data.images, test_captions, evaluator).float().mean()), 4),
        "evaluator_clip_i2t_r1": twin["i2t_r1"], "evaluator_clip_t2i_r1": twin["t2i_r1"],
        "evaluator_clip_heldout_zero_shot": twin["heldout_zero_shot"],
        "final_logit_scale": clip_info["logit_scale"][-1],
        "clip_train_seconds": round(clip_info["seconds"], 1),
        "evaluator_clip_train_seconds": round(evaluator_clip_info["seconds"], 1),
        "attribute_evaluator_train_seconds": round(evaluator_info["seconds"], 1),
        "zero_shot_seen": results["zero_shot_seen"], "zero_shot_heldout": results["zero_shot_heldout"],
        "attribute_accuracy": per_attribute,
    }
