"""Where the course computes: chosen once per process, in this one place, and used by every path
that trains, samples or measures (each of them takes ``device=None`` to mean this choice).

``GENSYNTH_DEVICE`` overrides the choice (``cpu``, ``cuda``, ``cuda:1``, ``mps``); otherwise CUDA,
then Apple's MPS, then the CPU.

``GENSYNTH_PRECISION`` is the one switch for faster arithmetic: ``bf16`` runs every training step
(the one loop, :func:`gensynth_course.train.fit`) and every step of the diffusion sampler
(:func:`gensynth_course.models.diffusion.schedulers.sample`) under bfloat16 autocast (matrix products and convolutions in bf16;
reductions, norms and losses in fp32, as autocast chooses; no loss scaling is needed, since bf16
has fp32's range); ``fp32`` (the default) runs everything in float32.
"""

from __future__ import annotations

import contextlib
import os

import torch

from gensynth_course.errors import SettingError

_chosen: tuple[torch.device, str] | None = None


def _choose() -> tuple[torch.device, str]:
    forced = os.environ.get("GENSYNTH_DEVICE", "").strip()
    if forced:
        try:
            device = torch.device(forced)
        except RuntimeError:
            raise SettingError(f"GENSYNTH_DEVICE={forced!r} is not a device; use cpu, cuda, cuda:N or mps "
                               "(or leave it unset to choose by itself).") from None
        missing = _missing(device)
        if missing:
            there, names = _available()
            raise SettingError(f"GENSYNTH_DEVICE={forced!r} asks for {missing}, but this machine has {there}; "
                               f"unset GENSYNTH_DEVICE to let the course choose, or set it to {' or '.join(names)}.")
        return device, "set by GENSYNTH_DEVICE"
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.cuda.get_device_name(0)
    if _mps_available():
        return torch.device("mps"), "Apple Metal (MPS)"
    return torch.device("cpu"), f"{torch.get_num_threads()} CPU threads; no GPU found"


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def _missing(device: torch.device) -> str | None:
    """What ``device`` needs that this machine lacks, in words, or None when it can compute there."""
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            return "a CUDA GPU"
        if device.index is not None and device.index >= count:
            return f"CUDA GPU number {device.index}"
    elif device.type == "mps" and not _mps_available():
        return "Apple's Metal GPU (MPS)"
    elif device.type not in ("cpu", "cuda", "mps"):
        return f"a {device.type} device, which the course does not use"
    return None


def _available() -> tuple[str, list[str]]:
    """The devices this machine offers, in words and by the names GENSYNTH_DEVICE takes."""
    words, names = [], []
    if torch.cuda.is_available() and torch.cuda.device_count():
        n = torch.cuda.device_count()
        words.append("1 CUDA GPU" if n == 1 else f"{n} CUDA GPUs")
        names += ["cuda"] if n == 1 else [f"cuda:{i}" for i in range(n)]
    if _mps_available():
        words.append("Apple's Metal GPU")
        names.append("mps")
    return (" and ".join(words + ["the CPU"]) if words else "only the CPU"), names + ["cpu"]


def pick_device(verbose: bool = True) -> torch.device:
    """The course's device, chosen on first use and the same for the rest of the process. The choice
    is printed the first time (and whenever ``verbose``), so a learner always knows where work runs."""
    global _chosen
    first = _chosen is None
    if first:
        _chosen = _choose()
    device, why = _chosen
    if verbose or first:
        print(f"gensynth_course: using device {device} ({why})")
    return device


def resolve(device: torch.device | str | None) -> torch.device:
    """``device`` as a torch.device; ``None`` means the course's device (:func:`pick_device`)."""
    return torch.device(device) if device is not None else pick_device(verbose=False)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s weights are (the CPU for a model without any)."""
    return next(iter(model.parameters()), torch.empty(0)).device


PRECISIONS = ("fp32", "bf16")


def precision() -> str:
    """``GENSYNTH_PRECISION`` (``fp32`` unless set): the arithmetic :func:`autocast` gives."""
    chosen = os.environ.get("GENSYNTH_PRECISION", "fp32").strip().lower() or "fp32"
    if chosen not in PRECISIONS:
        raise SettingError(f"GENSYNTH_PRECISION={chosen!r} is not a precision; use fp32 or bf16 (or leave it unset).")
    return chosen


def autocast(device: torch.device | str | None = None):
    """The context a forward pass runs in on ``device`` (the course's device unless given): bfloat16
    autocast when :func:`precision` is ``bf16``, plain float32 otherwise."""
    if precision() == "bf16":
        return torch.autocast(resolve(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
