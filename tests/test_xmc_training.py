"""Chapter 06's training: the loop runs, resumes after an interruption, and each player can learn."""

import math

import pytest
import torch

from gensynth_course.data import shapes
from gensynth_course.data.fashion_mnist import to_model_range
from gensynth_course.data.tokenizer import Tokenizer
from gensynth_course.experiments.ch06_xmc_gan import (RUNS, CaptionEncoder, build_gan, contrastive_accuracy, gan_config,
                                                      stability, study_config, train_gan)
from gensynth_course.models.contrastive.clip import make_clip
from gensynth_course.models.gan import xmc_losses
from gensynth_course.models.gan.xmc_gan import discriminator_loss


def _text_encoder():
    torch.manual_seed(0)
    return CaptionEncoder(make_clip(len(Tokenizer()), text_width=32, text_layers=1, embed_dim=16))


def _tiny_config(run="all", **changes):
    config = gan_config(run, "quick")
    config.update(g_channels=[16, 16, 8, 8], d_channels=[8, 16, 16], z_dim=8, train_scenes=64, batch_size=8,
                  steps=6, **changes)
    return config


def test_the_ablation_switches_losses_on_one_at_a_time():
    assert gan_config("baseline", "standard")["weights"] == {"sentence": 0, "word": 0, "image": 0, "encoder": 0}
    assert gan_config("word", "standard")["weights"] == {"sentence": 0, "word": 1, "image": 0, "encoder": 0}
    assert gan_config("all", "standard")["weights"] == gan_config("all_plain", "standard")["weights"] == dict.fromkeys(
        ("sentence", "word", "image", "encoder"), 1.0)
    assert gan_config("all", "standard")["attentional"] and not gan_config("all_plain", "standard")["attentional"]
    assert [gan_config(run, "standard")["head_depth"] for run in ("all", "all_head2")] == [1, 2]
    assert [gan_config(run, "standard")["encoder_loss"] for run in ("all", "all_perceptual")] == ["contrastive",
                                                                                                 "perceptual"]
    # every run shares the recipe: only the loss weights, the modulation, the head and the encoder term differ
    varied = ("run", "weights", "attentional", "head_depth", "encoder_loss")
    recipe = {k: v for k, v in gan_config("all", "standard").items() if k not in varied}
    for run in RUNS:
        assert {k: v for k, v in gan_config(run, "standard").items() if k not in varied} == recipe
    with pytest.raises(ValueError, match="run must be one of"):
        gan_config("everything", "standard")


def test_the_study_trains_three_seeds_of_the_headline_runs_and_one_of_the_others_two_at_quick():
    configs = study_config("standard")
    assert set(configs) == set(RUNS)
    for run, run_configs in configs.items():
        seeds = [c["seed"] for c in run_configs]
        assert seeds == ([0, 1, 2] if run in ("baseline", "all", "all_plain", "all_head2", "all_perceptual") else [0])
        assert all({k: v for k, v in c.items() if k != "seed"} == {k: v for k, v in run_configs[0].items() if k != "seed"}
                   for c in run_configs)                              # only the seed differs
    assert configs["all"][0] == gan_config("all", "standard")         # seed 0 is the notebook's run
    assert [c["seed"] for c in study_config("quick")["all"]] == [0, 1]   # quick: the two an interval needs
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        gan_config("all", "standard", seed=-1)


def test_caption_encoder_gives_sentence_and_word_features():
    text = _text_encoder()
    sentence, words, mask = text(["a big red circle on the left", "a small blue square"])
    assert sentence.shape == (2, 16) and torch.allclose(sentence.norm(dim=1), torch.full((2,), 4.0))
    assert words.shape == (2, 16, 32) and mask.shape == (2, 16)
    assert mask.sum(1).tolist() == [9, 6]                    # the words plus <bos> and <eos>
    assert not any(p.requires_grad for p in text.clip.parameters())


def test_gan_training_resumes_after_an_interruption(tmp_path):
    text = _text_encoder()
    config = _tiny_config()
    image_encoder = text.clip.visual
    torch.manual_seed(1)
    model = build_gan(config, text)
    checkpoint = tmp_path / "gan.partial.pt"

    def interrupt(generator, step):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="interrupted at step 4"):
        train_gan(model, config, text, image_encoder, checkpoint, preview=interrupt, preview_every=1)
    assert checkpoint.exists()
    torch.manual_seed(1)
    fresh = build_gan(config, text)
    history = train_gan(fresh, config, text, image_encoder, checkpoint)
    assert history["steps"] == 6 and len(history["d_losses"]) == len(history["g_losses"]) == 6
    assert set(history["parts"][-1]) == {"d_hinge", "d_sentence", "d_word", "g_adversarial", "g_sentence",
                                         "g_word", "g_image", "g_encoder"}
    assert all(torch.isfinite(torch.tensor(history["g_losses"])))
    # ... and the resumed pair is the pair trained in one go, bit for bit: weights, generator's EMA,
    # both optimisers' moments, captions and noise all continue where they stopped.
    torch.manual_seed(1)
    whole = build_gan(config, text)
    train_gan(whole, config, text, image_encoder)
    for (name, a), b in zip(whole.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name


def _discriminator_trained_on_real_pairs():
    """A tiny pair whose D has taken 300 steps on one batch of 8 real scenes, each with its own
    (random, well separated) sentence and word vectors."""
    text = _text_encoder()
    torch.manual_seed(0)
    model = build_gan(_tiny_config(), text)
    real = to_model_range(shapes.render(shapes.make_scenes(8, "train", seed=0)))
    g = torch.Generator().manual_seed(0)
    sentence, words = torch.randn(8, 16, generator=g) * 4, torch.randn(8, 5, 32, generator=g)
    mask = torch.ones(8, 5, dtype=torch.bool)
    optimizer = torch.optim.Adam(model.discriminator.parameters(), 2e-3)
    for _ in range(300):
        loss, _ = discriminator_loss(model.discriminator, real, torch.zeros_like(real), sentence, words, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.discriminator.eval().requires_grad_(False)
    return model, real, sentence, words, mask


def test_the_discriminator_learns_which_caption_belongs_to_which_image():
    """An overfit test of the contrastive heads: D's image–sentence and region–word losses on its
    batch end far below chance (log 8)."""
    model, real, sentence, words, mask = _discriminator_trained_on_real_pairs()
    with torch.no_grad():
        _, embedding, regions = model.discriminator(real, sentence)
    assert xmc_losses.image_sentence_loss(embedding, sentence) < 0.3 * math.log(8)
    assert xmc_losses.region_word_loss(regions, words, mask) < 0.6 * math.log(8)


def test_the_generator_learns_from_the_discriminators_contrastive_head():
    """An overfit test of the generator: against that D, frozen, G steps on the image–sentence
    loss make each generated image pick out its own sentence in D's embedding."""
    model, real, sentence, words, mask = _discriminator_trained_on_real_pairs()
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(model.generator.parameters(), 2e-3)
    losses = []
    for _ in range(150):
        _, embedding, _ = model.discriminator(model.generator(z, sentence, words, mask), sentence)
        loss = xmc_losses.image_sentence_loss(embedding, sentence)      # G's term, without the adversarial one
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-10:]) < 0.4 * losses[0]


class _EchoDiscriminator(torch.nn.Module):
    """A stand-in whose contrastive embedding of image i is the sentence it is given, shifted by
    ``shift`` places in the batch: with shift 0 every image picks its own caption."""

    def __init__(self, shift=0):
        super().__init__()
        self.shift, self.anchor = shift, torch.nn.Parameter(torch.zeros(1))

    def forward(self, images, sentence):
        return None, sentence.roll(self.shift, 0), None


def test_contrastive_accuracy_counts_images_that_pick_their_own_caption_in_whole_batches():
    captions = [f"caption {i}" for i in range(10)]
    text = lambda chunk: (torch.eye(10)[[int(c.split()[1]) for c in chunk]], None, None)   # noqa: E731
    images = torch.zeros(10, 3, 32, 32)
    assert contrastive_accuracy(_EchoDiscriminator(0), text, captions, images, batch_size=4) == 1.0
    assert contrastive_accuracy(_EchoDiscriminator(1), text, captions, images, batch_size=4) == 0.0
    with pytest.raises(ValueError, match="one image per caption"):
        contrastive_accuracy(_EchoDiscriminator(0), text, captions, images[:9], batch_size=4)


def test_stability_counts_collapsed_seeds_and_compares_the_spread_of_fd():
    rows = {"baseline": [{"fd": v} for v in (0.1, 0.3, 0.9)], "all": [{"fd": v} for v in (0.1, 0.2, 0.3)],
            "word": [{"fd": 0.2}]}
    found = stability(rows, blank_fd=0.5)
    assert set(found["runs"]) == {"baseline", "all"}          # one seed has no spread
    assert found["runs"]["baseline"]["collapsed"] == 1 and found["runs"]["all"]["collapsed"] == 0
    assert found["runs"]["baseline"]["fd_sd"] == pytest.approx(0.4163, abs=1e-4)
    assert (found["runs"]["baseline"]["fd_lowest"], found["runs"]["baseline"]["fd_highest"]) == (0.1, 0.9)
    ratio = found["baseline_over_all_fd_variance"]            # 0.1733 / 0.01; F(2, 2) quantiles are 1/39 and 39
    assert ratio["value"] == pytest.approx(17.3333, abs=1e-3)
    assert ratio["ci_low"] == pytest.approx(17.3333 / 39, abs=1e-3)
    assert ratio["ci_high"] == pytest.approx(17.3333 * 39, abs=0.1)
