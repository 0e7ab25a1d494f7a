"""Every chapter exercise: the reference solution passes its checker, a wrong answer does not."""

import torch

from gensynth_course.assignments import solutions
from gensynth_course.course import chapter
from gensynth_course.exercises import ch01_ddpm
from gensynth_course.models.diffusion.schedulers import DDPMScheduler

sol = solutions(chapter("01"))


def test_chapter01_solutions_pass(capsys):
    assert ch01_ddpm.check_alpha_bars(sol.alpha_bars)
    assert ch01_ddpm.check_forward_sample(sol.forward_sample)
    assert ch01_ddpm.check_posterior_variance(sol.posterior_variance)
    assert ch01_ddpm.check_ddim_step(sol.ddim_step)
    assert ch01_ddpm.check_snr_halfway(sol.snr_halfway())
    assert ch01_ddpm.check_snr_halfway(sol.snr_halfway)                  # the step, or a function giving it
    assert capsys.readouterr().out.count("correct") == 6


def test_chapter01_wrong_answers_fail_with_a_hint(capsys):
    assert not ch01_ddpm.check_alpha_bars(lambda b: torch.cumsum(1 - b, 0))
    assert not ch01_ddpm.check_forward_sample(lambda x0, noise, ab: x0 + noise)
    assert not ch01_ddpm.check_posterior_variance(lambda b: b)
    assert not ch01_ddpm.check_ddim_step(lambda x, e, a, p: 1 / 0)
    assert not ch01_ddpm.check_snr_halfway(10)
    out = capsys.readouterr().out
    assert out.count("not yet") == 5 and "ZeroDivisionError" in out


def test_a_function_that_calls_the_package_does_not_count(capsys):
    """The chapters show the package's code: calling it is not solving the exercise."""
    assert not ch01_ddpm.check_alpha_bars(lambda betas: DDPMScheduler(betas).alpha_bars)
    out = capsys.readouterr().out
    assert "not yet" in out and "calls the course's own gensynth_course.models.diffusion.schedulers" in out
    assert not ch01_ddpm.check_snr_halfway(lambda: len(DDPMScheduler(torch.linspace(1e-4, 0.02, 1000)).alpha_bars) // 4)
    assert "calls the course's own" in capsys.readouterr().out


def test_chapter02_solutions_pass(capsys):
    from gensynth_course.exercises import ch02_vqgan
    sol2 = solutions(chapter("02"))

    assert ch02_vqgan.check_nearest_codes(sol2.nearest_codes)
    assert ch02_vqgan.check_straight_through(sol2.straight_through)
    assert ch02_vqgan.check_vq_loss(sol2.vq_loss)
    assert ch02_vqgan.check_perplexity(sol2.perplexity)
    assert ch02_vqgan.check_hinge_d_loss(sol2.hinge_d_loss)
    assert capsys.readouterr().out.count("correct") == 5


def test_chapter02_wrong_answers_fail_with_a_hint(capsys):
    from torch.nn import functional as F

    from gensynth_course.exercises import ch02_vqgan

    assert not ch02_vqgan.check_nearest_codes(lambda z, e: (z @ e.T).argmax(1))
    assert not ch02_vqgan.check_straight_through(lambda z, e: e)
    assert not ch02_vqgan.check_vq_loss(lambda z, e, b: b * F.mse_loss(e, z.detach()) + F.mse_loss(z, e.detach()))
    assert not ch02_vqgan.check_perplexity(lambda counts: float((counts > 0).sum()))
    assert not ch02_vqgan.check_hinge_d_loss(lambda r, f: (f - r).mean())
    out = capsys.readouterr().out
    assert out.count("not yet") == 5 and "wrong term" in out


def test_chapter03_solutions_pass(capsys):
    from gensynth_course.exercises import ch03_guided_diffusion
    sol3 = solutions(chapter("03"))

    assert ch03_guided_diffusion.check_cfg_combine(sol3.cfg_combine)
    assert ch03_guided_diffusion.check_drop_labels(sol3.drop_labels)
    assert ch03_guided_diffusion.check_classifier_guided_eps(sol3.classifier_guided_eps)
    assert ch03_guided_diffusion.check_respaced_betas(sol3.respaced_betas)
    assert capsys.readouterr().out.count("correct") == 7      # cfg_combine checks three scales, respacing two


def test_chapter03_wrong_answers_fail_with_a_hint(capsys):
    import math

    from gensynth_course.exercises import ch03_guided_diffusion

    assert not ch03_guided_diffusion.check_cfg_combine(lambda c, u, s: c + s * (c - u))
    assert not ch03_guided_diffusion.check_drop_labels(lambda y, p, null, g: y)
    assert not ch03_guided_diffusion.check_classifier_guided_eps(lambda e, grad, ab, s: e + s * math.sqrt(1 - ab) * grad)
    assert not ch03_guided_diffusion.check_respaced_betas(lambda ab, kept: 1 - ab[kept] / ab[kept - 1].clamp(min=1e-9))
    out = capsys.readouterr().out
    assert out.count("not yet") == 5 and "0.0% of the labels" in out


def test_chapter04_solutions_pass(capsys):
    from gensynth_course.exercises import ch04_clip
    sol4 = solutions(chapter("04"))

    assert ch04_clip.check_symmetric_infonce(sol4.symmetric_infonce)
    assert ch04_clip.check_clamped_scale(sol4.clamped_scale)
    assert ch04_clip.check_recall_at_1(sol4.recall_at_1)
    assert ch04_clip.check_prompt_ensemble(sol4.prompt_ensemble)
    assert capsys.readouterr().out.count("correct") == 7      # clamped_scale checks four values


def test_chapter04_wrong_answers_fail_with_a_hint(capsys):
    import torch
    from torch.nn import functional as F

    from gensynth_course.exercises import ch04_clip

    assert not ch04_clip.check_symmetric_infonce(lambda logits: F.cross_entropy(logits, torch.arange(len(logits))))
    assert not ch04_clip.check_clamped_scale(lambda t: t.exp().clamp(max=4.6))
    assert not ch04_clip.check_recall_at_1(lambda s: (s.argmax(0) == 0).float().mean())
    assert not ch04_clip.check_prompt_ensemble(lambda z: z.mean(0))
    out = capsys.readouterr().out
    assert out.count("not yet") >= 4 and "norm" in out


def test_chapter05_solutions_pass(capsys):
    from gensynth_course.exercises import ch05_glide
    sol5 = solutions(chapter("05"))

    assert ch05_glide.check_clip_score(sol5.clip_score)
    assert ch05_glide.check_inpainting_condition(sol5.inpainting_condition)
    assert ch05_glide.check_replace_known_region(sol5.replace_known_region)
    assert ch05_glide.check_upsampler_condition(sol5.upsampler_condition)
    assert capsys.readouterr().out.count("correct") == 4


def test_chapter05_wrong_answers_fail_with_a_hint(capsys):
    import torch

    from gensynth_course.exercises import ch05_glide

    assert not ch05_glide.check_clip_score(lambda i, t, s: s * (i @ t.T).diagonal())
    assert not ch05_glide.check_inpainting_condition(lambda x, m: torch.cat([x, m], 1))
    assert not ch05_glide.check_replace_known_region(lambda x, k, m: (1 - m) * x + m * k)
    assert not ch05_glide.check_upsampler_condition(lambda low, size: torch.nn.functional.interpolate(low, size=(size, size)))
    out = capsys.readouterr().out
    assert out.count("not yet") == 4 and "normalise" in out


def test_chapter06_solutions_pass(capsys):
    from gensynth_course.exercises import ch06_xmc_gan
    sol6 = solutions(chapter("06"))

    assert ch06_xmc_gan.check_image_sentence_loss(sol6.image_sentence_loss)
    assert ch06_xmc_gan.check_word_region_score(sol6.word_region_score)
    assert ch06_xmc_gan.check_hinge_losses(sol6.hinge_losses)
    assert ch06_xmc_gan.check_self_modulation(sol6.self_modulation)
    assert capsys.readouterr().out.count("correct") == 4


def test_chapter06_wrong_answers_fail_with_a_hint(capsys):
    import torch
    from torch.nn import functional as F

    from gensynth_course.exercises import ch06_xmc_gan

    assert not ch06_xmc_gan.check_image_sentence_loss(lambda i, s, tau: F.cross_entropy(i @ s.T / tau, torch.arange(len(i))))
    assert not ch06_xmc_gan.check_word_region_score(lambda r, w, rho1, rho2, tau: (F.normalize(w, dim=-1) @ F.normalize(r, dim=-1).T).max() / tau)
    assert not ch06_xmc_gan.check_hinge_losses(lambda r, f: ((1 - r).mean() + (1 + f).mean(), -f.mean()))
    assert not ch06_xmc_gan.check_self_modulation(lambda h, g, b: g[..., None, None] * h + b[..., None, None])
    out = capsys.readouterr().out
    assert out.count("not yet") == 4 and "normalise" in out


def test_chapter07_solutions_pass(capsys):
    from gensynth_course.exercises import ch07_audioclip
    sol7 = solutions(chapter("07"))

    assert ch07_audioclip.check_power_spectrogram(sol7.power_spectrogram)
    assert ch07_audioclip.check_add_noise(sol7.add_noise)
    assert ch07_audioclip.check_audioclip_loss(sol7.audioclip_loss)
    assert ch07_audioclip.check_average_precision(sol7.average_precision)
    assert capsys.readouterr().out.count("correct") == 4


def test_chapter07_wrong_answers_fail_with_a_hint(capsys):
    import torch

    from gensynth_course.exercises import ch07_audioclip

    ce = torch.nn.functional.cross_entropy
    assert not ch07_audioclip.check_power_spectrogram(lambda w, n, h: torch.fft.rfft(w.unfold(0, n, h)).abs().pow(2).T)
    assert not ch07_audioclip.check_add_noise(lambda w, snr, noise: w + noise * 10 ** (-snr / 20))
    assert not ch07_audioclip.check_audioclip_loss(lambda a, i, t, s1, s2, s3: ce(s1 * a @ i.T, torch.arange(len(a)))
                                         + ce(s2 * a @ t.T, torch.arange(len(a))) + ce(s3 * i @ t.T, torch.arange(len(a))))
    assert not ch07_audioclip.check_average_precision(lambda s, r: r[s.argsort(descending=True)][:1].float().mean())
    out = capsys.readouterr().out
    assert out.count("not yet") == 4 and "reflect" in out


def test_every_checker_of_a_chapter_is_an_exercise_of_its_assignment():
    """The assignment is read from the chapter: its exercises are the chapter's checked cells, in
    order, each with a reference solution, a solution region and a hidden test."""
    import importlib

    from gensynth_course import assignments

    for c in assignments.with_exercises():
        module = importlib.import_module(f"gensynth_course.exercises.{assignments.module_name(c)}")
        found = assignments.exercises(c)
        assert sorted(f"check_{e.name}" for e in found) == sorted(n for n in dir(module) if n.startswith("check_"))
        notebook = assignments.source_notebook(c)
        sources = [cell.source for cell in notebook.cells]
        for e in found:
            assert any(s.startswith(f"def {e.name}(") and "### BEGIN SOLUTION" in s for s in sources)
            assert f"### BEGIN HIDDEN TESTS\nassert check.check_{e.name}({e.name})" in "\n".join(sources)
    assert [e.returns_value for e in assignments.exercises(chapter("01"))] == [False, False, True, False, False]


def test_chapter08_solutions_pass(capsys):
    from gensynth_course.exercises import ch08_semantic_synthesis
    sol8 = solutions(chapter("08"))

    assert ch08_semantic_synthesis.check_one_hot_maps(sol8.one_hot_maps)
    assert ch08_semantic_synthesis.check_map_from_coverage(sol8.map_from_coverage)
    assert ch08_semantic_synthesis.check_window_corner(sol8.window_corner)
    assert capsys.readouterr().out.count("correct") == 3


def test_chapter08_wrong_answers_fail_with_a_hint(capsys):
    from gensynth_course.exercises import ch08_semantic_synthesis

    assert not ch08_semantic_synthesis.check_one_hot_maps(lambda m, k: torch.nn.functional.one_hot(m, k).float())
    assert not ch08_semantic_synthesis.check_map_from_coverage(lambda c, k: torch.where(c[0] > 0.5, k[0], 0))
    assert not ch08_semantic_synthesis.check_window_corner(lambda i, j, h, w, n: (i - n // 2, j - n // 2))
    out = capsys.readouterr().out
    assert out.count("not yet") == 3 and "clamp" in out and "dimension 1" in out
