"""Chapter 04's experiments: CLIP trained on the Shapes world, its evaluator twin, and the measures
of what they learned (retrieval, zero-shot classification, compositional zero-shot).

The chapter's CLIP and the evaluator CLIP are trained by one recipe
(:mod:`~gensynth_course.evaluation.evaluator_clip`); the chapter's CLIP is loaded, and classifies
zero-shot, through :mod:`~gensynth_course.experiments.shapes_clip`, which chapters 06 and 07 use too.

Retrieval is measured in blocks of 100 test scenes: each image ranks the 100 captions, each caption
the 100 images (R@1, R@5). A candidate counts as right when its description equals the query's:
two scenes that both show "a small red circle on the left" are the same answer.
"""

from __future__ import annotations

from gensynth_course.budget import by_budget
from gensynth_course.data import shapes
from gensynth_course.data.tokenizer import Tokenizer
from gensynth_course.evaluation.attribute_evaluator import caption_accuracy, evaluator_config, load_attribute_evaluator
from gensynth_course.evaluation.evaluator_clip import (clip_config, embed_images, embed_texts, evaluator_clip_config,
                                                       load_evaluator_clip, load_shapes_clip, same_description)
from gensynth_course.evaluation.metrics import recall_at_k
from gensynth_course.experiments.shapes_clip import (ONE_OBJECT, ZERO_SHOT_ATTRIBUTES, load_clip, prompt_ensemble,
                                                     zero_shot, zero_shot_accuracy)
from gensynth_course.models.contrastive.clip import CLIP

__all__ = ["clip_config", "evaluator_clip_config", "load_shapes_clip", "load_clip", "load_evaluator_clip", "embed_images",
           "embed_texts", "ONE_OBJECT", "ZERO_SHOT_ATTRIBUTES", "prompt_ensemble", "zero_shot", "zero_shot_accuracy",
           "retrieval", "evaluation_sets", "measure_clip", "evaluate"]

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
CANDIDATES = 100


# ----------------------------------------------------------------------------- measuring


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


def evaluation_sets(n: int) -> dict:
    """``n`` test and ``n`` held-out scenes (seed 0 streams no model trains on), one caption each (seed 1)."""
    out = {}
    for split in ("test", "heldout"):
        data = shapes.load_shapes(split, n, seed=0)
        out[split] = (data, shapes.captions(data.scenes, seed=1))
    return out


def measure_clip(model: CLIP, sets: dict) -> dict:
    """Retrieval on test and held-out scenes, and zero-shot accuracy on seen and held-out pairs."""
    tokenizer = Tokenizer(context_length=model.text.position.shape[0])
    prompts = prompt_ensemble(model, tokenizer, ONE_OBJECT)
    test, heldout = sets["test"], sets["heldout"]
    seen, unseen = (zero_shot_accuracy(model, tokenizer, data, prompts) for data, _ in (test, heldout))
    return {**retrieval(model, tokenizer, *test),
            **{f"heldout_{k}": v for k, v in retrieval(model, tokenizer, *heldout).items()},
            "heldout_zero_shot": unseen["shape_colour"], "seen_zero_shot": seen["shape_colour"],
            "zero_shot_seen": seen, "zero_shot_heldout": unseen}


def evaluate(budget: str) -> dict:
    """Chapter 04's measured results (``python -m gensynth_course eval 04``)."""
    evaluator, evaluator_info = load_attribute_evaluator(evaluator_config(budget))
    accuracy = evaluator_info["accuracy"]
    per_attribute = {f"{split}/{name}": value for split, table in accuracy.items()
                     for name, value in table.items() if name != "scene"}
    clip, clip_info = load_clip(clip_config(budget))
    evaluator_clip, evaluator_clip_info = load_evaluator_clip(evaluator_clip_config(budget))
    sets = evaluation_sets(by_budget(quick=200, standard=1000, budget=budget))
    results = measure_clip(clip, sets)
    twin = measure_clip(evaluator_clip, sets)
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
