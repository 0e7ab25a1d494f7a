"""The interval helper against distributions whose answers are known in closed form."""

import math

import numpy as np
import pytest
import torch

from gensynth_course.evaluation import stats
from gensynth_course.evaluation.metrics import frechet_distance, frechet_distance_of_rows, gaussian_stats, sqrtm_psd


def test_an_accuracy_interval_has_the_binomial_width():
    p, n = 0.3, 2000
    hits = np.random.default_rng(1).random(n) < p
    result = stats.interval(hits)
    assert result["n"] == n and result["ci_low"] < result["value"] < result["ci_high"]
    assert abs(result["value"] - p) < 0.03
    normal_width = 2 * 1.96 * math.sqrt(p * (1 - p) / n)    # the normal approximation, exact enough here
    assert (result["ci_high"] - result["ci_low"]) == pytest.approx(normal_width, rel=0.1)


def test_a_share_of_all_hits_or_all_misses_gets_the_exact_binomial_interval_not_a_zero_width():
    # Every resample of 60 hits out of 60 is 60 out of 60: the bootstrap would say [1, 1]. The exact
    # (Clopper–Pearson) interval is [(α/2)^(1/n), 1], and mirrored for no hits at all.
    hits = stats.interval(np.ones(60))
    assert hits["value"] == 1.0 and hits["ci_high"] == 1.0
    assert hits["ci_low"] == pytest.approx(0.025 ** (1 / 60), rel=1e-9)
    misses = stats.interval(np.zeros(300))
    assert misses["value"] == 0.0 and misses["ci_low"] == 0.0
    assert misses["ci_high"] == pytest.approx(1 - 0.025 ** (1 / 300), rel=1e-9)
    constant = stats.interval(np.full(50, 0.3))            # not a share: a constant figure stays exact
    assert constant["ci_low"] == constant["ci_high"] == pytest.approx(0.3)


def test_intervals_cover_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    covered = [(r := stats.interval(rng.exponential(2.0, 60), seed=k))["ci_low"] <= 2.0 <= r["ci_high"]
               for k in range(200)]
    assert 0.89 <= np.mean(covered) <= 0.99


def test_pairing_cancels_the_noise_two_methods_share():
    rng = np.random.default_rng(3)
    shared = rng.normal(0, 5, 400)                            # e.g. how hard each caption is
    a, b = shared + 0.3 + rng.normal(0, 0.1, 400), shared + rng.normal(0, 0.1, 400)
    paired, unpaired = stats.difference(a, b), stats.difference(a, b, paired=False)
    by_rows = stats.difference(a, b, statistic=np.mean)        # the same through the general path
    assert (by_rows["ci_low"], by_rows["ci_high"]) == pytest.approx((paired["ci_low"], paired["ci_high"]), abs=0.02)
    assert paired["value"] == pytest.approx(unpaired["value"])
    assert paired["ci_low"] < 0.3 < paired["ci_high"] and stats.excludes_zero(paired)
    assert not stats.excludes_zero(unpaired)                  # the same data, its shared noise not cancelled
    assert paired["ci_high"] - paired["ci_low"] < 0.1 * (unpaired["ci_high"] - unpaired["ci_low"])


def test_a_constant_difference_has_a_zero_width_interval():
    a = np.arange(50.0)
    result = stats.difference(a + 0.5, a)
    assert result["value"] == result["ci_low"] == result["ci_high"] == pytest.approx(0.5)


def test_a_figure_at_its_floor_keeps_an_interval_when_every_resample_lies_above_it():
    """A Fréchet distance of a sample to its own Gaussian is zero, and every resample is farther:
    BCa's bias correction is infinite there, and the percentile interval of the resamples stands in
    for it instead of a zero width that would claim certainty."""
    rows = np.random.default_rng(0).normal(size=(300, 4))
    own = gaussian_stats(torch.tensor(rows))

    def fd(picked):
        return float(frechet_distance(*gaussian_stats(torch.tensor(picked)), *own))

    result = stats.interval(rows, statistic=fd)
    assert result["value"] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 <= result["ci_low"] < result["ci_high"]
    # for N(0, I) in 4 dimensions the mean's part of a resample's distance, ‖Δμ‖², is about χ²₄ / 300
    # (its 97.5 % point 11.1 / 300 ≈ 0.037); the covariance's part adds less: a few hundredths in all
    assert 0.01 < result["ci_high"] < 0.2


def test_a_set_statistic_takes_rows_a_frechet_distance_for_instance():
    rng = np.random.default_rng(4)
    reference = (torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    rows = rng.normal(0, 1, (500, 3)) + np.array([1.0, 0.0, 0.0])   # true d² = 1 (a unit shift of the mean)

    def fd(r):
        return frechet_distance(*gaussian_stats(torch.from_numpy(r)), *reference)

    result = stats.interval(rows, fd)
    assert result["value"] == pytest.approx(fd(rows)) and result["ci_low"] < 1.0 < result["ci_high"]


@pytest.mark.parametrize("n", [60, 400])
def test_a_counted_statistic_gives_the_intervals_of_computing_each_resample_alone(n):
    # The counted form (every resample as counts of the rows, a block at a time) is a way to compute,
    # not another statistic: interval, paired and unpaired differences agree with the plain form.
    rng = np.random.default_rng(n)
    reference = torch.from_numpy(rng.normal(0, 1, (2000, 16)))
    mu2, s2 = gaussian_stats(reference)
    half = sqrtm_psd(s2)
    a, b = rng.normal(1.0, 1.1, (n, 16)), rng.normal(0.5, 1.3, (n, 16))   # far enough for BCa to hold
    counted = stats.counted(lambda r, counts=None: frechet_distance_of_rows(r, mu2, s2, half, counts))

    def plain(r):
        return frechet_distance_of_rows(r, mu2, s2, half)

    for got, want in ((stats.interval(a, counted), stats.interval(a, plain)),
                      (stats.difference(a, b, counted), stats.difference(a, b, plain)),
                      (stats.difference(a, b[: n // 2], counted, paired=False),
                       stats.difference(a, b[: n // 2], plain, paired=False))):
        assert got["ci_low"] < got["value"] < got["ci_high"]
        for key in ("value", "ci_low", "ci_high"):
            assert got[key] == pytest.approx(want[key], rel=1e-7), key    # √(round-off) of zero eigenvalues


def test_seeds_get_the_t_interval():
    result = stats.over_seeds([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)             # t_{0.975, 2} · s / √n with s = 1
    assert result["seeds"] == [1.0, 2.0, 3.0] and result["mean"] == 2.0
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((2 - half, 2 + half))
    one = stats.over_seeds([0.7])
    assert one["ci_low"] is None and not stats.excludes_zero(one)
    assert stats.describe(one) == "0.700 (one seed, no interval)"
    assert stats.describe(result, 2) == f"2.00 [{2 - half:.2f}, {2 + half:.2f}]"


def test_a_direction_needs_every_interval_on_the_same_side_of_zero():
    above, below = {"ci_low": 0.1, "ci_high": 0.3}, {"ci_low": -0.3, "ci_high": -0.1}
    across = {"ci_low": -0.1, "ci_high": 0.2}
    assert stats.direction(above) == "higher" and stats.direction(below) == "lower"
    assert stats.direction(above, above) == "higher"
    assert stats.direction(above, across) == stats.direction(above, below) == "no difference"
    assert stats.direction(stats.over_seeds([0.7])) == "no difference"      # one seed: no interval


def test_mistakes_get_one_clear_line():
    with pytest.raises(ValueError, match="at least 2 measured items, got 1"):
        stats.interval([0.5])
    with pytest.raises(ValueError, match="NaN or infinity"):
        stats.interval([0.5, float("nan")])
    with pytest.raises(ValueError, match="as many items in both, got 3 and 2"):
        stats.difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="one finite figure per training seed"):
        stats.over_seeds([])


def test_the_variance_ratio_has_the_f_interval():
    ratio = stats.variance_ratio([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])      # variances 1 and 4
    assert ratio["value"] == pytest.approx(0.25) and ratio["n"] == [3, 3]
    # F(2, 2) has the CDF x / (1 + x), so its 2.5 % and 97.5 % quantiles are 1/39 and 39
    assert ratio["ci_low"] == pytest.approx(0.25 / 39) and ratio["ci_high"] == pytest.approx(0.25 * 39)
    for a, b in (([1.0], [1.0, 2.0]), ([1.0, 2.0], [3.0, 3.0]), ([1.0, float("nan")], [1.0, 2.0])):
        with pytest.raises(ValueError, match="variance_ratio"):
            stats.variance_ratio(a, b)
