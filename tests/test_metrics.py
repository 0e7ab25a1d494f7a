"""Fréchet distance against closed forms."""

import pytest
import torch

from gensynth_course.evaluation.metrics import frechet_distance, gaussian_stats


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
