"""The Shapes world's judge: a network that reads every attribute of a scene from its image.

Chapters 05–07 ask a generator for "a small red circle above a large blue cross" and need to know
whether the picture shows it. :class:`AttributeEvaluator` predicts the layout (one of five
positions for a lone object, or side by side / one above the other for two) and the shape, colour
and size of each object slot (slot 0 is the left or upper object); :func:`caption_accuracy`
compares what it reads with what the caption says (:func:`~gensynth_course.data.shapes.parse_caption`).

It is an evaluation network, not a model of the course: it is trained on scenes from *every*
shape–colour combination, the held-out ones included, because a judge must recognise a held-out
"green circle" when a generator draws one. Light augmentation (pixel noise, a slight blur, small
colour shifts) keeps it steady on the imperfect images generators make.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gensynth_course.budget import by_budget
from gensynth_course.cache import load_or_train
from gensynth_course.data import shapes
from gensynth_course.data.fashion_mnist import as_model_input, to_model_range
from gensynth_course.data.tokenizer import caption_list
from gensynth_course.device import model_device
from gensynth_course.models.layers import HEAD_SIZES, attribute_loss
from gensynth_course.train import fit


class AttributeEvaluator(nn.Module):
    """A small ConvNet (BatchNorm, ReLU): a stride-2 stem to 16 × 16, then 3 × 3 convolutions and
    max-pooling down to 4 × 4, flattened into a 256-unit layer (flattening, not pooling, keeps where
    things are), and one linear head per attribute."""

    def __init__(self, channels: tuple[int, int, int] = (32, 64, 96), hidden: int = 256):
        super().__init__()
        c1, c2, c3 = channels

        def conv(c_in, c_out, kernel=3, stride=1):
            return [nn.Conv2d(c_in, c_out, kernel, stride, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.body = nn.Sequential(*conv(3, c1, 4, 2), *conv(c1, c1), nn.MaxPool2d(2),      # 16 → 8
                                  *conv(c1, c2), *conv(c2, c2), nn.MaxPool2d(2),            # 8 → 4
                                  *conv(c2, c3), nn.Flatten(), nn.Linear(c3 * 16, hidden), nn.ReLU())
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in HEAD_SIZES)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Images in [−1, 1] (B, 3, 32, 32) → one logit tensor per attribute of ``shapes.ATTRIBUTES``."""
        h = self.body(x)
        return [head(h) for head in self.heads]

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return attribute_loss(self(x), labels)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Predicted labels (N, 7) for uint8 images or floats in [−1, 1], at 32 × 32 or larger
        (larger images are resized with antialiasing first)."""
        self.eval()
        device, out = model_device(self), []
        for i in range(0, len(images), batch_size):
            x = as_evaluator_input(images[i:i + batch_size].to(device))
            out.append(torch.stack([logits.argmax(1) for logits in self(x)], 1).cpu())
        return torch.cat(out)


def as_evaluator_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [−1, 1] images of any square size → float [−1, 1] at 32 × 32."""
    x = as_model_input(images)
    if x.shape[-1] != 32:
        x = F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    return x


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per image: Gaussian pixel noise (σ up to 0.1), a 3 × 3 blur for a quarter of them, and a
    brightness/colour shift of up to ±0.06 per channel: what generated images get wrong."""
    n = len(x)

    def draw(make, *shape):           # random numbers from the CPU generator, used where x is
        return make(*shape, generator=generator).to(x.device)

    blur = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    kernel = (blur[:, None] * blur[None, :] / 16).expand(3, 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    x = torch.where(draw(torch.rand, n, 1, 1, 1) < 0.25, blurred, x)
    x = x + (draw(torch.rand, n, 3, 1, 1) - 0.5) * 0.12
    x = x + draw(torch.randn, *x.shape) * draw(torch.rand, n, 1, 1, 1) * 0.1
    return x.clamp(-1, 1)


def attribute_accuracy(evaluator: AttributeEvaluator, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy per attribute (only over the scenes where it applies), and ``scene``: the share of
    images whose every attribute is right."""
    predicted = evaluator.predict(images)
    valid = labels != shapes.IGNORE
    right = (predicted == labels) | ~valid
    out = {name: round(float(right[valid[:, k], k].float().mean()), 4) for k, name in enumerate(shapes.ATTRIBUTES)}
    out["scene"] = round(float(right.all(1).float().mean()), 4)
    return out


def evaluator_config(budget: str) -> dict:
    """The evaluator's recipe at a budget; ``full`` takes the standard evaluator (it is a judge, not a
    result). ``eval_scenes`` test and held-out scenes measure it after training."""
    return dict(model="AttributeEvaluator", channels=[32, 64, 96], hidden=256, batch_size=128, lr=1e-3, warmup=100,
                seed=0, train_scenes=by_budget(1000, 30_000, budget=budget), eval_scenes=by_budget(500, 5000, budget=budget),
                steps=by_budget(quick=30, standard=1500, budget=budget))


def load_attribute_evaluator(config: dict,
                             device: torch.device | str | None = None) -> tuple[AttributeEvaluator, dict]:
    """The evaluator of ``config`` (:func:`evaluator_config`), from the cache or trained now (about two
    minutes at the standard budget); ``info`` holds its per-attribute accuracy on test and held-out
    scenes."""

    def build():
        return AttributeEvaluator(tuple(config["channels"]), config["hidden"])

    def train(model, checkpoint):
        data = shapes.load_shapes("all", config["train_scenes"], seed=config["seed"])
        x_all = to_model_range(data.images)

        def batch_fn(step, generator):
            idx = torch.randint(0, len(data), (config["batch_size"],), generator=generator)
            return x_all[idx], data.labels[idx]

        history = fit(model, lambda m, b, generator: m.loss(augment(b[0], generator), b[1]), batch_fn, config["steps"],
                      lr=config["lr"], seed=config["seed"], warmup=config["warmup"], checkpoint=checkpoint,
                      desc="attribute evaluator", device=device)
        accuracy = {split: attribute_accuracy(model, *_images_and_labels(split, config["eval_scenes"]))
                    for split in ("test", "heldout")}
        print(f"attribute evaluator accuracy: {accuracy}")
        return {"accuracy": accuracy, "seconds": history["seconds"], "steps": history["steps"]}

    return load_or_train("common", "attribute_evaluator", config, build, train, device=device)


def _images_and_labels(split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = shapes.load_shapes(split, n, seed=1)      # seed 1: scenes no chapter trains on
    return data.images, data.labels


def read_captions(images: torch.Tensor, captions: list[str], evaluator: AttributeEvaluator | None = None
                  ) -> tuple[list[shapes.Description], list[shapes.Description]]:
    """What each caption says and what the evaluator reads in its image: two lists of
    :class:`~gensynth_course.data.shapes.Description`, one per image. ``images``: uint8, or floats
    in [−1, 1]; a caption outside the grammar raises :class:`~gensynth_course.data.shapes.CaptionError`."""
    captions = caption_list(captions)
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions: give one caption per image.")
    wanted = [shapes.parse_caption(c) for c in captions]
    evaluator = evaluator if evaluator is not None else load_attribute_evaluator()[0]
    return wanted, shapes.labels_to_descriptions(evaluator.predict(images))


def caption_accuracy(images: torch.Tensor, captions: list[str], evaluator: AttributeEvaluator | None = None) -> torch.Tensor:
    """Whether each image shows what its caption says: a bool tensor (N,), True where the
    evaluator reads exactly the caption's description (layout, and shape, colour and size of every
    object). ``images`` and ``captions`` as for :func:`read_captions`."""
    return caption_matches(*read_captions(images, captions, evaluator))


def caption_matches(wanted: list[shapes.Description], seen: list[shapes.Description]) -> torch.Tensor:
    """Whether each image (``wanted``, ``seen``: :func:`read_captions`) shows exactly what its
    caption says: a bool tensor (N,), the test of :func:`caption_accuracy`."""
    return torch.tensor([w == s for w, s in zip(wanted, seen)])


def swapped_order(wanted: list[shapes.Description], seen: list[shapes.Description]) -> torch.Tensor:
    """Whether each image (``wanted``, ``seen``: :func:`read_captions`) shows its two-object
    caption the wrong way round: the layout and both objects exactly as the caption says, each in
    the other's place ("a red circle above a blue square" drawn as a blue square above a red circle).
    A bool tensor (N,); always False for a one-object caption."""
    return torch.tensor([len(w.kinds) == 2 and s == shapes.Description(w.kinds[::-1], w.layout)
                         for w, s in zip(wanted, seen)])
