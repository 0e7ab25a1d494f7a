"""Reference solutions to the chapter 07 exercises (try them yourself first)."""

import torch
from torch.nn import functional as F


def power_spectrogram(wave, n_fft, hop):
    padded = F.pad(wave[None, None], (n_fft // 2, n_fft // 2), mode="reflect")[0, 0]
    frames = padded.unfold(0, n_fft, hop) * torch.hann_window(n_fft)
    return torch.fft.rfft(frames).abs().pow(2).T


def add_noise(wave, snr_db, noise):
    scale = torch.sqrt(wave.pow(2).mean() / noise.pow(2).mean() / 10 ** (snr_db / 10))
    return wave + scale * noise


def audioclip_loss(audio, image, text, s_ai, s_at, s_it):
    def symmetric(logits):
        target = torch.arange(len(logits))
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2

    return symmetric(s_ai * audio @ image.T) + symmetric(s_at * audio @ text.T) + symmetric(s_it * image @ text.T)


def average_precision(scores, relevant):
    hits = relevant[scores.argsort(descending=True)].double()
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
    return (precision * hits).sum() / hits.sum()
