"""Sounding shapes (chapter 07): determinism, the attribute-to-sound mapping measured from the
waveform, and the augmentations."""

import math

import pytest
import torch

from gensynth_course.data import shapes, sounds
from gensynth_course.data.shapes import Scene, ShapeObject


def _one(shape="circle", colour="red", size="large", layout="centre"):
    return Scene((ShapeObject(shape, colour, size),), layout)


def _note(wave, onset):
    """The steady middle of a note that starts at ``onset`` seconds."""
    start = int((onset + 0.05) * sounds.SAMPLE_RATE)
    return wave[start:start + int(0.3 * sounds.SAMPLE_RATE)]


def test_synthesis_is_deterministic_by_seed():
    scene = shapes.make_scenes(1, "train", seed=0)[0]
    assert torch.equal(sounds.synthesise(scene, seed=3), sounds.synthesise(scene, seed=3))
    assert not torch.equal(sounds.synthesise(scene, seed=3), sounds.synthesise(scene, seed=4))
    wave = sounds.synthesise(scene)
    assert wave.shape == (16_000,) and wave.dtype == torch.float32 and wave.abs().max() <= 1


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_pitch_measured_from_the_spectrum_is_the_colours(shape):
    for colour, pitch in sounds.PITCH.items():
        wave = sounds.synthesise(_one(shape, colour), seed=1)
        measured = sounds.dominant_frequency(_note(wave, sounds.ONSET["centre"]))
        assert abs(measured / pitch - 1) < 0.01, (shape, colour, measured)


def test_timbre_size_and_timing():
    # a square wave has no even harmonics, a sawtooth (cross) has them
    def second_harmonic_share(shape):
        note = _note(sounds.synthesise(_one(shape, "red"), seed=0), sounds.ONSET["centre"]).double()
        spectrum = torch.fft.rfft(note * torch.hann_window(len(note), dtype=torch.float64)).abs()
        bin_of = lambda f: round(f * len(note) / sounds.SAMPLE_RATE)  # noqa: E731
        return spectrum[bin_of(440) - 2:bin_of(440) + 3].max() / spectrum[bin_of(220) - 2:bin_of(220) + 3].max()

    assert second_harmonic_share("square") < 0.01 < 0.3 < second_harmonic_share("cross")
    big, small = (sounds.synthesise(_one(size=s)).abs().max() for s in ("large", "small"))
    assert abs(big - 0.5) < 0.01 and abs(small - 0.2) < 0.01
    # side by side: the left object sounds first, the right one later
    pair = Scene((ShapeObject("circle", "red", "large"), ShapeObject("circle", "blue", "large")), "side by side")
    wave = sounds.synthesise(pair)
    assert abs(sounds.dominant_frequency(_note(wave, sounds.ONSET["left"])) - 220) < 3
    assert abs(sounds.dominant_frequency(_note(wave, sounds.ONSET["right"])) - 440) < 3


def test_white_noise_reaches_the_requested_snr():
    wave = sounds.synthesise(shapes.make_scenes(1, "train", seed=2)[0])
    for snr in (10.0, 37.5, 120.0):
        noisy = sounds.add_white_noise(wave, snr, torch.Generator().manual_seed(0))
        noise = (noisy - wave).double()
        measured = 10 * math.log10(wave.double().pow(2).mean() / noise.pow(2).mean())
        assert abs(measured - snr) < 0.5


def test_time_reversal_only_where_it_keeps_the_meaning():
    centred = _one(layout="top")
    assert sounds.reversible(centred)
    assert not sounds.reversible(_one(layout="left"))
    stacked = Scene((ShapeObject("square", "red", "large"), ShapeObject("cross", "blue", "small")),
                    "one above the other")
    side = Scene(stacked.objects, "side by side")
    assert sounds.reversible(stacked) and not sounds.reversible(side)

    def spectrogram(wave):
        return torch.stft(wave, 512, 128, window=torch.hann_window(512), return_complex=True).abs()

    for scene, same in ((centred, True), (stacked, True), (side, False)):
        wave = sounds.synthesise(scene)
        a, b = spectrogram(wave), spectrogram(wave.flip(0))
        assert ((a - b).abs().sum() / a.sum() < 0.05) == same


def test_time_scaling_and_crop_or_pad():
    wave = sounds.synthesise(_one(colour="blue"), seed=0)
    faster = sounds.time_scale(wave, 1.03)
    assert faster.shape[-1] == round(16_000 / 1.03)
    onset = sounds.ONSET["centre"] / 1.03
    assert abs(sounds.dominant_frequency(_note(faster, onset)) / (440 * 1.03) - 1) < 0.01
    g = torch.Generator().manual_seed(0)
    assert sounds.crop_or_pad(faster, 16_000, g).shape == (16_000,)
    assert sounds.crop_or_pad(wave, 15_000, g).shape == (15_000,)
    batch = torch.stack([wave, wave])
    assert sounds.time_scale(batch, 0.97).shape == (2, round(16_000 / 0.97))
    augmented = sounds.augment(wave, _one(colour="blue"), g)
    assert augmented.shape == wave.shape
