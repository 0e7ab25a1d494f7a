"""Every chapter's measured path honours the course's one device: with the device set to a sentinel,
``eval NN`` (models from the warm cache, at the quick budget) puts every model it loads on the
sentinel, and every sampler call runs a model that lives there."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

from gensynth_course import cache, device
from gensynth_course.models.diffusion import schedulers

# A device no code path picks by itself, that still computes: the CPU with an explicit index.
SENTINEL = torch.device("cpu", 0)
CHAPTERS = ["ch01_ddpm", "ch02_vqgan", "ch03_guided_diffusion", "ch04_clip", "ch05_glide", "ch06_xmc_gan",
            "ch07_audioclip", "ch08_semantic_synthesis"]


def _replace_everywhere(monkeypatch, original, replacement):
    """Swap a function for a spy in every course module that imported it by name."""
    for name, module in list(sys.modules.items()):
        if name.startswith("gensynth_course") and module is not None:
            for attribute, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, attribute, replacement)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_eval_puts_every_model_on_the_chosen_device(chapter, monkeypatch):
    module = importlib.import_module(f"gensynth_course.experiments.{chapter}")
    monkeypatch.setattr(device, "_chosen", (SENTINEL, "a test's sentinel"))
    on_sentinel, loaded, sampled = set(), [], []
    original_to, original_load, original_sample = torch.nn.Module.to, cache.load_or_train, schedulers.sample

    def to(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, torch.device) and target == SENTINEL:
            on_sentinel.update(id(m) for m in self.modules())
        return original_to(self, *args, **kwargs)

    def load_or_train(*args, **kwargs):
        model, info = original_load(*args, **kwargs)
        loaded.append((args[1], model))
        return model, info

    def sample(model, *args, **kwargs):
        sampled.append(model)
        return original_sample(model, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    _replace_everywhere(monkeypatch, original_load, load_or_train)
    _replace_everywhere(monkeypatch, original_sample, sample)
    module.evaluate("quick")
    assert loaded, f"{chapter}: eval loaded no model"
    strays = [name for name, model in loaded if id(model) not in on_sentinel]
    assert not strays, f"{chapter}: these models were not put on the chosen device: {strays}"
    for model in sampled:
        assert any(id(m) in on_sentinel for m in model.modules()), f"{chapter}: a sampler ran a model off the device"
