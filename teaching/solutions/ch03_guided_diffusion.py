"""Reference solutions to the chapter 03 exercises (try them yourself first)."""

import math

import torch


def cfg_combine(eps_cond, eps_uncond, s):
    return eps_uncond + s * (eps_cond - eps_uncond)


def drop_labels(y, p_uncond, null_label, generator):
    drop = torch.rand(y.shape, generator=generator) < p_uncond
    return torch.where(drop, torch.full_like(y, null_label), y)


def classifier_guided_eps(eps, grad_log_p, alpha_bar_t, s):
    return eps - s * math.sqrt(1 - alpha_bar_t) * grad_log_p


def respaced_betas(alpha_bars, kept):
    ab = alpha_bars[kept]
    return 1 - ab / torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
