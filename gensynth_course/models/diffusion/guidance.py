"""Guided diffusion: steering a sampler towards a class y.

Two ways to sample from a sharpened p(x | y)^s-like distribution (chapter 03):

* **Classifier guidance** (Dhariwal & Nichol 2021, "Diffusion Models Beat GANs on Image
  Synthesis", section 4). Bayes' rule gives ∇ log p(x_t | y) = ∇ log p(x_t) + ∇ log p(y | x_t):
  an unconditional model plus the gradient of a noise-aware classifier p_φ(y | x_t). Scaling the
  classifier term by s gives Algorithm 1 (ancestral: μ̂ = μ + s Σ ∇_{x_t} log p_φ(y | x_t)) and
  Algorithm 2 (DDIM: ε̂ = ε − √(1 − ᾱ_t) s ∇_{x_t} log p_φ(y | x_t)).
* **Classifier-free guidance** (Ho & Salimans 2022). One network learns both ε(x_t | y) and
  ε(x_t | ∅) by replacing y with a null label at random during training; sampling extrapolates
  from the unconditional towards the conditional prediction,
  ε̂ = ε(x_t | ∅) + s (ε(x_t | y) − ε(x_t | ∅)), the form GLIDE uses (Ho & Salimans write
  (1 + w) ε(x_t | y) − w ε(x_t | ∅), the same with w = s − 1). Since ε(x_t | y) − ε(x_t | ∅)
  ∝ −∇ log p(y | x_t) for the *implicit* classifier p(y | x_t) ∝ p(x_t | y) / p(x_t), this is
  classifier guidance with a classifier the diffusion model carries inside itself.

Both wrap a denoiser for the ordinary samplers of :mod:`gensynth_course.models.diffusion.schedulers`.
Classifier-free guidance *is* a denoiser, ``guided(x_t, t, y) -> ε̂``. Classifier guidance also
offers the gradient it adds, and the sampler's step applies it after clipping x̂_0.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def drop_labels(y: torch.Tensor, p_uncond: float, null_label: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by ``null_label`` with probability ``p_uncond`` (Ho & Salimans,
    Algorithm 1): one network then learns the conditional and the unconditional model together."""
    drop = torch.rand(y.shape, generator=generator) < p_uncond
    return torch.where(drop.to(y.device), torch.full_like(y, null_label), y)


def check_scale(scale: float) -> float:
    """``scale`` as a float, after checking that it is a finite number s ≥ 0."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 <= value < math.inf:
        raise ValueError(f"guidance scale {scale!r} is not a number >= 0; use s >= 0 (0: unconditional or "
                         "unguided, 1: plain conditional, above 1: stronger guidance).")
    return value


class ClassifierFreeGuidance(nn.Module):
    """ε̂ = ε(x_t | ∅) + s (ε(x_t | y) − ε(x_t | ∅)) for a conditional ``model``.

    s = 0 is the unconditional model, s = 1 the conditional one, s > 1 guides beyond it (s < 0 is
    refused). Both
    predictions come from one batched forward pass of 2N images. ``y`` is whatever the model is
    conditioned on (class labels here, captions in chapter 05); ``model.null_condition(y)`` gives
    the "nothing" it was trained with (the null label, or the empty caption). Other keyword
    arguments (an image condition, for instance) go to both halves unchanged. A network that
    predicts its variance too has only its ε guided; the variance is the conditional one's, as in
    GLIDE's code.
    """

    def __init__(self, model: nn.Module, scale: float):
        super().__init__()
        self.model, self.scale = model, check_scale(scale)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, **model_kwargs) -> torch.Tensor:
        null = self.model.null_condition(y)
        doubled = {k: torch.cat([v, v]) if torch.is_tensor(v) else v for k, v in model_kwargs.items()}
        cond, uncond = self.model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]), **doubled).chunk(2)
        c = x.shape[1]
        guided = uncond[:, :c] + self.scale * (cond[:, :c] - uncond[:, :c])
        return torch.cat([guided, cond[:, c:]], 1)


class ClassifierGuidance(nn.Module):
    """A ``model`` steered by ``classifier`` (a :class:`NoisyClassifier`) at scale s.

    Called, it is the model itself: ε(x_t), or ε(x_t | y) for a class-conditional ``model`` with
    ``conditional=True``, ADM's best setting (Dhariwal & Nichol 2021, Table 4: guiding a conditional
    model beats guiding an unconditional one). The guidance is :meth:`guidance_gradient`,
    s ∇_{x_t} log p_φ(y | x_t), which :func:`~gensynth_course.models.diffusion.schedulers.sample`
    hands to each ``step``: for a :class:`DDIMScheduler` it becomes Dhariwal & Nichol's Algorithm 2,
    ε̂ = ε − s √(1 − ᾱ_t) ∇ log p_φ, for the ancestral :class:`DDPMScheduler` Algorithm 1,
    μ̂ = μ + s σ_t² ∇ log p_φ. The step applies it after x̂_0 is clipped, as the authors' code does:
    folded into ε beforehand, the clip would undo it wherever x̂_0 leaves [−1, 1].
    """

    def __init__(self, model: nn.Module, classifier: nn.Module, scale: float, conditional: bool = False):
        super().__init__()
        self.model, self.classifier, self.scale = model, classifier, check_scale(scale)
        self.conditional = conditional

    def score(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What the guidance climbs, one value per image: log p_φ(y | x_t, t)."""
        return self.classifier.log_prob(x, t, y)

    def log_prob_gradient(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∇_{x_t} of :meth:`score`, one gradient per image (the scores are summed, and each
        image's term depends on that image alone)."""
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            return torch.autograd.grad(self.score(x_in, t, y).sum(), x_in)[0]

    def guidance_gradient(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """s ∇_{x_t} log p_φ(y | x_t), or None at s = 0 (no guidance, no classifier call)."""
        return None if self.scale == 0 else self.scale * self.log_prob_gradient(x, t, y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x, t, y) if self.conditional else self.model(x, t)
