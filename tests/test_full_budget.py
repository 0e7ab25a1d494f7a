"""The full budget, planned on the CPU: the precision switch, the step limit, the trainings every
chapter lists, and the tiny sizes of the dry run (which runs in ``tests/live/test_full_budget_dry_run.py``), and one
chapter's trainings under bf16 autocast."""

from __future__ import annotations

import pytest
import torch

from gensynth_course import device, full_budget
from gensynth_course.experiments import MODULES, chapter_module
from gensynth_course.train import fit, step_limit


def test_the_precision_switch(monkeypatch):
    monkeypatch.delenv("GENSYNTH_PRECISION", raising=False)
    assert device.precision() == "fp32"
    layer = torch.nn.Linear(4, 4)
    with device.autocast("cpu"):
        assert layer(torch.randn(2, 4)).dtype == torch.float32
    monkeypatch.setenv("GENSYNTH_PRECISION", "bf16")
    with device.autocast("cpu"):
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16
    monkeypatch.setenv("GENSYNTH_PRECISION", "fp16")
    with pytest.raises(ValueError, match="use fp32 or bf16"):
        device.precision()


def test_a_full_training_runs_its_steps_under_bf16_autocast(monkeypatch):
    """The bf16 half of the GPU script's timing, on one chapter's trainings (the live dry run times
    every chapter in fp32 only: bf16 autocast is about ten times slower on a CPU)."""
    from gensynth_course import train

    entered = []
    original = train.autocast
    monkeypatch.setattr(train, "autocast", lambda where=None: entered.append(original(where)) or entered[-1])
    rows = full_budget.run_trainings("full", chapters=["04"], precision="bf16", tiny=True)
    assert [r["name"] for r in rows] == [t.name for t in chapter_module("04").trainings("full")]
    assert all(r["precision"] == "bf16" and r["steps"] == 2 and r["seconds_per_step"] > 0 for r in rows)
    assert entered and all(isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
                           for context in entered)


def test_step_limit_stops_every_training_and_is_undone():
    model = torch.nn.Linear(3, 1)

    def batch(step, generator):
        return torch.randn(8, 3, generator=generator)

    def loss(m, x, generator):
        return m(x).pow(2).mean()

    with step_limit(3):
        assert fit(model, loss, batch, 50, device="cpu")["steps"] == 3
    assert fit(model, loss, batch, 5, device="cpu")["steps"] == 5
    with pytest.raises(ValueError, match="positive integer"):
        with step_limit(0):
            pass


def test_training_minutes_adds_planned_steps_times_seconds_per_step():
    rows = [{"chapter": "01", "planned_steps": 30_000, "seconds_per_step": 0.01},
            {"chapter": "01", "planned_steps": 6_000, "seconds_per_step": 0.005},
            {"chapter": "02", "planned_steps": 100, "seconds_per_step": 0.5},
            {"chapter": "02", "planned_steps": 30_000, "seconds_per_step": 0.01, "trained": False},
            {"chapter": "03", "planned_steps": 30_000, "seconds_per_step": 0.01, "trained": False}]
    assert full_budget.training_minutes(rows) == {"01": 5.5, "02": 0.9, "03": 0.0}


def test_every_chapter_lists_its_trainings_at_every_budget():
    for number in MODULES:
        for budget in ("quick", "standard", "full"):
            trainings = chapter_module(number).trainings(budget)
            assert trainings and len({t.name for t in trainings}) == len(trainings)
            assert all(isinstance(t.config["steps"], int) and callable(t.load) for t in trainings)
    with pytest.raises(ValueError, match="choose from"):
        full_budget.run_trainings("full", chapters=["00"])


def test_shrink_caps_data_and_batches_everywhere_and_keeps_the_architecture():
    config = {"channels": [64, 128], "batch_size": 256, "steps": 5000, "train_scenes": 50_000,
              "clip": {"batch_size": 512, "train_scenes": 100, "text_width": 96}}
    assert full_budget.shrink(config) == {"channels": [64, 128], "batch_size": 8, "steps": 5000, "train_scenes": 256,
                                          "clip": {"batch_size": 8, "train_scenes": 100, "text_width": 96}}


def test_chapter_02_priors_load_the_vqgan_their_shrunk_plan_trained(monkeypatch):
    ch02 = chapter_module("02")
    seen = []
    monkeypatch.setattr(ch02, "load_autoencoder", lambda config: seen.append(config) or ("vqgan", {}))
    monkeypatch.setattr(ch02, "load_prior", lambda autoencoder, config: (("prior", config), {}))
    monkeypatch.setattr(ch02, "load_page_prior", lambda autoencoder, prior, config: ((prior, config), {}))
    plan = {t.name: t for t in ch02.trainings("full")}
    vqgan = full_budget.shrink(plan["vqgan"].config)
    for name in ("code_prior", "page_prior"):
        seen.clear()
        loaded, _ = plan[name].load(full_budget.shrink(plan[name].config))
        assert seen == [vqgan]
    assert loaded == (("prior", full_budget.shrink(ch02.prior_config("full"))),
                      full_budget.shrink(ch02.page_prior_config("full")))
