"""The fixed judge of chapters 05 and 06: a set of captions, and what is measured on the images a
text-to-image model draws for them.

Caption accuracy (all attributes right) is read by the attribute evaluator; R-precision, FD and
diversity by the evaluator CLIP. Neither network took part in training any generator.
"""

from __future__ import annotations

import torch

from gensynth_course.budget import by_budget
from gensynth_course.data import shapes
from gensynth_course.data.tokenizer import Tokenizer
from gensynth_course.evaluation.attribute_evaluator import caption_accuracy, evaluator_config, load_attribute_evaluator
from gensynth_course.evaluation.evaluator_clip import (embed_images, embed_texts, evaluator_clip_config,
                                                       load_evaluator_clip, same_description)
from gensynth_course.evaluation.metrics import frechet_distance, gaussian_stats, mean_pairwise_distance, recall_at_k


def judge_config(budget: str) -> dict:
    """The fixed caption set (one-object and two-object test captions and held-out captions, two
    samples each) and the two networks that judge: the attribute evaluator and the evaluator CLIP."""
    return dict(evaluator=evaluator_config(budget), clip=evaluator_clip_config(budget),
                one_object=by_budget(quick=6, standard=60, full=200, budget=budget),
                two_object=by_budget(quick=6, standard=60, full=200, budget=budget),
                heldout=by_budget(quick=6, standard=60, full=200, budget=budget),
                samples_per_caption=2)


def evaluation_captions(config: dict) -> dict:
    """The fixed caption set: one-object and two-object test scenes and held-out scenes (seed 5
    streams that no model trains on), one caption each (seed 6). Returns group → (scenes, captions)."""
    test = shapes.make_scenes(4 * (config["one_object"] + config["two_object"]), "test", seed=5)
    groups = {"one_object": [s for s in test if len(s.objects) == 1][:config["one_object"]],
              "two_object": [s for s in test if len(s.objects) == 2][:config["two_object"]],
              "heldout": shapes.make_scenes(config["heldout"], "heldout", seed=5)}
    return {name: (scenes, shapes.captions(scenes, seed=6)) for name, scenes in groups.items()}


class Judge:
    """Caption accuracy (attribute evaluator), R-precision, FD and diversity (evaluator CLIP) of
    images generated for the fixed caption set, each caption asked ``repeats`` times."""

    def __init__(self, config: dict, device: torch.device | str | None = None):
        self.sets = evaluation_captions(config)
        self.repeats = config["samples_per_caption"]
        self.evaluator, _ = load_attribute_evaluator(config["evaluator"], device)
        self.clip, _ = load_evaluator_clip(config["clip"], device)
        self.tokenizer = Tokenizer(context_length=self.clip.text.position.shape[0])
        self.scenes = [s for scenes, _ in self.sets.values() for s in scenes]
        self.captions = [c for _, captions in self.sets.values() for c in captions]
        self.group = sum(([name] * len(captions) for name, (_, captions) in self.sets.items()), [])
        self.text = embed_texts(self.clip, self.tokenizer, self.captions)
        real = shapes.render(self.scenes)
        self.reference = gaussian_stats(embed_images(self.clip, real).double())
        self.relevant = same_description([s.describe() for s in self.scenes], [s.describe() for s in self.scenes])

    def prompts(self) -> list[str]:
        """Every caption of the set, ``repeats`` times over (caption i at positions i, i + N, …)."""
        return self.captions * self.repeats

    def __call__(self, images: torch.Tensor) -> dict:
        n = len(self.captions)
        correct = caption_accuracy(images, self.prompts(), self.evaluator).view(self.repeats, n).float().mean(0)
        feats = embed_images(self.clip, images)
        r_precision = recall_at_k(feats @ self.text.T, self.relevant.repeat(self.repeats, 1), 1)
        out = {f"caption_accuracy_{name}": round(float(correct[[g == name for g in self.group]].mean()), 4)
               for name in self.sets}
        out.update(caption_accuracy=round(float(correct.mean()), 4), r_precision=round(r_precision, 4),
                   fd=round(frechet_distance(*gaussian_stats(feats.double()), *self.reference), 4),
                   diversity=round(mean_pairwise_distance(feats, torch.arange(n).repeat(self.repeats)), 4))
        return out
