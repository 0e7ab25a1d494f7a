"""Image grids, figures and GIFs."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from einops import rearrange


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> [0, 255] uint8 (values outside are clipped)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images (N, C, H, W) in [-1, 1] into one uint8 array (rows*H, cols*W, C)."""
    n, c, h, w = images.shape
    per_row = nrow or max(1, int(np.ceil(np.sqrt(n))))       # nrow: images per row, as in torchvision
    rows = int(np.ceil(n / per_row))
    x = to_uint8(images)
    if n < rows * per_row:
        x = torch.cat([x, torch.zeros(rows * per_row - n, c, h, w, dtype=torch.uint8)])
    x = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=0)
    return rearrange(x, "(r k) c h w -> (r h) (k w) c", r=rows, k=per_row).numpy()


def show_grid(images: torch.Tensor, title: str = "", nrow: int | None = None, ax=None, scale: float = 0.6):
    """Draw a grid of images with a title; returns the matplotlib axes."""
    import matplotlib.pyplot as plt

    g = grid(images, nrow)
    if ax is None:
        height, width = g.shape[:2]
        _, ax = plt.subplots(figsize=(max(2.5, width / 28 * scale), max(2.5, height / 28 * scale)))
    ax.imshow(g.squeeze(-1) if g.shape[-1] == 1 else g, cmap="gray", vmin=0, vmax=255)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax



def show_rows(images: torch.Tensor, row_names: list[str], title: str = "", ax=None, scale: float = 0.6):
    """Draw images as a grid with one named row per group (for example one class per row): the
    images come row by row, ``len(images) // len(row_names)`` per row."""
    per_row = len(images) // len(row_names)
    ax = show_grid(images, title, nrow=per_row, ax=ax, scale=scale)
    cell = images.shape[-2] + 2                       # grid() pads every image by one pixel
    ax.set_yticks([(i + 0.5) * cell for i in range(len(row_names))], row_names)
    ax.set_xlabel(f"{per_row} samples per row")
    return ax

def save_gif(frames: list[torch.Tensor], path: str | Path, fps: int = 20, hold_last: int = 20,
             nrow: int | None = None, upscale: int = 2) -> Path:
    """Save a list of image batches (each N, C, H, W in [-1, 1]) as an animated GIF."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = [grid(f, nrow) for f in frames]
    arrays += [arrays[-1]] * hold_last
    arrays = [a.repeat(upscale, 0).repeat(upscale, 1) for a in arrays]
    arrays = [a.squeeze(-1) if a.shape[-1] == 1 else a for a in arrays]
    imageio.mimsave(path, arrays, duration=1000 / fps, loop=0)
    return path
