"""AudioCLIP's audio head: the convolutional STFT front end against torch.stft, shapes, the
trainable switch, grouped convolutions, and overfit tests on sounding shapes (the attributes, and
the downstream likeness label through a new layer)."""

import pytest
import torch

from gensynth_course.data import shapes, sounds
from gensynth_course.models.contrastive.audio_head import AudioEncoder, ResNeXtBlock, SoundClassifier, Spectrogram


def test_frozen_front_end_is_the_stft_power_spectrum():
    wave = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    front = Spectrogram(n_fft=256, hop=64, max_hz=8000)
    expected = torch.stft(wave, 256, 64, window=torch.hann_window(256), center=True, pad_mode="reflect",
                          return_complex=True).abs() ** 2
    assert torch.allclose(front.power(wave), expected, rtol=1e-3, atol=1e-3)
    assert front(wave).shape == (2, 1, 129, 4000 // 64 + 1)
    assert not front.kernels.requires_grad and Spectrogram(trainable=True).kernels.requires_grad


def test_bins_stop_at_max_hz_and_a_note_peaks_at_its_pitch():
    front = Spectrogram()                                   # 512-point STFT: 31.25 Hz per bin, up to 2 kHz
    assert front.bins == 65
    scene = shapes.Scene((shapes.ShapeObject("circle", "blue", "large"),), "centre")
    log_power = front(sounds.synthesise(scene)[None])[0, 0]
    middle = log_power[:, log_power.shape[1] // 2]
    assert abs(int(middle.argmax()) * 31.25 - 440) <= 31.25


def test_resnext_block_uses_grouped_convolutions_and_halves_the_grid():
    block = ResNeXtBlock(16, 32, stride=2, cardinality=8)
    grouped = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(grouped) == 1 and grouped[0].groups == 8
    assert block(torch.randn(2, 16, 10, 12)).shape == (2, 32, 5, 6)


def test_audio_encoder_outputs_and_overfit_on_sounding_shapes():
    torch.manual_seed(0)
    encoder = AudioEncoder(channels=(16, 32, 32), embed_dim=24)
    data = shapes.load_shapes("train", 32, seed=0)
    waves = sounds.synthesise_all(data.scenes)
    assert encoder(waves[:3]).shape == (3, 32) and encoder.embed(waves[:3], normalize=True).shape == (3, 24)
    assert [logits.shape[1] for logits in encoder.classify(waves[:3])] == [7, 4, 6, 2, 4, 6, 2]
    optimizer = torch.optim.Adam(encoder.parameters(), 3e-3)
    first = encoder.loss(waves, data.labels).item()
    for _ in range(60):
        loss = encoder.loss(waves, data.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * first


def test_sound_classifier_learns_a_new_label_on_top_of_a_head():
    torch.manual_seed(0)
    head = AudioEncoder(channels=(16, 32, 32), embed_dim=24)
    classifier = SoundClassifier(head, len(shapes.LIKENESS))
    scenes = shapes.likeness_scenes(16, "train")
    waves = sounds.synthesise_all(scenes)
    labels = torch.tensor([shapes.likeness(scene) for scene in scenes])
    assert classifier(waves[:3]).shape == (3, 4) and classifier.head is head
    optimizer = torch.optim.Adam(classifier.parameters(), 3e-3)
    first = classifier.loss(waves, labels).item()
    for _ in range(60):
        loss = classifier.loss(waves, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * first
    assert (classifier.predict(waves) == labels).float().mean() >= 0.9
    with pytest.raises(ValueError, match="at least two classes"):
        SoundClassifier(head, 1)
