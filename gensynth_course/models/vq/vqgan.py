"""VQ-VAE and VQGAN: compress a 28×28 image into a 7×7 grid of discrete codes and back.

Both share one autoencoder (:class:`VQAutoencoder`: a convolutional encoder, the vector
quantizer of ``quantizer.py`` and a mirrored decoder, f = 4 downsampling; f = 2 and f = 7 for
the study of the factor). At f = 4 it takes any square side divisible by 4 and any number of
channels in and out: a 32×32 RGB Shapes scene, or a segmentation map as one-hot channels in and
one logit per class out, becomes an 8×8 grid. VQ-VAE and VQGAN differ only in how
the reconstruction is judged:

* VQ-VAE (van den Oord et al. 2017, eq. 3): L = ‖x − x̂‖² + L_VQ.
* VQGAN (Esser et al. 2021, eqs. 4–7): L = L1 + L_perceptual + L_VQ + λ L_GAN, where L_GAN comes
  from a patch discriminator D (Isola et al. 2017: one real/fake logit per image patch) trained
  with the hinge loss, and λ balances the two on the decoder's last layer G_L (eq. 7):

      λ = ‖∇_{G_L} L_rec‖ / (‖∇_{G_L} L_GAN‖ + δ),   δ = 1e-6,

  switched on only after ``disc_start`` steps, once reconstructions are already reasonable.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gensynth_course.models.layers import ConvResBlock, group_norm_8
from gensynth_course.models.vq.quantizer import VectorQuantizer


# The downsampling factors f the autoencoder supports on a 28×28 image, and the side of the code
# grid each gives (f = 7 turns the 7×7 grid into 4×4 with one more stride-2 convolution).
GRID_SIDE = {2: 14, 4: 7, 7: 4}


def check_factor(factor) -> int:
    """``factor`` if it is one of :data:`GRID_SIDE`'s downsampling factors."""
    if isinstance(factor, bool) or factor not in GRID_SIDE:
        raise ValueError(f"downsampling factor {factor!r} is not supported; use one of "
                         f"{', '.join(map(str, GRID_SIDE))} (a 28×28 image becomes a "
                         f"{' / '.join(f'{s}×{s}' for s in GRID_SIDE.values())} code grid).")
    return factor


def grid_side(factor: int, image_size: int) -> int:
    """The side of the code grid of an ``image_size`` × ``image_size`` image at factor f: 28 / f
    (rounded up) on the chapter's 28×28 images; image_size / 4 on other sides, which need f = 4."""
    check_factor(factor)
    if image_size == 28:
        return GRID_SIDE[factor]
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8 or image_size % 4:
        raise ValueError(f"image side {image_size!r} is not supported; use 28, or a multiple of 4 (at least 8) "
                         "with factor 4.")
    if factor != 4:
        raise ValueError(f"factor {factor} is built for 28×28 images only; a {image_size}×{image_size} image "
                         "takes factor 4.")
    return image_size // 4


class Encoder(nn.Module):
    """(B, C, 28, 28) → (B, D, 28/f, 28/f): stride-2 convolutions, a residual block after each.

    The first convolution downsamples at once: residual blocks at 28×28 would cost most of the
    compute and add little at this size. With f = 4 (the chapter's) there are two; f = 2 keeps the
    second width at 14×14, and f = 7 adds a third stride-2 convolution, 7×7 → 4×4.
    """

    def __init__(self, widths=(32, 64), dim: int = 16, factor: int = 4, in_channels: int = 1):
        super().__init__()
        c1, c2 = widths
        layers = [nn.Conv2d(in_channels, c1, 4, stride=2, padding=1), ConvResBlock(c1)]            # 14×14
        if check_factor(factor) == 2:
            layers += [nn.Conv2d(c1, c2, 3, padding=1), ConvResBlock(c2)]                          # 14×14
        else:
            layers += [nn.Conv2d(c1, c2, 4, stride=2, padding=1), ConvResBlock(c2)]                # 7×7
        if factor == 7:
            layers += [nn.Conv2d(c2, c2, 3, stride=2, padding=1), ConvResBlock(c2)]                # 4×4
        self.net = nn.Sequential(*layers, group_norm_8(c2), nn.SiLU(), nn.Conv2d(c2, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """(B, D, h, w) → (B, C, 28, 28) for the grid of its factor f, the encoder mirrored with
    nearest-neighbour upsampling (4 × 4 → 7 × 7 for f = 7).

    With f = 4 it is fully convolutional, so it also decodes code grids larger than 7×7
    (sliding-window samples) into images 4× larger.
    """

    def __init__(self, widths=(32, 64), dim: int = 16, factor: int = 4, out_channels: int = 1):
        super().__init__()
        c1, c2 = widths
        layers = [nn.Conv2d(dim, c2, 3, padding=1), ConvResBlock(c2)]                              # 28/f
        if check_factor(factor) == 7:
            layers += [nn.Upsample(scale_factor=7 / 4), nn.Conv2d(c2, c2, 3, padding=1), ConvResBlock(c2)]   # 7×7
        if factor != 2:
            layers.append(nn.Upsample(scale_factor=2))
        layers += [nn.Conv2d(c2, c1, 3, padding=1), ConvResBlock(c1),                              # 14×14
                   nn.Upsample(scale_factor=2), nn.Conv2d(c1, c1 // 2, 3, padding=1), nn.SiLU()]    # 28×28
        self.net = nn.Sequential(*layers)
        self.last_layer = nn.Conv2d(c1 // 2, out_channels, 3, padding=1)   # G_L of eq. 7

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self.net(z))


class VQAutoencoder(nn.Module):
    """Encoder → vector quantizer → decoder. ``forward(x)`` returns ``(x̂, indices, vq_loss)``.
    ``factor``: the downsampling factor f, 4 (a 7×7 grid of codes), 2 (14×14) or 7 (4×4).
    ``in_channels``, ``out_channels`` and ``image_size``: what it encodes and decodes, (B, in,
    side, side) to (B, out, side, side); a side other than 28 takes f = 4."""

    def __init__(self, widths=(32, 64), dim: int = 16, num_codes: int = 256, beta: float = 0.25,
                 ema: bool = False, restart_dead: bool = False, factor: int = 4, in_channels: int = 1,
                 out_channels: int = 1, image_size: int = 28):
        super().__init__()
        self.factor = check_factor(factor)
        self.image_size, self.grid = image_size, grid_side(factor, image_size)
        self.encoder = Encoder(widths, dim, factor, in_channels)
        self.quantizer = VectorQuantizer(num_codes, dim, beta=beta, ema=ema, restart_dead=restart_dead)
        self.decoder = Decoder(widths, dim, factor, out_channels)

    @property
    def num_codes(self) -> int:
        return self.quantizer.num_codes

    def encode(self, x: torch.Tensor):
        """Images (B, in, side, side) in [−1, 1] → ``(z_q, indices (B, grid, grid), vq_loss)``."""
        return self.quantizer(self.encoder(x))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """A code grid (B, h, w) of integers → images (B, out, side, side) for the autoencoder's own
        grid (with f = 4, any grid: (B, out, 4h, 4w))."""
        return self.decoder(self.quantizer.lookup(indices))

    def forward(self, x: torch.Tensor):
        z_q, indices, vq_loss = self.encode(x)
        return self.decoder(z_q), indices, vq_loss


class PatchDiscriminator(nn.Module):
    """PatchGAN: (B, C, 28, 28) → (B, 1, 7, 7) logits, each judging one overlapping image patch
    (a side s gives an s/4 × s/4 grid of them).

    Unlike the original it has no BatchNorm: real and fake batches go through it separately, and
    per-batch normalisation hid the difference between them (the discriminator stopped learning).
    """

    def __init__(self, width: int = 32, in_channels: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),            # 14×14
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),              # 7×7
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss: mean ReLU(1 − D(x)) + mean ReLU(1 + D(x̂))."""
    return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()


def adaptive_weight(rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor,
                    delta: float = 1e-6, max_weight: float = 1e4) -> torch.Tensor:
    """λ = ‖∇_{G_L} L_rec‖ / (‖∇_{G_L} L_GAN‖ + δ) (Esser et al. 2021, eq. 7), as a constant."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    return (rec_grad.norm() / (gan_grad.norm() + delta)).clamp(0, max_weight).detach()


class VQGANTrainer(nn.Module):
    """Everything VQGAN trains: the autoencoder (generator) and the patch discriminator.

    ``loss(x)`` returns one scalar whose gradient updates both at once: the generator's terms
    reach only the autoencoder (the discriminator's weights are frozen while it judges x̂ for the
    generator) and the discriminator's hinge loss only the discriminator (it sees x̂ detached).
    With ``gan=False`` and ``perceptual=None`` this is plain VQ-VAE training with MSE.
    """

    def __init__(self, autoencoder: VQAutoencoder, perceptual: nn.Module | None = None, gan: bool = True,
                 disc_start: int = 300, gan_weight: float = 0.1, disc_width: int = 32):
        super().__init__()
        self.autoencoder = autoencoder
        self.perceptual = perceptual
        channels = autoencoder.decoder.last_layer.out_channels          # the discriminator judges what it draws
        self.discriminator = PatchDiscriminator(disc_width, channels) if gan else None
        self.disc_start, self.gan_weight = disc_start, gan_weight
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.last_terms: dict[str, float] = {}

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        x_rec, _, vq_loss = self.autoencoder(x)
        if self.discriminator is None and self.perceptual is None:
            rec_loss = F.mse_loss(x_rec, x)                                   # VQ-VAE
        else:
            rec_loss = (x_rec - x).abs().mean()                               # VQGAN: L1 + perceptual
            if self.perceptual is not None:
                rec_loss = rec_loss + self.perceptual(x_rec, x)
        total = rec_loss + vq_loss
        terms = {"rec": rec_loss.item(), "vq": vq_loss.item()}
        if self.discriminator is not None and int(self.step) >= self.disc_start:
            self.discriminator.requires_grad_(False)
            g_loss = -self.discriminator(x_rec).mean()                         # the generator's hinge term
            self.discriminator.requires_grad_(True)
            lam = adaptive_weight(rec_loss, g_loss, self.autoencoder.decoder.last_layer.weight)
            d_loss = hinge_d_loss(self.discriminator(x), self.discriminator(x_rec.detach()))
            total = total + self.gan_weight * lam * g_loss + d_loss
            terms.update(g=g_loss.item(), d=d_loss.item(), lam=lam.item())
        self.step += 1
        self.last_terms = terms
        return total
