"""XMC-GAN's networks: shapes, attentional self-modulation that reads real words only, and the
discriminator's three outputs."""

import pytest
import torch

from gensynth_course.models.gan import xmc_losses
from gensynth_course.models.gan.xmc_gan import (Discriminator, Generator, SelfModulation, discriminator_loss,
                                                generator_loss)


def _inputs(seed=0, batch=4, words=6):
    g = torch.Generator().manual_seed(seed)
    z, sentence = torch.randn(batch, 64, generator=g), torch.randn(batch, 64, generator=g)
    word_states = torch.randn(batch, words, 64, generator=g)
    mask = torch.ones(batch, words, dtype=torch.bool)
    mask[:, 4:] = False
    return z, sentence, word_states, mask


def test_generator_makes_32_pixel_images_and_reads_only_real_words():
    torch.manual_seed(0)
    generator = Generator().eval()
    z, sentence, words, mask = _inputs()
    with torch.no_grad():
        images = generator(z, sentence, words, mask)
        assert images.shape == (4, 3, 32, 32) and images.abs().max() <= 1
        padded = words.clone()
        padded[:, 4:] = torch.randn(4, 2, 64) * 10                        # padding may hold anything
        assert torch.allclose(generator(z, sentence, padded, mask), images, atol=1e-6)
        changed = words.clone()
        changed[:, 1] = torch.randn(4, 64)                                 # a real word is read
        assert not torch.allclose(generator(z, sentence, changed, mask), images, atol=1e-4)


def test_plain_self_modulation_ignores_the_words():
    torch.manual_seed(0)
    generator = Generator(attentional=False).eval()
    assert not any(".key" in name for name, _ in generator.named_parameters())
    z, sentence, words, mask = _inputs()
    with torch.no_grad():
        assert torch.allclose(generator(z, sentence, words, mask), generator(z, sentence, words * 0, mask))


def test_each_regions_word_context_is_a_convex_combination_of_the_words():
    torch.manual_seed(0)
    layer = SelfModulation(8, cond_dim=5, word_dim=6).eval()
    h, cond = torch.randn(2, 8, 4, 4), torch.randn(2, 5)
    words, mask = torch.randn(2, 3, 6), torch.ones(2, 3, dtype=torch.bool)
    context = layer.word_context(h, words, mask)
    assert context.shape == (2, 16, 6)
    assert layer(h, cond, words, mask).shape == h.shape
    weights = torch.linalg.lstsq(words[0].T, context[0].T).solution
    assert torch.allclose(weights.sum(0), torch.ones(16), atol=1e-4) and (weights > -1e-4).all()


def test_attentional_modulation_equals_its_formula_with_every_regions_context():
    # forward() splits γ_j = W [cond; c_j] + b into a per-image part and Σ_i α_ji (W_word e_wi);
    # the result must be the paper's formula computed region by region.
    torch.manual_seed(0)
    layer = SelfModulation(8, cond_dim=5, word_dim=6).eval()
    h, cond = torch.randn(2, 8, 4, 4), torch.randn(2, 5)
    words, mask = torch.randn(2, 3, 6), torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    context = layer.word_context(h, words, mask)                                      # (B, 16, 6)
    per_region = torch.cat([cond[:, None].expand(2, 16, 5), context], -1)
    gamma = layer.gamma(per_region).transpose(1, 2).reshape(2, 8, 4, 4)
    beta = layer.beta(per_region).transpose(1, 2).reshape(2, 8, 4, 4)
    assert torch.allclose(layer(h, cond, words, mask), (1 + gamma) * layer.norm(h) + beta, atol=1e-5)
    # and the attention is the cosine of each region's feature with each projected word, sharpened by ρ₀
    keys = layer.key(words)
    cos = torch.nn.functional.cosine_similarity(keys[:, :, None, :], h.flatten(2).transpose(1, 2)[:, None], dim=-1)
    expected = (layer.rho0 * cos).masked_fill(~mask[:, :, None], float("-inf")).softmax(1)
    assert torch.allclose(layer.word_attention(h, words, mask), expected, atol=1e-5)


def test_discriminator_outputs_logit_embedding_and_regions():
    torch.manual_seed(0)
    discriminator = Discriminator()
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    _, sentence, _, _ = _inputs()
    logit, embedding, regions = discriminator(images, sentence)
    assert logit.shape == (4,) and embedding.shape == (4, 64) and regions.shape == (4, 8 * 8, 64)
    other, _, _ = discriminator(images, sentence.roll(1, 0))                  # the projection term reads e_s
    assert not torch.allclose(logit, other)


def test_discriminator_contrastive_heads_learn_from_real_images_only():
    torch.manual_seed(0)
    discriminator, generator = Discriminator(), Generator()
    discriminator.eval()              # freezes spectral norm's power iteration, so both calls see one D
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    z, sentence, words, mask = _inputs()

    def head_gradients(fake):
        discriminator.zero_grad()
        loss, _ = discriminator_loss(discriminator, real, fake, sentence, words, mask)
        loss.backward()
        return discriminator.contrastive.weight.grad.clone(), discriminator.adversarial.weight_orig.grad.clone()

    fake_a = generator(z, sentence, words, mask)
    contrastive_a, adversarial_a = head_gradients(fake_a)
    contrastive_b, adversarial_b = head_gradients(torch.rand(4, 3, 32, 32) * 2 - 1)
    assert torch.equal(contrastive_a, contrastive_b)            # the generated images change nothing here …
    assert not torch.allclose(adversarial_a, adversarial_b)      # … but they do reach the adversarial head
    assert all(p.grad is None for p in generator.parameters())   # and nothing flows back into G


def _generator_step_inputs():
    """A fresh pair, a small image encoder, real images and the generator's inputs."""
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4, 4), torch.nn.Flatten(), torch.nn.Linear(8 * 64, 16))
    return Discriminator(), Generator(), encoder, torch.rand(4, 3, 32, 32) * 2 - 1, _inputs()


def test_generator_loss_reaches_the_generator_through_every_term():
    discriminator, generator, encoder, real, (z, sentence, words, mask) = _generator_step_inputs()
    loss, parts = generator_loss(discriminator, real, generator(z, sentence, words, mask), sentence, words, mask, encoder)
    assert set(parts) == {"adversarial", "sentence", "word", "image", "encoder"}
    loss.backward()
    assert generator.out.weight.grad.abs().sum() > 0
    _, parts = generator_loss(discriminator, real, generator(z, sentence, words, mask), sentence, words, mask,
                              sentence_weight=0, word_weight=0, image_weight=0)
    assert set(parts) == {"adversarial"}                        # the baseline of the ablation


def test_a_deeper_contrastive_head_is_an_mlp_with_the_same_outputs():
    torch.manual_seed(0)
    shallow, deep = (Discriminator(channels=(8, 16, 16), head_depth=d) for d in (1, 2))
    linears = [[m for m in d.contrastive.modules() if isinstance(m, torch.nn.Linear)] for d in (shallow, deep)]
    assert [len(x) for x in linears] == [1, 2]
    extra = sum(p.numel() for p in deep.parameters()) - sum(p.numel() for p in shallow.parameters())
    assert extra == 16 * 16 + 16                                 # one hidden layer of the feature width
    _, sentence, _, _ = _inputs()
    outputs = [d(torch.rand(4, 3, 32, 32), sentence) for d in (shallow, deep)]
    assert [tuple(o.shape) for o in outputs[0]] == [tuple(o.shape) for o in outputs[1]] == [(4,), (4, 64), (4, 64, 64)]
    for wrong in (0, 1.5, True):
        with pytest.raises(ValueError, match="head_depth must be a positive integer"):
            Discriminator(head_depth=wrong)


def test_the_perceptual_alternative_replaces_only_the_encoder_term():
    discriminator, generator, encoder, real, (z, sentence, words, mask) = _generator_step_inputs()
    fake = generator(z, sentence, words, mask)
    discriminator.eval()                 # spectral norm's power iteration must not move between the two calls
    _, contrastive = generator_loss(discriminator, real, fake, sentence, words, mask, encoder)
    _, perceptual = generator_loss(discriminator, real, fake, sentence, words, mask, encoder, encoder_loss="perceptual")
    with torch.no_grad():
        expected = ((encoder(fake) - encoder(real)) ** 2).mean().item()
    assert perceptual["encoder"] == pytest.approx(expected, rel=1e-5)
    assert perceptual["encoder"] != pytest.approx(contrastive["encoder"])
    assert {k: v for k, v in perceptual.items() if k != "encoder"} == pytest.approx(
        {k: v for k, v in contrastive.items() if k != "encoder"})
    with pytest.raises(ValueError, match="encoder_loss must be one of"):
        generator_loss(discriminator, real, fake, sentence, words, mask, encoder, encoder_loss="vgg")


def test_the_perceptual_loss_is_the_mean_squared_feature_distance_and_pulls_fakes_to_their_real_image():
    real, fake = torch.zeros(4, 3), torch.full((4, 3), 2.0, requires_grad=True)
    loss = xmc_losses.perceptual_loss(real, fake)
    assert loss.item() == pytest.approx(4.0)                     # (2 − 0)² in every entry
    loss.backward()
    assert torch.allclose(fake.grad, torch.full((4, 3), 2 * 2.0 / 12))   # d/dx of mean (x − r)² = 2(x − r)/N
    assert xmc_losses.perceptual_loss(real, real).item() == 0.0
