"""Fréchet distance against closed forms."""

import pytest
import torch

from gensynth_course.metrics import frechet_distance, gaussian_stats


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
