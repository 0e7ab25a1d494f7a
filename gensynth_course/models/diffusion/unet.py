"""The course's UNet for ε-prediction, designed for CPU speed.

Ho et al. (2020, appendix B) use a PixelCNN++-style UNet: residual blocks with GroupNorm, the
sinusoidal Transformer time embedding added inside every block, self-attention at low resolution
and skip connections between matching resolutions. We keep exactly those ingredients but size the
network for 28×28 images on a laptop CPU: ``patch=2`` folds each 2×2 block of pixels into channels,
so chapter 01's configuration (channels 24 and 48) convolves at 14×14 and 7×7, with attention only
in the middle at 7×7 where it costs little, and few channels.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """The Transformer's position encoding (Vaswani et al. 2017, section 3.5) of integer steps t:
    [sin(t·ω_0), cos(t·ω_0), sin(t·ω_1), cos(t·ω_1), …] with ω_j = 10000^(−2j/dim). Shape (N, dim).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) * 2 / dim)
    angles = t.float().reshape(-1, 1) * freqs.reshape(1, -1)
    emb = torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(len(t), 2 * half)
    return F.pad(emb, (0, dim - 2 * half))


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups of at least 4 channels each."""
    return nn.GroupNorm(min(8, channels // 4), channels)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, plus the projected time embedding, → GroupNorm → SiLU →
    dropout → 3×3 conv, and a residual connection (1×1 conv when the width changes)."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2, self.conv2 = group_norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the H×W positions, with a residual connection.

    With ``context_dim`` > 0 it also reads a token sequence, as in GLIDE (Nichol et al. 2021,
    section 2.3): each token state is projected to a key and a value of every head, and those are
    concatenated with the image's own keys and values, so every position attends over the image
    and the caption at once. ``context_mask`` (B, L) keeps padding tokens out.
    """

    def __init__(self, channels: int, heads: int = 4, context_dim: int = 0):
        super().__init__()
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.context_kv = nn.Linear(context_dim, 2 * channels) if context_dim else None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = (z.transpose(-1, -2) for z in
                   self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1))
        mask = None
        if context is not None:
            if self.context_kv is None:
                raise ValueError("this attention layer has no context projection (context_dim = 0)")
            ck, cv = self.context_kv(context).reshape(n, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            k, v = torch.cat([k, ck], 2), torch.cat([v, cv], 2)               # (n, heads, HW + L, c/heads)
            if context_mask is not None:
                own = torch.ones(n, h * w, dtype=torch.bool, device=x.device)
                mask = torch.cat([own, context_mask.bool()], 1)[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return x + self.out(y.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """ε_θ(x_t, t), or ε_θ(x_t, t, y) with ``num_classes`` > 0, for (C, 28, 28) images.

    ``channels`` gives the width at 28, 14 and 7 pixels; ``blocks`` residual blocks per level on
    the way down (one more on the way up, to take the skips); attention in the middle, at the
    lowest resolution, and after every residual block of the levels listed in ``attention_levels``
    (indices into ``channels``), as the attention at 32, 16 and 8 pixels of Dhariwal & Nichol
    (2021, section 3) and GLIDE.

    With ``num_classes`` = K the network is class-conditional: a learned embedding of the label y
    is added to the time embedding, as in Ho & Salimans (2022), and the extra label K (the
    ``null_label``) means "no label", for classifier-free guidance.

    With ``context_dim`` = D it is text-conditional as in GLIDE (Nichol et al. 2021, section 2.3):
    a pooled caption embedding (B, D) is projected and added to the time embedding, and the caption's
    token states (B, L, D) become extra keys and values of every attention layer, the middle one and
    those of ``attention_levels``.

    With ``cond_channels`` = C it also takes an image-shaped condition (B, C, H, W), concatenated
    with x_t before the first convolution: the low-resolution image of an upsampler, or the masked
    image and the mask of an inpainting model (GLIDE, sections 3.3 and 4).

    With ``learn_sigma`` it also predicts its reverse-process variance, as GLIDE's and ADM's networks
    do: twice the image channels out, ε̂ and then v of Σ_θ = exp(v log β_t + (1 − v) log β̃_t)
    (Nichol & Dhariwal 2021, eq. 15; see :func:`~gensynth_course.models.diffusion.schedulers.split_output`).
    """

    def __init__(self, in_channels: int = 1, channels: tuple[int, ...] = (32, 64, 96), blocks: int = 1,
                 attention_heads: int = 4, dropout: float = 0.0, patch: int = 1, num_classes: int = 0,
                 context_dim: int = 0, cond_channels: int = 0, attention_levels: tuple[int, ...] = (),
                 learn_sigma: bool = False):
        super().__init__()
        if not set(attention_levels) <= set(range(len(channels))):
            raise ValueError(f"attention_levels {tuple(attention_levels)} must be indices of channels "
                             f"(0 to {len(channels) - 1}), one per level that should attend.")
        c0 = channels[0]
        t_dim = 4 * c0
        self.t_dim0 = c0
        self.time_mlp = nn.Sequential(nn.Linear(c0, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.num_classes = num_classes
        self.label_embedding = nn.Embedding(num_classes + 1, t_dim) if num_classes else None
        self.text_projection = nn.Linear(context_dim, t_dim) if context_dim else None
        self.cond_channels = cond_channels
        # patch > 1 folds each patch×patch block of pixels into channels (PixelUnshuffle) before the
        # first convolution and unfolds it after the last: the whole network runs at 1/patch the size.
        self.stem = nn.Sequential(nn.PixelUnshuffle(patch),
                                  nn.Conv2d((in_channels + cond_channels) * patch**2, c0, 3, padding=1))

        self.down = nn.ModuleList()
        skips, c = [c0], c0
        for level, width in enumerate(channels):
            for _ in range(blocks):
                self.down.append(ResBlock(c, width, t_dim, dropout))
                if level in attention_levels:
                    self.down.append(Attention(width, attention_heads, context_dim))
                c = width
                skips.append(c)
            if level < len(channels) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)

        self.mid1 = ResBlock(c, c, t_dim, dropout)
        self.mid_attn = Attention(c, attention_heads, context_dim)
        self.mid2 = ResBlock(c, c, t_dim, dropout)

        self.up = nn.ModuleList()
        for level, width in reversed(list(enumerate(channels))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(c + skips.pop(), width, t_dim, dropout))
                if level in attention_levels:
                    self.up.append(Attention(width, attention_heads, context_dim))
                c = width
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(c, c, 3, padding=1)))
        self.out = nn.Sequential(group_norm(c), nn.SiLU(), nn.Conv2d(c, in_channels * (2 if learn_sigma else 1) * patch**2, 3, padding=1),
                                 nn.PixelShuffle(patch))
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    @property
    def null_label(self) -> int:
        """The label that stands for "no label" (only for a class-conditional network)."""
        if not self.num_classes:
            raise ValueError("this UNet is unconditional: it has no labels, so no null label")
        return self.num_classes

    def null_condition(self, y: torch.Tensor) -> torch.Tensor:
        """The null label in place of every label of ``y`` (for classifier-free guidance)."""
        return torch.full_like(y, self.null_label)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None, *,
                cond: torch.Tensor | None = None, text: torch.Tensor | None = None,
                tokens: torch.Tensor | None = None, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂ for x_t at steps t; ``y``: class labels; ``text`` (B, D) and ``tokens`` (B, L, D) with
        ``token_mask`` (B, L): a caption's pooled and per-token states; ``cond``: image condition.
        ``t`` holds whole steps t ≥ 0 (an integer tensor), one per image or one for all."""
        check_steps(t, len(x))
        temb = self.time_mlp(sinusoidal_embedding(t.reshape(-1), self.t_dim0))
        temb = self.add_label(temb, y, len(x))             # chapter 03 (none for an unconditional UNet)
        temb = self.add_caption(temb, text)                # chapter 05
        h = self.stem(self.add_image_condition(x, cond))   # chapter 05: upsampling and inpainting
        hs = [h]
        for layer in self.down:
            if isinstance(layer, Attention):               # attends after its residual block: one skip for both
                hs[-1] = h = layer(h, tokens, token_mask)
            else:
                h = layer(h, temb) if isinstance(layer, ResBlock) else layer(h)
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb), tokens, token_mask), temb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, hs.pop()], dim=1), temb)
            elif isinstance(layer, Attention):
                h = layer(h, tokens, token_mask)
            else:
                h = layer(h)
        return self.out(h)

    def add_label(self, temb: torch.Tensor, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """A class-conditional UNet adds a learned embedding of the label to the time embedding
        (Ho & Salimans 2022); no label (``y=None``) means the null label, "no label"."""
        if self.label_embedding is None:
            if y is not None:
                raise ValueError("this UNet is unconditional (num_classes = 0) and cannot take labels y")
            return temb
        if y is None:
            y = torch.full((batch,), self.null_label, device=temb.device, dtype=torch.long)
        return temb + self.label_embedding(y.reshape(-1))

    def add_caption(self, temb: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        """GLIDE (section 2.3) adds a projection of the pooled caption embedding to the time embedding;
        the caption's tokens reach the attention layers separately, as extra keys and values."""
        if text is None:
            return temb
        if self.text_projection is None:
            raise ValueError("this UNet takes no text (context_dim = 0)")
        return temb + self.text_projection(text)

    def add_image_condition(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """An image-shaped condition (a low-resolution image, or a masked image and its mask) joins
        x_t as extra input channels (GLIDE, sections 3.3 and 4)."""
        if not self.cond_channels:
            if cond is not None:
                raise ValueError("this UNet takes no condition image (cond_channels = 0)")
            return x
        if cond is None or cond.shape[1] != self.cond_channels:
            raise ValueError(f"this UNet needs a condition image with {self.cond_channels} channels")
        return torch.cat([x, cond], 1)


def check_steps(t: torch.Tensor, batch: int) -> None:
    """Time steps must be whole numbers t ≥ 0 in an integer tensor, one per image or one for all."""
    if not torch.is_tensor(t) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"t is {t.dtype if torch.is_tensor(t) else type(t).__name__}, but time steps are whole "
                         "numbers; pass an integer tensor, e.g. torch.full((n,), 500) or t.long().")
    if t.numel() not in (1, batch):
        raise ValueError(f"t has {t.numel()} time steps for {batch} images; give one per image, or one for all.")
    if (t < 0).any():
        raise ValueError(f"t has a negative time step ({int(t.min())}); steps run from 0 to T - 1.")


@torch.no_grad()
def add_condition_channels(model: UNet, extra: int) -> UNet:
    """Give a trained UNet ``extra`` more condition channels whose input weights start at zero, so
    that before fine-tuning it computes exactly what it did (GLIDE's inpainting model, section 3.3:
    "four additional input channels", the masked RGB image and the mask)."""
    unshuffle, conv = model.stem
    per_channel = unshuffle.downscale_factor ** 2
    wider = nn.Conv2d(conv.in_channels + extra * per_channel, conv.out_channels, conv.kernel_size,
                      padding=conv.padding).to(conv.weight.device)
    wider.weight.zero_()
    wider.weight[:, :conv.in_channels] = conv.weight
    wider.bias.copy_(conv.bias)
    model.stem[1] = wider
    model.cond_channels += extra
    return model
