"""What every exercise checker shares: run the learner's code safely, compare, explain.

An exercise asks for the learner's own code, and the chapters show the package's: a function that
simply calls the package (``DDPMScheduler(betas).alpha_bars`` for ᾱ) would match the reference
trivially. :func:`call` runs the learner's function and refuses one that runs any of the package's
code outside these checkers, so such an answer is "not yet" here and scores nothing when graded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

PACKAGE = Path(__file__).resolve().parents[1]          # gensynth_course/
EXERCISES = Path(__file__).resolve().parent            # gensynth_course/exercises/: the checkers themselves


class UsesThePackage(Exception):
    """The learner's function ran the course's own implementation instead of its own code."""


def call(fn, *args):
    """``fn(*args)``, raising :class:`UsesThePackage` if it ran a function of the package (the
    checkers here excepted)."""
    used = []

    def watch(frame, event, arg):
        if event == "call" and not used:
            path = Path(frame.f_code.co_filename)
            if path.is_relative_to(PACKAGE) and not path.is_relative_to(EXERCISES):
                used.append(f"{frame.f_globals.get('__name__', path.stem)}.{frame.f_code.co_qualname}")

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        out = fn(*args)
    finally:
        sys.setprofile(previous)
    if used:
        raise UsesThePackage(f"it calls the course's own {used[0]}; write the computation yourself")
    return out


def report(name: str, ok: bool, hint: str) -> bool:
    print(f"✔ {name}: correct." if ok else f"✘ {name}: not yet. Hint: {hint}")
    return ok


def compare(name: str, fn, args: tuple, expected: torch.Tensor, hint: str, atol: float) -> bool:
    """Run ``fn(*args)`` and compare it with ``expected``; a learner's exception is reported, not raised."""
    try:
        out, error = call(fn, *args), None
    except Exception as exc:
        out, error = None, f"{type(exc).__name__}: {exc}"
    ok = (error is None and torch.is_tensor(out) and out.shape == expected.shape
          and torch.allclose(out.to(expected.dtype), expected, atol=atol))
    return report(name, ok, error or hint)
