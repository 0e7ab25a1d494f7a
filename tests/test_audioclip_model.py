"""AudioCLIP's pair losses, and which heads learn in partial and in full training."""

import pytest
import torch
from torch.nn import functional as F

from gensynth_course.data import shapes, sounds
from gensynth_course.data.fashion_mnist import to_model_range
from gensynth_course.data.tokenizer import Tokenizer
from gensynth_course.models.contrastive.audio_head import AudioEncoder
from gensynth_course.models.contrastive.audioclip import PAIRS, AudioCLIP
from gensynth_course.models.contrastive.clip import contrastive_loss, make_clip
from gensynth_course.train import fit


def small_audioclip(embed_dim: int = 16) -> AudioCLIP:
    torch.manual_seed(0)
    tokenizer = Tokenizer()
    clip = make_clip(len(tokenizer), embed_dim=embed_dim, channels=(8, 16), image_width=32, text_width=32,
                     text_layers=1, heads=2)
    return AudioCLIP(AudioEncoder(channels=(16, 16), embed_dim=embed_dim), clip)


def triplets(n: int = 8, seed: int = 0):
    data = shapes.load_shapes("train", n, seed=seed)
    ids, mask = Tokenizer().encode(shapes.captions(data.scenes, seed=seed))
    return sounds.synthesise_all(data.scenes, seed=seed), to_model_range(data.images), ids, mask


def test_each_pair_loss_is_clips_loss_on_that_pair_with_its_own_scale():
    model = small_audioclip().eval()
    with torch.no_grad():
        model.logit_scale_audio_image.fill_(1.0)
        model.logit_scale_audio_text.fill_(2.0)
        model.clip.logit_scale.fill_(3.0)
        batch = triplets()
        losses = model.pair_losses(*batch)
        audio = F.normalize(model.audio.embed(batch[0]), dim=-1)
        image = F.normalize(model.clip.encode_image(batch[1]), dim=-1)
        text = F.normalize(model.clip.encode_text(batch[2], batch[3]), dim=-1)
        expected = {"audio_image": contrastive_loss(torch.e ** 1 * audio @ image.T),
                    "audio_text": contrastive_loss(torch.e ** 2 * audio @ text.T),
                    "image_text": contrastive_loss(torch.e ** 3 * image @ text.T)}
        assert set(losses) == set(PAIRS)
        for pair in PAIRS:
            assert torch.allclose(losses[pair], expected[pair], atol=1e-5), pair
        # partial training sums the two audio pairs, full training all three
        assert torch.allclose(model.loss(*batch, mode="partial"), expected["audio_image"] + expected["audio_text"])
        assert torch.allclose(model.loss(*batch, mode="full"), sum(expected.values()))


def test_the_logit_scales_are_clamped_at_100():
    model = small_audioclip()
    with torch.no_grad():
        model.logit_scale_audio_text.fill_(10.0)
    assert torch.isclose(model.scale("audio_text"), torch.tensor(100.0))


def _train(model: AudioCLIP, mode: str, steps: int = 3) -> None:
    batch = triplets()
    model.set_training(mode)
    fit(model, lambda m, b, generator: m.loss(*b, mode=mode), lambda k, generator: batch, steps, lr=1e-2, desc=mode)


def test_partial_training_leaves_the_image_and_text_heads_untouched():
    model = small_audioclip()
    clip_before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    audio_before = {k: v.clone() for k, v in model.audio.state_dict().items()}
    scale_before = model.logit_scale_audio_text.detach().clone()
    _train(model, "partial")
    assert all(torch.equal(v, model.clip.state_dict()[k]) for k, v in clip_before.items())
    assert all(p.grad is None for p in model.clip.parameters())
    assert not model.clip.training                       # frozen heads stay in evaluation mode
    changed = [k for k, v in audio_before.items() if not torch.equal(v, model.audio.state_dict()[k])]
    assert any("blocks" in k for k in changed) and "projection.weight" in changed
    assert not torch.equal(scale_before, model.logit_scale_audio_text.detach())


def test_full_training_updates_every_head():
    model = small_audioclip()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, "full")
    after = model.state_dict()
    for prefix in ("audio.projection", "clip.visual", "clip.text", "clip.image_projection", "clip.text_projection",
                   "clip.logit_scale", "logit_scale_audio_image"):
        assert any(not torch.equal(v, after[k]) for k, v in before.items() if k.startswith(prefix)), prefix


def test_modes_and_embedding_sizes_are_checked():
    with pytest.raises(ValueError, match="mode"):
        small_audioclip().set_training("frozen")
    tokenizer = Tokenizer()
    with pytest.raises(ValueError, match="embed_dim=16"):
        AudioCLIP(AudioEncoder(channels=(16, 16), embed_dim=8), make_clip(len(tokenizer), embed_dim=16))


def test_partial_training_aligns_sounds_with_their_captions():
    """Overfit: 16 sounding scenes learn to pick their own captions among the 16."""
    model = small_audioclip()
    batch = triplets(16, seed=3)
    model.set_training("partial")
    with torch.no_grad():
        before = model.pair_losses(*batch)["audio_text"].item()
    fit(model, lambda m, b, generator: m.loss(*b, mode="partial"), lambda k, generator: batch, 150, lr=1e-2, desc="overfit")
    model.eval()
    with torch.no_grad():
        after = model.pair_losses(*batch)["audio_text"].item()
        audio = F.normalize(model.audio.embed(batch[0]), dim=-1)
        text = F.normalize(model.clip.encode_text(batch[2], batch[3]), dim=-1)
    hits = ((audio @ text.T).argmax(1) == torch.arange(16)).float().mean().item()
    assert after < before / 3 and hits >= 0.75, (before, after, hits)
