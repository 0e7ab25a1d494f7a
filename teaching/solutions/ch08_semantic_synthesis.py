"""Reference solutions to the chapter 08 exercises (try them yourself first)."""

import torch


def one_hot_maps(maps, classes):
    return torch.nn.functional.one_hot(maps, classes).permute(0, 3, 1, 2).float()


def map_from_coverage(coverage, classes):
    out = torch.zeros(coverage.shape[1:], dtype=torch.long)
    for slot in range(len(classes)):
        out[coverage[slot] >= 0.5] = classes[slot]
    return out


def window_corner(i, j, height, width, window):
    top = min(max(i - window // 2, 0), height - window)
    left = min(max(j - window // 2, 0), width - window)
    return top, left
