"""Chapter 08 exercises: each ``check_*`` runs a learner's function on random inputs and compares
it with what the package computes (``data/shapes.py``, ``models/vq/prior.py``,
``experiments/ch08_semantic_synthesis.py``). It prints what is wrong and a hint, and returns True or
False, so a notebook cell never fails with a traceback.
"""

from __future__ import annotations

import torch

from gensynth_course.exercises.checking import call, compare, report


def check_one_hot_maps(fn) -> bool:
    """``fn(maps, classes) -> (N, classes, H, W)``: segmentation maps (N, H, W) of class indices as
    one-hot float channels, the map autoencoder's input."""
    maps = torch.randint(5, (3, 4, 6), generator=torch.Generator().manual_seed(0))
    expected = (maps[:, None] == torch.arange(5).view(1, 5, 1, 1)).float()
    return compare("one_hot_maps", fn, (maps.clone(), 5), expected,
                   "channel k is 1.0 where the map says class k and 0.0 elsewhere; the classes go in dimension 1, "
                   "before height and width (F.one_hot puts them last).", atol=0)


def check_map_from_coverage(fn) -> bool:
    """``fn(coverage, classes) -> (H, W)``: the segmentation map of one scene from the share of each
    pixel its objects cover (``coverage`` (2, H, W), slot 0 then slot 1) and their classes (2,):
    an object's class where it covers at least half the pixel, the second object winning where
    both do, and 0 (the background) elsewhere."""
    generator = torch.Generator().manual_seed(1)
    coverage = torch.rand(2, 6, 7, generator=generator)
    coverage[:, 0, :3] = 0.5                                   # exactly half counts as covered
    classes = torch.tensor([3, 17])
    expected = torch.zeros(6, 7, dtype=torch.long)
    for slot in range(2):
        expected = torch.where(coverage[slot] >= 0.5, classes[slot], expected)
    return compare("map_from_coverage", fn, (coverage.clone(), classes.clone()), expected,
                   "start from a map of zeros; paint slot 0's class where its coverage is ≥ 0.5, then slot 1's "
                   "where its coverage is ≥ 0.5 (it is drawn on top, so it wins).", atol=0)


def check_window_corner(fn) -> bool:
    """``fn(i, j, height, width, window) -> (top, left)``: the top-left corner of the sliding window
    that predicts code (i, j) of a ``height × width`` canvas: centred on (i, j) where it fits,
    pushed back inside the canvas at its edges."""
    cases = [(i, j, 8, 16, 8) for i in range(8) for j in range(16)] + [(5, 1, 11, 9, 4), (10, 8, 11, 9, 4)]
    for i, j, height, width, window in cases:
        top = min(max(i - window // 2, 0), height - window)
        left = min(max(j - window // 2, 0), width - window)
        try:
            out, error = tuple(int(v) for v in call(fn, i, j, height, width, window)), None
        except Exception as exc:
            out, error = None, f"{type(exc).__name__}: {exc}"
        if error or out != (top, left):
            return report("window_corner", False, error or
                          f"for code ({i}, {j}) of a {height}×{width} canvas and a {window}×{window} window, "
                          f"got {out}, expected {(top, left)}: start at (i − window // 2, j − window // 2), then "
                          "clamp each between 0 and the canvas side minus the window.")
    return report("window_corner", True, "")
