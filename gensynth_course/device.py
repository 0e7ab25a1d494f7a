"""Choose where tensors live: CUDA, Apple MPS or the CPU, and say which."""

from __future__ import annotations

import os

import torch


def pick_device(verbose: bool = True) -> torch.device:
    """Return the best available device; ``GENSYNTH_DEVICE`` overrides the choice.

    The choice is printed so that a learner always knows where the work runs.
    """
    forced = os.environ.get("GENSYNTH_DEVICE")
    if forced:
        device = torch.device(forced)
        why = "set by GENSYNTH_DEVICE"
    elif torch.cuda.is_available():
        device = torch.device("cuda")
        why = torch.cuda.get_device_name(0)
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
        why = "Apple Metal (MPS)"
    else:
        device = torch.device("cpu")
        why = f"{torch.get_num_threads()} CPU threads; no GPU found"
    if verbose:
        print(f"gensynth_course: using device {device} ({why})")
    return device
