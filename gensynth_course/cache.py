"""A cache of trained models, so each model is trained once.

A model is stored under ``<cache>/models/<chapter>/<name>-<budget>-<hash>.pt``, where the hash
covers its whole config, so changing any hyper-parameter trains a new model instead of silently
loading an old one. Files are written atomically (a temporary file, then ``os.replace``) and read
with ``torch.load(weights_only=True)``: a cache file can never run code. A file that cannot be read
is reported, moved aside and the model trained again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from gensynth_course.budget import check_budget

FORMAT = 1


class CorruptCheckpoint(RuntimeError):
    """A cache or checkpoint file exists but cannot be read back."""


def cache_dir() -> Path:
    """``$GENSYNTH_CACHE``, else ``$XDG_CACHE_HOME/gensynth_course``, else ``~/.cache/gensynth_course``."""
    env = os.environ.get("GENSYNTH_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gensynth_course"


def config_hash(config: dict) -> str:
    """A short, stable hash of a JSON-able config."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def model_path(chapter: str, name: str, config: dict, budget: str | None = None) -> Path:
    budget = check_budget(budget)
    return cache_dir() / "models" / chapter / f"{name}-{budget}-{config_hash(config)}.pt"


def save_atomic(payload: dict, path: Path) -> None:
    """Write ``payload`` with ``torch.save`` so that ``path`` is either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_safe(path: Path) -> dict:
    """Load a file written by :func:`save_atomic`; raise :class:`CorruptCheckpoint` if unreadable."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CorruptCheckpoint(f"{path} cannot be read ({type(error).__name__}: {error})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CorruptCheckpoint(f"{path} is not a gensynth_course checkpoint (format {FORMAT})")
    return payload


def set_aside(path: Path, reason: str) -> None:
    """Move a damaged file out of the way (kept as ``*.corrupt`` for inspection) and say so."""
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    print(f"gensynth_course: {reason}\n  moved it to {aside} and will train the model again.")


def load_or_train(
    chapter: str,
    name: str,
    config: dict,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module, Path], dict],
    budget: str | None = None,
    retrain: bool = False,
) -> tuple[nn.Module, dict]:
    """Return ``(model, info)``, loading the cached model or training and caching it.

    ``build()`` makes a fresh model from ``config``, seeded with ``config["seed"]`` (0 if absent);
    ``train(model, checkpoint_path)`` trains it in place (it may save progress to
    ``checkpoint_path`` and resume from it after an interruption) and returns a JSON-able ``info``
    dict (losses, timings) stored beside the weights.
    """
    path = model_path(chapter, name, config, budget)
    # The initial weights come from the config's seed, whatever ran before, so that training from
    # an empty cache gives the same model every time; the caller's random stream is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.get("seed", 0))
        model = build()
    if path.exists() and not retrain:
        try:
            payload = load_safe(path)
            model.load_state_dict(payload["state_dict"])
            print(f"gensynth_course: loaded {name} ({check_budget(budget)} budget) from the cache: {path}")
            return model.eval(), payload["info"]
        except (CorruptCheckpoint, RuntimeError, KeyError) as error:
            set_aside(path, f"the cached {name} is damaged: {error}")
    info = train(model, path.with_suffix(".partial.pt"))
    save_atomic({"format": FORMAT, "name": name, "config": config,
                 "state_dict": model.state_dict(), "info": info}, path)
    path.with_suffix(".partial.pt").unlink(missing_ok=True)
    return model.eval(), info
