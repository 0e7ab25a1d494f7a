"""A noise-aware classifier p_φ(y | x_t, t): the classifier that classifier guidance differentiates.

Dhariwal & Nichol (2021, section 4) guide a diffusion model with a classifier trained on *noised*
images x_t ~ q(x_t | x_0) at every step t, because the gradient ∇_{x_t} log p_φ(y | x_t) is needed
at every step of sampling, when x_t is still mostly noise. Their classifier is the downsampling
half of the diffusion UNet, with the same time embedding, followed by attention pooling. Ours is the
same idea at the size of chapter 01's UNet: the UNet's residual blocks and attention, then global
average pooling and a linear layer to the class logits.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gensynth_course.models.diffusion.unet import Attention, ResBlock, group_norm, sinusoidal_embedding


class NoisyTrunk(nn.Module):
    """The downsampling half of the course UNet with its time embedding: ``patch``×``patch`` pixels
    folded into channels, then ``blocks`` residual blocks at each width of ``channels``, halving the
    resolution between widths. :meth:`trunk` returns the last feature map and the time embedding;
    subclasses add their read-out."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], blocks: int, patch: int):
        super().__init__()
        c0 = channels[0]
        t_dim = 4 * c0
        self.t_dim0 = c0
        self.time_mlp = nn.Sequential(nn.Linear(c0, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.stem = nn.Sequential(nn.PixelUnshuffle(patch), nn.Conv2d(in_channels * patch**2, c0, 3, padding=1))
        self.blocks = nn.ModuleList()
        c = c0
        for level, width in enumerate(channels):
            for _ in range(blocks):
                self.blocks.append(ResBlock(c, width, t_dim))
                c = width
            if level < len(channels) - 1:
                self.blocks.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.out_channels = c

    def trunk(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        temb = self.time_mlp(sinusoidal_embedding(t.reshape(-1), self.t_dim0))
        h = self.stem(x)
        for layer in self.blocks:
            h = layer(h, temb) if isinstance(layer, ResBlock) else layer(h)
        return h, temb


class NoisyClassifier(NoisyTrunk):
    """Logits of p_φ(y | x_t, t) for (C, 28, 28) images at diffusion step t.

    ``channels`` gives the width at each resolution (after folding ``patch``×``patch`` pixels into
    channels, as chapter 01's UNet does), ``blocks`` residual blocks per resolution.
    """

    def __init__(self, in_channels: int = 1, channels: tuple[int, ...] = (32, 64), blocks: int = 1,
                 num_classes: int = 10, patch: int = 2, attention_heads: int = 4):
        super().__init__(in_channels, channels, blocks, patch)
        c = self.out_channels
        self.mid = ResBlock(c, c, 4 * channels[0])
        self.attention = Attention(c, attention_heads)
        self.head = nn.Sequential(group_norm(c), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h, temb = self.trunk(x, t)                          # (N, c, 7, 7) with the defaults
        return self.head(self.attention(self.mid(h, temb)))  # (N, num_classes)

    def log_prob(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log p_φ(y | x_t, t) for each image, shape (N,)."""
        return F.log_softmax(self(x, t), dim=1).gather(1, y.reshape(-1, 1)).squeeze(1)
