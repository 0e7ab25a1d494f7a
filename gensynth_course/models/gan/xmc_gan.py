"""XMC-GAN's generator and discriminator (Zhang et al. 2021, sections 4.2 and 4.3), for 32 × 32 images.

**Generator.** Noise z and the sentence embedding e_s form the global condition. A linear layer
maps it to a 4 × 4 feature map, and upsampling residual blocks double it to 8, 16 and 32 pixels.
Every normalisation is *self-modulated*: batch normalisation without its own affine parameters,
followed by a scale γ and shift β computed from the condition (Chen et al. 2019). From 16 × 16 on
(the scale where regions start to look like objects in a 32 × 32 image) the modulation is
*attentional*: region j attends over the words,

    c_j = Σ_i softmax_i(ρ₀ cos(W_k e_wi, h_j)) e_wi      (W_k e_wi: word i in the feature space of h),

and γ_j, β_j are linear functions of (z, e_s, c_j), so each region is modulated by the words that
concern it.

**Discriminator.** Downsampling residual blocks with spectral normalisation. At 8 × 8 a 1 × 1
convolution gives region features in the word-embedding size (for the region–word loss); one more
block and global sum pooling give the image feature, which feeds an adversarial head (a linear
logit plus the projection term ⟨e_s, V φ(x)⟩, Miyato & Koyama 2018) and a contrastive head (the
image embedding of the image–sentence and image–image losses). The contrastive head is one linear
layer, as in the paper's final model; ``head_depth`` > 1 makes it an MLP, the deeper heads of the
paper's Fig. 5 (which found that they fit the contrastive task better and the adversarial one worse).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from gensynth_course.models.gan import xmc_losses

RHO_0 = 4.0   # sharpening of the generator's word attention (a default of ours)
ENCODER_LOSSES = ("contrastive", "perceptual")    # the image–image term on the encoder's features


class SelfModulation(nn.Module):
    """Batch normalisation whose scale and shift come from the condition: global (one γ, β per
    image) or, with ``word_dim`` > 0, attentional (one γ_j, β_j per region j, from the condition and
    the region's word-context vector c_j). γ is applied as 1 + γ, so a fresh layer is plain BN."""

    def __init__(self, channels: int, cond_dim: int, word_dim: int = 0, rho0: float = RHO_0):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.key = nn.Linear(word_dim, channels, bias=False) if word_dim else None
        self.gamma = nn.Linear(cond_dim + word_dim, channels)
        self.beta = nn.Linear(cond_dim + word_dim, channels)
        self.rho0 = rho0

    def word_attention(self, h: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """softmax_i(ρ₀ cos(k_i, h_j)) of word i for region j: (B, T, H·W), each column summing to 1
        over the real words (padding gets none). k_i = W_k e_wi is word i projected into the
        feature space of h, so the cosine is taken at the feature map's own width."""
        keys = F.normalize(self.key(words), dim=-1)                                       # (B, T, C)
        regions = h.flatten(2)                                                            # (B, C, HW)
        logits = self.rho0 * (keys @ regions) / regions.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return logits.masked_fill(~word_mask.bool()[:, :, None], float("-inf")).softmax(1)

    def word_context(self, h: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """c_j for every region: (B, H·W, word_dim)."""
        return self.word_attention(h, words, word_mask).transpose(1, 2) @ words

    def forward(self, h: torch.Tensor, cond: torch.Tensor, words: torch.Tensor | None = None,
                word_mask: torch.Tensor | None = None) -> torch.Tensor:
        n, c, height, width = h.shape
        x = self.norm(h)
        if self.key is None:
            return (1 + self.gamma(cond))[..., None, None] * x + self.beta(cond)[..., None, None]
        # γ_j = W [cond; c_j] + b splits into a per-image part W_cond·cond + b and a per-region part
        # W_word·c_j = Σ_i α_ji (W_word e_wi): the words are projected once, not once per region.
        cond_dim = cond.shape[1]
        per_image = torch.cat([F.linear(cond, self.gamma.weight[:, :cond_dim], self.gamma.bias),
                               F.linear(cond, self.beta.weight[:, :cond_dim], self.beta.bias)], 1)   # (B, 2C)
        projected = F.linear(words, torch.cat([self.gamma.weight[:, cond_dim:], self.beta.weight[:, cond_dim:]]))
        per_region = projected.transpose(1, 2) @ self.word_attention(h, words, word_mask)             # (B, 2C, HW)
        gamma, beta = (per_region + per_image[..., None]).view(n, 2 * c, height, width).chunk(2, 1)
        return (1 + gamma) * x + beta


class UpBlock(nn.Module):
    """Modulate, ReLU, upsample ×2, conv, modulate, ReLU, conv; plus an upsampled 1 × 1 shortcut."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, word_dim: int = 0):
        super().__init__()
        self.mod1 = SelfModulation(c_in, cond_dim, word_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.mod2 = SelfModulation(c_out, cond_dim, word_dim)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, h, cond, words=None, word_mask=None):
        up = F.interpolate(F.relu(self.mod1(h, cond, words, word_mask)), scale_factor=2, mode="nearest")
        y = self.conv1(up)
        y = self.conv2(F.relu(self.mod2(y, cond, words, word_mask)))
        return y + self.skip(F.interpolate(h, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    """G(z, e_s, e_w) → (B, 3, 32, 32) in [−1, 1]. ``channels`` are the widths at 4, 8, 16 and 32
    pixels; ``attentional=False`` gives plain self-modulation everywhere (the paper's ablation)."""

    def __init__(self, z_dim: int = 64, sentence_dim: int = 64, word_dim: int = 64,
                 channels: tuple[int, ...] = (128, 128, 64, 32), attentional: bool = True):
        super().__init__()
        cond_dim = z_dim + sentence_dim
        self.z_dim, self.c0 = z_dim, channels[0]
        self.fc = nn.Linear(cond_dim, 16 * channels[0])
        self.blocks = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            at_16_or_more = 4 * 2 ** i >= 16          # block i works on a 4·2^i map
            self.blocks.append(UpBlock(c_in, c_out, cond_dim, word_dim if attentional and at_16_or_more else 0))
        self.out_mod = SelfModulation(channels[-1], cond_dim, word_dim if attentional else 0)
        self.out = nn.Conv2d(channels[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor, sentence: torch.Tensor, words: torch.Tensor,
                word_mask: torch.Tensor) -> torch.Tensor:
        cond = torch.cat([z, sentence], 1)
        h = self.fc(cond).view(len(z), self.c0, 4, 4)
        for block in self.blocks:
            h = block(h, cond, words, word_mask)
        return torch.tanh(self.out(F.relu(self.out_mod(h, cond, words, word_mask))))


class DownBlock(nn.Module):
    """Spectrally normalised residual block that halves the resolution (BigGAN's D block)."""

    def __init__(self, c_in: int, c_out: int, first: bool = False):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(c_in, c_out, 1))
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        return h + F.avg_pool2d(self.skip(x), 2)


class Discriminator(nn.Module):
    """D(x, e_s) → (adversarial logit, image embedding, region features (B, 8·8, word_dim)).

    32 × 32 → two blocks to 8 × 8 (region features by a 1 × 1 convolution: 64 regions of 4 × 4
    pixels each), one more block to 4 × 4, ReLU and global sum pooling φ(x);
    logit = w·φ(x) + ⟨e_s, V φ(x)⟩; embedding = a projection of φ(x): one linear layer, or with
    ``head_depth`` = d > 1 an MLP of d linear layers with ReLUs between them (the paper's Fig. 5)."""

    def __init__(self, sentence_dim: int = 64, word_dim: int = 64, embed_dim: int = 64,
                 channels: tuple[int, ...] = (64, 128, 128), head_depth: int = 1):
        super().__init__()
        if not isinstance(head_depth, int) or isinstance(head_depth, bool) or head_depth < 1:
            raise ValueError(f"head_depth must be a positive integer (1: one linear layer), not {head_depth!r}")
        self.block16 = DownBlock(3, channels[0], first=True)
        self.block8 = DownBlock(channels[0], channels[1])
        self.regions = spectral_norm(nn.Conv2d(channels[1], word_dim, 1))
        self.block4 = DownBlock(channels[1], channels[2])
        self.adversarial = spectral_norm(nn.Linear(channels[2], 1))
        self.projection = spectral_norm(nn.Linear(sentence_dim, channels[2], bias=False))
        hidden = [layer for _ in range(head_depth - 1) for layer in (nn.Linear(channels[2], channels[2]), nn.ReLU())]
        last = nn.Linear(channels[2], embed_dim)
        self.contrastive = nn.Sequential(*hidden, last) if hidden else last

    def forward(self, x: torch.Tensor, sentence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h8 = self.block8(self.block16(x))
        regions = self.regions(h8).flatten(2).transpose(1, 2)
        phi = F.relu(self.block4(h8)).sum((2, 3))
        logit = self.adversarial(phi).squeeze(1) + (self.projection(sentence) * phi).sum(1)
        return logit, self.contrastive(phi), regions


def discriminator_loss(discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor, sentence: torch.Tensor,
                       words: torch.Tensor, word_mask: torch.Tensor, sentence_weight: float = 1.0,
                       word_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """The discriminator's step (XMC-GAN, Algorithm 1): the hinge loss on real and generated images,
    plus the image–sentence and region–word contrastive losses on **real** pairs only. Generated
    images reach it only through the adversarial logit (they are detached), so its contrastive
    heads learn from real images alone; the paper explains that early generated images would
    teach them nonsense."""
    real_logit, real_embedding, real_regions = discriminator(real, sentence)
    fake_logit, _, _ = discriminator(fake.detach(), sentence)
    parts = {"hinge": F.relu(1 - real_logit).mean() + F.relu(1 + fake_logit).mean(),
             "sentence": xmc_losses.image_sentence_loss(real_embedding, sentence),
             "word": xmc_losses.region_word_loss(real_regions, words, word_mask)}
    loss = parts["hinge"] + sentence_weight * parts["sentence"] + word_weight * parts["word"]
    return loss, {k: v.item() for k, v in parts.items()}


def generator_loss(discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor, sentence: torch.Tensor,
                   words: torch.Tensor, word_mask: torch.Tensor, image_encoder: nn.Module | None = None,
                   sentence_weight: float = 1.0, word_weight: float = 1.0, image_weight: float = 1.0,
                   encoder_weight: float = 1.0, encoder_loss: str = "contrastive") -> tuple[torch.Tensor, dict]:
    """The generator's step: fool the discriminator (−D(G(z, s))), and make the generated image
    win the contrastive games: against the sentence, region by word, and against the real image of
    the same sentence, in the discriminator's features and, with ``image_encoder``, in a separately
    trained encoder's (the paper's VGG term). With ``encoder_loss="perceptual"`` that last term is
    instead the perceptual loss, the squared distance between the encoder's features of the real and
    the generated image (the alternative of the paper's Table 6). Only the generator's optimiser
    takes this step."""
    if encoder_loss not in ENCODER_LOSSES:
        raise ValueError(f"encoder_loss must be one of {', '.join(ENCODER_LOSSES)}, not {encoder_loss!r}")
    fake_logit, fake_embedding, fake_regions = discriminator(fake, sentence)
    parts = {"adversarial": -fake_logit.mean()}
    loss = parts["adversarial"]
    if sentence_weight:
        parts["sentence"] = xmc_losses.image_sentence_loss(fake_embedding, sentence)
        loss = loss + sentence_weight * parts["sentence"]
    if word_weight:
        parts["word"] = xmc_losses.region_word_loss(fake_regions, words, word_mask)
        loss = loss + word_weight * parts["word"]
    if image_weight:
        _, real_embedding, _ = discriminator(real, sentence)
        parts["image"] = xmc_losses.image_image_loss(real_embedding.detach(), fake_embedding)
        loss = loss + image_weight * parts["image"]
    if encoder_weight and image_encoder is not None:
        with torch.no_grad():
            real_features = image_encoder(real)
        term = xmc_losses.image_image_loss if encoder_loss == "contrastive" else xmc_losses.perceptual_loss
        parts["encoder"] = term(real_features, image_encoder(fake))
        loss = loss + encoder_weight * parts["encoder"]
    return loss, {k: v.item() for k, v in parts.items()}


class XMCGAN(nn.Module):
    """The generator and the discriminator as one module, so that a trained pair is stored and
    loaded together (the discriminator's region features draw chapter 06's attention maps)."""

    def __init__(self, z_dim: int = 64, sentence_dim: int = 64, word_dim: int = 64,
                 g_channels: tuple[int, ...] = (128, 128, 64, 32), d_channels: tuple[int, ...] = (64, 128, 128),
                 attentional: bool = True, head_depth: int = 1):
        super().__init__()
        self.generator = Generator(z_dim, sentence_dim, word_dim, g_channels, attentional)
        self.discriminator = Discriminator(sentence_dim, word_dim, sentence_dim, d_channels, head_depth)
