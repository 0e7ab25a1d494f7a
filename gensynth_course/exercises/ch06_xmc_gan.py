"""Chapter 06 exercises: each ``check_*`` runs a learner's function on random inputs and compares
it with the package (``xmc_losses.py``, ``xmc_gan.py``). It prints what is wrong and a hint, and
returns True or False, so a notebook cell never fails with a traceback.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from gensynth_course.exercises.checking import compare
from gensynth_course.models.gan.xmc_losses import image_sentence_loss, word_region_scores


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def check_image_sentence_loss(fn) -> bool:
    """``fn(image, sentence, tau) -> scalar``: L_sent, each image (row) picking its own sentence
    among the batch's by cosine similarity over τ."""
    image, sentence = _randn(6, 8, seed=0), _randn(6, 8, seed=1)
    return compare("image_sentence_loss", fn, (image.clone(), sentence.clone(), 0.1),
                   image_sentence_loss(image, sentence, 0.1),
                   "normalise both to unit length, scores = image @ sentence.T / tau, then the cross-entropy "
                   "of each row with the diagonal as the right answer (F.cross_entropy with torch.arange).", atol=1e-5)


def check_word_region_score(fn) -> bool:
    """``fn(regions (R, D), words (T, D), rho1, rho2, tau) -> scalar``: S_word of one image with
    one sentence (every word real)."""
    regions, words = _randn(9, 5, seed=2), _randn(4, 5, seed=3)
    expected = word_region_scores(regions[None], words[None], torch.ones(1, 4, dtype=torch.bool), 4.0, 5.0, 0.1)[0, 0]
    return compare("word_region_score", fn, (regions.clone(), words.clone(), 4.0, 5.0, 0.1), expected,
                   "α = softmax over regions of ρ₁·cos(word, region) (one row per word); c = α @ regions; "
                   "then log Σ_h exp(ρ₂·cos(w_h, c_h)) / ρ₂ / τ.", atol=1e-4)


def check_hinge_losses(fn) -> bool:
    """``fn(real_logits, fake_logits) -> (d_loss, g_loss)``: the hinge loss of the discriminator
    and the generator's adversarial loss."""
    real, fake = _randn(16, seed=4) * 2, _randn(16, seed=5) * 2
    expected = torch.stack([F.relu(1 - real).mean() + F.relu(1 + fake).mean(), -fake.mean()])
    return compare("hinge_losses", lambda r, f: torch.stack(list(fn(r, f))), (real.clone(), fake.clone()), expected,
                   "D: mean(relu(1 − D(real))) + mean(relu(1 + D(fake))); G: −mean(D(fake)). "
                   "The hinge stops pushing a logit once it is beyond ±1.", atol=1e-5)


def check_self_modulation(fn) -> bool:
    """``fn(h (B, C, H, W), gamma (B, C), beta (B, C)) -> (B, C, H, W)``: batch normalisation
    without its own affine parameters (batch statistics, ε = 1e-5), then (1 + γ)·x + β per image."""
    h, gamma, beta = _randn(4, 3, 5, 5, seed=6) * 3 + 1, _randn(4, 3, seed=7), _randn(4, 3, seed=8)
    normed = F.batch_norm(h, None, None, training=True, eps=1e-5)
    expected = (1 + gamma)[..., None, None] * normed + beta[..., None, None]
    return compare("self_modulation", fn, (h.clone(), gamma.clone(), beta.clone()), expected,
                   "normalise each channel over the batch and both spatial axes (biased variance, ε = 1e-5), "
                   "then scale by 1 + γ and shift by β, broadcast over H and W ([..., None, None]).", atol=1e-4)
