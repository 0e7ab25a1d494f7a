"""Chapter 01 exercises: each ``check_*`` runs a learner's function on random inputs and compares
it with the package's own implementation. It prints what is wrong and a hint, and returns True or
False, so a notebook cell never fails with a traceback.
"""

from __future__ import annotations

import torch

from gensynth_course.exercises.checking import call as _call
from gensynth_course.exercises.checking import compare as _compare
from gensynth_course.exercises.checking import report as _report
from gensynth_course.models.diffusion.schedulers import DDIMScheduler, DDPMScheduler, linear_betas


def check_alpha_bars(fn) -> bool:
    """``fn(betas) -> alpha_bars``: the cumulative products ᾱ_t = ∏_{s≤t} (1 − β_s)."""
    betas = linear_betas(1000)
    return _compare("alpha_bars", fn, (betas.clone(),), DDPMScheduler(betas).alpha_bars,
                    "α_t = 1 − β_t, then torch.cumprod over time.", atol=1e-6)


def check_forward_sample(fn) -> bool:
    """``fn(x0, noise, alpha_bar_t) -> x_t``: the closed form of q(x_t | x_0), eq. 4."""
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(4, 1, 28, 28, generator=g), torch.randn(4, 1, 28, 28, generator=g)
    scheduler, t = DDPMScheduler(linear_betas()), 300
    expected = scheduler.add_noise(x0, noise, torch.full((4,), t))
    return _compare("forward_sample", fn, (x0, noise, float(scheduler.alpha_bars[t])), expected,
                    "x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε.", atol=1e-5)


def check_posterior_variance(fn) -> bool:
    """``fn(betas) -> beta_tilde``: β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t, with ᾱ_{−1} = 1 (eq. 7)."""
    betas = linear_betas(1000)
    return _compare("posterior_variance", fn, (betas.clone(),), DDPMScheduler(betas).posterior_variance,
                    "shift ᾱ by one step (ᾱ_{t−1}), with 1 in front for t = 0.", atol=1e-8)


def check_ddim_step(fn) -> bool:
    """``fn(x_t, eps, alpha_bar_t, alpha_bar_prev) -> x_prev``: one deterministic DDIM step."""
    g = torch.Generator().manual_seed(2)
    x_t, eps = torch.randn(4, 1, 28, 28, generator=g), torch.randn(4, 1, 28, 28, generator=g)
    scheduler = DDIMScheduler(linear_betas())
    scheduler.set_timesteps(10)
    t, t_prev = scheduler.timesteps[3].item(), scheduler.timesteps[4].item()
    args = (x_t, eps, float(scheduler.alpha_bars[t]), float(scheduler.alpha_bars[t_prev]))
    return _compare("ddim_step", fn, args, scheduler.step(eps, t, x_t),
                    "first x̂_0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t, then x_prev = √ᾱ_prev x̂_0 + √(1−ᾱ_prev) ε.", atol=1e-5)


def check_snr_halfway(t_half) -> bool:
    """The step where the linear schedule's signal-to-noise ratio ᾱ_t / (1 − ᾱ_t) first drops below 1;
    ``t_half``: that step, or a function of no arguments that returns it."""
    ab = DDPMScheduler(linear_betas()).alpha_bars
    expected = int(torch.nonzero(ab / (1 - ab) < 1)[0])
    try:
        value, error = (_call(t_half) if callable(t_half) else t_half), None
    except Exception as exc:
        value, error = None, f"{type(exc).__name__}: {exc}"
    ok = error is None and isinstance(value, int) and abs(value - expected) <= 1
    return _report("snr_halfway", ok,
                   error or "SNR < 1 means ᾱ_t < 1/2: find the first t where alpha_bars drops below 0.5.")


__all__ = ["check_alpha_bars", "check_forward_sample", "check_posterior_variance", "check_ddim_step",
           "check_snr_halfway"]
