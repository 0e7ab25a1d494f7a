"""Chapter 07 exercises: each ``check_*`` runs a learner's function on random inputs and compares
it with the package (``audio_head.py``, ``sounds.py``, ``clip.py``, ``metrics.py``). It prints what
is wrong and a hint, and returns True or False, so a notebook cell never fails with a traceback.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from gensynth_course.data import sounds
from gensynth_course.evaluation.metrics import mean_average_precision
from gensynth_course.exercises.checking import compare
from gensynth_course.models.contrastive.audio_head import Spectrogram
from gensynth_course.models.contrastive.clip import contrastive_loss


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def check_power_spectrogram(fn) -> bool:
    """``fn(wave (n,), n_fft, hop) -> (n_fft // 2 + 1, frames)``: |STFT|² with a Hann window,
    framed as ``torch.stft(center=True, pad_mode="reflect")``."""
    wave = _randn(400, seed=0)
    n_fft, hop = 64, 16
    expected = Spectrogram(n_fft, hop, max_hz=sounds.SAMPLE_RATE / 2).power(wave[None])[0]
    return compare("power_spectrogram", fn, (wave.clone(), n_fft, hop), expected,
                   "pad n_fft // 2 samples on both sides with F.pad(wave[None, None], (p, p), mode='reflect')[0, 0], "
                   "cut frames with unfold(0, n_fft, hop), multiply each by torch.hann_window(n_fft), then "
                   "torch.fft.rfft(frames).abs() ** 2, transposed to (bins, frames).", atol=1e-2)


def check_add_noise(fn) -> bool:
    """``fn(wave (n,), snr_db, noise (n,)) -> (n,)``: the clip plus the noise scaled to the SNR."""
    wave = _randn(1000, seed=1) * 0.3
    noise = torch.randn(wave.shape, generator=torch.Generator().manual_seed(2))
    expected = sounds.add_white_noise(wave, 12.0, torch.Generator().manual_seed(2))
    return compare("add_noise", fn, (wave.clone(), 12.0, noise.clone()), expected,
                   "scale the noise by sqrt(mean(wave²) / mean(noise²) / 10 ** (snr_db / 10)): "
                   "the SNR compares the two powers, so both enter.", atol=1e-5)


def check_audioclip_loss(fn) -> bool:
    """``fn(audio, image, text, s_ai, s_at, s_it) -> scalar``: the sum of the three symmetric
    InfoNCE losses of unit-length embeddings."""
    audio, image, text = (F.normalize(_randn(6, 8, seed=s), dim=-1) for s in (3, 4, 5))
    s_ai, s_at, s_it = 9.0, 11.0, 14.0
    expected = (contrastive_loss(s_ai * audio @ image.T) + contrastive_loss(s_at * audio @ text.T)
                + contrastive_loss(s_it * image @ text.T))
    return compare("audioclip_loss", fn, (audio.clone(), image.clone(), text.clone(), s_ai, s_at, s_it), expected,
                   "for each pair, logits = s · a @ b.T; the pair's loss is the mean of the cross-entropy of "
                   "the rows and of the columns (logits.T), with torch.arange(N) as targets; add the three.",
                   atol=1e-5)


def check_average_precision(fn) -> bool:
    """``fn(scores (N,), relevant (N,) bool) -> scalar``: the average precision of one query."""
    scores = _randn(12, seed=6)
    relevant = torch.zeros(12, dtype=torch.bool)
    relevant[[0, 4, 5, 9]] = True
    expected = torch.tensor(mean_average_precision(scores[None], relevant[None]), dtype=torch.float64)
    return compare("average_precision", lambda s, r: torch.as_tensor(fn(s, r), dtype=torch.float64),
                   (scores.clone(), relevant.clone()), expected,
                   "sort the relevance by falling score, precision at rank r = hits.cumsum() / r; average it "
                   "over the ranks where a right answer sits (divide by the number of right answers).", atol=1e-6)
