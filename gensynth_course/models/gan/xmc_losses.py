"""XMC-GAN's contrastive losses (Zhang et al. 2021, "Cross-Modal Contrastive Learning for
Text-to-Image Generation", section 4.1).

Three mutual-information terms, each maximised through an InfoNCE bound (chapter 04): between an
image and its sentence, between the regions of an image and the words of its sentence, and between
a real image and the image generated from the same sentence. Each is a classification game over the
batch: query i must pick its own partner among the N candidates,

    L = −1/N Σ_i log exp S(q_i, k_i) / Σ_j exp S(q_i, k_j),

with a score S that differs per term:

* image–sentence:  S_sent(x, s) = cos(f_img(x), f_sent(s)) / τ;
* image–image:     S_img(x, x̃) = cos(f'_img(x), f'_img(x̃)) / τ;
* region–word:     each word w_h attends over the image regions r_j with weights
  α_hj = softmax_j(ρ₁ cos(w_h, r_j)); c_h = Σ_j α_hj r_j is its aligned region feature, and
  S_word(x, s) = (1/ρ₂) log Σ_h exp(ρ₂ cos(w_h, c_h)) / τ, a soft maximum over the words that
  tends to max_h cos(w_h, c_h) / τ as ρ₂ → ∞. Padding words take no part.

The paper's Table 6 sets the image–image term on the encoder's features against the perceptual
loss used widely before it (Johnson et al. 2016), which only pulls each generated image towards its
real one, ‖f(x̃) − f(x)‖², and never pushes it away from the other images of the batch.

As in the paper's formulas, each loss reads in one direction (image → sentences, real → generated,
image → sentences by words); the scores themselves are symmetric in their arguments.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

TAU = 0.1     # temperature of every score
RHO_1 = 4.0   # attention sharpening of words over regions (a default of ours, to be varied in chapter 06)
RHO_2 = 5.0   # aggregation over words: larger is closer to the best-aligned word alone (likewise)


def info_nce(scores: torch.Tensor) -> torch.Tensor:
    """−mean_i log softmax_j(scores_ij) at j = i: query i's partner is candidate i."""
    return F.cross_entropy(scores, torch.arange(len(scores), device=scores.device))


def sentence_scores(image: torch.Tensor, sentence: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """S_sent for every image (B, D) against every sentence (B, D): (B, B) cosines divided by τ."""
    return F.normalize(image, dim=-1) @ F.normalize(sentence, dim=-1).T / tau


def image_sentence_loss(image: torch.Tensor, sentence: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """L_sent: each image picks its own sentence among the batch's."""
    return info_nce(sentence_scores(image, sentence, tau))


def image_image_loss(real: torch.Tensor, fake: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """L_img: each real image's features (B, D) pick the generated image of the same sentence."""
    return info_nce(sentence_scores(real, fake, tau))


def perceptual_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The perceptual alternative to L_img: ‖f(x̃) − f(x)‖² between each generated image's features
    (B, D) and its real image's, averaged over the batch and the D features (Johnson et al. 2016)."""
    return F.mse_loss(fake, real)


def word_region_scores(regions: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor,
                       rho1: float = RHO_1, rho2: float = RHO_2, tau: float = TAU) -> torch.Tensor:
    """S_word of every image against every sentence: (B_images, B_sentences).

    ``regions`` (B, R, D): region features of each image; ``words`` (B, T, D) and ``word_mask``
    (B, T): word features of each sentence and which of them are real words."""
    r = F.normalize(regions, dim=-1)                                   # (Bi, R, D)
    w = F.normalize(words, dim=-1)                                     # (Bs, T, D)
    cos = torch.einsum("isd,jtd->ijts", r, w)                          # (Bi, Bs, T, R): word t of s_j vs region of x_i
    attention = (rho1 * cos).softmax(-1)
    context = torch.einsum("ijts,isd->ijtd", attention, regions)       # aligned region feature c_t
    match = torch.einsum("ijtd,jtd->ijt", context, w) / context.norm(dim=-1).clamp_min(1e-8)   # cos(c_t, w_t)
    match = (rho2 * match).masked_fill(~word_mask.bool().unsqueeze(0), float("-inf"))
    return torch.logsumexp(match, -1) / rho2 / tau


def word_attention(regions: torch.Tensor, words: torch.Tensor, rho1: float = RHO_1) -> torch.Tensor:
    """α_hj for each image and its own sentence: how word h of the sentence spreads its attention
    over the image's regions j, (B, T, R); each row sums to 1 (chapter 06 draws these maps)."""
    cos = F.normalize(words, dim=-1) @ F.normalize(regions, dim=-1).transpose(1, 2)
    return (rho1 * cos).softmax(-1)


def region_word_loss(regions: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor,
                     rho1: float = RHO_1, rho2: float = RHO_2, tau: float = TAU) -> torch.Tensor:
    """L_word: each image, through its regions, picks its own sentence by its words."""
    return info_nce(word_region_scores(regions, words, word_mask, rho1, rho2, tau))
