"""One training loop for every model of the course, GANs included.

It shows a tqdm progress bar with the running loss, keeps an exponential moving average (EMA) of
the weights, calls a preview function every so often (a grid of samples while training), stops
after a number of steps or of seconds (for equal-time comparisons), and saves its state atomically
so that an interrupted run resumes where it stopped instead of starting again.

A resumed run equals an uninterrupted one, bit for bit on the CPU: everything random in step k
(which examples, which captions, augmentations, noise, dropout) is drawn from a generator seeded by
``(seed, k)`` alone (:func:`step_seed`), and the checkpoint holds the weights, the optimisers' and
the EMA's state. Nothing is carried from one step to the next except what the checkpoint holds.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from gensynth_course.cache import FORMAT, CorruptCheckpoint, load_safe, save_atomic, set_aside
from gensynth_course.device import autocast, resolve
from gensynth_course.progress import progress_bar

# loss(model, batch, generator) -> a scalar loss, or (loss, {name: float}) to record its parts.
Loss = Callable[[nn.Module, Any, torch.Generator], "torch.Tensor | tuple[torch.Tensor, dict]"]
# Inside :func:`step_limit`, the most steps any training takes (None: as many as it asks for).
_step_limit: int | None = None


@contextlib.contextmanager
def step_limit(steps: int):
    """Every :func:`fit` inside stops after at most ``steps`` steps: a dry run of a chapter's
    trainings, or a timing of their first steps. A stopped model is cached as if complete, so use
    it with a throwaway cache only (:mod:`gensynth_course.full_budget` does)."""
    global _step_limit
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, not {steps!r}")
    previous, _step_limit = _step_limit, steps
    try:
        yield
    finally:
        _step_limit = previous



def resume_hint() -> str:
    """How to resume an interrupted run: run the command again on the command line (where
    ``python -m gensynth_course`` sets ``GENSYNTH_CLI``), the cell again in a notebook."""
    return f"Run the same {'command' if os.environ.get('GENSYNTH_CLI') else 'cell'} again to resume."


def step_seed(seed: int, step: int, *more: int) -> int:
    """The seed of step ``step`` of a run seeded ``seed`` (NumPy's SeedSequence mixes the numbers, so
    neighbouring steps and seeds give unrelated streams; ``more`` keys other streams of a run)."""
    return int(np.random.SeedSequence([seed, step, *more]).generate_state(1, np.uint64)[0] >> 1)


def to_device(batch, device: torch.device):
    """``batch`` with every tensor in it (also inside tuples, lists and dicts) moved to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


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


@dataclass
class Objective:
    """One optimiser and the loss it minimises. A model trained by several (a GAN's discriminator
    and generator) lists them in the order they step; each step of training runs them all.

    ``params(model)`` gives the parameters this optimiser moves: tensors, or param groups (dicts
    with ``params`` and optionally their own ``lr`` and ``weight_decay``, e.g. pretrained parts at
    a lower rate). Weight decay > 0 uses AdamW's decoupled weight decay (Loshchilov & Hutter 2019)
    on weight matrices and kernels, as CLIP does; biases and norms are not decayed.
    """

    name: str
    loss: Loss
    lr: float = 1e-3
    params: Callable[[nn.Module], Iterable] | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        chosen = list(self.params(model) if self.params else model.parameters())
        groups = chosen if chosen and isinstance(chosen[0], dict) else [{"params": chosen}]
        split = []
        for group in groups:
            params = [p for p in group["params"] if p.requires_grad]
            base, decay = group.get("lr", self.lr), group.get("weight_decay", self.weight_decay)
            if decay:
                split += [{"params": [p for p in params if p.ndim >= 2], "weight_decay": decay},
                          {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
                split[-2]["base_lr"] = split[-1]["base_lr"] = base
            else:
                split.append({"params": params, "base_lr": base, "weight_decay": 0.0})
        split = [g for g in split if g["params"]]
        for g in split:
            g["lr"] = g["base_lr"]
        kind = torch.optim.AdamW if any(g["weight_decay"] for g in split) else torch.optim.Adam
        return kind(split, lr=self.lr, betas=self.betas)


def learning_rate_factor(step: int, steps: int, warmup: int, schedule: str) -> float:
    """Linear warm-up over ``warmup`` steps, then constant or a half cosine down to zero at ``steps``."""
    rise = min(1.0, (step + 1) / warmup) if warmup else 1.0
    return rise * (0.5 * (1 + math.cos(math.pi * step / steps)) if schedule == "cosine" else 1.0)


def fit(
    model: nn.Module,
    loss_fn: Loss | list[Objective],
    batch_fn: Callable[[int, torch.Generator], Any],
    steps: int,
    lr: float = 1e-3,
    *,
    seed: int = 0,
    seconds: float | None = None,
    ema_decay: float | None = None,
    ema_of: str | None = None,
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
    device: torch.device | str | None = None,
) -> dict:
    """Train ``model`` in place for ``steps`` steps (or until ``seconds`` have passed) on ``device``
    (the course's device, :func:`~gensynth_course.device.pick_device`, unless given).

    Step k takes ``batch_fn(k, g)`` and runs each objective's ``loss(model, batch, g)``, where ``g``
    is a CPU generator seeded by ``step_seed(seed, k)`` (the global generator is seeded from it as
    well, for dropout). A plain ``loss_fn`` is one :class:`Objective` with Adam (AdamW with
    ``weight_decay``) at ``lr``, ``betas`` and ``grad_clip``. Every learning rate rises linearly
    over ``warmup`` steps, then stays (``schedule="constant"``) or follows a half cosine down to
    zero at ``steps`` (``"cosine"``).

    With ``ema_decay`` the EMA weights of ``model`` (of its attribute ``ema_of``, e.g. a GAN's
    generator) are copied in at the end: the EMA is what we sample from. Returns a history dict:
    ``losses`` (one per step; ``<name>_losses`` per objective when there are several), ``parts``
    (when losses report them), ``steps``, ``seconds``, ``examples_per_second``.
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', not {schedule!r}")
    device = resolve(device)
    steps = steps if _step_limit is None else min(steps, _step_limit)
    objectives = loss_fn if isinstance(loss_fn, list) else [
        Objective("loss", loss_fn, lr, betas=betas, weight_decay=weight_decay, grad_clip=grad_clip)]
    loss_keys = ["losses"] if len(objectives) == 1 else [f"{o.name}_losses" for o in objectives]
    model.to(device).train()
    optimizers = [o.optimizer(model) for o in objectives]
    averaged = getattr(model, ema_of) if ema_of else model
    ema = EMA(averaged, ema_decay) if ema_decay else None
    history = {**{key: [] for key in loss_keys}, "steps": 0, "seconds": 0.0, "examples": 0}

    saved = _Checkpoint(checkpoint, model, optimizers, ema)
    history = saved.restore(desc) or history

    start_step, start_time = history["steps"], time.perf_counter() - history["seconds"]
    resumed_seconds = history["seconds"]                  # the training seconds done before this call
    bar = _progress(desc, steps, start_step, seconds, resumed_seconds)
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices):        # the caller's random stream is left as it was
            for step in range(start_step, steps):
                if seconds is not None and time.perf_counter() - start_time >= seconds:
                    break
                losses = _one_step(model, objectives, optimizers, batch_fn, step, steps, seed, warmup, schedule,
                                   device, history)
                if ema is not None:
                    ema.update(averaged)
                for key, value in zip(loss_keys, losses):
                    history[key].append(value)
                history["steps"] = step + 1
                history["seconds"] = time.perf_counter() - start_time
                bar.update(1 if seconds is None else min(history["seconds"], seconds) - bar.n)
                if step % 10 == 0:
                    recent = history[loss_keys[0]][-50:]
                    loss = f"{sum(recent) / len(recent):.4f}"
                    if seconds is None:
                        bar.set_postfix(loss=loss, refresh=False)
                    else:
                        rate = (step + 1 - start_step) / max(history["seconds"] - resumed_seconds, 1e-9)
                        bar.set_postfix_str(f"step {step + 1}, {rate:.1f} steps/s, loss={loss}", refresh=False)
                if preview is not None and preview_every and (step + 1) % preview_every == 0:
                    preview(ema.model if ema else averaged, step + 1)
                if checkpoint_every and (step + 1) % checkpoint_every == 0:
                    saved.save(history)
    except KeyboardInterrupt:
        saved.save(history)
        bar.close()
        raise KeyboardInterrupt(
            f"training interrupted at step {history['steps']}; progress saved to {checkpoint}. {resume_hint()}"
            if checkpoint else
            f"training interrupted at step {history['steps']}."
        ) from None
    bar.close()
    if ema is not None:
        averaged.load_state_dict(ema.model.state_dict())
    model.eval()
    history["examples_per_second"] = history["examples"] / max(history["seconds"], 1e-9)
    return history


def _progress(desc: str, steps: int, start_step: int, seconds: float | None, elapsed: float):
    """The bar of a training run: steps done out of ``steps``, or, for a run limited by time, seconds
    of training out of ``seconds`` (its steps and steps per second beside them; the step count such a
    run is given is only a ceiling)."""
    if seconds is None:
        return progress_bar(total=steps, initial=start_step, desc=desc)
    return progress_bar(total=float(seconds), initial=min(elapsed, seconds), desc=desc, unit="s",
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of training{postfix}")


class _Checkpoint:
    """What a run saves and resumes from (atomically, read back weights-only): the weights, every
    optimiser's state, the EMA and the history. Nothing else is needed to continue exactly."""

    def __init__(self, path: Path | None, model: nn.Module, optimizers: list, ema: EMA | None):
        self.path, self.model, self.optimizers, self.ema = (Path(path) if path else None), model, optimizers, ema

    def restore(self, desc: str) -> dict | None:
        """The saved history after loading the saved state, or None (no checkpoint, or a damaged one
        that is set aside: the run starts again)."""
        if self.path is None or not self.path.exists():
            return None
        try:
            state = load_safe(self.path)
            self.model.load_state_dict(state["model"])
            for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
                optimizer.load_state_dict(saved)
            if self.ema is not None:
                self.ema.model.load_state_dict(state["ema"])
                self.ema.updates = state["history"]["steps"]
        except (CorruptCheckpoint, KeyError, RuntimeError, ValueError) as error:
            set_aside(self.path, f"the interrupted run's checkpoint is damaged: {error}")
            return None
        print(f"gensynth_course: resuming {desc} from step {state['history']['steps']} ({self.path})")
        return state["history"]

    def save(self, history: dict) -> None:
        if self.path is not None:
            save_atomic({"format": FORMAT, "model": self.model.state_dict(),
                         "optimizers": [o.state_dict() for o in self.optimizers],
                         "ema": self.ema.model.state_dict() if self.ema else {}, "history": history}, self.path)


def _one_step(model, objectives, optimizers, batch_fn, step, steps, seed, warmup, schedule, device, history):
    """Step ``step``: its batch, then each objective's loss, backward pass and optimiser step."""
    seed_k = step_seed(seed, step)
    torch.manual_seed(seed_k ^ 0x5DEECE66D)                  # dropout and anything else on the global stream
    generator = torch.Generator().manual_seed(seed_k)
    batch = batch_fn(step, generator)
    history["examples"] += len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch)
    batch = to_device(batch, device)
    factor = learning_rate_factor(step, steps, warmup, schedule)
    losses, parts = [], {}
    for objective, optimizer in zip(objectives, optimizers):
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        with autocast(device):                         # GENSYNTH_PRECISION: bf16 or fp32
            out = objective.loss(model, batch, generator)
        loss, named = out if isinstance(out, tuple) else (out, {})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if objective.grad_clip:
            nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], objective.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        prefix = f"{objective.name}_" if len(objectives) > 1 else ""
        parts.update({f"{prefix}{k}": round(float(v), 4) for k, v in named.items()})
    if parts:
        history.setdefault("parts", []).append(parts)
    return losses
