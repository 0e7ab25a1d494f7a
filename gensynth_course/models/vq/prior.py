"""A GPT-style prior over code grids (Esser et al. 2021, section 3.2).

A VQ autoencoder turns an image into a grid of code indices; read in raster order (left to right,
top to bottom) the grid is a sentence of h·w "words", and a causal transformer models it as

    p(s) = Π_i p(s_i | c, s_<i)                                   (eq. 8 with a condition c)

where c is one extra token in front ("decoder-only" conditioning, section 3.3): a class token for
the ten Fashion-MNIST classes, or the start token ``UNCONDITIONAL`` when there is no condition.
Training replaces the class token by the start token for a share of the sequences, so that one
network is both the unconditional and the class-conditional prior.

:func:`sample_sliding_window` generates a code grid larger than the training window (section 3.4):
each new code is predicted from the window around it, with the new position inside that window.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gensynth_course.models.layers import Block
from gensynth_course.progress import progress_bar


class CodePrior(nn.Module):
    """Causal transformer over ``length`` codes with one condition token in front.

    ``forward(cond, codes)`` takes the condition (B,) and the codes (B, n ≤ length) and returns the
    logits (B, n, K) of p(s_i | c, s_<i) for i = 1..n: position i sees the condition and s_<i only.
    """

    def __init__(self, num_codes: int, length: int = 49, n_classes: int = 10, dim: int = 128,
                 layers: int = 4, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        self.num_codes, self.length, self.n_classes = num_codes, length, n_classes
        self.cond_embedding = nn.Embedding(n_classes + 1, dim)   # the last one is the start token
        self.code_embedding = nn.Embedding(num_codes, dim)
        self.position = nn.Parameter(torch.zeros(length, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, dropout) for _ in range(layers)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_codes, bias=False)
        self.apply(self._init)
        nn.init.normal_(self.position, std=0.02)

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    @property
    def unconditional(self) -> int:
        """The start token used when there is no class."""
        return self.n_classes

    def forward(self, cond: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        # input: [c, s_1, …, s_{n−1}] → predicts [s_1, …, s_n]
        x = torch.cat([self.cond_embedding(cond)[:, None], self.code_embedding(codes[:, :-1])], 1)
        x = x + self.position[: x.shape[1]]
        return self.head(self.ln(self.blocks(x)))

    def loss(self, cond: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per code, in nats: −(1/n) Σ_i log p(s_i | c, s_<i)."""
        logits = self(cond, codes)
        return F.cross_entropy(logits.reshape(-1, self.num_codes), codes.reshape(-1))

    @torch.no_grad()
    def bits_per_code(self, cond: torch.Tensor, codes: torch.Tensor, batch_size: int = 500) -> float:
        """Held-out negative log-likelihood in bits per code (log2 K is a uniform guess)."""
        self.eval()
        total = sum(self.loss(cond[i:i + batch_size], codes[i:i + batch_size]).item() * len(codes[i:i + batch_size])
                    for i in range(0, len(codes), batch_size))
        return total / len(codes) / math.log(2)

    def next_code(self, logits: torch.Tensor, temperature: float, top_k: int | None,
                  generator: torch.Generator | None) -> torch.Tensor:
        """Sample from softmax(logits / T), keeping only the ``top_k`` most likely codes."""
        logits = logits / max(temperature, 1e-6)
        if top_k is not None and top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(F.softmax(logits, -1), 1, generator=generator)[:, 0]

    @torch.no_grad()
    def generate(self, cond: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
        """Sample code sequences (B, length) one position at a time, for conditions ``cond`` (B,)."""
        self.eval()
        codes = torch.zeros(len(cond), 0, dtype=torch.long)
        for _ in progress_bar(range(self.length), desc="sampling codes", disable=not progress, leave=False):
            padded = torch.cat([codes, codes.new_zeros(len(cond), 1)], 1)  # the last input is never read
            logits = self(cond, padded)[:, -1]
            codes = torch.cat([codes, self.next_code(logits, temperature, top_k, generator)[:, None]], 1)
        return codes


@torch.no_grad()
def sample_sliding_window(prior: CodePrior, cond: torch.Tensor, height: int, width: int, window: int = 7,
                          temperature: float = 1.0, top_k: int | None = None,
                          generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
    """A code grid (B, height, width) larger than the prior's ``window × window`` training grid.

    For position (i, j) the window's top-left corner is (i − w/2, j − w/2) clamped to the canvas, so
    the new code sees the already generated codes above it and to its left, as in training; the
    causal mask makes the codes after it in the window irrelevant, so the whole window can be fed in
    and only the logits at (i, j) read out.
    """
    prior.eval()
    b = len(cond)
    grid = torch.zeros(b, height, width, dtype=torch.long)
    positions = [(i, j) for i in range(height) for j in range(width)]
    for i, j in progress_bar(positions, desc="sliding-window sampling", disable=not progress):
        top = min(max(i - window // 2, 0), height - window)
        left = min(max(j - window // 2, 0), width - window)
        crop = grid[:, top:top + window, left:left + window].reshape(b, -1)
        logits = prior(cond, crop)[:, (i - top) * window + (j - left)]
        grid[:, i, j] = prior.next_code(logits, temperature, top_k, generator)
    return grid
