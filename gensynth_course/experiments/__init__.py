"""The chapters' experiments: one module per chapter (its configs, loaders and measurements), and
the pieces two chapters share (:mod:`fashion_diffusion`, :mod:`shapes_clip`).

Every chapter module lists what its notebook trains at a budget with ``trainings(budget)``: the
plan that ``full_budget`` dry-runs on the CPU and times on a GPU."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable


@dataclass(frozen=True)
class Training:
    """One model a chapter trains: its name, its config, and ``load(config)``, the chapter's own
    loader, which returns the model from the cache or trains it now (``config["steps"]`` steps)."""

    name: str
    config: dict
    load: Callable[[dict], Any]


# Each chapter's experiment module, by chapter number (chapter 00 trains nothing).
MODULES = {"01": "gensynth_course.experiments.ch01_ddpm", "02": "gensynth_course.experiments.ch02_vqgan",
           "03": "gensynth_course.experiments.ch03_guided_diffusion", "04": "gensynth_course.experiments.ch04_clip",
           "05": "gensynth_course.experiments.ch05_glide", "06": "gensynth_course.experiments.ch06_xmc_gan",
           "07": "gensynth_course.experiments.ch07_audioclip",
           "08": "gensynth_course.experiments.ch08_semantic_synthesis"}


def chapter_module(number: str) -> ModuleType:
    """The experiment module of chapter ``number`` (``"01"`` … ``"08"``), imported on first use."""
    if number not in MODULES:
        raise ValueError(f"chapter {number!r} has no experiments; choose one of {', '.join(MODULES)}")
    return importlib.import_module(MODULES[number])
