"""The course budget: one notebook, three sizes (design brief, section 3).

``GENSYNTH_BUDGET`` is read once, when the package is imported:

* ``quick``    -- CI: every code path runs, each notebook in about two minutes.
* ``standard`` -- a learner's laptop CPU: each chapter in about ten minutes (the default).
* ``full``     -- a GPU: larger models and longer training.
"""

from __future__ import annotations

import os

BUDGETS = ("quick", "standard", "full")


def _read_budget() -> str:
    value = os.environ.get("GENSYNTH_BUDGET", "standard").strip().lower() or "standard"
    if value not in BUDGETS:
        raise ValueError(
            f"GENSYNTH_BUDGET={value!r} is not a budget; choose one of {', '.join(BUDGETS)}."
        )
    return value


BUDGET = _read_budget()


def check_budget(budget: str | None) -> str:
    """Return ``budget`` (or the session budget when ``None``) after checking its name."""
    budget = BUDGET if budget is None else budget
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}.")
    return budget


def by_budget(quick, standard, full=None, budget: str | None = None):
    """Pick the value for the current budget; ``full`` defaults to ``standard``."""
    budget = check_budget(budget)
    return {"quick": quick, "standard": standard, "full": standard if full is None else full}[budget]
