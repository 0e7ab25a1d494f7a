"""CLIP: contrastive language–image pre-training (Radford et al. 2021), at Shapes-world size.

Two encoders map an image and a caption into the same d-dimensional space; training makes the
cosine similarity of matching pairs high and of every other pair in the batch low. For a batch of
N pairs with L2-normalised embeddings I_i, T_j and a learned temperature τ:

    logits_ij = exp(t) · ⟨I_i, T_j⟩,   t = log(1/τ), initialised to log(1/0.07), exp(t) ≤ 100
    L = ½ [ CE(logits, diag) + CE(logitsᵀ, diag) ]           (the paper's Figure 3 pseudocode)

which is the symmetric InfoNCE loss (van den Oord et al. 2018; "NT-Xent" in SimCLR). Minimising
it maximises a lower bound on the mutual information between image and text:
I(X; Y) ≥ log N − L_NCE.

The paper trains a ResNet with attention pooling or a ViT for images, and a causal transformer read
out at its ``[EOS]`` token for text (section 2.4). Both families are here, in miniature:

* :class:`ConvImageEncoder` -- strided convolutions and residual blocks, then CLIP's attention
  pooling (a query made from the mean feature attends over all positions);
* :class:`ViTImageEncoder` -- 4 × 4 patches, a class token and a bidirectional transformer;
* :class:`TextTransformer` -- causal with the ``[EOS]`` read-out, or bidirectional with a masked
  mean (the course's evaluator CLIP uses the second, so that it differs in architecture too).

``encode_image`` / ``encode_text`` return unnormalised embeddings, as in open_clip
(``normalize=True`` to get unit vectors).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gensynth_course.models.layers import Block, ConvResBlock

INIT_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100)


def contrastive_loss(logits_per_image: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: the mean of the image→text and text→image cross-entropies, where the
    i-th image and the i-th caption are the positive pair and the rest of the batch the negatives."""
    target = torch.arange(len(logits_per_image), device=logits_per_image.device)
    return (F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_image.T, target)) / 2


class AttentionPool2d(nn.Module):
    """CLIP's replacement for global average pooling (Radford et al. 2021, section 2.4): the mean
    of the feature map, plus a learned position embedding for every location, is the query of one
    multi-head attention over all locations. Unlike a plain mean it can keep *where* things are."""

    def __init__(self, positions: int, dim: int, heads: int, out_dim: int):
        super().__init__()
        self.position = nn.Parameter(torch.randn(positions + 1, dim) / dim ** 0.5)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.out = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).transpose(1, 2)                                # (B, HW, C)
        x = torch.cat([x.mean(1, keepdim=True), x], 1) + self.position  # (B, 1 + HW, C)
        pooled, _ = self.attn(x[:, :1], x, x, need_weights=False)
        return self.out(pooled[:, 0])


class ConvImageEncoder(nn.Module):
    """(B, 3, 32, 32) → (B, width): a stride-2 convolution and residual blocks per stage, then
    attention pooling over the last feature map (32 × 32 → 16 × 16 → 8 × 8 with two stages)."""

    def __init__(self, channels: tuple[int, ...] = (32, 64), blocks: int = 1, width: int = 128,
                 heads: int = 4, image_size: int = 32):
        super().__init__()
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1)] + [ConvResBlock(c) for _ in range(blocks)]
            c_in = c
        layers += [nn.GroupNorm(8, c_in), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)
        self.pool = AttentionPool2d(side * side, c_in, heads, width)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x))


class ViTImageEncoder(nn.Module):
    """(B, 3, 32, 32) → (B, width): non-overlapping ``patch × patch`` patches, linearly embedded,
    a class token in front, learned positions, bidirectional transformer blocks; the class token's
    final state is the image (Dosovitskiy et al. 2021)."""

    def __init__(self, patch: int = 4, width: int = 96, layers: int = 3, heads: int = 4, image_size: int = 32):
        super().__init__()
        self.embed = nn.Conv2d(3, width, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.position = nn.Parameter(torch.randn((image_size // patch) ** 2 + 1, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads, causal=False) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)                    # (B, N, width)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1) + self.position
        for block in self.blocks:
            x = block(x)
        return self.ln(x[:, 0])


class TextTransformer(nn.Module):
    """Token ids (B, L) and mask (B, L) → (B, width).

    ``causal=True, pool="eos"``: CLIP's text encoder; position i reads tokens ≤ i, and the state at
    the ``[EOS]`` token (the last real one) has read the whole caption. ``causal=False,
    pool="mean"``: every token reads every real token, and the caption is the mean of their states.
    """

    def __init__(self, vocab_size: int, context_length: int = 16, width: int = 128, layers: int = 3,
                 heads: int = 4, causal: bool = True, pool: str = "eos"):
        super().__init__()
        if pool not in ("eos", "mean"):
            raise ValueError(f"pool must be 'eos' or 'mean', not {pool!r}")
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.position = nn.Parameter(torch.randn(context_length, width) * 0.01)
        self.blocks = nn.ModuleList(Block(width, heads, causal=causal) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.causal, self.pool, self.width = causal, pool, width

    def tokens(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The final state of every token (B, L, width); GLIDE's UNet attends to all of them."""
        x = self.token_embedding(ids) + self.position[: ids.shape[1]]
        # A causal encoder never lets a real token read the padding after it, so it needs no mask.
        attn_mask = None if self.causal else mask
        for block in self.blocks:
            x = block(x, attn_mask)
        return self.ln(x)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pooled(self.tokens(ids, mask), mask)

    def pooled(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One vector per caption from its token states: the ``[EOS]`` state or the masked mean."""
        if self.pool == "eos":
            return x[torch.arange(len(x)), mask.sum(1) - 1]
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1)


class CLIP(nn.Module):
    """An image encoder and a text encoder, each followed by a linear projection (no bias) into
    the shared ``embed_dim`` space, and the learned logit scale t = log(1/τ)."""

    def __init__(self, image_encoder: nn.Module, text_encoder: TextTransformer, embed_dim: int = 64):
        super().__init__()
        self.visual, self.text = image_encoder, text_encoder
        self.image_projection = nn.Linear(image_encoder.width, embed_dim, bias=False)
        self.text_projection = nn.Linear(text_encoder.width, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Images in [−1, 1], (B, 3, H, W) → embeddings (B, embed_dim)."""
        z = self.image_projection(self.visual(images))
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor | None = None, normalize: bool = False) -> torch.Tensor:
        """Token ids (B, L) from :class:`~gensynth_course.data.tokenizer.Tokenizer` → (B, embed_dim);
        the mask defaults to every non-padding token (id 0 is ``<pad>``)."""
        mask = ids != 0 if mask is None else mask
        z = self.text_projection(self.text(ids, mask))
        return F.normalize(z, dim=-1) if normalize else z

    def scale(self) -> torch.Tensor:
        """exp(t), clamped at 100 as in the paper ("to prevent scaling the logits by more than 100")."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def forward(self, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """logits_per_image (B_images, B_texts) = exp(t) · cosine similarities."""
        image = self.encode_image(images, normalize=True)
        text = self.encode_text(ids, mask, normalize=True)
        return self.scale() * image @ text.T


def make_clip(vocab_size: int, context_length: int = 16, image: str = "conv", embed_dim: int = 64,
              channels: tuple[int, ...] = (32, 64), blocks: int = 1, patch: int = 4, image_width: int = 128,
              image_layers: int = 3, text_width: int = 128, text_layers: int = 3, heads: int = 4,
              causal: bool = True, pool: str = "eos") -> CLIP:
    """A CLIP from a flat config: ``image="conv"`` (attention-pooled ConvNet) or ``"vit"``."""
    if image == "conv":
        visual = ConvImageEncoder(tuple(channels), blocks, image_width, heads)
    elif image == "vit":
        visual = ViTImageEncoder(patch, image_width, image_layers, heads)
    else:
        raise ValueError(f"image must be 'conv' or 'vit', not {image!r}")
    text = TextTransformer(vocab_size, context_length, text_width, text_layers, heads, causal, pool)
    return CLIP(visual, text, embed_dim)
