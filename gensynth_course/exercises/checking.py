"""What every exercise checker shares: run the learner's code safely, compare, explain."""

from __future__ import annotations

import torch


def report(name: str, ok: bool, hint: str) -> bool:
    print(f"✔ {name}: correct." if ok else f"✘ {name}: not yet. Hint: {hint}")
    return ok


def compare(name: str, fn, args: tuple, expected: torch.Tensor, hint: str, atol: float) -> bool:
    """Run ``fn(*args)`` and compare it with ``expected``; a learner's exception is reported, not raised."""
    try:
        out, error = fn(*args), None
    except Exception as exc:
        out, error = None, f"{type(exc).__name__}: {exc}"
    ok = (error is None and torch.is_tensor(out) and out.shape == expected.shape
          and torch.allclose(out.to(expected.dtype), expected, atol=atol))
    return report(name, ok, error or hint)
