"""AudioCLIP's audio head in miniature (Guzhov et al. 2021, section 3.2): a time–frequency front
end and an ESResNeXt-style network into CLIP's embedding space.

**Front end.** AudioCLIP's ESResNeXt starts with a *trainable* time–frequency transformation.
Ours is the short-time Fourier transform written as a 1-D convolution whose kernels are the
windowed Fourier basis, w(n) cos(2π k n / N) and −w(n) sin(2π k n / N), with stride = hop: frozen,
it computes exactly ``torch.stft``'s power spectrum; with ``trainable=True`` the kernels become
parameters that training may reshape. The output is the log power, log(|X|² + ε), of the
frequency bins up to ``max_hz``.

**Network.** ResNeXt blocks (Xie et al. 2017): a 1 × 1 convolution, a 3 × 3 *grouped* convolution
(``cardinality`` groups, each seeing a slice of the channels) and a 1 × 1 convolution, with batch
normalisation and a residual shortcut; global average pooling over time and frequency gives the
audio feature, which feeds attribute heads (stage 1, supervised) and a linear projection into the
shared embedding space (stages 2 and 3, contrastive).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gensynth_course.data import sounds
from gensynth_course.device import model_device
from gensynth_course.models.layers import HEAD_SIZES, attribute_loss


class Spectrogram(nn.Module):
    """(B, samples) → log power (B, 1, bins, frames), bins up to ``max_hz``."""

    def __init__(self, n_fft: int = 512, hop: int = 256, max_hz: float = 2000.0, trainable: bool = False,
                 sample_rate: int = sounds.SAMPLE_RATE, eps: float = 1e-6):
        super().__init__()
        bins = int(max_hz * n_fft / sample_rate) + 1
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64)[:, None]
        window = torch.hann_window(n_fft, dtype=torch.float64)
        basis = torch.cat([window * torch.cos(2 * math.pi * k * n / n_fft),
                           -window * torch.sin(2 * math.pi * k * n / n_fft)]).float()[:, None, :]   # (2·bins, 1, n_fft)
        self.kernels = nn.Parameter(basis, requires_grad=trainable)
        self.n_fft, self.hop, self.bins, self.eps = n_fft, hop, bins, eps

    def power(self, wave: torch.Tensor) -> torch.Tensor:
        """|X|² (B, bins, frames), framed as ``torch.stft(center=True, pad_mode="reflect")``."""
        x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        out = F.conv1d(x, self.kernels, stride=self.hop)
        real, imag = out[:, :self.bins], out[:, self.bins:]
        return real ** 2 + imag ** 2

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.log(self.power(wave) + self.eps)[:, None]


class ResNeXtBlock(nn.Module):
    """1 × 1 → grouped 3 × 3 (stride ``stride``) → 1 × 1, each with batch norm, plus a shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, cardinality: int = 8, width: int | None = None):
        super().__init__()
        width = width or c_out // 2
        if width % cardinality:
            raise ValueError(f"the grouped convolution's width {width} must be a multiple of the cardinality {cardinality}")
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class AudioEncoder(nn.Module):
    """Waveform → audio feature (B, width); ``classify`` gives the attribute logits (stage 1) and
    ``embed`` the embedding in the shared space (stages 2 and 3)."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), cardinality: int = 8, embed_dim: int = 64,
                 trainable_frontend: bool = False, normalise_input: bool = True, hop: int = 256, max_hz: float = 2000.0):
        super().__init__()
        self.spectrogram = Spectrogram(hop=hop, max_hz=max_hz, trainable=trainable_frontend)
        self.input_norm = nn.BatchNorm2d(1) if normalise_input else nn.Identity()
        self.stem = nn.Sequential(nn.Conv2d(1, channels[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(channels[0]), nn.ReLU())
        blocks, c_in = [], channels[0]
        for c in channels:
            blocks.append(ResNeXtBlock(c_in, c, stride=2, cardinality=cardinality))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.width = c_in
        self.heads = nn.ModuleList(nn.Linear(c_in, n) for n in HEAD_SIZES)
        self.projection = nn.Linear(c_in, embed_dim, bias=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.input_norm(self.spectrogram(wave)))
        return self.blocks(x).mean((2, 3))

    def classify(self, wave: torch.Tensor) -> list[torch.Tensor]:
        """Logits for each scene attribute (layout, then shape, colour, size of each slot)."""
        features = self(wave)
        return [head(features) for head in self.heads]

    def loss(self, wave: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Stage 1's supervised loss: the attribute cross-entropies of the scene labels (N, 7)."""
        return attribute_loss(self.classify(wave), labels)

    @torch.no_grad()
    def predict(self, wave: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Predicted scene labels (N, 7), as the attribute evaluator's ``predict`` gives for images."""
        self.eval()
        device = model_device(self)
        return torch.cat([torch.stack([logits.argmax(1) for logits in self.classify(wave[i:i + batch_size].to(device))],
                                      1).cpu() for i in range(0, len(wave), batch_size)])

    def embed(self, wave: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.projection(self(wave))
        return F.normalize(z, dim=-1) if normalize else z


class SoundClassifier(nn.Module):
    """An audio head fine-tuned on a downstream sound task (AudioCLIP's section 4.3: ESResNeXt
    fine-tuned on ESC-50 and UrbanSound8K): the head's audio feature, then one new linear layer
    over ``classes`` classes. The head comes in as it is: freshly built (training from scratch) or
    pretrained (stage 1, or AudioCLIP's audio head after full training)."""

    def __init__(self, head: AudioEncoder, classes: int):
        super().__init__()
        if not isinstance(classes, int) or classes < 2:
            raise ValueError(f"a classifier needs at least two classes, not {classes!r}")
        self.head = head
        self.out = nn.Linear(head.width, classes)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, samples) → class logits (B, classes)."""
        return self.out(self.head(wave))

    def loss(self, wave: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(wave), labels)

    @torch.no_grad()
    def predict(self, wave: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Predicted classes (N,)."""
        self.eval()
        device = model_device(self)
        return torch.cat([self(wave[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(wave), batch_size)])
