"""The ``full`` budget, planned on a CPU before a GPU is at hand.

Every chapter module lists what its notebook trains (``trainings(budget)``). :func:`run_trainings`
trains each of them for a few steps only, in a throwaway model cache, at either precision
(``GENSYNTH_PRECISION``, :mod:`gensynth_course.device`):

- with ``steps=2`` on the CPU it is the *dry run*: every ``full`` configuration builds, trains,
  saves and loads (``tests/test_full_budget.py`` runs it);
- with a few hundred steps on a GPU it is the *timing*: seconds per step of every configuration,
  from which :func:`training_minutes` gives each chapter's training minutes at the budget
  (``benchmarks/full_budget_gpu.py`` does both, with chapter 01 trained and measured at ``full``).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time

from gensynth_course.cache import TRAINED
from gensynth_course.device import PRECISIONS, resolve
from gensynth_course.experiments import MODULES, chapter_module
from gensynth_course.train import step_limit


@contextlib.contextmanager
def _environment(**values: str):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def throwaway_cache():
    """A model cache that lives as long as the block (``GENSYNTH_CACHE`` points to it inside)."""
    with tempfile.TemporaryDirectory(prefix="gensynth-plan-") as cache, _environment(GENSYNTH_CACHE=cache):
        yield cache


# What ``tiny`` shrinks in a config and every config nested in it: the data drawn and the batches,
# never the architecture. A nested config (a model that another loads) shrinks exactly as its own
# training does, so the loader finds it in the cache.
TINY = {"train_scenes": 256, "train_images": 256, "eval_scenes": 64, "batch_size": 8}


def shrink(config: dict) -> dict:
    """``config`` with the sizes of :data:`TINY` capped, here and in every nested config."""
    return {key: shrink(value) if isinstance(value, dict) else
            min(value, TINY[key]) if key in TINY and isinstance(value, int) else value
            for key, value in config.items()}


def run_trainings(budget: str = "full", steps: int = 2, chapters: list[str] | None = None,
                  precision: str = "fp32", tiny: bool = False) -> list[dict]:
    """Train every model that the ``chapters`` (all by default) train at ``budget``, each stopped
    after ``steps`` steps, in a throwaway cache (a model a later chapter needs is trained once, by
    the first that asks, as in a real run), at ``precision``. One row per training: chapter, name,
    parameters, the steps the budget plans and those taken, their seconds and seconds per step (the
    first steps included: warm-up counts), and the device."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    chapters = list(MODULES) if chapters is None else chapters
    unknown = [c for c in chapters if c not in MODULES]
    if unknown:
        raise ValueError(f"no chapter {', '.join(unknown)} trains anything; choose from {', '.join(MODULES)}")
    rows = []
    with throwaway_cache(), _environment(GENSYNTH_PRECISION=precision), step_limit(steps):
        for number in chapters:
            for training in chapter_module(number).trainings(budget):
                start, before = time.perf_counter(), len(TRAINED)
                model, info = training.load(shrink(training.config) if tiny else training.config)
                rows.append({"chapter": number, "name": training.name, "precision": precision,
                             "trained": len(TRAINED) > before, "device": str(resolve(None)),
                             "parameters": sum(p.numel() for p in model.parameters()),
                             "planned_steps": training.config["steps"], "steps": info["steps"],
                             "seconds": round(info["seconds"], 3),
                             "seconds_per_step": round(info["seconds"] / max(info["steps"], 1), 5),
                             "wall_seconds": round(time.perf_counter() - start, 2)})
    return rows


def training_minutes(rows: list[dict]) -> dict[str, float]:
    """Each chapter's training minutes at the budget the rows were timed at: the planned steps of
    each training it does itself (not those an earlier chapter left in the cache) times their
    measured seconds per step, summed, rounded up to a tenth."""
    out: dict[str, float] = {}
    for row in rows:
        if not row.get("trained", True):
            out.setdefault(row["chapter"], 0.0)
            continue
        out[row["chapter"]] = out.get(row["chapter"], 0.0) + row["planned_steps"] * row["seconds_per_step"] / 60
    return {chapter: math.ceil(minutes * 10) / 10 for chapter, minutes in out.items()}
