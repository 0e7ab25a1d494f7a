"""A perceptual loss for VQGAN: distances between network features instead of pixels.

VQGAN replaces VQ-VAE's pixel MSE with L1 plus a perceptual loss (Esser et al. 2021, eq. 5, after
Johnson et al. 2016 and LPIPS, Zhang et al. 2018): both images go through a trained network, the
features of several layers are unit-normalised over channels, and their squared differences are
averaged over positions and summed over layers.

The paper uses ImageNet VGG16 features, which cannot be downloaded here. The course trains its own
stand-in, :class:`PerceptualNet`, a small VGG-style Fashion-MNIST classifier (a different
architecture and seed from the evaluation classifier behind FD-FMNIST, so that the metric does not
judge a model by the network that trained it). Learners with internet can pass
``network="vgg16"`` to use torchvision's pretrained VGG16 instead.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gensynth_course.budget import by_budget
from gensynth_course.cache import load_or_train
from gensynth_course.data.fashion_mnist import load_fashion_mnist
from gensynth_course.device import model_device
from gensynth_course.train import fit


class PerceptualNet(nn.Module):
    """VGG in miniature: three stages of two 3×3 convs (16, 32, 64 channels) with max-pooling,
    then a linear classifier. ``stages(x)`` returns each stage's ReLU output."""

    def __init__(self, widths=(16, 32, 64), n_classes: int = 10):
        super().__init__()
        layers, c_in = [], 1
        for c in widths:
            layers.append(nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(),
                                        nn.Conv2d(c, c, 3, padding=1), nn.ReLU()))
            c_in = c
        self.blocks = nn.ModuleList(layers)
        self.head = nn.Linear(c_in, n_classes)

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(F.max_pool2d(x, 2) if i else x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(x)[-1].mean((2, 3)))


def perceptual_net_config(budget: str) -> dict:
    return dict(model="PerceptualNet", widths=[16, 32, 64], batch_size=128, lr=2e-3, seed=1,
                steps=by_budget(quick=40, standard=500, full=2000, budget=budget))


def load_perceptual_net(config: dict, device: torch.device | str | None = None) -> tuple[PerceptualNet, dict]:
    """The course's perceptual network of ``config`` (:func:`perceptual_net_config`), from the cache or
    trained now (about a minute)."""

    def train(model, checkpoint):
        data = load_fashion_mnist("train")
        history = fit(model, lambda m, batch, generator: F.cross_entropy(m(batch[0]), batch[1]),
                      data.batch_fn(config["batch_size"], config["seed"]), config["steps"], lr=config["lr"],
                      seed=config["seed"], checkpoint=checkpoint, desc="perceptual network", device=device)
        test = load_fashion_mnist("test")
        with torch.no_grad():
            x = (test.images[:2000].float() / 127.5 - 1).to(model_device(model))
            accuracy = (model.eval()(x).argmax(1).cpu() == test.labels[:2000]).double().mean().item()
        print(f"perceptual network test accuracy: {accuracy:.3f}")
        return {"test_accuracy": accuracy, "seconds": history["seconds"]}

    return load_or_train("common", "perceptual_net", config, lambda: PerceptualNet(tuple(config["widths"])), train,
                         device=device)


class _VGG16Stages(nn.Module):
    """torchvision's ImageNet VGG16 cut at relu1_2, relu2_2 and relu3_3 (grey → RGB, ImageNet norm)."""

    def __init__(self):
        super().__init__()
        from torchvision.models import VGG16_Weights, vgg16

        try:
            features = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).features.eval()
        except Exception as error:
            raise RuntimeError(
                f"torchvision could not download the VGG16 weights ({type(error).__name__}: {error}).\n"
                "Without internet, use the course's own network: PerceptualLoss(network='course')."
            ) from error
        self.slices = nn.ModuleList([features[:4], features[4:9], features[9:16]])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x.repeat(1, 3, 1, 1) + 1) / 2 - self.mean) / self.std
        feats = []
        for s in self.slices:
            x = s(x)
            feats.append(x)
        return feats


class PerceptualLoss(nn.Module):
    """Σ_layers mean_positions ‖φ̂_l(x) − φ̂_l(y)‖², φ̂ = features unit-normalised over channels.

    The network is frozen: the loss trains the autoencoder, never the feature network.
    """

    def __init__(self, network: str | nn.Module = "course", config: dict | None = None):
        super().__init__()
        if network == "course":
            if config is None:
                raise ValueError("the course's perceptual network needs its config: "
                                 "PerceptualLoss('course', perceptual_net_config(budget))")
            network = load_perceptual_net(config)[0]
        elif network == "vgg16":
            network = _VGG16Stages()
        elif not isinstance(network, nn.Module):
            raise ValueError(f"unknown perceptual network {network!r}: use 'course', 'vgg16' or an nn.Module")
        self.network = network.eval().requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.network.eval()  # always in evaluation mode
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = x.new_zeros(())
        for fx, fy in zip(self.network.stages(x), self.network.stages(y)):
            fx, fy = F.normalize(fx, dim=1, eps=1e-8), F.normalize(fy, dim=1, eps=1e-8)
            loss = loss + (fx - fy).pow(2).sum(1).mean()
        return loss
