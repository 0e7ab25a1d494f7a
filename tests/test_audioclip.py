"""Chapter 07's experiments: sound banks, the three training stages and their measures, at the quick budget."""

import pytest
import torch

from gensynth_course.data.shapes import ATTRIBUTES
from gensynth_course.evaluation.evaluator_clip import clip_config
from gensynth_course.experiments import ch07_audioclip


def test_sound_banks_are_deterministic_and_split_apart():
    data, waves = ch07_audioclip.sound_bank("test", 4, seed=1)
    again, same = ch07_audioclip.sound_bank.__wrapped__("test", 4, seed=1)          # synthesised again, not from memory
    assert torch.equal(waves, same) and data.scenes == again.scenes
    assert waves.shape == (4, 16_000)
    _, other = ch07_audioclip.sound_bank("heldout", 4, seed=1)
    assert not torch.equal(waves, other)


def test_audio_head_trains_once_and_reports_accuracy(tmp_cache):
    model, info = ch07_audioclip.load_audio_head(ch07_audioclip.audio_config("quick"))
    assert info["steps"] == ch07_audioclip.audio_config("quick")["steps"]
    assert set(info["accuracy"]) == {"test", "heldout"}
    assert set(info["accuracy"]["test"]) == set(ATTRIBUTES) | {"scene"}
    reloaded, _ = ch07_audioclip.load_audio_head(ch07_audioclip.audio_config("quick"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))


def test_partial_and_full_training_are_cached_and_measured(quick_evals):
    results, _ = quick_evals.get("07")
    for mode in ("partial", "full"):
        for key in ("zero_shot_heldout_accuracy", "text_to_audio_p1", "text_to_audio_r1", "text_to_audio_map",
                    "audio_to_image_p1", "audio_to_image_map", "image_to_audio_p1", "image_to_audio_map"):
            assert 0.0 <= results[f"{mode}_{key}"] <= 1.0, (mode, key)
        # with several right answers per query, one top answer finds at most all of them
        assert results[f"{mode}_text_to_audio_r1"] <= results[f"{mode}_text_to_audio_p1"]
        # seed 0 of the seed study is the model measured above
        assert results[f"{mode}_audio_heldout_accuracy_over_seeds"]["seeds"][0] == pytest.approx(
            results[f"{mode}_zero_shot_heldout_accuracy"], abs=1e-4)
    assert results["training_seeds"] == len(ch07_audioclip.SEEDS) >= 3
    gain = results["sound_gain_over_seeds"]
    assert len(gain["seeds"]) == 3 and gain["ci_low"] <= gain["mean"] <= gain["ci_high"]
    # the notebook finds the study only for the models it measured
    infos = {mode: ch07_audioclip.load_audioclip(ch07_audioclip.contrastive_config(mode, "quick"))[1]
             for mode in ("partial", "full")}
    assert ch07_audioclip.cached_study(infos)["sound_gain_over_seeds"] == gain
    assert ch07_audioclip.cached_study({**infos, "full": {"model_id": "0000000000-0000000000"}}) is None
    assert results["chance"] == round(1 / 24, 4)
    # the downstream task: each start's seed 0 is the classifier the notebook loads, every gain is
    # the difference of the accuracies it compares, and fusion is measured against both heads alone
    assert results["downstream_seeds"] == 3 and set(results["downstream_accuracy"]) == set(ch07_audioclip.INITS)
    for init in ch07_audioclip.INITS:
        _, info = ch07_audioclip.load_downstream(ch07_audioclip.downstream_config(init, "quick"))
        assert results["downstream_accuracy"][init]["value"] == pytest.approx(info["test_accuracy"], abs=1e-4)
        assert results["downstream_accuracy_over_seeds"][init]["seeds"][0] == pytest.approx(info["test_accuracy"], abs=1e-4)
    accuracy = {init: results["downstream_accuracy"][init]["value"] for init in ch07_audioclip.INITS}
    assert results["downstream_gain"]["full_minus_scratch"]["value"] == pytest.approx(
        accuracy["full"] - accuracy["scratch"], abs=1e-3)
    fused = results["fused_accuracy"]
    assert set(fused) == {"audio", "image", "fused"}
    assert results["fused_gain"]["fused_minus_image"]["value"] == pytest.approx(
        fused["fused"]["value"] - fused["image"]["value"], abs=1e-3)
    torch.manual_seed(123)                      # whatever ran before, the same models give the same figures
    full, _ = ch07_audioclip.load_audioclip(ch07_audioclip.contrastive_config("full", "quick"))
    again = ch07_audioclip.fused_classification(full, ch07_audioclip.downstream_config("full", "quick"))
    assert again["fused_accuracy"] == fused and again["fused_gain"] == results["fused_gain"]
    partial, info = ch07_audioclip.load_audioclip(ch07_audioclip.contrastive_config("partial", "quick"))
    assert info["steps"] == ch07_audioclip.contrastive_config("partial", "quick")["steps"]
    assert set(info["pair_losses"]) == {"audio_image", "audio_text", "image_text"}
    from gensynth_course.experiments.shapes_clip import load_clip
    clip, _ = load_clip(clip_config("quick"))
    assert all(torch.equal(v, partial.clip.state_dict()[k]) for k, v in clip.state_dict().items())


def test_downstream_configs_name_their_start_and_refuse_a_wrong_one():
    assert "audioclip" not in ch07_audioclip.downstream_config("stage1", "quick")
    assert ch07_audioclip.downstream_config("full", "quick")["audioclip"] == ch07_audioclip.contrastive_config("full", "quick")
    with pytest.raises(ValueError, match="init must be one of scratch, stage1, full"):
        ch07_audioclip.downstream_config("imagenet", "quick")
    with pytest.raises(ValueError, match="non-negative integer"):
        ch07_audioclip.downstream_config("scratch", "quick", seed=-1)


def test_the_full_training_controls_change_only_clips_heads_and_only_in_full_training():
    with pytest.raises(ValueError, match="only full training moves CLIP's heads"):
        ch07_audioclip.contrastive_config("partial", "quick", clip_lr=1e-4)
    plain = ch07_audioclip.contrastive_config("full", "quick")
    assert "clip_lr" not in plain and "clip_weight_decay" not in plain     # the main run keeps its cache file
    for name, settings in ch07_audioclip.CONTROLS.items():
        control = ch07_audioclip.contrastive_config("full", "quick", **settings)
        assert {k: v for k, v in control.items() if k not in settings} == plain, name
