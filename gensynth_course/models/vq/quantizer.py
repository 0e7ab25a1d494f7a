"""Vector quantisation: the bottleneck of VQ-VAE (van den Oord et al. 2017) and VQGAN.

An encoder output z (one D-dimensional vector per latent position) is replaced by its nearest
codebook entry e_k, k = argmin_j ‖z − e_j‖², computed as ‖z‖² + ‖e_j‖² − 2 z·e_j so that the
distances to all K entries are one matrix product. The argmin has no gradient, so the decoder's
gradient is copied straight through to the encoder: z_q = z + sg[e_k − z] (VQ-VAE, section 3.2).

The loss (VQ-VAE, eq. 3, without its reconstruction term) is

    ‖sg[z] − e_k‖²  +  β ‖z − sg[e_k]‖²,      β = 0.25,

the *codebook* term pulls the codes towards the encoder outputs, the *commitment* term (weighted
by β) keeps the encoder close to its codes. (One widely copied implementation multiplies the
codebook term by β instead; ``tests/test_vq.py::test_beta_sits_on_the_commitment_term`` checks which term carries it here.)

Two well-known fixes for codes that are never chosen ("dead codes"):

* EMA codebook (VQ-VAE, appendix A.1): the codes are not learned by gradient but set to the
  running mean of the encoder outputs assigned to them, N_k ← γ N_k + (1 − γ) n_k,
  m_k ← γ m_k + (1 − γ) Σ_{i: k_i = k} z_i, e_k = m_k / N_k; only the commitment term remains.
* Dead-code restart: a code whose running usage falls below a threshold is moved onto a random
  encoder output of the current batch, where it will be used.

Like vector-quantize-pytorch, :class:`VectorQuantizer` returns ``(quantized, indices, loss)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class VectorQuantizer(nn.Module):
    """K codes of dimension D; input (B, D, H, W) → quantized (B, D, H, W), indices (B, H, W), loss."""

    USAGE_DECAY = 0.95  # the running usage forgets in ~20 steps, so dead codes are found quickly

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, ema: bool = False, decay: float = 0.99,
                 restart_dead: bool = False, restart_threshold: float = 0.03, restart_every: int = 50,
                 eps: float = 1e-5):
        super().__init__()
        self.num_codes, self.dim, self.beta = num_codes, dim, beta
        self.ema, self.decay, self.eps = ema, decay, eps
        self.restart_dead, self.restart_threshold, self.restart_every = restart_dead, restart_threshold, restart_every
        codes = torch.empty(num_codes, dim).uniform_(-1 / num_codes, 1 / num_codes)
        if ema:
            self.register_buffer("codebook", codes)
            self.register_buffer("cluster_size", torch.zeros(num_codes))
            self.register_buffer("embed_sum", codes.clone())
        else:
            self.codebook = nn.Parameter(codes)
        # Running share of the batch that picks each code (for restarts) and a step counter.
        self.register_buffer("usage", torch.full((num_codes,), 1.0 / num_codes))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def nearest(self, z_flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of z_flat (N, D): argmin ‖z‖² + ‖e‖² − 2 z·e."""
        e = self.codebook
        distances = z_flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2 * z_flat @ e.T  # (N, K)
        return distances.argmin(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes for an index grid (B, H, W) → (B, D, H, W): what the decoder receives."""
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor):
        # In float32 even under bf16 autocast: the nearest code, the usage counts and the losses
        # need fp32's precision (bf16 keeps 8 bits of mantissa; neighbouring codes differ by less).
        with torch.autocast(z.device.type, enabled=False):
            return self._quantize(z.float())

    def _quantize(self, z: torch.Tensor):
        b, d, h, w = z.shape
        z_flat = z.permute(0, 2, 3, 1).reshape(-1, d)                  # (B·H·W, D)
        indices = self.nearest(z_flat.detach())
        if self.training:
            self._update(z_flat.detach(), indices)
        # F.embedding, not codebook[indices]: its gradient sums in a fixed order on the CPU, where
        # indexing's accumulates across threads and a training run would not repeat bit for bit.
        e = F.embedding(indices, self.codebook)                         # (B·H·W, D)
        commitment = F.mse_loss(z_flat, e.detach())                     # ‖z − sg[e]‖²
        if self.ema:
            loss = self.beta * commitment                               # codes move by EMA, not gradient
        else:
            loss = F.mse_loss(e, z_flat.detach()) + self.beta * commitment   # ‖sg[z] − e‖² + β‖z − sg[e]‖²
        quantized = z_flat + (e - z_flat).detach()                      # straight-through estimator
        quantized = quantized.reshape(b, h, w, d).permute(0, 3, 1, 2)
        return quantized, indices.reshape(b, h, w), loss

    @torch.no_grad()
    def _update(self, z_flat: torch.Tensor, indices: torch.Tensor) -> None:
        one_hot = F.one_hot(indices, self.num_codes).type(z_flat.dtype)    # (N, K)
        counts = one_hot.sum(0)
        self.usage.lerp_(counts / len(indices), 1 - self.USAGE_DECAY)
        self.steps += 1
        if self.ema:
            self.ema_update(z_flat, one_hot)
        if self.restart_dead and int(self.steps) % self.restart_every == 0:
            self.restart(z_flat)

    @torch.no_grad()
    def ema_update(self, z_flat: torch.Tensor, one_hot: torch.Tensor) -> None:
        """N_k ← γN_k + (1−γ)n_k, m_k ← γm_k + (1−γ)Σ z_i, e_k = m_k / N_k (Laplace-smoothed N_k)."""
        self.cluster_size.mul_(self.decay).add_(one_hot.sum(0), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(one_hot.T @ z_flat, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
        self.codebook.copy_(self.embed_sum / smoothed[:, None])

    @torch.no_grad()
    def restart(self, z_flat: torch.Tensor) -> int:
        """Move every code used by less than ``restart_threshold / K`` of the data onto a random
        encoder output of this batch; returns how many codes were restarted."""
        dead = self.usage < self.restart_threshold / self.num_codes
        n_dead = int(dead.sum())
        if n_dead == 0:
            return 0
        pick = torch.randint(len(z_flat), (n_dead,), device=z_flat.device)
        self.codebook[dead] = z_flat[pick]
        self.usage[dead] = 1.0 / self.num_codes
        if self.ema:
            self.embed_sum[dead] = z_flat[pick]
            self.cluster_size[dead] = 1.0
        return n_dead


class CodeUsage:
    """Counts code indices over a whole pass (not one batch) for perplexity and used codes."""

    def __init__(self, num_codes: int):
        self.counts = torch.zeros(num_codes, dtype=torch.long)

    def add(self, indices: torch.Tensor) -> None:
        self.counts += torch.bincount(indices.flatten().cpu(), minlength=len(self.counts))

    def perplexity(self) -> float:
        """exp(H(p)) of the code frequencies: the effective number of codes in use (at most K)."""
        p = self.counts.double() / self.counts.sum()
        p = p[p > 0]
        return float(torch.exp(-(p * p.log()).sum()))

    def used_fraction(self) -> float:
        """Share of the K codes chosen at least once."""
        return float((self.counts > 0).double().mean())
