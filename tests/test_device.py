"""One device, chosen in one place, used by the training loop and the model cache."""

import json
import sys
import types

import pytest
import torch

from gensynth_course import __main__ as cli
from gensynth_course import cache, device
from gensynth_course.train import fit

# A device no code path would pick by itself, that still computes: the CPU with an explicit index.
SENTINEL = torch.device("cpu", 0)


@pytest.fixture
def chosen(monkeypatch):
    monkeypatch.setattr(device, "_chosen", (SENTINEL, "a test's sentinel"))
    moves = []
    original = torch.nn.Module.to

    def spy(module, *args, **kwargs):
        moves.append(args[0] if args else kwargs.get("device"))
        return original(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    return moves


def test_gensynth_device_overrides_and_a_wrong_value_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setattr(device, "_chosen", None)
    monkeypatch.setenv("GENSYNTH_DEVICE", "cpu")
    assert device.pick_device(verbose=False) == torch.device("cpu")
    assert "set by GENSYNTH_DEVICE" in capsys.readouterr().out           # printed once, on first use
    device.pick_device(verbose=False)
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(device, "_chosen", None)
    monkeypatch.setenv("GENSYNTH_DEVICE", "gpu please")
    with pytest.raises(ValueError, match="GENSYNTH_DEVICE='gpu please' is not a device; use cpu, cuda"):
        device.pick_device()


def test_the_loop_trains_on_the_chosen_device(chosen):
    model = torch.nn.Linear(2, 1)
    seen = []

    def loss(m, batch, generator):
        seen.append(batch[0].device)
        return m(batch[0]).pow(2).mean()

    fit(model, loss, lambda k, g: (torch.randn(4, 2, generator=g),), 2)
    assert SENTINEL in chosen                                             # the model went to the chosen device
    assert seen == [torch.device("cpu")] * 2                              # and so did each batch


def test_the_cache_returns_models_on_the_chosen_device_trained_or_loaded(chosen, tmp_cache):
    devices = []

    def train(model, checkpoint):
        devices.append(fit(model, lambda m, b, g: m(b).sum(), lambda k, g: torch.ones(1, 2), 1) and None)
        return {}

    for _ in range(2):                                                    # trained, then loaded
        chosen.clear()
        cache.load_or_train("chX", "lin", {"seed": 0}, lambda: torch.nn.Linear(2, 1), train)
        assert chosen and chosen[-1] == SENTINEL


def test_every_eval_json_says_where_and_how_it_was_measured(monkeypatch, capsys):
    fake = types.ModuleType("fake_eval")
    fake.evaluate = lambda budget: {"fd": 1.0}
    monkeypatch.setitem(sys.modules, "fake_eval", fake)
    monkeypatch.setitem(cli.MODULES, "01", "fake_eval")
    monkeypatch.setattr(cli, "_ready", lambda number: types.SimpleNamespace(number="01"))
    cli.cmd_eval(types.SimpleNamespace(chapter="01", budget="quick", json=True))
    record = json.loads(capsys.readouterr().out)
    assert record["fd"] == 1.0
    from gensynth_course.results import RECORD

    assert set(RECORD) <= set(record)                  # everything RESULTS.md prints about a run
    assert record["trained"] == [] and len(record["date"]) == 10
    assert record["chapter"] == "01" and record["budget"] == "quick" and record["torch"] == torch.__version__
