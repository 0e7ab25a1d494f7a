"""Sounding shapes: every Shapes scene also makes a sound (chapter 07, AudioCLIP).

Each object of a scene plays one note, synthesised additively at 16 kHz, so that text, image and
audio share their factors:

* **shape → timbre**: circle a pure sine; square the odd harmonics at 1/k (a square wave);
  triangle the odd harmonics at 1/k² (a triangle wave); cross every harmonic at 1/k (a sawtooth);
* **colour → pitch**: the fundamental of the note (:data:`PITCH`, a pentatonic set from A3 to C5,
  at least three semitones apart, so a little time scaling cannot turn one colour into another);
* **size → loudness**: peak amplitude 0.5 for a large object, 0.2 for a small one (8 dB apart);
* **position → timing and tremolo**: the horizontal place sets *when* the note plays (left early,
  centre in the middle, right late); the vertical place sets its tremolo (top fast, bottom slow,
  the middle row none). Two objects side by side play one after the other, left first; one above
  the other they sound together, told apart by their tremolo.

Every note has the same symmetric raised-cosine envelope, so a scene whose notes all sit in the
middle of the clip (one object at the centre, top or bottom; or one above the other) sounds the same
played backwards, and only those may be time-reversed as an augmentation (:func:`reversible`).
The phase of each note comes from a seed: the same scene and seed give the same waveform.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from gensynth_course.data import shapes

SAMPLE_RATE = 16_000
DURATION = 1.0                 # seconds per clip
NOTE_LENGTH = 0.4              # seconds per note
FADE = 0.02                    # raised-cosine fade in and out, seconds
PITCH = {"red": 220.0, "yellow": 261.63, "green": 329.63, "cyan": 392.0, "blue": 440.0, "purple": 523.25}
LOUDNESS = {"small": 0.2, "large": 0.5}
ONSET = {"left": 0.05, "centre": 0.3, "right": 0.55}      # when a note starts, by horizontal place
TREMOLO = {"top": 12.0, "middle": 0.0, "bottom": 4.0}     # amplitude-modulation rate (Hz) by vertical place
TREMOLO_DEPTH = 0.6
HIGHEST_HARMONIC = 7_000.0     # below the Nyquist frequency (8 kHz), so no harmonic aliases


def harmonics(shape: str, f0: float) -> list[tuple[float, float]]:
    """(frequency, amplitude) of each partial of a ``shape``'s note at fundamental ``f0``."""
    top = int(HIGHEST_HARMONIC // f0)
    if shape == "circle":
        return [(f0, 1.0)]
    if shape == "square":
        return [(k * f0, 1 / k) for k in range(1, top + 1, 2)]
    if shape == "triangle":
        return [(k * f0, (-1) ** ((k - 1) // 2) / k ** 2) for k in range(1, top + 1, 2)]
    if shape == "cross":
        return [(k * f0, 1 / k) for k in range(1, top + 1)]
    raise ValueError(f"no timbre for shape {shape!r}; shapes are {', '.join(shapes.SHAPES)}")


def placements(scene: shapes.Scene) -> list[tuple[str, str]]:
    """(horizontal, vertical) place of each object: which onset and which tremolo it gets."""
    if scene.layout in shapes.POSITIONS:
        return [{"left": ("left", "middle"), "right": ("right", "middle"), "top": ("centre", "top"),
                 "bottom": ("centre", "bottom"), "centre": ("centre", "middle")}[scene.layout]]
    if scene.layout == "side by side":          # objects are stored left to right
        return [("left", "middle"), ("right", "middle")]
    return [("centre", "top"), ("centre", "bottom")]   # stored top to bottom


def reversible(scene: shapes.Scene) -> bool:
    """Whether the scene's sound means the same played backwards: every note starts at the centre
    onset, whose time window is symmetric about the middle of the clip."""
    return all(horizontal == "centre" for horizontal, _ in placements(scene))


def envelope(n: int, onset: float, tremolo: float) -> torch.Tensor:
    """(n,) amplitude envelope: zero outside [onset, onset + NOTE_LENGTH], raised-cosine fades,
    and a tremolo of rate ``tremolo`` Hz (none at 0) that is symmetric about the note's middle."""
    t = torch.arange(n, dtype=torch.float64) / SAMPLE_RATE
    local = t - onset
    inside = (local >= 0) & (local <= NOTE_LENGTH)
    edge = torch.minimum(local, NOTE_LENGTH - local).clamp(min=0)
    fade = torch.where(edge < FADE, 0.5 - 0.5 * torch.cos(math.pi * edge / FADE), torch.ones_like(edge))
    wobble = 1 - TREMOLO_DEPTH / 2 + TREMOLO_DEPTH / 2 * torch.cos(2 * math.pi * tremolo * (local - NOTE_LENGTH / 2))
    return torch.where(inside, fade * wobble, torch.zeros_like(t))


def synthesise(scene: shapes.Scene, seed: int = 0) -> torch.Tensor:
    """The scene's sound: (SAMPLE_RATE · DURATION,) float32 samples in [−1, 1]."""
    n = int(SAMPLE_RATE * DURATION)
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(n, dtype=torch.float64) / SAMPLE_RATE
    out = torch.zeros(n, dtype=torch.float64)
    for obj, (horizontal, vertical) in zip(scene.objects, placements(scene)):
        phase = float(torch.rand(1, generator=generator, dtype=torch.float64)) * 2 * math.pi
        partials = harmonics(obj.shape, PITCH[obj.colour])
        wave = sum(a * torch.sin(2 * math.pi * f * t + phase * f / partials[0][0]) for f, a in partials)
        wave = wave / wave.abs().max()
        out += LOUDNESS[obj.size] * wave * envelope(n, ONSET[horizontal], TREMOLO[vertical])
    return out.float()


def synthesise_all(scenes: list[shapes.Scene], seed: int = 0) -> torch.Tensor:
    """(N, samples): scene i with seed ``seed`` + i, so every clip has its own phases."""
    return torch.stack([synthesise(scene, seed + i) for i, scene in enumerate(scenes)])


def dominant_frequency(wave: torch.Tensor) -> float:
    """The frequency (Hz) of the strongest spectral peak, refined by parabolic interpolation of the
    log-magnitude around it: the pitch of a note, since every timbre's fundamental is its loudest
    partial."""
    spectrum = torch.fft.rfft(wave.double() * torch.hann_window(len(wave), dtype=torch.float64)).abs()
    k = int(spectrum[1:].argmax()) + 1
    a, b, c = (spectrum[k - 1:k + 2] + 1e-12).log().tolist()
    offset = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
    return (k + offset) * SAMPLE_RATE / len(wave)


# ----------------------------------------------------------------------------- augmentations


def time_scale(wave: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``wave`` (…, n) ``factor`` times as fast by linear resampling: shorter and higher by the
    same factor. Keep |factor − 1| small here (≤ 3 %): pitch carries the colour."""
    n = wave.shape[-1]
    new_n = max(2, round(n / factor))
    return F.interpolate(wave.reshape(-1, 1, n), size=new_n, mode="linear", align_corners=True).reshape(*wave.shape[:-1], new_n)


def crop_or_pad(wave: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A ``length``-sample window of ``wave``: a random crop of a longer clip, or a shorter clip
    placed at a random offset in silence."""
    n = wave.shape[-1]
    start = int(torch.randint(0, abs(n - length) + 1, (1,), generator=generator))
    if n >= length:
        return wave[..., start:start + length]
    return F.pad(wave, (start, length - n - start))


def add_white_noise(wave: torch.Tensor, snr_db: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``wave`` plus white Gaussian noise scaled so that signal power / noise power is exactly
    ``snr_db`` decibels (the seed's AWGN augmentation)."""
    noise = torch.randn(wave.shape, generator=generator, dtype=wave.dtype)
    signal_power = wave.pow(2).mean(-1, keepdim=True)
    noise = noise * torch.sqrt(signal_power / noise.pow(2).mean(-1, keepdim=True) / 10 ** (snr_db / 10))
    return wave + noise


def augment(wave: torch.Tensor, scene: shapes.Scene, generator: torch.Generator) -> torch.Tensor:
    """The seed's augmentations for one clip: time scaling by up to ±3 %, a crop or pad back to
    the clip length, white noise at an SNR drawn from 10–120 dB with probability 0.25, and time
    reversal (probability 0.5) only where it keeps the meaning (:func:`reversible`)."""
    n = wave.shape[-1]
    factor = 1 + (float(torch.rand(1, generator=generator)) * 2 - 1) * 0.03
    wave = crop_or_pad(time_scale(wave, factor), n, generator)
    if float(torch.rand(1, generator=generator)) < 0.25:
        wave = add_white_noise(wave, 10 + float(torch.rand(1, generator=generator)) * 110, generator)
    if reversible(scene) and float(torch.rand(1, generator=generator)) < 0.5:
        wave = wave.flip(-1)
    return wave
