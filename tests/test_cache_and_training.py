"""The model cache (round trip, corrupt files) and resuming an interrupted training run."""

import tempfile
from pathlib import Path

import pytest
import torch

from gensynth_course import cache
from gensynth_course.train import EMA, Objective, fit


def _build():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def _trainer(calls):
    def train(model, checkpoint):
        calls.append(checkpoint)
        with torch.no_grad():
            model.weight.fill_(0.5)
        return {"seconds": 1.0}
    return train


def test_round_trip_trains_once_then_loads(tmp_cache, capsys):
    calls = []
    config = {"width": 3}
    m1, info1 = cache.load_or_train("chX", "lin", config, _build, _trainer(calls))
    m2, info2 = cache.load_or_train("chX", "lin", config, _build, _trainer(calls))
    code = cache.code_hash(_build(), _trainer([]))
    assert len(calls) == 1 and info1 == info2 == {"seconds": 1.0, "code_hash": code,
                                                  "model_id": f"{cache.config_hash(config)}-{code}"}
    assert torch.equal(m2.weight, torch.full((2, 3), 0.5))
    assert "loaded lin" in capsys.readouterr().out
    path = cache.model_path("chX", "lin", config, cache.code_hash(_build(), _trainer([])))
    assert path.exists() and path.parent == tmp_cache / "models" / "chX"
    assert not list(path.parent.glob("*.tmp"))


def test_cached_only_loads_what_is_cached_and_trains_nothing(tmp_cache):
    calls = []
    with cache.cached_only(), pytest.raises(cache.NotCached, match="chX/lin is not in the cache"):
        cache.load_or_train("chX", "lin", {"width": 3}, _build, _trainer(calls))
    assert calls == [] and not (tmp_cache / "models" / "chX").exists()
    cache.load_or_train("chX", "lin", {"width": 3}, _build, _trainer(calls))
    with cache.cached_only():
        model, _ = cache.load_or_train("chX", "lin", {"width": 3}, _build, _trainer(calls))
    assert len(calls) == 1 and torch.equal(model.weight, torch.full((2, 3), 0.5))
    cache.load_or_train("chX", "lin", {"width": 4}, _build, _trainer(calls))      # outside the block: trains again
    assert len(calls) == 2


def test_key_depends_on_config_and_code(tmp_cache):
    a = cache.model_path("ch", "m", {"lr": 1e-3}, "c0")
    assert a != cache.model_path("ch", "m", {"lr": 2e-3}, "c0")
    assert a != cache.model_path("ch", "m", {"lr": 1e-3}, "c1")
    assert cache.config_hash({"a": 1, "b": 2}) == cache.config_hash({"b": 2, "a": 1})


def test_the_code_hash_covers_the_model_its_loss_and_the_loop_but_not_comments(monkeypatch):
    """A change to the UNet's module, to the module its loss lives in (called from the training
    function) or to the loop retrains a diffusion model; a change to CLIP's module does not, and
    neither does a docstring or a comment anywhere."""
    from gensynth_course import train as loop
    from gensynth_course.models.contrastive import clip
    from gensynth_course.models.diffusion import schedulers, unet

    def train(model, checkpoint):                          # as the chapters' training functions do
        return schedulers.DDPMScheduler(schedulers.linear_betas(10)).loss

    model = unet.UNet(channels=(8, 16))
    before = cache.code_hash(model, train)
    original = cache._module_code

    def edited(target):
        def code(path):
            return original(path) + ("# edited" if path == target.__file__ else "")
        return code

    for module, retrains in ((unet, True), (schedulers, True), (loop, True), (clip, False)):
        monkeypatch.setattr(cache, "_module_code", edited(module))
        assert (cache.code_hash(model, train) != before) == retrains, module.__name__
    monkeypatch.setattr(cache, "_module_code", original)
    source = 'def f(x):\n    """A docstring."""\n    return x + 1  # a comment\n'
    other = 'def f(x):\n    """Another docstring."""\n    return x + 1\n'
    changed = 'def f(x):\n    return x + 2\n'
    files = []
    for i, text in enumerate((source, other, changed)):
        path = Path(tempfile.mkdtemp()) / f"m{i}.py"
        path.write_text(text)
        files.append(original.__wrapped__(str(path)))
    assert files[0] == files[1] != files[2]


def test_the_code_hash_follows_imports_so_an_edit_to_the_loss_retrains_chapter_05s_base(monkeypatch):
    """Chapter 05's base model is trained by a function that calls the chapter's own helpers, not the
    scheduler by name; the hash still covers the scheduler's module (where its loss lives), the
    Shapes world and the tokenizer, because the chapter's module imports them. A chapter's module
    is not followed into another chapter's, and display-only modules are left out."""
    from gensynth_course.data import shapes, tokenizer
    from gensynth_course.experiments import ch05_glide
    from gensynth_course.models.diffusion import schedulers

    captured = {}

    def capture(chapter, name, config, build, train, device=None):
        captured.update(build=build, train=train)
        return None, {}

    monkeypatch.setattr(ch05_glide, "load_or_train", capture)
    ch05_glide.load_base(ch05_glide.base_config("quick"))
    model, train = captured["build"](), captured["train"]
    files = cache.hashed_files(model, train)
    for needed in ("models/diffusion/schedulers.py", "data/shapes.py", "data/tokenizer.py", "train.py",
                   "models/diffusion/glide.py", "experiments/ch05_glide.py"):
        assert needed in files
    assert not any(f.startswith("experiments/") and f != "experiments/ch05_glide.py" for f in files)
    assert not {"notebook.py", "progress.py", "threads.py", "images.py"} & set(files)
    before = cache.code_hash(model, train)
    original = cache._module_code
    for module in (schedulers, shapes, tokenizer):
        monkeypatch.setattr(cache, "_module_code",
                            lambda path, edited=module.__file__: original(path) + ("\nx = 1" if path == edited else ""))
        assert cache.code_hash(model, train) != before, module.__name__
    monkeypatch.setattr(cache, "_module_code", original)
    assert cache.code_hash(model, train) == before


def test_the_hashed_code_is_the_source_without_comments_and_docstrings(tmp_path):
    """What the code hash reads is the module's own text, cut by position: the same file gives the
    same text under every Python version (an AST dump changes between versions). Docstrings go even
    where they hold non-ASCII characters (the parser's columns count bytes), comments go, a # inside
    a string stays."""
    source = ('"""Module docstring: ε-prediction."""\n\nimport math  # a comment\n\n\n'
              'class A:\n    """λ = 0.1,\n    over two lines: ∇."""\n\n    def f(self, x):\n'
              '        """Σ."""; y = x  # after the docstring\n        # a whole-line comment\n'
              '        return y + len("# kept") * math.pi   \n')
    path = tmp_path / "m.py"
    path.write_text(source)
    assert cache._module_code.__wrapped__(str(path)) == (
        'import math\nclass A:\n    def f(self, x):\n        ; y = x\n        return y + len("# kept") * math.pi')


@pytest.mark.parametrize("damage", [b"", b"not a checkpoint at all", None])
def test_corrupt_file_is_reported_set_aside_and_retrained(tmp_cache, capsys, damage):
    calls = []
    config = {"width": 3}
    cache.load_or_train("chX", "lin", config, _build, _trainer(calls))
    path = cache.model_path("chX", "lin", config, cache.code_hash(_build(), _trainer([])))
    if damage is None:  # a valid file of the wrong kind
        torch.save({"something": torch.zeros(1)}, path)
    else:
        path.write_bytes(damage)
    model, _ = cache.load_or_train("chX", "lin", config, _build, _trainer(calls))
    out = capsys.readouterr().out
    assert len(calls) == 2
    assert "damaged" in out and "train the model again" in out
    assert path.with_name(path.name + ".corrupt").exists()
    assert cache.load_safe(path)["state_dict"]["weight"].eq(0.5).all()


def test_load_safe_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    bad = tmp_path / "evil.pt"
    torch.save({"format": 1, "x": Evil()}, bad)
    with pytest.raises(cache.CorruptCheckpoint):
        cache.load_safe(bad)


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path):
    target = torch.tensor([[1.0, -2.0, 0.5]])

    def batches(step, generator):
        x = torch.randn(16, 3, generator=generator)
        return x, x @ target.T

    def loss_fn(m, b, generator):
        return torch.nn.functional.mse_loss(m(b[0]), b[1])

    ckpt = tmp_path / "run.partial.pt"
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    calls = {"n": 0}

    def interrupting_loss(m, b, generator):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return loss_fn(m, b, generator)

    with pytest.raises(KeyboardInterrupt, match="Run the same cell again"):
        fit(model, interrupting_loss, batches, 60, lr=0.05, checkpoint=ckpt, checkpoint_every=10, ema_decay=0.9)
    assert ckpt.exists()
    resumed = torch.nn.Linear(3, 1)
    history = fit(resumed, loss_fn, batches, 60, lr=0.05, checkpoint=ckpt, checkpoint_every=10, ema_decay=0.9)
    assert history["steps"] == 60 and len(history["losses"]) == 60
    assert torch.allclose(resumed.weight, target, atol=0.1)


def _interrupt_at(step_to_stop: int):
    def preview(model, step):
        if step == step_to_stop:
            raise KeyboardInterrupt
    return preview


def test_a_resumed_diffusion_run_equals_an_uninterrupted_one_bit_for_bit(tmp_path, monkeypatch):
    """A tiny UNet with dropout, EMA, warm-up, a cosine schedule and min-SNR weighting, on random
    Fashion-MNIST-shaped batches: interrupted at step 7 (between two checkpoints: the steps after
    the last checkpoint are redone) and resumed, it ends with the very weights of a run in one go.
    Both runs use one thread throughout: a thread count that changed between them (core sharing,
    :mod:`gensynth_course.threads`) would change the order of float sums, not the training."""
    from gensynth_course.models.diffusion.schedulers import DDPMScheduler, linear_betas
    from gensynth_course.models.diffusion.unet import UNet

    monkeypatch.setenv("GENSYNTH_SHARE_CORES", "0")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    scheduler = DDPMScheduler(linear_betas(1000))
    images = torch.rand(64, 1, 28, 28) * 2 - 1

    def batches(step, generator):
        return (images[torch.randint(0, 64, (8,), generator=generator)],)

    def loss_fn(m, batch, generator):
        return scheduler.loss(m, batch[0], generator, min_snr_gamma=5.0)

    def run(checkpoint=None, preview=None):
        torch.manual_seed(0)
        model = UNet(channels=(8, 16), blocks=1, patch=2, dropout=0.1)
        fit(model, loss_fn, batches, 12, lr=1e-3, seed=3, ema_decay=0.9, warmup=3, schedule="cosine",
            checkpoint=checkpoint, checkpoint_every=5, preview=preview, preview_every=1, device="cpu")
        return model

    try:
        whole = run()
        checkpoint = tmp_path / "unet.partial.pt"
        with pytest.raises(KeyboardInterrupt, match="interrupted at step 7"):
            run(checkpoint, _interrupt_at(7))
        resumed = run(checkpoint)
    finally:
        torch.set_num_threads(threads)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_ema_tracks_the_average():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(2.0)
    start = ema.model.weight.item()
    for _ in range(50):
        ema.update(model)
    assert ema.model.weight.item() == pytest.approx(2.0, abs=1e-6)
    assert start != 2.0


def test_a_model_trained_from_an_empty_cache_is_the_same_every_time(tmp_cache):
    from gensynth_course.cache import load_or_train

    config = {"seed": 3}

    def train(model, checkpoint):
        return {}

    torch.manual_seed(123)
    first, _ = load_or_train("test", "init", config, lambda: torch.nn.Linear(4, 4), train)
    state = torch.random.get_rng_state()
    second, _ = load_or_train("test", "init2", config, lambda: torch.nn.Linear(4, 4), train)
    assert torch.equal(first.weight, second.weight)
    assert torch.equal(torch.random.get_rng_state(), state)      # the caller's random stream is untouched


def test_weight_decay_shrinks_weight_matrices_only_and_schedules_are_checked():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    before = [p.detach().clone() for p in model.parameters()]
    def batches(step, generator):
        return torch.zeros(1)

    def zero_loss(m, b, generator):                                        # no gradient signal
        return sum(p.sum() for p in m.parameters()) * 0.0
    fit(model, zero_loss, batches, steps=10, lr=0.1, weight_decay=0.5, schedule="cosine", grad_clip=None)
    after = list(model.parameters())
    assert after[0].abs().sum() < before[0].abs().sum()                    # the Linear weight decays
    for b, a in zip(before[1:], after[1:]):                                # its bias and the norm do not
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="schedule"):
        fit(model, zero_loss, batches, steps=1, schedule="linear")


def test_param_groups_take_their_own_learning_rate_and_weight_decay():
    model = torch.nn.ModuleDict({"new": torch.nn.Linear(3, 3, bias=False), "old": torch.nn.Linear(3, 3, bias=False)})
    before = {k: m.weight.detach().clone() for k, m in model.items()}

    def zero_loss(m, b, generator):                                        # only weight decay moves weights
        return sum(p.sum() for p in m.parameters()) * 0.0

    groups = [Objective("loss", zero_loss, lr=0.1, weight_decay=0.5,
                        params=lambda m: [{"params": m["new"].parameters()},
                                          {"params": m["old"].parameters(), "weight_decay": 0.0}])]
    fit(model, groups, lambda step, g: torch.zeros(1), steps=5, grad_clip=None)
    assert model["new"].weight.abs().sum() < before["new"].abs().sum()
    assert torch.equal(model["old"].weight, before["old"])                 # weight decay 0 in its group
    slow = [Objective("loss", zero_loss, lr=0.1, weight_decay=0.5,
                      params=lambda m: [{"params": m["new"].parameters()}, {"params": m["old"].parameters(), "lr": 0.01}])]
    start = {k: m.weight.detach().clone() for k, m in model.items()}
    fit(model, slow, lambda step, g: torch.zeros(1), steps=1, grad_clip=None)
    # AdamW's decoupled decay with no gradient: w ← (1 − lr · λ) w, at each group's own rate
    assert torch.allclose(model["new"].weight, start["new"] * (1 - 0.1 * 0.5))
    assert torch.allclose(model["old"].weight, start["old"] * (1 - 0.01 * 0.5))


def test_a_study_is_found_only_for_the_models_it_measured(tmp_cache):
    models = {"unet": "a4e1221c87-5ca1042d4f"}
    assert cache.load_study("chX", models) is None
    path = cache.save_study("chX", {"fd": {"mean": 1.0, "seeds": [1.0]}}, models)
    assert path.parent == tmp_cache / "studies" and not list(path.parent.glob("*.tmp"))
    assert cache.load_study("chX", models) == {"fd": {"mean": 1.0, "seeds": [1.0]}}
    assert cache.load_study("chX", {"unet": "a4e1221c87-0000000000"}) is None      # other code: not shown
    path.write_text("{not json")
    assert cache.load_study("chX", models) is None                                  # unreadable: as if absent


def test_a_live_preview_does_not_change_the_code_hash():
    """A notebook trains with a LivePreview and the command line without one: the same model, so the
    same cache file (and a study measured by `eval NN` is found by the notebook)."""
    from gensynth_course.notebook import LivePreview

    def trainer(preview):
        def train(model, checkpoint):
            return {"preview": preview is not None}
        return train

    preview = LivePreview(lambda model: torch.zeros(1, 1, 4, 4), "preview", total_steps=10)
    assert cache.code_hash(_build(), trainer(None)) == cache.code_hash(_build(), trainer(preview))


def test_a_training_function_that_closes_over_a_built_in_module_gets_a_hash():
    """A learner's own preview may use `time` or `sys`, modules without a source file: the hash
    follows package modules only and must not fail on them."""
    import sys
    import time

    def preview(model, step):
        print(step, time.perf_counter(), file=sys.stderr)

    def train(model, checkpoint):
        return {"preview": preview}

    assert cache.code_hash(_build(), train) == cache.code_hash(_build(), lambda model, checkpoint: None)
