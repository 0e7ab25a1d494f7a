"""Every chapter exercise: the reference solution passes its checker, a wrong answer does not."""

import torch

from gensynth_course.exercises import ch01, solutions_ch01 as sol


def test_chapter01_solutions_pass(capsys):
    assert ch01.check_alpha_bars(sol.alpha_bars)
    assert ch01.check_forward_sample(sol.forward_sample)
    assert ch01.check_posterior_variance(sol.posterior_variance)
    assert ch01.check_ddim_step(sol.ddim_step)
    assert ch01.check_snr_halfway(sol.snr_halfway())
    assert capsys.readouterr().out.count("correct") == 5


def test_chapter01_wrong_answers_fail_with_a_hint(capsys):
    assert not ch01.check_alpha_bars(lambda b: torch.cumsum(1 - b, 0))
    assert not ch01.check_forward_sample(lambda x0, noise, ab: x0 + noise)
    assert not ch01.check_posterior_variance(lambda b: b)
    assert not ch01.check_ddim_step(lambda x, e, a, p: 1 / 0)
    assert not ch01.check_snr_halfway(10)
    out = capsys.readouterr().out
    assert out.count("not yet") == 5 and "ZeroDivisionError" in out
