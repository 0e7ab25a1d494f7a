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
