"""The fixed judge of chapters 05 and 06: intervals over its captions and paired comparisons."""

import pytest
import torch

from gensynth_course.data import shapes
from gensynth_course.data.fashion_mnist import to_model_range
from gensynth_course.evaluation.judge import (FIXED_SEED, VALIDATION_SEED, Judge, evaluation_captions, judge_config,
                                              without_items)


@pytest.fixture(scope="module")
def judged():
    # The user's cache, on purpose: these are the quick judges that chapters 05 and 06 load.
    judge = Judge(judge_config("quick"))
    real = to_model_range(shapes.render(judge.scenes * judge.repeats))      # prompts() order
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return judge, judge(real), judge(noise)


def test_an_interval_is_over_the_captions_of_a_group(judged):
    judge, real, _ = judged
    overall = judge.interval(real)
    assert overall["value"] == pytest.approx(real["caption_accuracy"], abs=1e-4)
    assert overall["n"] == len(judge.captions) and overall["ci_low"] <= overall["value"] <= overall["ci_high"]
    heldout = judge.interval(real, group="heldout")
    assert heldout["n"] == judge_config("quick")["heldout"]
    assert heldout["value"] == pytest.approx(real["caption_accuracy_heldout"], abs=1e-4)
    assert judge.interval(real, "r_precision")["value"] == pytest.approx(real["r_precision"], abs=1e-4)
    assert judge.interval(real, "fd")["value"] == pytest.approx(real["fd"], abs=1e-4)


def test_a_comparison_is_paired_caption_by_caption(judged):
    judge, real, noise = judged
    same = judge.compare(real, real)
    assert same["value"] == same["ci_low"] == same["ci_high"] == 0 and same["paired"]
    better = judge.compare(real, noise, "caption_accuracy")
    assert better["value"] == pytest.approx(real["caption_accuracy"] - noise["caption_accuracy"], abs=1e-4)
    closer = judge.compare(real, noise, "fd")          # real renders are far closer to the real renders
    assert closer["ci_high"] < 0


def test_the_judge_refuses_an_unknown_measure_or_group_and_its_json_has_no_items(judged):
    judge, real, noise = judged
    with pytest.raises(ValueError, match="measure must be one of"):
        judge.compare(real, noise, "accuracy")
    with pytest.raises(ValueError, match="group must be one of"):
        judge.interval(real, group="three_objects")
    assert not {"per_caption", "features"} & set(without_items(real))


def test_a_validation_set_is_drawn_like_the_fixed_set_with_other_scenes():
    config = judge_config("quick")
    fixed, again = evaluation_captions(config), evaluation_captions(config, FIXED_SEED)
    validation = evaluation_captions(config, VALIDATION_SEED)
    assert fixed == again                                 # the default is the fixed set, unchanged
    for group, (scenes, captions) in fixed.items():
        other_scenes, other_captions = validation[group]
        assert len(other_scenes) == len(scenes) and len(other_captions) == len(captions)
        assert captions != other_captions


def test_pooled_seeds_are_judged_caption_by_caption_with_all_their_samples(judged):
    judge, real, noise = judged
    pooled = judge.pooled([real, noise])
    # each caption's share is the mean of the two results', and FD is over both results' images
    assert judge.interval(pooled)["value"] == pytest.approx((real["caption_accuracy"] + noise["caption_accuracy"]) / 2,
                                                          abs=1e-4)
    assert judge.interval(pooled, "fd")["n"] == 2 * len(judge.prompts())
    assert judge.interval(judge.pooled([real]), "fd")["value"] == pytest.approx(real["fd"], abs=1e-4)
    assert judge.compare(pooled, pooled, "fd")["value"] == 0
    assert judge.interval(pooled, "fd", group="heldout")["n"] == 2 * judge_config("quick")["heldout"] * judge.repeats
    with pytest.raises(ValueError, match="pooled: give a non-empty list"):
        judge.pooled([])


def test_chapter06_findings_need_every_interval_over_seeds_on_one_side(judged):
    from gensynth_course.experiments import ch06_xmc_gan

    judge, real, noise = judged

    def with_accuracy(result, share):          # a run of a given caption accuracy, the images' features kept
        shares = [share] * len(judge.captions)
        return dict(result, caption_accuracy=share, per_caption=dict(result["per_caption"], caption_accuracy=shares))

    rows = {"baseline": [with_accuracy(noise, 0.2)] * 3, "all": [with_accuracy(real, s) for s in (0.7, 0.8, 0.9)],
            "all_plain": [with_accuracy(real, s) for s in (0.1, 0.5, 0.9)], "word": [noise]}
    found = ch06_xmc_gan.findings(rows, judge)
    assert found["all_vs_baseline_caption_accuracy_seeds"] == 3
    assert found["all_vs_baseline_caption_accuracy_over_seeds"]["seeds"] == pytest.approx([0.5, 0.6, 0.7])
    assert found["all_vs_baseline_caption_accuracy"]["value"] == pytest.approx(0.6)      # pooled over the seeds
    assert found["all_vs_baseline_caption_accuracy_verdict"] == "better"
    assert found["all_vs_baseline_fd_verdict"] == "better"                             # FD: lower is better
    # every caption favours all_plain in seed 0 and all in seed 2: the seeds disagree, so no finding
    assert found["all_vs_all_plain_caption_accuracy_over_seeds"]["ci_low"] < 0
    assert found["all_vs_all_plain_caption_accuracy_verdict"] == "no difference"
    # one seed: the bootstrap over captions only, and no interval over seeds
    assert found["word_vs_baseline_fd_seeds"] == 1 and "word_vs_baseline_fd_over_seeds" not in found
    assert found["word_vs_baseline_r_precision_verdict"] == "no difference"              # the same images


def test_order_counts_a_two_object_scene_drawn_the_wrong_way_round_as_swapped(judged, monkeypatch):
    judge, _, noise = judged
    exchanged = [shapes.Scene(tuple(shapes.ShapeObject(*b.kind, a.x, a.y) for a, b in zip(s.objects, s.objects[::-1])),
                              s.layout) for s in judge.scenes]

    def judged_as_read(scenes):
        """The judge's result when the evaluator reads exactly ``scenes`` (a perfect reader)."""
        truth = shapes.description_labels([s.describe() for s in scenes * judge.repeats]).clamp(min=0)
        monkeypatch.setattr(judge.evaluator, "predict", lambda images: truth.clone())
        return judge(to_model_range(shapes.render(scenes * judge.repeats)))

    real, backwards = judged_as_read(judge.scenes), judged_as_read(exchanged)
    right, wrong = judge.order(real), judge.order(backwards)
    assert real["caption_accuracy"] == 1 and right["right"]["value"] == 1 and right["swapped"]["value"] == 0
    assert right["right_minus_swapped"]["value"] == 1 and right["right_minus_swapped"]["verdict"] == "higher"
    # The objects exchanged: every one-object scene is still right, every two-object one swapped.
    heldout = judge.sets["heldout"][0]
    assert backwards["caption_accuracy_one_object"] == 1 and backwards["swapped_two_object"] == 1
    assert backwards["swapped_heldout"] == pytest.approx(sum(len(s.objects) == 2 for s in heldout) / len(heldout), abs=1e-4)
    assert wrong["right"]["value"] == 0 and wrong["swapped"]["value"] == 1
    assert wrong["right_minus_swapped"]["verdict"] == "lower" and "swapped_one_object" not in real
    assert judge.order(noise)["right_minus_swapped"]["verdict"] == "no difference"
    # A group with one-object captions too (the held-out pairs): only its two-object captions count.
    heldout_order = judge.order(backwards, "heldout")
    assert heldout_order["swapped"]["value"] == 1 and heldout_order["right"]["value"] == 0
    assert heldout_order["swapped"]["n"] == sum(len(s.objects) == 2 for s in heldout)
    with pytest.raises(ValueError, match="two-object captions"):
        judge.order(real, "one_object")
