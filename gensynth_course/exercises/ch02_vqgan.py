"""Chapter 02 exercises: each ``check_*`` runs a learner's function on random inputs and compares
it with the package (``models/vq/quantizer.py``, ``models/vq/vqgan.py``). It prints what is wrong and a hint, and
returns True or False, so a notebook cell never fails with a traceback.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from gensynth_course.exercises.checking import call, compare, report
from gensynth_course.models.vq.quantizer import CodeUsage, VectorQuantizer
from gensynth_course.models.vq.vqgan import hinge_d_loss


def _toy(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(50, 8, generator=g), torch.randn(16, 8, generator=g)


def check_nearest_codes(fn) -> bool:
    """``fn(z_flat (N, D), codebook (K, D)) -> indices (N,)`` of the nearest code."""
    z, codebook = _toy(1)
    quantizer = VectorQuantizer(16, 8)
    quantizer.codebook.data.copy_(codebook)
    expected = quantizer.nearest(z)
    try:
        out, error = call(fn, z.clone(), codebook.clone()), None
    except Exception as exc:
        out, error = None, f"{type(exc).__name__}: {exc}"
    ok = error is None and torch.is_tensor(out) and out.shape == expected.shape and bool((out == expected).all())
    return report("nearest_codes", ok, error or "distances ‖z‖² + ‖e‖² − 2 z·eᵀ give an (N, K) matrix; argmin over K.")


def check_straight_through(fn) -> bool:
    """``fn(z, e) -> z_q``: the value of e, the gradient of z (straight through the rounding)."""
    z, e = (t.requires_grad_() for t in _toy(2))
    e = e[:1].expand_as(z).detach()
    weights = torch.randn_like(z)
    try:
        out = call(fn, z, e)
        (grad,) = torch.autograd.grad((out * weights).sum(), z)
        ok = torch.allclose(out, e) and torch.allclose(grad, weights)
        hint = "the output must equal e, and d(output)/dz must be the identity: z + (e − z).detach()."
    except Exception as exc:
        ok, hint = False, f"{type(exc).__name__}: {exc} (does your output depend on z at all?)"
    return report("straight_through", ok, hint)


def check_vq_loss(fn) -> bool:
    """``fn(z, e, beta) -> loss``: ‖sg[z] − e‖² + β‖z − sg[e]‖² (means over elements)."""
    z0, e0 = _toy(3)
    e0 = e0[:1].expand_as(z0).contiguous()
    z, e = z0.clone().requires_grad_(), e0.clone().requires_grad_()
    expected = F.mse_loss(e0, z0) * 1.25
    try:
        loss = call(fn, z, e, 0.25)
        grad_z, grad_e = torch.autograd.grad(loss, (z, e))
        expected_grad_z = 0.25 * 2 * (z0 - e0) / z0.numel()
        expected_grad_e = 2 * (e0 - z0) / z0.numel()
        ok = (torch.allclose(loss, expected) and torch.allclose(grad_z, expected_grad_z, atol=1e-7)
              and torch.allclose(grad_e, expected_grad_e, atol=1e-7))
        hint = ("the value is right but β is on the wrong term: the encoder (z) gets β, the codebook (e) gets 1."
                if torch.allclose(loss, expected) else "two mean squared errors, each with one side detached.")
    except Exception as exc:
        ok, hint = False, f"{type(exc).__name__}: {exc} (both z and e must receive a gradient)"
    return report("vq_loss", ok, hint)


def check_perplexity(fn) -> bool:
    """``fn(counts (K,)) -> float``: exp of the entropy of the code frequencies."""
    counts = torch.tensor([50, 30, 20, 0, 0, 0, 0, 0])
    usage = CodeUsage(8)
    usage.counts = counts.clone()
    try:
        out, error = float(call(fn, counts.clone())), None
    except Exception as exc:
        out, error = None, f"{type(exc).__name__}: {exc}"
    ok = error is None and abs(out - usage.perplexity()) < 1e-4
    return report("perplexity", ok, error or "p = counts / counts.sum(); skip p = 0; exp(−Σ p log p).")


def check_hinge_d_loss(fn) -> bool:
    """``fn(logits_real, logits_fake) -> loss``: the discriminator's hinge loss."""
    g = torch.Generator().manual_seed(4)
    real, fake = torch.randn(8, 1, 7, 7, generator=g) * 2, torch.randn(8, 1, 7, 7, generator=g) * 2
    return compare("hinge_d_loss", fn, (real, fake), hinge_d_loss(real, fake),
                   "real logits are pushed above +1, fake ones below −1: ReLU(1 − real) and ReLU(1 + fake).",
                   atol=1e-6)


__all__ = ["check_nearest_codes", "check_straight_through", "check_vq_loss", "check_perplexity",
           "check_hinge_d_loss"]
