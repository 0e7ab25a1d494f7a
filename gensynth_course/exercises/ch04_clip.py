"""Chapter 04 exercises: each ``check_*`` runs a learner's function on random inputs and compares
it with the package (``models/contrastive/clip.py``, ``evaluation/metrics.py``,
``experiments/shapes_clip.py``). It prints what is
wrong and a hint, and returns True or False, so a notebook cell never fails with a traceback.
"""

from __future__ import annotations

import math

import torch

from gensynth_course.evaluation.metrics import recall_at_k
from gensynth_course.exercises.checking import call, compare, report
from gensynth_course.models.contrastive.clip import MAX_LOGIT_SCALE, contrastive_loss


def check_symmetric_infonce(fn) -> bool:
    """``fn(logits) -> scalar``: the symmetric InfoNCE loss of a (N, N) logit matrix whose diagonal
    holds the positive pairs."""
    logits = torch.randn(7, 7, generator=torch.Generator().manual_seed(0)) * 3
    return compare("symmetric_infonce", fn, (logits.clone(),), contrastive_loss(logits),
                   "cross-entropy with target i for row i (image→text) and for column i (text→image), "
                   "then the mean of the two.", atol=1e-5)


def check_clamped_scale(fn) -> bool:
    """``fn(t) -> exp(t)`` with t clamped at log 100, for a 0-dimensional tensor t."""
    ok = True
    for t in (math.log(1 / 0.07), 3.0, 4.6, 6.0):
        expected = torch.tensor(t).clamp(max=MAX_LOGIT_SCALE).exp()
        ok &= compare(f"clamped_scale (t = {t:.3f})", fn, (torch.tensor(t),), expected,
                      "clamp the parameter t at log(100) before exponentiating: the scale itself never exceeds 100.",
                      atol=1e-4)
    return ok


def check_recall_at_1(fn) -> bool:
    """``fn(similarity) -> float``: the share of rows whose highest score is on the diagonal
    (one right answer per query, at the same index)."""
    similarity = torch.randn(50, 50, generator=torch.Generator().manual_seed(1)) + 2 * torch.eye(50)
    expected = recall_at_k(similarity, torch.eye(50, dtype=torch.bool), 1)
    try:
        out, error = float(call(fn, similarity.clone())), None
    except Exception as exc:
        out, error = None, f"{type(exc).__name__}: {exc}"
    ok = error is None and abs(out - expected) < 1e-6
    return report("recall_at_1", ok, error or f"got {out}, expected {expected:.2f}: compare each row's argmax with its own index.")


def check_prompt_ensemble(fn) -> bool:
    """``fn(embeddings) -> (D,)``: one unit vector standing for K unit caption embeddings (K, D)."""
    z = torch.nn.functional.normalize(torch.randn(12, 8, generator=torch.Generator().manual_seed(2)), dim=1)
    mean = z.mean(0)
    return compare("prompt_ensemble", fn, (z.clone(),), mean / mean.norm(),
                   "average the K embeddings, then divide by the norm so that the result has length 1 again.",
                   atol=1e-6)
