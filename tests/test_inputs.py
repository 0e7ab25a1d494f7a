"""Every public entry point a learner touches answers a wrong input with one clear line: what was
wrong, and what to do."""

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gensynth_course.__main__ import main
from gensynth_course.data import fashion_mnist as data
from gensynth_course.data import shapes
from gensynth_course.data.tokenizer import Tokenizer, UnknownWordError, caption_list
from gensynth_course.errors import SettingError


def one_line(message: str) -> str:
    assert "\n" not in message.strip(), message
    return message


# ----------------------------------------------------------------------------- 1. the budget


def cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "gensynth_course", *args], capture_output=True, text=True,
                          env={**os.environ, **env})


@pytest.mark.parametrize("value", ["QUICK", " Full ", ""])
def test_budget_names_ignore_case_and_spaces_on_the_command_line(value):
    out = cli("list", GENSYNTH_BUDGET=value)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr


def test_a_wrong_budget_in_the_environment_is_one_line_from_the_command_line():
    out = cli("list", GENSYNTH_BUDGET="fast")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert one_line(out.stderr).strip() == ("python -m gensynth_course: error: GENSYNTH_BUDGET='fast' is not a budget; "
                                            "set it to one of quick, standard, full (or leave it unset for standard).")


def test_every_reader_of_the_budget_normalises_it(monkeypatch):
    from gensynth_course import __main__ as cli_module
    from gensynth_course.budget import budget_from_environment, by_budget, check_budget

    monkeypatch.setenv("GENSYNTH_BUDGET", " QUICK ")
    assert budget_from_environment() == "quick"
    assert check_budget("Full") == "full" and by_budget(1, 2, 3, budget=" STANDARD") == 2
    with pytest.raises(ValueError, match=r"^unknown budget 'fast'; choose one of quick, standard, full\.$"):
        check_budget("fast")
    seen = []
    monkeypatch.setattr(cli_module, "cmd_eval", lambda args: seen.append(args.budget))
    main(["eval", "01"])                                   # the default comes from GENSYNTH_BUDGET
    main(["eval", "01", "--budget", "Full"])
    assert seen == ["quick", "full"]


# ----------------------------------------------------------------------------- 2. Fashion-MNIST


def _fake_copy(folder, compress=True):
    """Four small idx files, registered as "published" in data.CHECKSUMS (patched by the fixture)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 20), ("t10k", 10)):
        images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        labels = (torch.arange(count) % 10).to(torch.uint8)
        for kind, header, payload in (("images-idx3", b"\0\0\x08\x03" + count.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2, images),
                                      ("labels-idx1", b"\0\0\x08\x01" + count.to_bytes(4, "big"), labels)):
            raw = header + payload.numpy().tobytes()
            name = f"{split}-{kind}-ubyte"
            data.CHECKSUMS[name] = hashlib.md5(raw).hexdigest()
            if compress:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return folder


def _truncate(path):
    content = path.read_bytes()
    path.write_bytes(content[:len(content) // 2])


def test_a_truncated_gz_file_is_named_with_what_to_do(nowhere, monkeypatch):
    folder = _fake_copy(nowhere / "mine")
    _truncate(folder / "train-images-idx3-ubyte.gz")
    monkeypatch.setenv("GENSYNTH_DATA", str(folder))
    with pytest.raises(data.FashionMNISTDamaged) as info:
        data.locate_fashion_mnist(download=False)
    assert one_line(str(info.value)) == (
        f"Fashion-MNIST in {folder} (GENSYNTH_DATA) is damaged: train-images-idx3-ubyte.gz is truncated or "
        "corrupt (Compressed file ended before the end-of-stream marker was reached). To fix it, replace the "
        "damaged files with good copies, or point GENSYNTH_DATA to another folder (or unset it).")
    with pytest.raises(data.FashionMNISTDamaged, match="train-images-idx3-ubyte.gz is truncated"):
        data.load_fashion_mnist("train", download=False)          # never a raw EOFError


def test_a_truncated_raw_file_fails_its_checksum_and_the_data_verb_says_so(nowhere, monkeypatch, capsys):
    folder = _fake_copy(nowhere / "mine", compress=False)
    _truncate(folder / "t10k-labels-idx1-ubyte")
    monkeypatch.setenv("GENSYNTH_DATA", str(folder))
    with pytest.raises(SystemExit) as info:
        main(["data", "--no-download"])
    assert one_line(str(info.value.code)) == (
        f"python -m gensynth_course: Fashion-MNIST in {folder} (GENSYNTH_DATA) is damaged: t10k-labels-idx1-ubyte "
        "does not match the published checksum (truncated or altered). To fix it, replace the damaged files with "
        "good copies, or point GENSYNTH_DATA to another folder (or unset it).")


def test_a_damaged_copy_is_skipped_for_a_good_one_with_a_note(nowhere, monkeypatch, capsys):
    damaged = _fake_copy(nowhere / "mine")
    _truncate(damaged / "train-labels-idx1-ubyte.gz")
    monkeypatch.setenv("GENSYNTH_DATA", str(damaged))
    _fake_copy(nowhere / "no-debian")
    assert data.locate_fashion_mnist(download=False) == (data.DEBIAN, nowhere / "no-debian")
    assert len(data.load_fashion_mnist("test", download=False)) == 10
    note = capsys.readouterr().err
    assert note.count("skipped a damaged copy") == 1 and "train-labels-idx1-ubyte.gz is truncated" in note


def test_damage_in_the_debian_package_says_to_reinstall_it(nowhere):
    _truncate(_fake_copy(nowhere / "no-debian") / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(data.FashionMNISTDamaged, match=r"sudo apt-get install --reinstall dataset-fashion-mnist\.$"):
        data.locate_fashion_mnist(download=False)


def test_verification_is_cached_but_sees_a_file_change(nowhere, monkeypatch):
    folder = _fake_copy(nowhere / "mine")
    monkeypatch.setenv("GENSYNTH_DATA", str(folder))
    assert data.locate_fashion_mnist(download=False)[0] == "GENSYNTH_DATA"
    hashed = []
    md5 = hashlib.md5
    monkeypatch.setattr(hashlib, "md5", lambda **kw: hashed.append(1) or md5(**kw))
    data.locate_fashion_mnist(download=False)
    assert hashed == []                                     # the second lookup hashes nothing
    _truncate(folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(data.FashionMNISTDamaged):
        data.locate_fashion_mnist(download=False)


@pytest.mark.skipif(not data.DEBIAN_DIR.is_dir(), reason="the Debian package dataset-fashion-mnist is not installed")
def test_the_published_checksums_fit_the_debian_package_and_catch_its_truncation(tmp_path, monkeypatch):
    assert data._damage(data.DEBIAN, data.DEBIAN_DIR) is None
    for path in data.DEBIAN_DIR.glob("*labels*"):
        shutil.copy(path, tmp_path)
    shutil.copy(data.DEBIAN_DIR / "t10k-images-idx3-ubyte.gz", tmp_path)
    with gzip.open(data.DEBIAN_DIR / "train-images-idx3-ubyte.gz") as f:     # a real file, cut short
        (tmp_path / "train-images-idx3-ubyte").write_bytes(f.read()[:1_000_016])
    assert "train-images-idx3-ubyte does not match the published checksum" in data._damage(data.GENSYNTH_DATA, tmp_path)


# ----------------------------------------------------------------------------- 3. captions


@pytest.mark.parametrize("text", ["", "   ", "!!!"])
def test_a_caption_without_words_is_refused_unless_asked_for(text):
    tok = Tokenizer()
    with pytest.raises(shapes.CaptionError) as info:
        tok.encode([text])
    assert one_line(str(info.value)) == (
        f"the caption {text!r} has no words; describe a scene, e.g. 'a big red circle on the left' (for the "
        "empty caption of classifier-free guidance, pass allow_empty=True).")
    ids, mask = tok.encode([text], allow_empty=True)
    assert ids[0, :3].tolist() == [tok.bos_id, tok.eos_id, tok.pad_id] and tok.decode(ids) == [""]
    with pytest.raises(shapes.CaptionError, match=f"^the caption {text!r} has no words; describe a scene"):
        shapes.parse_caption(text)


def test_digits_and_accented_words_are_reported_whole():
    tok = Tokenizer()
    with pytest.raises(UnknownWordError) as info:
        tok.encode("a big red circle 2")
    assert info.value.word == "2"
    assert one_line(str(info.value)).startswith("unknown word '2' in 'a big red circle 2'. The Shapes vocabulary has")
    with pytest.raises(UnknownWordError) as info:
        tok.encode("a big rëd circle on the left")
    assert info.value.word == "rëd" and "red" in info.value.suggestions
    assert str(info.value).startswith("unknown word 'rëd' in 'a big rëd circle on the left'. Did you mean 'red'")


def test_parse_caption_names_a_misspelt_word():
    with pytest.raises(shapes.CaptionError) as info:
        shapes.parse_caption("a big rde circle on the left")
    assert one_line(str(info.value)).startswith(
        "'a big rde circle on the left': unknown word 'rde' (did you mean 'red'?) and no colour word in")
    with pytest.raises(shapes.CaptionError, match="^parse_caption reads one caption, a string, not list"):
        shapes.parse_caption(["a big red circle on the left"])


def test_a_plain_string_where_a_list_of_captions_belongs_is_refused():
    from gensynth_course.evaluation import evaluator_clip
    from gensynth_course.evaluation.attribute_evaluator import caption_accuracy
    from gensynth_course.experiments import ch05_glide, ch06_xmc_gan

    expected = ("^expected a list of captions but got one string, 'a red circle'; pass a list of captions, "
                r"e.g. \['a red circle'\]\.$")
    for call in (lambda: caption_list("a red circle"),
                 lambda: ch05_glide.generate(None, "a red circle"),
                 lambda: ch05_glide.upsample(None, torch.zeros(1, 3, 32, 32), "a red circle"),
                 lambda: ch05_glide.inpaint(None, torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 32, 32), "a red circle"),
                 lambda: evaluator_clip.embed_texts(None, Tokenizer(), "a red circle"),
                 lambda: ch06_xmc_gan.generate(None, None, "a red circle"),
                 lambda: caption_accuracy(torch.zeros(1, 3, 32, 32), "a red circle")):
        with pytest.raises(ValueError, match=expected):
            call()
    assert caption_list(("a", "b")) == ["a", "b"]


def test_decoding_an_unknown_id_names_it_and_the_range():
    tok = Tokenizer()
    with pytest.raises(ValueError) as info:
        tok.decode(torch.tensor([[1, 99, 2]]))
    assert one_line(str(info.value)) == (f"token id 99 is not in the vocabulary; ids run from 0 to {len(tok) - 1} "
                                         "(were these ids made by another tokenizer?).")


# ----------------------------------------------------------------------------- 4. steps, scales, time steps


@pytest.mark.parametrize("steps", [0, -5, 1001, 2.5])
def test_ddim_sampling_steps_out_of_range_are_refused(steps):
    from gensynth_course.models.diffusion.schedulers import DDIMScheduler, linear_betas, sample

    with pytest.raises(ValueError) as info:
        sample(torch.nn.Identity(), DDIMScheduler(linear_betas()), (1, 1, 4, 4), steps, progress=False)
    assert one_line(str(info.value)) == (f"{steps!r} sampling steps is not allowed; use a whole number from 1 to "
                                         "1000 (the training steps).")


def test_ancestral_sampling_refuses_zero_steps_instead_of_taking_all():
    from gensynth_course.models.diffusion.schedulers import DDPMScheduler, linear_betas, sample

    with pytest.raises(ValueError, match="^0 sampling steps is not allowed; use a whole number from 1 to 1000"):
        sample(torch.nn.Identity(), DDPMScheduler(linear_betas()), (1, 1, 4, 4), 0, progress=False)


@pytest.mark.parametrize("scale", [-1.0, float("nan"), "strong"])
def test_guidance_scales_must_be_numbers_at_least_zero(scale):
    from gensynth_course.models.contrastive.noisy_clip import CLIPGuidance
    from gensynth_course.models.diffusion.guidance import ClassifierFreeGuidance, ClassifierGuidance

    message = (f"^guidance scale {scale!r} is not a number >= 0; use s >= 0 \\(0: unconditional or unguided, "
               r"1: plain conditional, above 1: stronger guidance\)\.$")
    for make in (lambda: ClassifierFreeGuidance(torch.nn.Identity(), scale),
                 lambda: ClassifierGuidance(None, None, scale),
                 lambda: CLIPGuidance(None, None, scale)):
        with pytest.raises(ValueError, match=message):
            make()
    assert ClassifierFreeGuidance(torch.nn.Identity(), 0).scale == 0.0


def test_unet_time_steps_must_be_whole_non_negative_and_one_per_image():
    from gensynth_course.models.diffusion.unet import UNet

    net, x = UNet(channels=(8, 16), patch=2), torch.randn(2, 1, 28, 28)
    with pytest.raises(ValueError) as info:
        net(x, torch.tensor([5.0, 500.0]))
    assert one_line(str(info.value)) == ("t is torch.float32, but time steps are whole numbers; pass an integer tensor, "
                                         "e.g. torch.full((n,), 500) or t.long().")
    with pytest.raises(ValueError, match=r"^t has a negative time step \(-1\); steps run from 0 to T - 1\.$"):
        net(x, torch.tensor([-1, 5]))
    with pytest.raises(ValueError, match="^t has 3 time steps for 2 images; give one per image, or one for all.$"):
        net(x, torch.tensor([1, 2, 3]))
    assert net(x, torch.tensor([7])).shape == x.shape      # one step for all is fine


def test_schedules_refuse_time_steps_they_do_not_have():
    from gensynth_course.models.diffusion.schedulers import DDPMScheduler, linear_betas

    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError) as info:
        DDPMScheduler(linear_betas()).add_noise(x, x, torch.tensor([3, 5000]))
    assert one_line(str(info.value)) == "time steps from 3 to 5000 are out of range: this schedule has steps 0 to 999."


# ----------------------------------------------------------------------------- 5. metrics


class FlatFeatures(torch.nn.Module):
    """A stand-in classifier whose "features" are the first pixels."""

    def features(self, x):
        return x.flatten(1)[:, :3]


def test_fd_refuses_floats_outside_minus_one_to_one_and_nan_images():
    from gensynth_course.evaluation.metrics import fd

    stats = (torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError) as info:
        fd(FlatFeatures(), torch.full((4, 1, 28, 28), 200.0), stats)
    assert one_line(str(info.value)) == ("float images must lie in [-1, 1], but these run from 200 to 200; pass uint8 "
                                         "images, or scale floats to [-1, 1] (0-255 floats: x / 127.5 - 1).")
    with pytest.raises(ValueError, match="^images contain NaN or infinite values; check what produced them"):
        fd(FlatFeatures(), torch.full((4, 1, 28, 28), float("nan")), stats)
    uint8 = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert fd(FlatFeatures(), uint8, stats) >= 0            # uint8 and [-1, 1] floats still work
    assert fd(FlatFeatures(), torch.rand(6, 1, 28, 28) * 2 - 1, stats) >= 0


def test_fd_of_a_single_image_asks_for_more():
    from gensynth_course.evaluation.metrics import fd

    with pytest.raises(ValueError) as info:
        fd(FlatFeatures(), torch.zeros(1, 1, 28, 28), torch.zeros(5, 1, 28, 28))
    assert one_line(str(info.value)) == ("a Gaussian needs at least 2 images to fit, got 1; pass more images "
                                         "(hundreds or more for a stable Fréchet distance).")


def test_retrieval_measures_refuse_what_they_cannot_define():
    from gensynth_course.evaluation.metrics import mean_average_precision, recall_at_k, recall_of_relevant_at_k

    similarity, nothing = torch.rand(3, 4), torch.zeros(3, 4, dtype=torch.bool)
    message = ("^no query has a relevant candidate, so the measure is undefined; check the relevance matrix "
               r"\(built from the right lists\? transposed\?\)\.$")
    with pytest.raises(ValueError, match=message):
        mean_average_precision(similarity, nothing)
    with pytest.raises(ValueError, match=message):
        recall_of_relevant_at_k(similarity, nothing, 1)
    with pytest.raises(ValueError, match=r"^k=5 is out of range; use 1 to 4 \(the number of candidates\)\.$"):
        recall_at_k(similarity, nothing, 5)
    with pytest.raises(ValueError, match=r"^similarity \(3, 4\) and relevant \(4, 3\) must be matrices of the same shape"):
        recall_at_k(similarity, nothing.T, 1)


def test_diversity_needs_a_group_of_two():
    from gensynth_course.evaluation.metrics import mean_pairwise_distance

    with pytest.raises(ValueError, match="^no group has two or more members, so there are no distances to average"):
        mean_pairwise_distance(torch.randn(3, 2), torch.tensor([0, 1, 2]))


# ----------------------------------------------------------------------------- 6. Ctrl-C


def _interrupted_fit(checkpoint):
    from gensynth_course.train import fit

    def batches(step, generator):
        return torch.randn(4, 2, generator=generator), torch.randn(4, 1, generator=generator)

    def loss(model, batch, generator):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return torch.nn.functional.mse_loss(model(batch[0]), batch[1])

    calls = []
    fit(torch.nn.Linear(2, 1), loss, batches, 10, checkpoint=checkpoint, checkpoint_every=0)


def test_an_interrupted_run_says_cell_in_a_notebook_and_command_on_the_command_line(tmp_path, monkeypatch, capsys):
    from gensynth_course import __main__ as cli_module

    with pytest.raises(KeyboardInterrupt, match=r"interrupted at step 2; .* Run the same cell again to resume\.$"):
        _interrupted_fit(tmp_path / "notebook.partial.pt")
    monkeypatch.setattr(cli_module, "cmd_eval", lambda args: _interrupted_fit(tmp_path / "cli.partial.pt"))
    with pytest.raises(SystemExit) as info:
        main(["eval", "01"])
    assert info.value.code == 130
    err = capsys.readouterr().err                           # the progress bars, then the message
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("python -m gensynth_course: training interrupted at step 2")
    assert last.endswith("Run the same command again to resume.")


def test_an_interrupt_outside_training_gets_a_command_line_message(monkeypatch, capsys):
    from gensynth_course import __main__ as cli_module

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "cmd_eval", interrupted)
    with pytest.raises(SystemExit) as info:
        main(["eval", "01"])
    assert info.value.code == 130
    assert one_line(capsys.readouterr().err).strip() == (
        "python -m gensynth_course: interrupted. Run the same command again to continue: trained models are "
        "cached, and training resumes from its last checkpoint.")


# ----------------------------------------------------------------------------- 7. where the course works


def test_a_cache_path_that_is_a_file_or_not_writable_is_one_line_and_nothing_is_written(tmp_path, monkeypatch):
    """GENSYNTH_CACHE pointed at a file (or below one), or at a folder this user cannot write: the
    command line says so in one line, naming GENSYNTH_CACHE, what is wrong and what to do."""
    from gensynth_course import cache

    a_file = tmp_path / "hostname"
    a_file.write_text("not a folder\n")
    for value in (a_file, a_file / "deeper" / "cache"):
        out = cli("eval", "04", "--budget", "quick", GENSYNTH_CACHE=str(value))
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert one_line(out.stderr.strip().splitlines()[-1]) == (
            f"python -m gensynth_course: error: GENSYNTH_CACHE='{value}' cannot hold the model cache: {a_file} is a "
            f"file, not a folder; set GENSYNTH_CACHE to a folder you can write (it is created if missing), or unset "
            f"it to use {cache._default_cache_dir()}.")
    assert a_file.read_text() == "not a folder\n" and sorted(tmp_path.iterdir()) == [a_file]
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setenv("GENSYNTH_CACHE", str(locked / "cache"))
    monkeypatch.setattr(cache.os, "access", lambda path, mode: Path(path) != locked)
    cache.check_cache_dir.cache_clear()
    with pytest.raises(SettingError, match=rf"^GENSYNTH_CACHE='{locked}/cache' cannot hold the model cache: "
                                           rf"{locked} is not writable by this user; set GENSYNTH_CACHE to a folder"):
        cache.cache_dir()
    assert not (locked / "cache").exists()
    cache.check_cache_dir.cache_clear()


@pytest.mark.parametrize("asked, wants", [("cuda", "a CUDA GPU"), ("cuda:3", "a CUDA GPU"),
                                          ("mps", "Apple's Metal GPU (MPS)")])
def test_a_device_this_machine_lacks_is_one_line_naming_what_is_there(asked, wants, monkeypatch):
    """GENSYNTH_DEVICE=cuda on a machine without a GPU (or mps off a Mac) is refused when the device
    is chosen, before any model moves, with what was asked, what is there and how to unset it."""
    from gensynth_course import device

    monkeypatch.setattr(device.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_mps_available", lambda: False)
    monkeypatch.setattr(device, "_chosen", None)
    monkeypatch.setenv("GENSYNTH_DEVICE", asked)
    with pytest.raises(SettingError) as error:
        device.pick_device()
    assert one_line(str(error.value)) == (f"GENSYNTH_DEVICE='{asked}' asks for {wants}, but this machine has only the "
                                          "CPU; unset GENSYNTH_DEVICE to let the course choose, or set it to cpu.")
    monkeypatch.setattr(device, "_chosen", None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_the_command_line_answers_a_missing_gpu_in_one_line():
    out = cli("eval", "04", "--budget", "quick", GENSYNTH_DEVICE="cuda")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "python -m gensynth_course: error: GENSYNTH_DEVICE='cuda' asks for a CUDA GPU, but this machine has only the "
        "CPU; unset GENSYNTH_DEVICE to let the course choose, or set it to cpu.")


def test_a_run_limited_by_time_shows_seconds_steps_and_rate_never_a_made_up_total(monkeypatch, capsys):
    """Chapter 01's drift runs train for a number of seconds with a step ceiling of ten million: the
    bar counts seconds of training out of the budget, with the steps so far and steps per second."""
    from gensynth_course.train import fit

    monkeypatch.setenv("GENSYNTH_HEADLESS", "1")
    history = fit(torch.nn.Linear(2, 1), lambda m, batch, g: m(batch[0]).pow(2).mean(),
                  lambda k, g: (torch.randn(4, 2, generator=g),), 10**7, seconds=2, desc="drift run")
    shown = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    match = re.fullmatch(r"drift run: +\d+%\|[^|]*\| [12]/2 s of training, step (\d+), [\d.]+ steps/s, loss=[\d.]+", shown)
    assert match, shown
    assert int(match[1]) == (history["steps"] - 1) // 10 * 10 + 1        # the last step whose loss it shows
