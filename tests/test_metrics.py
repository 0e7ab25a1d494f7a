"""Fréchet distance, KID and the FD protocol against closed forms."""

import pytest
import torch

from gensynth_course.evaluation import metrics
from gensynth_course.evaluation.metrics import (FashionFD, frechet_distance, frechet_distance_of_rows, gaussian_stats, kid,
                                                kept_features, sqrtm_psd)


def test_identical_gaussians_are_at_distance_zero():
    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(0)).double()
    mu, sigma = gaussian_stats(x)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_diagonal_covariances_match_the_closed_form():
    # For diagonal Σ the distance is ‖μ1 − μ2‖² + Σ_i (√a_i − √b_i)².
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum()
    got = frechet_distance(mu1.double(), torch.diag(a).double(), mu2.double(), torch.diag(b).double())
    assert got == pytest.approx(expected.item(), rel=1e-9)


def test_general_covariances_match_a_matrix_square_root():
    g = torch.Generator().manual_seed(1)
    A, B = torch.randn(4, 4, generator=g).double(), torch.randn(4, 4, generator=g).double()
    s1, s2 = A @ A.T + 0.1 * torch.eye(4, dtype=torch.float64), B @ B.T
    mu = torch.zeros(4, dtype=torch.float64)
    vals = torch.linalg.eigvals(s1 @ s2).real.clamp(min=0)
    expected = torch.trace(s1) + torch.trace(s2) - 2 * vals.sqrt().sum()
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("n", [3, 12, 40])
def test_the_distance_of_rows_equals_the_distance_of_their_gaussian_with_fewer_or_more_rows_than_features(n):
    # Fewer rows than features: the N × N spectrum; as many or more: Σ_1's own. Both are the same
    # distance, up to the √(round-off) that each of Σ_1's exact zero eigenvalues adds to the D × D one.
    g = torch.Generator().manual_seed(n)
    rows = torch.randn(n, 12, generator=g).double() * torch.linspace(0.1, 3, 12).double() + 0.5
    B = torch.randn(12, 12, generator=g).double()
    mu2, s2 = torch.randn(12, generator=g).double(), B @ B.T / 12
    expected = frechet_distance(*gaussian_stats(rows), mu2, s2)
    assert frechet_distance_of_rows(rows.numpy(), mu2, s2, sqrtm_psd(s2)) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("n", [6, 40])
def test_counted_sets_of_rows_are_the_distances_of_those_rows_repeated(n):
    # A bootstrap resample holds each row as many times as it was drawn: the counted form must give,
    # for every set at once, the distance of the rows written out that many times.
    g = torch.Generator().manual_seed(n)
    rows = torch.randn(n, 12, generator=g).double() * torch.linspace(0.1, 3, 12).double() + 0.5
    B = torch.randn(12, 12, generator=g).double()
    mu2, s2 = torch.randn(12, generator=g).double(), B @ B.T / 12
    counts = torch.randint(0, 3, (5, n), generator=g)
    counts[:, :2] += 1                                   # at least two rows in every set
    counts[0] = 1                                        # and the set itself
    got = frechet_distance_of_rows(rows.numpy(), mu2, s2, sqrtm_psd(s2), counts.numpy())
    assert got.shape == (5,)
    for c, distance in zip(counts, got):
        repeated = rows.repeat_interleave(c, dim=0)
        assert distance == pytest.approx(frechet_distance_of_rows(repeated.numpy(), mu2, s2, sqrtm_psd(s2)), rel=1e-7)
    assert got[0] == pytest.approx(frechet_distance(*gaussian_stats(rows), mu2, s2), rel=1e-7)


def test_reference_features_are_kept_for_these_weights_and_images_only(tmp_cache, monkeypatch):
    from gensynth_course.evaluation.fashion_classifier import FashionClassifier

    torch.manual_seed(0)
    classifier = FashionClassifier().eval()
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    first = kept_features(classifier, images)
    assert torch.equal(first, metrics.features(classifier, images))
    assert len(list((tmp_cache / "features").glob("*.pt"))) == 1

    computed = []
    monkeypatch.setattr(metrics, "features", lambda c, x: computed.append(1) or torch.zeros(len(x), 128).double())
    assert torch.equal(kept_features(classifier, images), first) and not computed        # read back, not computed
    kept_features(classifier, images[:5])                                               # other images
    with torch.no_grad():
        classifier.body[0][1].running_mean.add_(1.0)         # a buffer changed: the features would change
    kept_features(classifier, images)
    assert len(computed) == 2 and len(list((tmp_cache / "features").glob("*.pt"))) == 3
    for path in (tmp_cache / "features").glob("*.pt"):
        path.write_bytes(b"not a checkpoint")                                          # unreadable: computed again
    kept_features(classifier, images)
    assert len(computed) == 3


def test_precision_at_k_and_mean_average_precision_on_hand_made_rankings():
    from gensynth_course.evaluation.metrics import (mean_average_precision, precision_at_k, recall_at_k,
                                                    recall_of_relevant_at_k)

    # query 0 ranks candidates 2, 0, 3, 1 and the relevant ones are 0 and 1: hits at ranks 2 and 4
    # query 1 ranks 1, 3, 0, 2 and only 1 is relevant: a hit at rank 1
    similarity = torch.tensor([[0.8, 0.1, 0.9, 0.5], [0.3, 0.9, 0.2, 0.4]])
    relevant = torch.tensor([[True, True, False, False], [False, True, False, False]])
    assert precision_at_k(similarity, relevant, 1) == 0.5                     # wrong top for query 0
    assert precision_at_k(similarity, relevant, 2) == (0.5 + 0.5) / 2
    # IR recall: query 0 finds 0 of its 2 relevant in the top 1 and 1 of 2 in the top 2; query 1 finds its only one
    assert recall_of_relevant_at_k(similarity, relevant, 1) == (0 + 1) / 2
    assert recall_of_relevant_at_k(similarity, relevant, 2) == (1 / 2 + 1) / 2
    assert recall_at_k(similarity, relevant, 2) == 1.0                        # CLIP's hit rate: both hit by rank 2
    ap0 = (1 / 2 + 2 / 4) / 2                                                  # precision at ranks 2 and 4
    assert abs(mean_average_precision(similarity, relevant) - (ap0 + 1.0) / 2) < 1e-12
    # a query without relevant candidates is left out
    assert abs(mean_average_precision(torch.cat([similarity, similarity[:1]]),
                                      torch.cat([relevant, torch.zeros(1, 4, dtype=torch.bool)])) - (ap0 + 1.0) / 2) < 1e-12


def _kid_by_loops(x, y):
    """The unbiased MMD² of Bińkowski et al. with k(a, b) = (aᵀb / d + 1)³, term by term."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (float(a @ b) / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_polynomial_mmd():
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(7, 3, generator=g).double(), torch.randn(7, 3, generator=g).double() + 0.5
    result = kid(x, y, subsets=1, subset_size=7)
    assert result["value"] == pytest.approx(_kid_by_loops(x, y), rel=1e-9)
    assert result["subset_size"] == 7 and result["std"] == 0.0


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(2000, 8, generator=g), torch.randn(2000, 8, generator=g)
    same = kid(a, b, subsets=10, subset_size=500)
    assert abs(same["value"]) < 3 * same["std"] + 1e-3        # unbiased: zero within its spread
    shifted = [kid(a, b + shift, subsets=10, subset_size=500)["value"] for shift in (0.25, 0.5, 1.0)]
    assert same["value"] < shifted[0] < shifted[1] < shifted[2]


def test_the_fd_report_gives_n_the_floor_at_that_n_an_interval_and_kid():
    class Flat(torch.nn.Module):                              # features: the image's 4 corner pixels
        def features(self, x):
            return x[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]

    g = torch.Generator().manual_seed(7)
    real = (torch.rand(3000, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    metric = FashionFD(Flat(), real[:2000])
    fake = torch.rand(300, 1, 28, 28, generator=g) * 1.6 - 0.8       # narrower than the real images
    report = metric.report(fake, real[2000:])
    assert report["fd_n"] == 300 and report["fd_ci_low"] < report["fd"] < report["fd_ci_high"]
    assert report["fd_floor_same_n"] == pytest.approx(metric.real_vs_real(real[2000:], 300), abs=1e-3)
    assert report["fd_floor_same_n"] < report["fd_ci_low"]           # the narrower fakes are told apart
    assert report["kid"] > 0
