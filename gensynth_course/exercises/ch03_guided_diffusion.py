"""Chapter 03 exercises: each ``check_*`` runs a learner's function on random inputs and compares
it with the package (``guidance.py``, ``schedulers.py``). It prints what is wrong and a hint, and returns True or
False, so a notebook cell never fails with a traceback.
"""

from __future__ import annotations

import math

import torch

from gensynth_course.exercises.checking import call, compare, report
from gensynth_course.models.diffusion.schedulers import DDIMScheduler, DDPMScheduler, linear_betas


def check_cfg_combine(fn) -> bool:
    """``fn(eps_cond, eps_uncond, s) -> ε̂`` of classifier-free guidance."""
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(6, 1, 4, 4, generator=g), torch.randn(6, 1, 4, 4, generator=g)
    ok = all(compare(f"cfg_combine (s = {s:g})", fn, (cond.clone(), uncond.clone(), s), uncond + s * (cond - uncond),
                     "start from the unconditional prediction and move s times the difference towards the conditional one.",
                     atol=1e-6)
             for s in (0.0, 1.0, 3.0))
    return ok


def check_drop_labels(fn) -> bool:
    """``fn(y, p_uncond, null_label, generator) -> y`` with each label replaced by the null label
    with probability p_uncond."""
    y = torch.randint(0, 10, (50_000,), generator=torch.Generator().manual_seed(1))
    try:
        out, error = call(fn, y.clone(), 0.25, 10, torch.Generator().manual_seed(2)), None
    except Exception as exc:
        out, error = None, f"{type(exc).__name__}: {exc}"
    if error is not None or not torch.is_tensor(out) or out.shape != y.shape:
        return report("drop_labels", False, error or "return a tensor of labels shaped like y.")
    share = (out == 10).double().mean().item()
    kept = out != 10
    ok = abs(share - 0.25) < 0.01 and bool(torch.equal(out[kept], y[kept]))
    hint = (f"{share:.1%} of the labels became the null label; expected about 25 %, and every other label unchanged. "
            "Draw one uniform number per label and compare it with p_uncond.")
    return report("drop_labels", ok, hint)


def check_classifier_guided_eps(fn) -> bool:
    """``fn(eps, grad_log_p, alpha_bar_t, s) -> ε̂ = ε − s √(1 − ᾱ_t) ∇ log p_φ(y | x_t)``
    (Dhariwal & Nichol, Algorithm 2)."""
    g = torch.Generator().manual_seed(3)
    eps, grad = torch.randn(6, 1, 4, 4, generator=g), torch.randn(6, 1, 4, 4, generator=g)
    scheduler = DDIMScheduler(linear_betas())
    t, s = 600, 2.0
    alpha_bar = scheduler.alpha_bars[t].item()
    # The shift DDIMScheduler.step applies to the ε of the clipped x̂_0 when given gradient = s ∇ log p_φ.
    expected = eps - s * math.sqrt(1 - alpha_bar) * grad
    return compare("classifier_guided_eps", fn, (eps.clone(), grad.clone(), alpha_bar, s), expected,
                   "the score is −ε / √(1 − ᾱ_t): adding s ∇ log p to the score subtracts s √(1 − ᾱ_t) ∇ log p from ε.",
                   atol=1e-5)


def check_respaced_betas(fn) -> bool:
    """``fn(alpha_bars, kept) -> β`` for the kept steps ``kept`` (ascending), recomputed so that ᾱ at
    every kept step stays what it was: β_{S_i} = 1 − ᾱ_{S_i} / ᾱ_{S_{i−1}}, with ᾱ = 1 before the first
    (Nichol & Dhariwal 2021, section 4), as ``DDPMScheduler.step`` uses them with fewer steps."""
    scheduler = DDPMScheduler(linear_betas())
    ok = True
    for steps in (10, 37):
        scheduler.set_timesteps(steps)
        kept = scheduler.timesteps.flip(0)
        expected = torch.tensor([1 - scheduler.alpha_bars[t].item() / (scheduler.alpha_bars[scheduler._prev[t]].item()
                                                                        if scheduler._prev[t] >= 0 else 1.0)
                                 for t in kept.tolist()], dtype=torch.float64)
        ok = compare(f"respaced_betas ({steps} steps)", fn, (scheduler.alpha_bars.clone(), kept.clone()), expected,
                     "each kept step jumps from the kept step below it: divide ᾱ at this step by ᾱ at the previous "
                     "kept step (1 before the first) and take it from 1.", atol=1e-8) and ok
    return ok
