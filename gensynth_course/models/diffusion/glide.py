"""GLIDE's text-conditional diffusion model (Nichol et al. 2021, section 2.3), in miniature.

A transformer reads the caption; its final token state (the ``[EOS]`` read-out) is projected and
added to the UNet's timestep embedding, and every token state becomes an extra key and value in
the UNet's attention (:class:`~gensynth_course.models.diffusion.unet.Attention` with ``context_dim``). The text
encoder is trained with the UNet from scratch, as in GLIDE, not taken from a CLIP.

For classifier-free guidance the caption is replaced by the *empty* caption (``<bos> <eos>``) with
a fixed probability during training (GLIDE: 20 %), so that one network learns ε(x_t | c) and
ε(x_t | ∅) together.
"""

from __future__ import annotations

import torch
from torch import nn

from gensynth_course.data.tokenizer import BOS, EOS, PAD, SPECIALS
from gensynth_course.models.contrastive.clip import TextTransformer
from gensynth_course.models.diffusion.unet import UNet

PAD_ID, BOS_ID, EOS_ID = (SPECIALS.index(s) for s in (PAD, BOS, EOS))


def drop_captions(ids: torch.Tensor, p_uncond: float, bos_id: int, eos_id: int, pad_id: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each caption (a row of token ids) by the empty caption ``<bos> <eos>`` with
    probability ``p_uncond``."""
    empty = torch.full_like(ids[0], pad_id)
    empty[0], empty[1] = bos_id, eos_id
    drop = (torch.rand(len(ids), generator=generator) < p_uncond).to(ids.device)
    return torch.where(drop[:, None], empty, ids)


class TextConditionalUNet(nn.Module):
    """ε_θ(x_t, t, caption[, cond]): a causal text transformer and a UNet with ``context_dim`` set
    to its width (``unet_kwargs`` go to :class:`~gensynth_course.models.diffusion.unet.UNet`)."""

    def __init__(self, vocab_size: int, context_length: int = 16, text_width: int = 64, text_layers: int = 2,
                 text_heads: int = 4, **unet_kwargs):
        super().__init__()
        self.text = TextTransformer(vocab_size, context_length, text_width, text_layers, text_heads,
                                    causal=True, pool="eos")
        self.unet = UNet(context_dim=text_width, **unet_kwargs)

    @staticmethod
    def null_condition(ids: torch.Tensor) -> torch.Tensor:
        """The empty caption ``<bos> <eos>`` in place of every caption (for classifier-free guidance)."""
        return drop_captions(ids, 1.0, BOS_ID, EOS_ID, PAD_ID)

    def forward(self, x: torch.Tensor, t: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        mask = ids != 0 if mask is None else mask
        tokens = self.text.tokens(ids, mask)
        return self.unet(x, t, cond=cond, text=self.text.pooled(tokens, mask), tokens=tokens, token_mask=mask)
