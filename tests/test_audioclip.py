"""Chapter 07's stage 1: sound banks and the cached, supervised audio head."""

import torch

from gensynth_course import audioclip_experiments as ch07
from gensynth_course.shapes import ATTRIBUTES


def test_sound_banks_are_deterministic_and_split_apart():
    data, waves = ch07.sound_bank("test", 4, seed=1)
    again, same = ch07.sound_bank("test", 4, seed=1)
    assert torch.equal(waves, same) and data.scenes == again.scenes
    assert waves.shape == (4, 16_000)
    _, other = ch07.sound_bank("heldout", 4, seed=1)
    assert not torch.equal(waves, other)


def test_audio_head_trains_once_and_reports_accuracy(tmp_cache):
    model, info = ch07.load_audio_head("quick")
    assert info["steps"] == ch07.audio_config("quick")["steps"]
    assert set(info["accuracy"]) == {"test", "heldout"}
    assert set(info["accuracy"]["test"]) == set(ATTRIBUTES) | {"scene"}
    reloaded, _ = ch07.load_audio_head("quick")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))
