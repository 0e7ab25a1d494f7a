"""AudioCLIP (Guzhov et al. 2021): CLIP's image and text heads plus an audio head, in one
embedding space.

Every pair of modalities gets its own symmetric InfoNCE loss (CLIP's, eq. of Radford et al. 2021,
section 2.3) with its own learned temperature: for a batch of N (sound, image, caption) triplets,

    L = Σ over trained pairs (m, n) of  CE(s_mn · A_m A_nᵀ, I) / 2 + CE(s_mn · A_n A_mᵀ, I) / 2,

where A_m holds the unit-length embeddings of modality m and s_mn = exp(t_mn) is clamped at 100.
*Partial* training optimises the audio–image and audio–text terms only, with the image and text
heads frozen; *full* training adds the image–text term and updates all three heads (section 3.3).
"""

from __future__ import annotations

import torch
from torch import nn

from gensynth_course.models.contrastive.audio_head import AudioEncoder
from gensynth_course.models.contrastive.clip import CLIP, INIT_LOGIT_SCALE, MAX_LOGIT_SCALE, contrastive_loss

PAIRS = ("audio_image", "audio_text", "image_text")
TRAINED_PAIRS = {"partial": ("audio_image", "audio_text"), "full": PAIRS}


class AudioCLIP(nn.Module):
    """An :class:`~gensynth_course.models.contrastive.audio_head.AudioEncoder` beside a :class:`~gensynth_course.models.contrastive.clip.CLIP`,
    with learned logit scales for the two new pairs (image–text keeps CLIP's own)."""

    def __init__(self, audio: AudioEncoder, clip: CLIP):
        super().__init__()
        if audio.projection.out_features != clip.image_projection.out_features:
            raise ValueError(f"the audio head embeds into {audio.projection.out_features} dimensions but CLIP into "
                             f"{clip.image_projection.out_features}: build the audio head with "
                             f"embed_dim={clip.image_projection.out_features}")
        self.audio, self.clip = audio, clip
        self.logit_scale_audio_image = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))
        self.logit_scale_audio_text = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))

    def set_training(self, mode: str) -> "AudioCLIP":
        """``"partial"`` freezes the image and text heads (parameters and CLIP's own logit scale);
        ``"full"`` lets every head learn."""
        if mode not in TRAINED_PAIRS:
            raise ValueError(f"mode must be one of {tuple(TRAINED_PAIRS)}, not {mode!r}")
        self.clip.requires_grad_(mode == "full")
        return self

    def train(self, mode: bool = True) -> "AudioCLIP":
        super().train(mode)
        if not any(p.requires_grad for p in self.clip.parameters()):
            self.clip.eval()                      # frozen heads also keep their normalisation statistics
        return self

    def encode_audio(self, waves: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self.audio.embed(waves, normalize)

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self.clip.encode_image(images, normalize)

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor | None = None, normalize: bool = False) -> torch.Tensor:
        return self.clip.encode_text(ids, mask, normalize)

    def scale(self, pair: str) -> torch.Tensor:
        """exp(t) of a pair of :data:`PAIRS`, clamped at 100 as in CLIP."""
        if pair == "image_text":
            return self.clip.scale()
        return getattr(self, f"logit_scale_{pair}").clamp(max=MAX_LOGIT_SCALE).exp()

    def pair_losses(self, waves: torch.Tensor, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor | None,
                    pairs: tuple[str, ...] = PAIRS) -> dict[str, torch.Tensor]:
        """The symmetric InfoNCE of each pair in ``pairs``, for a batch of matching triplets."""
        embeddings = {"audio": self.encode_audio(waves, normalize=True),
                      "image": self.encode_image(images, normalize=True),
                      "text": self.encode_text(ids, mask, normalize=True)}
        out = {}
        for pair in pairs:
            first, second = pair.split("_")
            out[pair] = contrastive_loss(self.scale(pair) * embeddings[first] @ embeddings[second].T)
        return out

    def loss(self, waves: torch.Tensor, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor | None,
             mode: str) -> torch.Tensor:
        """The sum of the pair losses that ``mode`` (``"partial"`` or ``"full"``) trains."""
        return sum(self.pair_losses(waves, images, ids, mask, TRAINED_PAIRS[mode]).values())

