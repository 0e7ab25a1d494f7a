"""Reference solutions to the chapter 04 exercises (try them yourself first)."""

import math

import torch
from torch.nn import functional as F


def symmetric_infonce(logits):
    target = torch.arange(len(logits))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def clamped_scale(t):
    return t.clamp(max=math.log(100)).exp()


def recall_at_1(similarity):
    return (similarity.argmax(1) == torch.arange(len(similarity))).float().mean().item()


def prompt_ensemble(embeddings):
    mean = embeddings.mean(0)
    return mean / mean.norm()
