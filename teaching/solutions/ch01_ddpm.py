"""Reference solutions to chapter 01's exercises (the tests check them with the checkers)."""

from __future__ import annotations

import torch


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1 - betas, dim=0)


def forward_sample(x0: torch.Tensor, noise: torch.Tensor, alpha_bar_t: float) -> torch.Tensor:
    return alpha_bar_t ** 0.5 * x0 + (1 - alpha_bar_t) ** 0.5 * noise


def posterior_variance(betas: torch.Tensor) -> torch.Tensor:
    ab = alpha_bars(betas)
    ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    return (1 - ab_prev) / (1 - ab) * betas


def ddim_step(x_t, eps, alpha_bar_t: float, alpha_bar_prev: float) -> torch.Tensor:
    x0 = (x_t - (1 - alpha_bar_t) ** 0.5 * eps) / alpha_bar_t ** 0.5
    return alpha_bar_prev ** 0.5 * x0 + (1 - alpha_bar_prev) ** 0.5 * eps


def snr_halfway() -> int:
    ab = alpha_bars(torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64))
    return int(torch.nonzero(ab < 0.5)[0])
