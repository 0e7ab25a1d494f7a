"""A noise-aware CLIP and CLIP guidance (GLIDE, Nichol et al. 2021, section 2.4).

CLIP guidance replaces the classifier of classifier guidance (chapter 03) by a CLIP: the reverse
process mean is pushed along the gradient of the image–caption similarity,

    μ̂_θ(x_t | c) = μ_θ(x_t | c) + s · Σ_θ(x_t | c) · ∇_{x_t} (f(x_t, t) · g(c)),

with f the image encoder and g the text encoder (eq. 2 of the paper; with DDIM, the same shift of ε
as classifier guidance's Algorithm 2, applied after x̂_0 is clipped). The gradient is taken at every step, where x_t is
mostly noise, so GLIDE trains its CLIP on *noised* images x_t ~ q(x_t | x_0) with the step t as an
input ("noised CLIP"): a CLIP trained on clean images only has no useful gradient there, and its
gradient tends to make adversarial patterns rather than the object asked for.

Our noise-aware image encoder is the downsampling half of the course UNet with its time embedding
(as for chapter 03's noise-aware classifier), read out by CLIP's attention pooling, which keeps
*where* things are (captions say "on the left"). The text encoder and the loss are chapter 04's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gensynth_course.models.contrastive.clip import CLIP, AttentionPool2d, TextTransformer
from gensynth_course.models.diffusion.guidance import ClassifierGuidance
from gensynth_course.models.diffusion.noisy_classifier import NoisyTrunk
from gensynth_course.models.diffusion.unet import group_norm


class NoisyImageEncoder(NoisyTrunk):
    """(x_t, t) → (B, width) for (3, size, size) images: the noise-aware classifier's trunk (the
    UNet's downsampling half with the time embedding), then attention pooling."""

    def __init__(self, channels: tuple[int, ...] = (32, 64), blocks: int = 1, width: int = 128, heads: int = 4,
                 patch: int = 2, image_size: int = 32, in_channels: int = 3):
        super().__init__(in_channels, channels, blocks, patch)
        c = self.out_channels
        self.out = nn.Sequential(group_norm(c), nn.SiLU())
        side = image_size // patch // 2 ** (len(channels) - 1)
        self.pool = AttentionPool2d(side * side, c, heads, width)
        self.width = width

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h, _ = self.trunk(x, t)
        return self.pool(self.out(h))


class NoisyCLIP(CLIP):
    """A CLIP whose image encoder also reads the diffusion step: ``encode_image(x_t, t)``."""

    def __init__(self, image_encoder: NoisyImageEncoder, text_encoder: TextTransformer, embed_dim: int = 64):
        super().__init__(image_encoder, text_encoder, embed_dim)

    def encode_image(self, images: torch.Tensor, t: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.image_projection(self.visual(images, t))
        return F.normalize(z, dim=-1) if normalize else z

    def forward(self, images: torch.Tensor, t: torch.Tensor, ids: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """logits_per_image (B, B) between noised images at steps t and captions."""
        image = self.encode_image(images, t, normalize=True)
        text = self.encode_text(ids, mask, normalize=True)
        return self.scale() * image @ text.T

    def similarity(self, images: torch.Tensor, t: torch.Tensor, ids: torch.Tensor,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
        """f(x_t, t) · g(c) for each image and *its own* caption, shape (B,): the logit CLIP gives
        the matching pair (temperature-scaled cosine similarity, as GLIDE's released code)."""
        image = self.encode_image(images, t, normalize=True)
        text = self.encode_text(ids, mask, normalize=True)
        return self.scale() * (image * text).sum(-1)


class CLIPGuidance(ClassifierGuidance):
    """A text-conditional ``model`` steered by a :class:`NoisyCLIP`: classifier guidance (chapter
    03, applied by the sampler's step after the clip) with log p_φ(y | x_t) replaced by the
    similarity f(x_t, t) · g(c). ``model(x, t, ids)`` is conditioned on the same caption, as in
    GLIDE's CLIP-guided sampler."""

    def __init__(self, model: nn.Module, clip: NoisyCLIP, scale: float):
        super().__init__(model, clip, scale)

    def score(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What the guidance climbs: f(x_t, t) · g(c) for the caption ids ``y``."""
        return self.classifier.similarity(x, t, y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The caption-conditional ε(x_t, c) for caption token ids ``y`` (B, L)."""
        return self.model(x, t, y)
