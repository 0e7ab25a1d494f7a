import sys

import pytest
import torch


@pytest.fixture(autouse=True)
def in_a_notebook(monkeypatch):
    """Each test starts as a notebook would; the GENSYNTH_CLI=1 that an in-process ``main()`` sets
    is undone after it, so no test's messages depend on which tests ran before it."""
    monkeypatch.setenv("GENSYNTH_CLI", "")


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty model cache for one test."""
    monkeypatch.setenv("GENSYNTH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No copy of Fashion-MNIST anywhere: an empty cache, no Debian package, and a copy of the
    checksum table that a test's fake files may register in."""
    from gensynth_course.data import fashion_mnist as data

    monkeypatch.setenv("GENSYNTH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENSYNTH_DATA", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data, "CHECKSUMS", dict(data.CHECKSUMS))
    return tmp_path


class QuickEvals:
    """Each chapter's ``evaluate("quick")``, run once per test session in the course's own model
    cache (the quick models the notebooks load next, in nbval and in JupyterLab), with the course's
    device set to a sentinel that no code path picks by itself: :meth:`get` returns the results
    and what the run put where."""

    SENTINEL = torch.device("cpu", 0)         # a device that still computes: the CPU, with an index

    def __init__(self):
        self._runs: dict[str, tuple[dict, dict]] = {}

    def get(self, number: str) -> tuple[dict, dict]:
        """``(results, placement)`` of ``eval number --budget quick``; ``placement`` holds the
        models it loaded that are not on the sentinel (``strays``, by name), how many it loaded
        (``loaded``), and how many sampler calls ran a model off the sentinel (``off_device_samples``)."""
        if number not in self._runs:
            self._runs[number] = self._run(number)
        return self._runs[number]

    def _run(self, number: str) -> tuple[dict, dict]:
        from gensynth_course import cache, device
        from gensynth_course.experiments import chapter_module
        from gensynth_course.models.diffusion import schedulers

        module = chapter_module(number)
        on_sentinel, loaded, sampled = set(), [], []
        original_to, original_load, original_sample = torch.nn.Module.to, cache.load_or_train, schedulers.sample

        def to(self, *args, **kwargs):
            target = args[0] if args else kwargs.get("device")
            if isinstance(target, torch.device) and target == QuickEvals.SENTINEL:
                on_sentinel.update(id(m) for m in self.modules())
            return original_to(self, *args, **kwargs)

        def load_or_train(*args, **kwargs):
            model, info = original_load(*args, **kwargs)
            loaded.append((args[1], model))
            return model, info

        def sample(model, *args, **kwargs):
            sampled.append(model)
            return original_sample(model, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("GENSYNTH_CLI", "")
            patch.setattr(device, "_chosen", (QuickEvals.SENTINEL, "a test's sentinel"))
            patch.setattr(torch.nn.Module, "to", to)
            _replace_everywhere(patch, original_load, load_or_train)
            _replace_everywhere(patch, original_sample, sample)
            results = module.evaluate("quick")
        placement = {"loaded": len(loaded), "strays": [name for name, model in loaded if id(model) not in on_sentinel],
                     "off_device_samples": sum(not any(id(m) in on_sentinel for m in model.modules())
                                               for model in sampled)}
        return results, placement


def _replace_everywhere(patch, original, replacement):
    """Swap a function for a spy in every course module that imported it by name."""
    for name, module in list(sys.modules.items()):
        if name.startswith("gensynth_course") and module is not None:
            for attribute, value in list(vars(module).items()):
                if value is original:
                    patch.setattr(module, attribute, replacement)


@pytest.fixture(scope="session")
def quick_evals() -> QuickEvals:
    """Every chapter's quick eval, run once for the whole session (see :class:`QuickEvals`)."""
    return QuickEvals()
