"""The course budget: one notebook, three sizes.

``GENSYNTH_BUDGET`` picks the session's budget (case and surrounding spaces do not matter; unset or
empty means ``standard``). It is read once, the first time the session budget is needed
(``BUDGET``, or a ``budget=None`` argument); a value that names no budget is refused then:

* ``quick``    -- CI: every code path runs, each notebook in a minute or two.
* ``standard`` -- a learner's laptop CPU: convincing figures and the chapter's measured claim (the
  default); each chapter's minutes are in ``book.toml``.
* ``full``     -- a GPU: larger models and longer training.
"""

from __future__ import annotations

import os

BUDGETS = ("quick", "standard", "full")


def budget_from_environment() -> str:
    """The budget ``GENSYNTH_BUDGET`` names now, lower-cased; unset or empty means ``standard``."""
    raw = os.environ.get("GENSYNTH_BUDGET", "")
    value = raw.strip().lower() or "standard"
    if value not in BUDGETS:
        raise ValueError(f"GENSYNTH_BUDGET={raw!r} is not a budget; set it to one of {', '.join(BUDGETS)} "
                         "(or leave it unset for standard).")
    return value


def _session_budget() -> str:
    if "BUDGET" not in globals():
        globals()["BUDGET"] = budget_from_environment()
    return globals()["BUDGET"]


def __getattr__(name: str) -> str:
    # ``BUDGET`` is read on first use rather than on import, so that a wrong GENSYNTH_BUDGET gives
    # its one-line message where the budget is needed (and the command line can report it).
    if name == "BUDGET":
        return _session_budget()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_budget(budget: str | None) -> str:
    """Return ``budget`` lower-cased (or the session budget when ``None``) after checking its name."""
    if budget is None:
        return _session_budget()
    name = budget.strip().lower() if isinstance(budget, str) else budget
    if name not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}.")
    return name


def by_budget(quick, standard, full=None, budget: str | None = None):
    """Pick the value for the current budget; ``full`` defaults to ``standard``."""
    budget = check_budget(budget)
    return {"quick": quick, "standard": standard, "full": standard if full is None else full}[budget]
