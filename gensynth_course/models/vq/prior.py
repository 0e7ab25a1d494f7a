"""A GPT-style prior over code grids (Esser et al. 2021, section 3.2).

A VQ autoencoder turns an image into a grid of code indices; read in raster order (left to right,
top to bottom) the grid is a sentence of h·w "words", and a causal transformer models it as

    p(s) = Π_i p(s_i | c, s_<i)                                   (eq. 8 with a condition c)

where c is one extra token in front ("decoder-only" conditioning, section 3.3): a class token for
the ten Fashion-MNIST classes, or the start token ``UNCONDITIONAL`` when there is no condition.
Training replaces the class token by the start token for a share of the sequences, so that one
network is both the unconditional and the class-conditional prior.

An image-shaped condition (section 3.3: a segmentation map, a depth map, an edge image) is turned
into a grid of codes r by an autoencoder with its own codebook, and its codes go in front of the
image codes, each with its own embedding: the sequence is [c, r_1, …, r_P, s_1, …, s_n] and

    p(s | c, r) = Π_i p(s_i | c, r, s_<i),

so every image code sees the whole constraint, and only the image codes are predicted.

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

    With ``constraint_codes`` = K' > 0, every sequence also carries a constraint of
    ``constraint_length`` = P codes from another codebook of K' codes (an image-shaped condition,
    encoded), between the condition and the image codes: ``forward(cond, codes, constraint)``.
    Without one the prior builds exactly the layers above, in the same order.
    """

    def __init__(self, num_codes: int, length: int = 49, n_classes: int = 10, dim: int = 128,
                 layers: int = 4, heads: int = 4, dropout: float = 0.0, constraint_codes: int = 0,
                 constraint_length: int = 0):
        super().__init__()
        if (constraint_codes > 0) != (constraint_length > 0) or min(constraint_codes, constraint_length) < 0:
            raise ValueError(f"a constraint needs both its number of codes and its length, got constraint_codes="
                             f"{constraint_codes} and constraint_length={constraint_length}; give both (> 0) or "
                             "neither.")
        self.num_codes, self.length, self.n_classes = num_codes, length, n_classes
        self.constraint_codes, self.constraint_length = constraint_codes, constraint_length
        self.cond_embedding = nn.Embedding(n_classes + 1, dim)   # the last one is the start token
        self.code_embedding = nn.Embedding(num_codes, dim)
        if constraint_codes:
            self.constraint_embedding = nn.Embedding(constraint_codes, dim)
        self.position = nn.Parameter(torch.zeros(constraint_length + length, dim))
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

    def _constraint_tokens(self, constraint: torch.Tensor | None, batch: int) -> list[torch.Tensor]:
        """The embedded constraint (B, P, dim) as a one-item list, or none for a prior without one."""
        if not self.constraint_length:
            if constraint is not None:
                raise ValueError("this prior was built without a constraint; build it with constraint_codes and "
                                 "constraint_length, or leave constraint out.")
            return []
        if constraint is None:
            raise ValueError(f"this prior is conditioned on a constraint of {self.constraint_length} codes; pass "
                             "constraint=, the (B, P) codes of the constraint image.")
        if constraint.shape != (batch, self.constraint_length) or constraint.dtype != torch.long:
            raise ValueError(f"the constraint must be (B, P) = ({batch}, {self.constraint_length}) integer codes, "
                             f"got {tuple(constraint.shape)} of {constraint.dtype}; flatten the code grid in "
                             "raster order.")
        if len(constraint) and (constraint.min() < 0 or constraint.max() >= self.constraint_codes):
            raise ValueError(f"constraint codes must lie in 0..{self.constraint_codes - 1}, the constraint "
                             f"codebook, got {int(constraint.min())}..{int(constraint.max())}.")
        return [self.constraint_embedding(constraint)]

    def forward(self, cond: torch.Tensor, codes: torch.Tensor, constraint: torch.Tensor | None = None) -> torch.Tensor:
        # input: [c, r_1, …, r_P, s_1, …, s_{n−1}] → predicts [s_1, …, s_n] (P = 0 without a constraint)
        x = torch.cat([self.cond_embedding(cond)[:, None], *self._constraint_tokens(constraint, len(cond)),
                       self.code_embedding(codes[:, :-1])], 1)
        x = x + self.position[: x.shape[1]]
        return self.head(self.ln(self.blocks(x)[:, self.constraint_length:]))

    def loss(self, cond: torch.Tensor, codes: torch.Tensor, constraint: torch.Tensor | None = None) -> torch.Tensor:
        """Mean negative log-likelihood per code, in nats: −(1/n) Σ_i log p(s_i | c, r, s_<i)."""
        logits = self(cond, codes, constraint)
        return F.cross_entropy(logits.reshape(-1, self.num_codes), codes.reshape(-1))

    @torch.no_grad()
    def bits_per_code(self, cond: torch.Tensor, codes: torch.Tensor, constraint: torch.Tensor | None = None,
                      batch_size: int = 500) -> float:
        """Held-out negative log-likelihood in bits per code (log2 K is a uniform guess)."""
        self.eval()
        total = 0.0
        for i in range(0, len(codes), batch_size):
            part = None if constraint is None else constraint[i:i + batch_size]
            part_codes = codes[i:i + batch_size]
            total += self.loss(cond[i:i + batch_size], part_codes, part).item() * len(part_codes)
        return total / len(codes) / math.log(2)

    @torch.no_grad()
    def code_accuracy(self, cond: torch.Tensor, codes: torch.Tensor, constraint: torch.Tensor | None = None,
                      batch_size: int = 500) -> torch.Tensor:
        """Teacher-forced accuracy, one value per sequence: the share of positions i where the most
        likely code given the true c, r and s_<i is the true s_i (a diagnostic beside
        :meth:`bits_per_code`: how often the prior would continue a real sequence correctly)."""
        self.eval()
        out = []
        for i in range(0, len(codes), batch_size):
            part = None if constraint is None else constraint[i:i + batch_size]
            logits = self(cond[i:i + batch_size], codes[i:i + batch_size], part)
            out.append((logits.argmax(-1) == codes[i:i + batch_size]).float().mean(1).cpu())
        return torch.cat(out)

    def next_code(self, logits: torch.Tensor, temperature: float, top_k: int | None,
                  generator: torch.Generator | None) -> torch.Tensor:
        """Sample from softmax(logits / T), keeping only the ``top_k`` most likely codes; temperature 0
        is greedy decoding, the most likely code."""
        if temperature == 0:
            return logits.argmax(-1)
        logits = logits / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(F.softmax(logits, -1), 1, generator=generator)[:, 0]

    @torch.no_grad()
    def generate(self, cond: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, progress: bool = False,
                 constraint: torch.Tensor | None = None) -> torch.Tensor:
        """Sample code sequences (B, length) one position at a time, for conditions ``cond`` (B,)
        (and, for a prior with a constraint, the constraint codes (B, P))."""
        self.eval()
        codes = torch.zeros(len(cond), 0, dtype=torch.long, device=cond.device)
        for _ in progress_bar(range(self.length), desc="sampling codes", disable=not progress, leave=False):
            padded = torch.cat([codes, codes.new_zeros(len(cond), 1)], 1)  # the last input is never read
            logits = self(cond, padded, constraint)[:, -1]
            codes = torch.cat([codes, self.next_code(logits, temperature, top_k, generator)[:, None]], 1)
        return codes


@torch.no_grad()
def sample_sliding_window(prior: CodePrior, cond: torch.Tensor, height: int, width: int, window: int = 7,
                          temperature: float = 1.0, top_k: int | None = None,
                          generator: torch.Generator | None = None, progress: bool = True,
                          constraint: torch.Tensor | None = None) -> torch.Tensor:
    """A code grid (B, height, width) larger than the prior's ``window × window`` training grid.

    For position (i, j) the window's top-left corner is (i − w/2, j − w/2) clamped to the canvas, so
    the new code sees the already generated codes above it and to its left, as in training; the
    causal mask makes the codes after it in the window irrelevant, so the whole window can be fed in
    and only the logits at (i, j) read out. A constraint is a code grid (B, height, width) of the
    whole canvas; each step sees the same window of it, which tells the new code what belongs
    there even far from the codes already drawn (section 3.4).
    """
    if not 0 < window <= min(height, width):
        raise ValueError(f"the window ({window}) must fit the canvas ({height}×{width}); use a canvas at least "
                         "as large as the prior's training grid.")
    if constraint is not None and constraint.shape != (len(cond), height, width):
        raise ValueError(f"the constraint must be a code grid of the whole canvas, ({len(cond)}, {height}, "
                         f"{width}), got {tuple(constraint.shape)}.")
    prior.eval()
    b = len(cond)
    grid = torch.zeros(b, height, width, dtype=torch.long, device=cond.device)
    positions = [(i, j) for i in range(height) for j in range(width)]
    for i, j in progress_bar(positions, desc="sliding-window sampling", disable=not progress):
        top = min(max(i - window // 2, 0), height - window)
        left = min(max(j - window // 2, 0), width - window)
        crop = grid[:, top:top + window, left:left + window].reshape(b, -1)
        seen = None if constraint is None else constraint[:, top:top + window, left:left + window].reshape(b, -1)
        logits = prior(cond, crop, seen)[:, (i - top) * window + (j - left)]
        grid[:, i, j] = prior.next_code(logits, temperature, top_k, generator)
    return grid
