"""Chapter 05 exercises: each ``check_*`` runs a learner's function on random inputs and compares
it with the package (``experiments/ch05_glide.py``,
``models/contrastive/noisy_clip.py``). It prints what is wrong and a
hint, and returns True or False, so a notebook cell never fails with a traceback.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from gensynth_course.exercises.checking import compare
from gensynth_course.experiments.ch05_glide import inpainting_condition, upsampler_condition


def _random(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def check_clip_score(fn) -> bool:
    """``fn(image_embeddings, text_embeddings, logit_scale) -> (B,)``: the guided quantity
    f(x_t) · g(c) of each image with its own caption, as exp(t) times the cosine similarity."""
    image, text = _random(6, 8, seed=0), _random(6, 8, seed=1)
    expected = 14.3 * (F.normalize(image, dim=-1) * F.normalize(text, dim=-1)).sum(-1)
    return compare("clip_score", fn, (image.clone(), text.clone(), 14.3), expected,
                   "normalise both embeddings to unit length, take the dot product of row i with row i "
                   "(not the whole matrix), and multiply by the logit scale.", atol=1e-5)


def check_inpainting_condition(fn) -> bool:
    """``fn(images, masks) -> (B, 4, H, W)``: the image with the region to generate set to zero,
    then the mask (1 = generate)."""
    images = _random(3, 3, 8, 8, seed=2)
    masks = (torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    return compare("inpainting_condition", fn, (images.clone(), masks.clone()), inpainting_condition(images, masks),
                   "the model must not see what is under the mask: multiply the image by (1 − mask), then "
                   "concatenate the mask as a fourth channel (torch.cat along dim 1).", atol=1e-6)


def check_replace_known_region(fn) -> bool:
    """``fn(x, known, masks) -> x``: the naive inpainting step, keeping the sampler's x inside the
    mask and the noised original ``known`` outside it."""
    x, known = _random(2, 3, 8, 8, seed=4), _random(2, 3, 8, 8, seed=5)
    masks = torch.zeros(2, 1, 8, 8)
    masks[..., :4] = 1
    return compare("replace_known_region", fn, (x.clone(), known.clone(), masks.clone()),
                   masks * x + (1 - masks) * known,
                   "mask = 1 marks the pixels to generate: there the sampler's x stays; elsewhere the known "
                   "pixels (noised to the current step) replace it.", atol=1e-6)


def check_upsampler_condition(fn) -> bool:
    """``fn(low, size) -> (B, C, size, size)``: the low-resolution image, bilinearly upsampled."""
    low = _random(2, 3, 8, 8, seed=6)
    return compare("upsampler_condition", fn, (low.clone(), 16), upsampler_condition(low, 16),
                   "torch.nn.functional.interpolate with size=(size, size), mode='bilinear' and "
                   "align_corners=False.", atol=1e-5)
