"""Pieces that several model families share: the pre-norm transformer block every transformer of
the course is made of (Vaswani et al. 2017, with the layer norm before each sub-layer as in GPT-2 and
CLIP), a convolutional residual block, and the Shapes world's attribute heads.

``causal=True`` lets position i attend to positions ≤ i only (the code prior of chapter 02, CLIP's
text encoder); ``mask`` (B, N), True on real tokens, keeps padding out of every attention.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gensynth_course.data import shapes


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float = 0.0, causal: bool = True):
        super().__init__()
        self.heads, self.dropout, self.causal = heads, dropout, causal
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn_mask = None
        if mask is not None:                                     # (B, 1, 1, N): which keys may be read
            attn_mask = mask[:, None, None, :]
            if self.causal:
                attn_mask = attn_mask & torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=self.causal and mask is None,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, causal: bool = True):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), SelfAttention(dim, heads, dropout, causal)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


def group_norm_8(channels: int) -> nn.GroupNorm:
    """GroupNorm with 8 groups (VQGAN's and CLIP's convolutional blocks)."""
    return nn.GroupNorm(8, channels)


class ConvResBlock(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, twice, plus the input (the residual block of VQGAN's autoencoder and
    CLIP's image tower; the diffusion UNet's own block also reads the time step)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(group_norm_8(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                  group_norm_8(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


# One classification head per attribute of the Shapes world (the attribute evaluator, the audio head).
HEAD_SIZES = tuple(len(shapes.ATTRIBUTE_VALUES[a]) for a in shapes.ATTRIBUTES)


def attribute_loss(logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Sum of the per-attribute cross-entropies of ``logits`` (one tensor per attribute of
    ``shapes.ATTRIBUTES``) against ``labels`` (N, 7); slot-1 labels of one-object scenes are ignored."""
    return sum(F.cross_entropy(attribute_logits, labels[:, k], ignore_index=shapes.IGNORE)
               for k, attribute_logits in enumerate(logits))
