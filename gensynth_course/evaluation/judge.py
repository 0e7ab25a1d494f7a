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
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.attribute_evaluator import (caption_matches, evaluator_config, load_attribute_evaluator,
                                                            read_captions, swapped_order)
from gensynth_course.evaluation.evaluator_clip import (embed_images, embed_texts, evaluator_clip_config,
                                                       load_evaluator_clip, same_description)
from gensynth_course.evaluation.metrics import (frechet_distance_of_rows, gaussian_stats, mean_pairwise_distance,
                                                recall_at_k, sqrtm_psd)


def judge_config(budget: str) -> dict:
    """The fixed caption set (one-object and two-object test captions and held-out captions, two
    samples each) and the two networks that judge: the attribute evaluator and the evaluator CLIP."""
    return dict(evaluator=evaluator_config(budget), clip=evaluator_clip_config(budget),
                one_object=by_budget(quick=6, standard=60, full=200, budget=budget),
                two_object=by_budget(quick=6, standard=60, full=200, budget=budget),
                heldout=by_budget(quick=6, standard=60, full=200, budget=budget),
                samples_per_caption=2)


# The seed of the fixed caption set's scenes (its captions use the next one). A guidance scale is
# chosen on a validation set drawn the same way with another seed (:data:`VALIDATION_SEED`).
FIXED_SEED = 5
VALIDATION_SEED = 50


def evaluation_captions(config: dict, seed: int = FIXED_SEED) -> dict:
    """The caption set: one-object and two-object test scenes and held-out scenes (``seed``'s
    streams, which no model trains on), one caption each (seed ``seed + 1``). The default seed
    gives the fixed set every result is measured on. Returns group → (scenes, captions)."""
    test = shapes.make_scenes(4 * (config["one_object"] + config["two_object"]), "test", seed=seed)
    groups = {"one_object": [s for s in test if len(s.objects) == 1][:config["one_object"]],
              "two_object": [s for s in test if len(s.objects) == 2][:config["two_object"]],
              "heldout": shapes.make_scenes(config["heldout"], "heldout", seed=seed)}
    return {name: (scenes, shapes.captions(scenes, seed=seed + 1)) for name, scenes in groups.items()}


class Judge:
    """Caption accuracy (attribute evaluator), R-precision, FD and diversity (evaluator CLIP) of
    images generated for the fixed caption set (or, with another ``seed``, a validation set drawn
    the same way), each caption asked ``repeats`` times."""

    def __init__(self, config: dict, device: torch.device | str | None = None, seed: int = FIXED_SEED):
        self.sets = evaluation_captions(config, seed)
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
        self.reference_half = sqrtm_psd(self.reference[1])
        self.two_object_groups = [name for name, (scenes, _) in self.sets.items()
                                  if any(len(s.objects) == 2 for s in scenes)]
        self.relevant = same_description([s.describe() for s in self.scenes], [s.describe() for s in self.scenes])

    def prompts(self) -> list[str]:
        """Every caption of the set, ``repeats`` times over (caption i at positions i, i + N, …)."""
        return self.captions * self.repeats

    def __call__(self, images: torch.Tensor) -> dict:
        """The measures of one set of images (``prompts()`` order). ``per_caption`` holds, for each
        caption in order, its share of right samples (``caption_accuracy``), of samples that show a
        two-object caption the wrong way round (``swapped``, see :meth:`order`) and of samples whose
        nearest caption by the evaluator CLIP has its description (``r_precision``), and
        ``features`` the evaluator CLIP's embedding of each image: the items a bootstrap
        resamples, paired between two models judged on this same set (:meth:`compare`)."""
        n = len(self.captions)
        wanted, seen = read_captions(images, self.prompts(), self.evaluator)
        share = lambda hits: hits.view(self.repeats, n).float().mean(0)  # noqa: E731
        correct = share(caption_matches(wanted, seen))
        swapped = share(swapped_order(wanted, seen))
        feats = embed_images(self.clip, images)
        similarity, relevant = feats @ self.text.T, self.relevant.repeat(self.repeats, 1)
        r_precision = recall_at_k(similarity, relevant, 1)
        found = relevant.gather(1, similarity.topk(1, dim=1).indices).any(1).view(self.repeats, n).float().mean(0)
        out = {f"caption_accuracy_{name}": round(float(correct[[g == name for g in self.group]].mean()), 4)
               for name in self.sets}
        out.update({f"swapped_{name}": round(float(swapped[[g == name for g in self.group]].mean()), 4)
                    for name in self.sets if name in self.two_object_groups})
        out.update(caption_accuracy=round(float(correct.mean()), 4), r_precision=round(r_precision, 4),
                   fd=round(self._fd(feats.double().numpy()), 4),
                   diversity=round(mean_pairwise_distance(feats, torch.arange(n).repeat(self.repeats)), 4),
                   per_caption={"caption_accuracy": correct.tolist(), "swapped": swapped.tolist(),
                                "r_precision": found.tolist()},
                   features=feats)
        return out

    def pooled(self, results: list[dict]) -> dict:
        """Several results of this judge (one run's training seeds, all from the same prompts and
        noise) as one, for :meth:`interval` and :meth:`compare`: each caption's shares averaged over
        the results, and every image's features, so that a bootstrap resamples a caption (an image,
        for FD) with all the seeds' samples of it together."""
        if not results or any(not {"per_caption", "features"} <= set(r) for r in results):
            raise ValueError("pooled: give a non-empty list of this judge's results (from calling it on images).")
        per_caption = {measure: torch.tensor([r["per_caption"][measure] for r in results]).mean(0).tolist()
                       for measure in results[0]["per_caption"]}
        return {"per_caption": per_caption, "features": torch.cat([r["features"] for r in results]),
                "pooled": len(results)}

    @stats.counted
    def _fd(self, rows, counts=None):
        return frechet_distance_of_rows(rows, *self.reference, self.reference_half, counts)

    def _items(self, result: dict, measure: str, group: str | None):
        if measure not in MEASURES + ("swapped",):
            raise ValueError(f"measure must be one of {MEASURES + ('swapped',)}, not {measure!r}")
        if group is not None and group not in self.sets:
            raise ValueError(f"group must be one of {tuple(self.sets)} or None, not {group!r}")
        if measure == "fd":
            keep = [group in (None, g) for g in self.group * self.repeats] * result.get("pooled", 1)
            return result["features"][torch.tensor(keep)].double().numpy()
        return [v for v, g in zip(result["per_caption"][measure], self.group) if group in (None, g)]

    def interval(self, result: dict, measure: str = "caption_accuracy", group: str | None = None) -> dict:
        """``measure`` (one of :data:`MEASURES`) of one result of this judge, over all captions or
        one ``group``'s, with its 95 % bootstrap interval over the captions (over the images for FD,
        the set of real renders held fixed)."""
        if measure == "fd":
            return stats.rounded(stats.interval(self._items(result, measure, group), self._fd))
        return stats.rounded(stats.interval(self._items(result, measure, group)))

    def compare(self, a: dict, b: dict, measure: str = "caption_accuracy", group: str | None = None) -> dict:
        """``a`` − ``b`` (two results of this judge) on ``measure``, over all captions or one
        ``group``'s, with its paired 95 % bootstrap interval (caption i, or image i, of both)."""
        statistic = self._fd if measure == "fd" else None
        return stats.rounded(stats.difference(self._items(a, measure, group), self._items(b, measure, group),
                                              statistic=statistic))

    def order(self, result: dict, group: str = "two_object") -> dict:
        """Where ``group``'s two-object samples stand: ``right`` (caption accuracy) and ``swapped``
        (both objects and the layout right, but each object in the other's place), each with its
        95 % bootstrap interval over the captions, and ``right_minus_swapped``, paired caption by
        caption, with its ``verdict``. A model that reads the relation draws far more right than
        swapped; one that reads only which objects the caption names places them by a coin toss,
        and the difference stays inside the noise."""
        if group not in self.two_object_groups:
            raise ValueError(f"group must be one with two-object captions, {tuple(self.two_object_groups)}, "
                             f"not {group!r}")
        two = [len(s.objects) == 2 for s, g in zip(self.scenes, self.group) if g == group]
        right, swapped = ([v for v, keep in zip(self._items(result, measure, group), two) if keep]
                          for measure in ("caption_accuracy", "swapped"))
        difference = stats.rounded(stats.difference(right, swapped))
        return {"right": stats.rounded(stats.interval(right)), "swapped": stats.rounded(stats.interval(swapped)),
                "right_minus_swapped": {**difference, "verdict": stats.direction(difference)}}


MEASURES = ("caption_accuracy", "r_precision", "fd")


def without_items(result: dict) -> dict:
    """A result of :class:`Judge` without its per-item data, for an eval's JSON."""
    return {key: value for key, value in result.items() if key not in ("per_caption", "features")}
