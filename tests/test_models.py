"""Network shapes and small overfit tests: each model can learn."""

import pytest
import torch

from gensynth_course.evaluation.fashion_classifier import FashionClassifier
from gensynth_course.models.diffusion.schedulers import DDPMScheduler, linear_betas
from gensynth_course.models.diffusion.seed_unet import SeedUNet, seed_time_table
from gensynth_course.models.diffusion.unet import UNet, sinusoidal_embedding
from gensynth_course.train import fit


@pytest.mark.parametrize("kwargs", [dict(channels=(16, 32), patch=2), dict(channels=(8, 16, 16), patch=1),
                                    dict(channels=(16, 32), blocks=2, patch=2)])
@pytest.mark.parametrize("n", [1, 3])
def test_unet_keeps_the_image_shape(kwargs, n):
    net = UNet(**kwargs)
    x = torch.randn(n, 1, 28, 28)
    assert net(x, torch.randint(0, 1000, (n,))).shape == x.shape


def test_unet_output_starts_at_zero_and_depends_on_time():
    net = UNet(channels=(16, 32), patch=2)
    x = torch.randn(2, 1, 28, 28)
    assert net(x, torch.tensor([0, 999])).abs().max().item() == 0.0  # zero-initialised last layer
    torch.nn.init.normal_(net.out[2].weight, std=0.1)
    a, b = net(x, torch.tensor([5, 5])), net(x, torch.tensor([900, 900]))
    assert not torch.allclose(a, b)


def test_seed_unet_shapes_and_frozen_time_table():
    net = SeedUNet()
    x = torch.randn(4, 1, 28, 28)
    assert net(x, torch.randint(0, 1000, (4, 1))).shape == x.shape
    assert not net.time_embed.weight.requires_grad
    table = seed_time_table(1000, 100)
    assert table.shape == (1000, 100)
    assert torch.allclose(table[0, 0::2], torch.zeros(50)) and torch.allclose(table[0, 1::2], torch.ones(50))


def test_sinusoidal_embedding_values():
    emb = sinusoidal_embedding(torch.tensor([0, 1, 7]), 8)
    assert emb.shape == (3, 8)
    assert torch.allclose(emb[0], torch.tensor([0.0, 1.0] * 4))
    assert emb[2, 0].item() == pytest.approx(torch.sin(torch.tensor(7.0)).item(), abs=1e-6)


def _overfit(net, steps=150, lr=3e-3):
    """Fit the ε-loss on eight images; return the first and last average losses."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, 28, 28, generator=g).round() * 2 - 1
    scheduler = DDPMScheduler(linear_betas())

    history = fit(net, lambda m, b, generator: scheduler.loss(m, b[0], generator), lambda k, generator: (images,),
                  steps, lr=lr, desc="overfit")
    losses = history["losses"]
    return sum(losses[:10]) / 10, sum(losses[-20:]) / 20


def test_unet_overfits_a_tiny_set():
    torch.manual_seed(0)
    first, last = _overfit(UNet(channels=(16, 32), patch=2))
    assert last < 0.5 * first


def test_seed_unet_overfits_a_tiny_set():
    torch.manual_seed(0)
    first, last = _overfit(SeedUNet(), lr=1e-3)
    assert last < 0.5 * first


def test_classifier_overfits_a_tiny_set():
    torch.manual_seed(0)
    x = torch.randn(32, 1, 28, 28)
    y = torch.arange(32) % 10
    net = FashionClassifier()

    fit(net, lambda m, b, generator: torch.nn.functional.cross_entropy(m(b[0]), b[1]), lambda k, generator: (x, y), 60,
        lr=3e-3, desc="overfit")
    assert (net(x).argmax(1) == y).float().mean().item() == 1.0
    assert net.features(x).shape == (32, 128)
