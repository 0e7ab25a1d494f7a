"""The course's Fashion-MNIST classifier: an evaluation network, not part of any generator.

Its penultimate layer (128 features) is the feature space of FD-FMNIST (see ``metrics.py``), and
its predictions give the class histogram of generated samples. It stands in for the Inception
network behind published FID scores, which cannot be downloaded here; numbers measured with it
are therefore not comparable with published FIDs, only with each other.
"""

from __future__ import annotations

import torch
from torch import nn

from gensynth_course.budget import by_budget
from gensynth_course.cache import load_or_train
from gensynth_course.data.fashion_mnist import load_fashion_mnist, to_model_range
from gensynth_course.device import model_device
from gensynth_course.train import fit


class FashionClassifier(nn.Module):
    """Two conv stages (32 and 64 channels, BatchNorm, max-pooling) and a 128-unit hidden layer."""

    def __init__(self, feature_dim: int = 128, n_classes: int = 10):
        super().__init__()

        def stage(c_in, c_out):
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(stage(1, 32), stage(32, 64), nn.Flatten(),
                                  nn.Dropout(0.25), nn.Linear(64 * 7 * 7, feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(feature_dim, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, 128) of images in [-1, 1]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts of up to two pixels (labels are unchanged by both)."""
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    dx, dy = torch.randint(-2, 3, (2,), generator=generator).tolist()
    return torch.roll(torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1), (dy, dx), (2, 3))[..., 2:-2, 2:-2]


@torch.no_grad()
def accuracy(model: nn.Module, images_uint8: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    device, correct = model_device(model), 0
    for i in range(0, len(labels), batch_size):
        logits = model(to_model_range(images_uint8[i:i + batch_size].to(device)))
        correct += (logits.argmax(1).cpu() == labels[i:i + batch_size]).sum().item()
    return correct / len(labels)


def classifier_config(budget: str) -> dict:
    """The classifier's recipe at a budget; ``full`` takes the standard classifier (it is an
    evaluation network, not a result)."""
    return dict(model="FashionClassifier", feature_dim=128, batch_size=128, lr=1e-3, seed=0,
                steps=by_budget(quick=60, standard=2400, budget=budget))


def load_classifier(config: dict, device: torch.device | str | None = None) -> tuple[FashionClassifier, dict]:
    """The classifier of ``config`` (:func:`classifier_config`), from the cache or trained now, on
    ``device`` (the course's device unless given); ``info`` holds its test accuracy."""
    def train(model, checkpoint):
        train_set, test_set = load_fashion_mnist("train"), load_fashion_mnist("test")

        def loss_fn(m, batch, generator):
            x, y = batch
            return nn.functional.cross_entropy(m(_augment(x, generator)), y)

        history = fit(model, loss_fn, train_set.batch_fn(config["batch_size"], config["seed"]), config["steps"],
                      lr=config["lr"], seed=config["seed"], checkpoint=checkpoint, desc="Fashion-MNIST classifier",
                      device=device)
        test_accuracy = accuracy(model, test_set.images, test_set.labels)
        print(f"classifier test accuracy: {test_accuracy:.4f}")
        return {"test_accuracy": test_accuracy, "seconds": history["seconds"], "steps": history["steps"]}

    return load_or_train("common", "fashion_classifier", config, FashionClassifier, train, device=device)
