"""XMC-GAN's contrastive losses against their formulas on small hand-made inputs."""

import math

import torch
from torch.nn import functional as F

from gensynth_course.models.gan import xmc_losses
from gensynth_course.models.gan.xmc_losses import (image_image_loss, image_sentence_loss, region_word_loss,
                                                   sentence_scores, word_region_scores)


def _cos(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def test_word_region_score_follows_its_formula():
    regions = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])           # one image, three regions
    words = torch.tensor([[[1.0, 0.2], [0.3, 1.0], [5.0, 5.0]]])             # one sentence, two words + padding
    mask = torch.tensor([[True, True, False]])
    rho1, rho2, tau = 4.0, 5.0, 0.1
    terms = []
    for h in range(2):                                                       # the real words only
        weights = torch.tensor([math.exp(rho1 * _cos(words[0, h], r)) for r in regions[0]])
        weights = weights / weights.sum()
        context = (weights[:, None] * regions[0]).sum(0)
        terms.append(math.exp(rho2 * _cos(words[0, h], context)))
    expected = math.log(sum(terms)) / rho2 / tau
    got = word_region_scores(regions, words, mask, rho1, rho2, tau)
    assert got.shape == (1, 1)
    assert abs(float(got) - expected) < 1e-4


def test_large_rho2_approaches_the_best_aligned_word():
    torch.manual_seed(0)
    regions, words = torch.randn(3, 5, 8), torch.randn(4, 6, 8)
    mask = torch.ones(4, 6, dtype=torch.bool)
    soft = word_region_scores(regions, words, mask, rho2=5.0)
    hard = word_region_scores(regions, words, mask, rho2=1e4)
    # the exact maximum: recompute each word's match and take the best one
    r, w = F.normalize(regions, dim=-1), F.normalize(words, dim=-1)
    attention = (4.0 * torch.einsum("isd,jtd->ijts", r, w)).softmax(-1)
    context = torch.einsum("ijts,isd->ijtd", attention, regions)
    best = F.cosine_similarity(context, w.unsqueeze(0), dim=-1).amax(-1) / 0.1
    assert torch.allclose(hard, best, atol=1e-2)
    assert (soft >= best - 1e-5).all()                      # a log-sum-exp never falls below its maximum


def test_padding_words_are_masked_out():
    torch.manual_seed(1)
    regions, words = torch.randn(2, 4, 8), torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    before = word_region_scores(regions, words, mask)
    changed = words.clone()
    changed[0, 3:] = torch.randn(2, 8) * 10
    changed[1, 4] = torch.randn(8) * 10
    assert torch.allclose(word_region_scores(regions, changed, mask), before, atol=1e-6)


def test_scores_are_symmetric_and_losses_are_smallest_on_aligned_pairs():
    torch.manual_seed(2)
    a, b = torch.randn(6, 16), torch.randn(6, 16)
    assert torch.allclose(sentence_scores(a, b), sentence_scores(b, a).T)
    aligned = image_sentence_loss(a, a)
    shuffled = image_sentence_loss(a, a.roll(1, 0))
    unrelated = image_sentence_loss(a, b)
    assert aligned < unrelated < shuffled
    assert abs(float(image_image_loss(a, a)) - float(aligned)) < 1e-6
    # the loss is a cross-entropy over the batch: at most log N for equal scores, never negative
    assert abs(float(image_sentence_loss(torch.ones(6, 4), torch.ones(6, 4))) - math.log(6)) < 1e-5
    regions = a.view(6, 2, 8)
    words = regions.clone()
    mask = torch.ones(6, 2, dtype=torch.bool)
    assert region_word_loss(regions, words, mask) < region_word_loss(regions, words.roll(1, 0), mask)


def test_word_attention_matches_the_score_on_matched_pairs():
    g = torch.Generator().manual_seed(3)
    regions, words = torch.randn(2, 9, 5, generator=g), torch.randn(2, 4, 5, generator=g)
    alpha = xmc_losses.word_attention(regions, words, rho1=4.0)
    assert alpha.shape == (2, 4, 9) and torch.allclose(alpha.sum(-1), torch.ones(2, 4))
    # the aligned region features built from α give the diagonal of the all-pairs score
    mask = torch.ones(2, 4, dtype=torch.bool)
    context = alpha @ regions
    match = F.cosine_similarity(context, words, dim=-1)
    expected = torch.logsumexp(5.0 * match, -1) / 5.0 / 0.1
    scores = xmc_losses.word_region_scores(regions, words, mask, rho1=4.0, rho2=5.0, tau=0.1)
    assert torch.allclose(scores.diagonal(), expected, atol=1e-5)
