"""The seed tutorial's UNet, re-implemented as the course's baseline.

The architecture is Brian Pulfer's ``MyUNet`` from his tutorial "Generating images with DDPMs:
a PyTorch implementation" (the course's seed article 001 is a translation of it): three levels
(28 → 14 → 7 → 3 pixels) of three LayerNorm-conv-SiLU-conv-SiLU blocks with 10/20/40 channels,
a frozen sinusoidal time embedding (dimension 100) passed through a two-layer MLP per level and
added channel-wise to each level's input, and concatenation skips. It is written here in our own
code so that chapter 01 can train it side by side with :class:`gensynth_course.models.diffusion.unet.UNet`.
"""

from __future__ import annotations

import torch
from torch import nn


def seed_time_table(n_steps: int, dim: int) -> torch.Tensor:
    """The tutorial's sinusoidal table: column 2i holds sin(t·ω_i), column 2i+1 cos(t·ω_i),
    with ω_i = 10000^(−4i/dim) (its frequencies fall twice as fast as the Transformer's)."""
    t = torch.arange(n_steps, dtype=torch.float32).reshape(-1, 1)
    omega = 1 / 10_000 ** (2 * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(n_steps, dim)
    table[:, 0::2] = torch.sin(t * omega)
    table[:, 1::2] = torch.cos(t * omega[: dim // 2])
    return table


class SeedBlock(nn.Module):
    """LayerNorm over (C, H, W), then two 3×3 convolutions, each followed by SiLU."""

    def __init__(self, shape: tuple[int, int, int], c_in: int, c_out: int, normalize: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(shape) if normalize else nn.Identity()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.conv2(self.act(self.conv1(self.norm(x)))))


def _stage(size: int, channels: list[int], normalize_last: bool = True, normalize_first: bool = True) -> nn.Sequential:
    """Three SeedBlocks at one resolution, channels[0] → channels[1] → channels[2] → channels[3]."""
    return nn.Sequential(*[
        SeedBlock((channels[i], size, size), channels[i], channels[i + 1],
                  normalize=(normalize_last or i < 2) and (normalize_first or i > 0))
        for i in range(3)
    ])


def _time_mlp(dim_in: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim_out), nn.SiLU(), nn.Linear(dim_out, dim_out))


class SeedUNet(nn.Module):
    """Brian Pulfer's MyUNet for 1×28×28 images: ε_θ(x_t, t) with t an integer in [0, T).

    Its first operation is a LayerNorm over the whole (1, 28, 28) input, after the first level's
    time embedding was added: with one channel, that embedding is a constant per image, and the
    LayerNorm removes every image's mean and scale, so ε̂(a·x + c, t) = ε̂(x, t) for any a > 0 and c
    (up to LayerNorm's ε). ``first_norm=False`` drops that one LayerNorm (chapter 01's control)."""

    def __init__(self, n_steps: int = 1000, time_emb_dim: int = 100, first_norm: bool = True):
        super().__init__()
        self.time_embed = nn.Embedding(n_steps, time_emb_dim)
        self.time_embed.weight.data = seed_time_table(n_steps, time_emb_dim)
        self.time_embed.requires_grad_(False)

        self.te1, self.b1 = _time_mlp(time_emb_dim, 1), _stage(28, [1, 10, 10, 10], normalize_first=first_norm)
        self.down1 = nn.Conv2d(10, 10, 4, 2, 1)
        self.te2, self.b2 = _time_mlp(time_emb_dim, 10), _stage(14, [10, 20, 20, 20])
        self.down2 = nn.Conv2d(20, 20, 4, 2, 1)
        self.te3, self.b3 = _time_mlp(time_emb_dim, 20), _stage(7, [20, 40, 40, 40])
        self.down3 = nn.Sequential(nn.Conv2d(40, 40, 2, 1), nn.SiLU(), nn.Conv2d(40, 40, 4, 2, 1))

        self.te_mid, self.b_mid = _time_mlp(time_emb_dim, 40), _stage(3, [40, 20, 20, 40])

        self.up1 = nn.Sequential(nn.ConvTranspose2d(40, 40, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(40, 40, 2, 1))
        self.te4, self.b4 = _time_mlp(time_emb_dim, 80), _stage(7, [80, 40, 20, 20])
        self.up2 = nn.ConvTranspose2d(20, 20, 4, 2, 1)
        self.te5, self.b5 = _time_mlp(time_emb_dim, 40), _stage(14, [40, 20, 10, 10])
        self.up3 = nn.ConvTranspose2d(10, 10, 4, 2, 1)
        self.te_out, self.b_out = _time_mlp(time_emb_dim, 20), _stage(28, [20, 10, 10, 10], normalize_last=False)
        self.conv_out = nn.Conv2d(10, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = self.time_embed(t.reshape(-1).long())                       # (N, 100)
        n = len(x)

        def add(te, h):
            return h + te(t).reshape(n, -1, 1, 1)

        out1 = self.b1(add(self.te1, x))                                # (N, 10, 28, 28)
        out2 = self.b2(add(self.te2, self.down1(out1)))                 # (N, 20, 14, 14)
        out3 = self.b3(add(self.te3, self.down2(out2)))                 # (N, 40, 7, 7)
        out_mid = self.b_mid(add(self.te_mid, self.down3(out3)))        # (N, 40, 3, 3)
        out4 = self.b4(add(self.te4, torch.cat((out3, self.up1(out_mid)), 1)))   # (N, 20, 7, 7)
        out5 = self.b5(add(self.te5, torch.cat((out2, self.up2(out4)), 1)))      # (N, 10, 14, 14)
        out = self.b_out(add(self.te_out, torch.cat((out1, self.up3(out5)), 1)))  # (N, 10, 28, 28)
        return self.conv_out(out)                                       # (N, 1, 28, 28)
