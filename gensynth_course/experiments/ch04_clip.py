"""Chapter 04's experiments: CLIP trained on the Shapes world, its evaluator twin, and the measures
of what they learned (retrieval, zero-shot classification, compositional zero-shot).

The chapter's CLIP and the evaluator CLIP are trained by one recipe
(:mod:`~gensynth_course.evaluation.evaluator_clip`); the chapter's CLIP is loaded, and classifies
zero-shot, through :mod:`~gensynth_course.experiments.shapes_clip`, which chapters 06 and 07 use too.

Retrieval is measured in blocks of 100 test scenes: each image ranks the 100 captions, each caption
the 100 images (R@1, R@5). A candidate counts as right when its description equals the query's:
two scenes that both show "a small red circle on the left" are the same answer. Every figure the
eval reports as a finding carries a 95 % bootstrap interval over the queries or objects it was
measured on (:mod:`~gensynth_course.evaluation.stats`); the two CLIPs are compared paired, on the
same held-out objects.
"""

from __future__ import annotations

import torch

from gensynth_course.budget import by_budget
from gensynth_course.data import shapes
from gensynth_course.data.tokenizer import Tokenizer
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.attribute_evaluator import caption_accuracy, evaluator_config, load_attribute_evaluator
from gensynth_course.evaluation.evaluator_clip import (clip_config, embed_images, embed_texts, evaluator_clip_config,
                                                       load_evaluator_clip, load_shapes_clip, same_description)
from gensynth_course.evaluation.metrics import hits_at_k
from gensynth_course.experiments import Training
from gensynth_course.experiments.shapes_clip import (ONE_OBJECT, ZERO_SHOT_ATTRIBUTES, load_clip, lone_objects,
                                                     prompt_ensemble, zero_shot, zero_shot_accuracy)
from gensynth_course.models.contrastive.clip import CLIP

__all__ = ["clip_config", "evaluator_clip_config", "load_shapes_clip", "load_clip", "load_evaluator_clip", "embed_images",
           "embed_texts", "ONE_OBJECT", "ZERO_SHOT_ATTRIBUTES", "prompt_ensemble", "zero_shot", "zero_shot_accuracy",
           "retrieval_hits", "retrieval", "zero_shot_hits", "evaluation_sets", "measure_clip", "evaluate"]

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
CANDIDATES = 100


# ----------------------------------------------------------------------------- measuring


def retrieval_hits(model: CLIP, tokenizer: Tokenizer, data: shapes.ShapesDataset, captions: list[str],
                   candidates: int = CANDIDATES) -> dict[str, torch.Tensor]:
    """For every query, 1.0 when a right answer is among its best 1 or 5 (``i2t_r1``, ``i2t_r5``,
    ``t2i_r1``, ``t2i_r5``), each image ranking the captions and each caption the images of its
    block of ``candidates`` scenes (the last partial block is left out)."""
    images, texts = embed_images(model, data.images), embed_texts(model, tokenizer, captions)
    descriptions = data.descriptions()
    hits = {"i2t_r1": [], "i2t_r5": [], "t2i_r1": [], "t2i_r5": []}
    for b in range(len(data) // candidates):
        part = slice(b * candidates, (b + 1) * candidates)
        similarity = images[part] @ texts[part].T
        relevant = same_description(descriptions[part], descriptions[part])
        for k in (1, 5):
            hits[f"i2t_r{k}"].append(hits_at_k(similarity, relevant, k))
            hits[f"t2i_r{k}"].append(hits_at_k(similarity.T, relevant.T, k))
    return {key: torch.cat(parts).float() for key, parts in hits.items()}


def retrieval(model: CLIP, tokenizer: Tokenizer, data: shapes.ShapesDataset, captions: list[str],
              candidates: int = CANDIDATES) -> dict:
    """R@1 and R@5 image→text and text→image (Radford et al. 2021, Table 13): the share of the
    queries of :func:`retrieval_hits` that find a right answer."""
    return {key: round(float(hit.mean()), 4)
            for key, hit in retrieval_hits(model, tokenizer, data, captions, candidates).items()}


def zero_shot_hits(model: CLIP, data: shapes.ShapesDataset, prompts: torch.Tensor | None = None) -> dict:
    """For each lone-object scene of ``data``, 1.0 where zero-shot classification (:func:`zero_shot`)
    names the attribute right, per attribute of :data:`ZERO_SHOT_ATTRIBUTES`; the mean of each is
    :func:`zero_shot_accuracy`."""
    tokenizer = Tokenizer(context_length=model.text.position.shape[0])
    lone = lone_objects(data.scenes)
    predicted = zero_shot(model, tokenizer, data.images[lone], prompts)
    truth = [data.scenes[i].describe() for i in lone]
    return {name: torch.tensor([float(guess == read(d)) for guess, d in zip(predicted[name], truth)])
            for name, read in ZERO_SHOT_ATTRIBUTES.items()}


def evaluation_sets(n: int) -> dict:
    """``n`` test and ``n`` held-out scenes (seed 0 streams no model trains on), one caption each (seed 1)."""
    out = {}
    for split in ("test", "heldout"):
        data = shapes.load_shapes(split, n, seed=0)
        out[split] = (data, shapes.captions(data.scenes, seed=1))
    return out


def measure_clip(model: CLIP, sets: dict) -> dict:
    """Per-item hits of ``model``: retrieval (:func:`retrieval_hits`) on the test scenes and, prefixed
    ``heldout_``, on the held-out ones; zero-shot hits per attribute (:func:`zero_shot_hits`) on the
    lone objects of the test split (``seen``, pairs the model trained on) and of the held-out split."""
    tokenizer = Tokenizer(context_length=model.text.position.shape[0])
    prompts = prompt_ensemble(model, tokenizer, ONE_OBJECT)
    (test, test_captions), (heldout, heldout_captions) = sets["test"], sets["heldout"]
    return {**retrieval_hits(model, tokenizer, test, test_captions),
            **{f"heldout_{k}": v for k, v in retrieval_hits(model, tokenizer, heldout, heldout_captions).items()},
            "seen": zero_shot_hits(model, test, prompts), "heldout": zero_shot_hits(model, heldout, prompts)}


def _interval(hits) -> dict:
    return stats.rounded(stats.interval(hits))


def trainings(budget: str) -> list[Training]:
    """What the notebook trains at ``budget``: the chapter's CLIP, and the two judges of the later
    chapters (the evaluator CLIP and the attribute evaluator)."""
    return [Training("clip", clip_config(budget), load_clip),
            Training("evaluator_clip", evaluator_clip_config(budget), load_evaluator_clip),
            Training("attribute_evaluator", evaluator_config(budget), load_attribute_evaluator)]


def evaluate(budget: str) -> dict:
    """Chapter 04's measured results (``python -m gensynth_course eval 04``): retrieval and
    zero-shot accuracy of the chapter's CLIP and of the evaluator CLIP, each with its 95 % bootstrap
    interval; how much each loses on held-out pairs (seen and held-out objects are different
    scenes: unpaired); and the gap between the two CLIPs on the same held-out objects (paired)."""
    evaluator, evaluator_info = load_attribute_evaluator(evaluator_config(budget))
    accuracy = evaluator_info["accuracy"]
    per_attribute = {f"{split}/{name}": value for split, table in accuracy.items()
                     for name, value in table.items() if name != "scene"}
    clip, clip_info = load_clip(clip_config(budget))
    evaluator_clip, evaluator_clip_info = load_evaluator_clip(evaluator_clip_config(budget))
    sets = evaluation_sets(by_budget(quick=200, standard=1000, budget=budget))
    ours, twin = measure_clip(clip, sets), measure_clip(evaluator_clip, sets)
    test_data, test_captions = sets["test"]
    pair = "shape_colour"
    return {
        **{key: _interval(ours[key]) for key in ("i2t_r1", "t2i_r1", "heldout_i2t_r1", "heldout_t2i_r1")},
        **{key: round(float(ours[key].mean()), 4) for key in ("i2t_r5", "t2i_r5")},
        "seen_zero_shot": _interval(ours["seen"][pair]), "heldout_zero_shot": _interval(ours["heldout"][pair]),
        "heldout_zero_shot_drop": stats.rounded(stats.difference(ours["seen"][pair], ours["heldout"][pair],
                                                                 paired=False)),
        "zero_shot_chance": round(1 / (len(shapes.SHAPES) * len(shapes.COLOURS)), 4),
        "attribute_eval_accuracy": min(per_attribute.values()),
        "attribute_eval_scene_accuracy": min(table["scene"] for table in accuracy.values()),
        "evaluator_caption_accuracy_on_real": _interval(caption_accuracy(test_data.images, test_captions,
                                                                         evaluator).float()),
        **{f"evaluator_clip_{key}": _interval(twin[key]) for key in ("i2t_r1", "t2i_r1")},
        "evaluator_clip_seen_zero_shot": _interval(twin["seen"][pair]),
        "evaluator_clip_heldout_zero_shot": _interval(twin["heldout"][pair]),
        "evaluator_clip_heldout_zero_shot_drop": stats.rounded(stats.difference(
            twin["seen"][pair], twin["heldout"][pair], paired=False)),
        "clip_minus_evaluator_clip_heldout_zero_shot": stats.rounded(stats.difference(
            ours["heldout"][pair], twin["heldout"][pair])),
        "final_logit_scale": clip_info["logit_scale"][-1],
        "clip_train_seconds": round(clip_info["seconds"], 1),
        "evaluator_clip_train_seconds": round(evaluator_clip_info["seconds"], 1),
        "attribute_evaluator_train_seconds": round(evaluator_info["seconds"], 1),
        **{f"zero_shot_{split}": {name: round(float(hits.mean()), 4) for name, hits in ours[split].items()}
           for split in ("seen", "heldout")},
        "attribute_accuracy": per_attribute,
    }
