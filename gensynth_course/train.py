"""One training loop for every model of the course.

It shows a tqdm progress bar with the running loss, keeps an exponential moving average (EMA) of
the weights, calls a preview function every so often (a grid of samples while training), stops
after a number of steps or of seconds (for equal-time comparisons), and saves its state atomically
so that an interrupted run resumes where it stopped instead of starting again.
"""

from __future__ import annotations

import copy
import math
import os
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from gensynth_course.cache import FORMAT, CorruptCheckpoint, load_safe, save_atomic, set_aside
from gensynth_course.progress import progress_bar


def resume_hint() -> str:
    """How to resume an interrupted run: run the command again on the command line (where
    ``python -m gensynth_course`` sets ``GENSYNTH_CLI``), the cell again in a notebook."""
    return f"Run the same {'command' if os.environ.get('GENSYNTH_CLI') else 'cell'} again to resume."


class EMA:
    """θ_ema ← d·θ_ema + (1 − d)·θ after each step (Ho et al. 2020 use d = 0.9999).

    Early on the decay is warmed up as min(d, (1 + n) / (10 + n)) so that a short run is not
    dominated by the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema_p, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if ema_p.dtype.is_floating_point:
                ema_p.lerp_(p, 1 - d)
            else:
                ema_p.copy_(p)


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, object], torch.Tensor],
    batches: Iterator,
    steps: int,
    lr: float = 1e-3,
    *,
    seconds: float | None = None,
    ema_decay: float | None = None,
    warmup: int = 0,
    schedule: str = "constant",
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    preview: Callable[[nn.Module, int], None] | None = None,
    preview_every: int = 0,
    checkpoint: Path | None = None,
    checkpoint_every: int = 200,
    desc: str = "training",
    device: torch.device | str = "cpu",
) -> dict:
    """Train ``model`` in place with Adam for ``steps`` steps (or until ``seconds`` have passed).

    The learning rate rises linearly over ``warmup`` steps, then stays (``schedule="constant"``)
    or follows a half cosine down to zero at ``steps`` (``"cosine"``). ``weight_decay`` > 0 uses
    AdamW's decoupled weight decay (Loshchilov & Hutter 2019), as CLIP does.

    ``loss_fn(model, batch)`` returns the scalar loss of one batch. With ``ema_decay`` the EMA
    weights are copied into ``model`` at the end (the EMA is what we sample from). Returns a
    history dict: ``losses`` (one per step), ``steps``, ``seconds``, ``images_per_second``.
    """
    model.to(device).train()
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', not {schedule!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if weight_decay:
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=lr, betas=betas)
    else:
        optimizer = torch.optim.Adam(params, lr=lr, betas=betas)
    ema = EMA(model, ema_decay) if ema_decay else None
    history = {"losses": [], "steps": 0, "seconds": 0.0, "examples": 0}

    if checkpoint is not None and Path(checkpoint).exists():
        try:
            state = load_safe(checkpoint)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if ema is not None:
                ema.model.load_state_dict(state["ema"])
                ema.updates = state["history"]["steps"]
            history = state["history"]
            print(f"gensynth_course: resuming {desc} from step {history['steps']} ({checkpoint})")
        except (CorruptCheckpoint, KeyError, RuntimeError, ValueError) as error:
            set_aside(Path(checkpoint), f"the interrupted run's checkpoint is damaged: {error}")

    def save_progress():
        if checkpoint is not None:
            save_atomic({"format": FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "ema": ema.model.state_dict() if ema else {}, "history": history}, Path(checkpoint))

    start_step, start_time = history["steps"], time.perf_counter() - history["seconds"]
    bar = progress_bar(total=steps, initial=start_step, desc=desc)
    try:
        for step in range(start_step, steps):
            if seconds is not None and time.perf_counter() - start_time >= seconds:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / warmup if warmup else 1.0) * (
                    0.5 * (1 + math.cos(math.pi * step / steps)) if schedule == "cosine" else 1.0)
            batch = next(batches)
            loss = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update(model)
            history["losses"].append(loss.item())
            history["steps"] = step + 1
            history["examples"] += len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch)
            history["seconds"] = time.perf_counter() - start_time
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{sum(history['losses'][-50:]) / len(history['losses'][-50:]):.4f}")
            if preview is not None and preview_every and (step + 1) % preview_every == 0:
                preview(ema.model if ema else model, step + 1)
            if checkpoint_every and (step + 1) % checkpoint_every == 0:
                save_progress()
    except KeyboardInterrupt:
        save_progress()
        bar.close()
        raise KeyboardInterrupt(
            f"training interrupted at step {history['steps']}; progress saved to {checkpoint}. {resume_hint()}"
            if checkpoint else
            f"training interrupted at step {history['steps']}."
        ) from None
    bar.close()
    if ema is not None:
        model.load_state_dict(ema.model.state_dict())
    model.eval()
    history["images_per_second"] = history["examples"] / max(history["seconds"], 1e-9)
    return history
