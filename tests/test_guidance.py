"""Classifier-free and classifier guidance: the limits of the CFG formula, the exact shift of the
guided ancestral mean, the classifier's log-probability under guidance, and label dropout."""

import math

import pytest
import torch
from torch import nn

from gensynth_course.evaluation.metrics import mean_pairwise_distance
from gensynth_course.models.diffusion.guidance import ClassifierFreeGuidance, ClassifierGuidance, drop_labels
from gensynth_course.models.diffusion.noisy_classifier import NoisyClassifier
from gensynth_course.models.diffusion.schedulers import DDIMScheduler, DDPMScheduler, linear_betas, sample
from gensynth_course.models.diffusion.unet import UNet


def conditional_unet(seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    model = UNet(channels=(8, 16), patch=2, num_classes=3).eval()
    nn.init.normal_(model.out[2].weight, std=0.1)   # the output layer starts at zero: wake it up
    return model


class LinearClassifier(nn.Module):
    """A toy p_φ(y | x_t): linear logits of the pixels, ignoring t."""

    def __init__(self, pixels: int = 16, classes: int = 3):
        super().__init__()
        torch.manual_seed(1)
        self.linear = nn.Linear(pixels, classes)

    def forward(self, x, t):
        return self.linear(x.flatten(1))

    def log_prob(self, x, t, y):
        return torch.log_softmax(self(x, t), 1).gather(1, y.reshape(-1, 1)).squeeze(1)


class ZeroDenoiser(nn.Module):
    def forward(self, x, t):
        return torch.zeros_like(x)


def test_cfg_scale_one_is_the_conditional_and_zero_the_unconditional_prediction():
    model = conditional_unet()
    x, t, y = torch.randn(4, 1, 28, 28), torch.tensor([10, 200, 500, 900]), torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        cond, uncond = model(x, t, y), model(x, t, torch.full_like(y, model.null_label))
        assert not torch.allclose(cond, uncond)
        assert torch.allclose(ClassifierFreeGuidance(model, 1.0)(x, t, y), cond, atol=1e-5)
        assert torch.allclose(ClassifierFreeGuidance(model, 0.0)(x, t, y), uncond, atol=1e-5)
        s3 = ClassifierFreeGuidance(model, 3.0)(x, t, y)
        assert torch.allclose(s3, uncond + 3 * (cond - uncond), atol=1e-5)


def test_conditional_unet_reads_a_missing_label_as_the_null_label_and_unconditional_refuses_labels():
    model = conditional_unet()
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([5, 50])
    with torch.no_grad():
        assert torch.equal(model(x, t), model(x, t, torch.full((2,), model.null_label)))
    with pytest.raises(ValueError, match="unconditional"):
        UNet(channels=(8, 16), patch=2)(x, t, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="unconditional"):
        UNet(channels=(8, 16), patch=2).null_label


def test_label_dropout_reaches_the_null_label_at_the_configured_rate():
    y = torch.randint(0, 10, (200_000,), generator=torch.Generator().manual_seed(0))
    for p in (0.0, 0.1, 0.5, 1.0):
        dropped = drop_labels(y, p, null_label=10, generator=torch.Generator().manual_seed(1))
        share = (dropped == 10).double().mean().item()
        assert share == pytest.approx(p, abs=0.005)
        kept = dropped != 10
        assert torch.equal(dropped[kept], y[kept])


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_guided_ancestral_step_shifts_the_mean_by_s_sigma_squared_gradient(variance):
    # Dhariwal & Nichol, Algorithm 1: x_{t-1} ~ N(μ + s Σ ∇ log p_φ(y | x_t), Σ).
    scheduler = DDPMScheduler(linear_betas(), variance=variance)
    classifier, s, t = LinearClassifier(), 2.5, 400
    x, y = torch.randn(5, 1, 4, 4, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2, 0, 1])
    tt = torch.full((5,), t)
    guided = ClassifierGuidance(ZeroDenoiser(), classifier, s)
    with torch.no_grad():
        plain = scheduler.step(torch.zeros_like(x), t, x, generator=torch.Generator().manual_seed(3))
        steered = scheduler.step(guided(x, tt, y), t, x, generator=torch.Generator().manual_seed(3),
                                 gradient=guided.guidance_gradient(x, tt, y))
    sigma2 = (scheduler.betas if variance == "beta" else scheduler.posterior_variance)[t].item()
    expected = s * sigma2 * guided.log_prob_gradient(x, tt, y)
    assert torch.allclose(steered - plain, expected, atol=1e-6)


@pytest.mark.parametrize("ancestral", [True, False])
def test_a_larger_classifier_scale_raises_the_target_log_probability_after_one_step(ancestral):
    betas = linear_betas()
    scheduler = DDPMScheduler(betas) if ancestral else DDIMScheduler(betas)
    if not ancestral:
        scheduler.set_timesteps(50)
    t = int(scheduler.timesteps[10])
    classifier = LinearClassifier()
    x, y = torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(4)), torch.randint(0, 3, (64,))
    tt = torch.full((64,), t)
    log_probs = []
    for s in (0.0, 1.0, 4.0, 16.0):
        guided = ClassifierGuidance(ZeroDenoiser(), classifier, s)
        with torch.no_grad():
            x_prev = scheduler.step(guided(x, tt, y), t, x, generator=torch.Generator().manual_seed(5),
                                    gradient=guided.guidance_gradient(x, tt, y))
            log_probs.append(classifier.log_prob(x_prev, tt, y).mean().item())
    assert all(b > a for a, b in zip(log_probs, log_probs[1:])), log_probs


class FarOutDenoiser(torch.nn.Module):
    """ε that puts x̂_0 = 3 everywhere: outside [−1, 1], so clipping x̂_0 is active at every pixel."""

    def __init__(self, scheduler):
        super().__init__()
        self.alpha_bars = scheduler.alpha_bars

    def forward(self, x, t):
        ab = self.alpha_bars[t].float().reshape(-1, 1, 1, 1)
        return (x - ab.sqrt() * 3.0) / (1 - ab).sqrt()


def test_ddim_guidance_shifts_the_eps_of_the_clipped_prediction_and_is_not_clipped_away():
    # guided-diffusion's condition_score: ε' = ε(clipped x̂_0) − √(1 − ᾱ_t) g, x̂_0' = x̂_0(ε'), no second clip.
    scheduler = DDIMScheduler(linear_betas(), clip_sample=True)
    scheduler.set_timesteps(10)
    t, t_prev = (int(v) for v in scheduler.timesteps[3:5])
    ab, ab_prev = scheduler.alpha_bars[t].item(), scheduler.alpha_bars[t_prev].item()
    x = torch.randn(4, 1, 4, 4, generator=torch.Generator().manual_seed(6))
    gradient = torch.full_like(x, 0.7)                        # pushes x̂_0 further up, past the clip
    eps = FarOutDenoiser(scheduler)(x, torch.full((4,), t))
    eps_clipped = (x - math.sqrt(ab) * 1.0) / math.sqrt(1 - ab)          # the ε of x̂_0 = 1
    eps_guided = eps_clipped - math.sqrt(1 - ab) * gradient
    x0_guided = 1.0 + (1 - ab) / math.sqrt(ab) * gradient               # = (x − √(1 − ᾱ) ε') / √ᾱ
    expected = math.sqrt(ab_prev) * x0_guided + math.sqrt(1 - ab_prev) * eps_guided
    assert torch.allclose(scheduler.step(eps, t, x, gradient=gradient), expected, atol=1e-5)
    unguided = scheduler.step(eps, t, x)
    assert (scheduler.step(eps, t, x, gradient=gradient) - unguided).abs().min() > 1e-3   # the guidance survives


def test_ancestral_guidance_shifts_the_clipped_mean_by_s_sigma_squared_gradient():
    scheduler = DDPMScheduler(linear_betas(), clip_sample=True)
    t = 700
    x = torch.randn(4, 1, 4, 4, generator=torch.Generator().manual_seed(7))
    eps, gradient = FarOutDenoiser(scheduler)(x, torch.full((4,), t)), torch.full_like(x, 0.7)
    plain = scheduler.step(eps, t, x, generator=torch.Generator().manual_seed(8))
    steered = scheduler.step(eps, t, x, generator=torch.Generator().manual_seed(8), gradient=gradient)
    assert torch.allclose(steered - plain, scheduler.betas[t].item() * gradient, atol=1e-6)


def test_sample_hands_the_guidance_gradient_to_every_step():
    scheduler = DDIMScheduler(linear_betas(), clip_sample=True)
    classifier, y = LinearClassifier(), torch.tensor([0, 1, 2])
    runs = {}
    for s in (0.0, 8.0):
        guided = ClassifierGuidance(ZeroDenoiser(), classifier, s)
        runs[s], _ = sample(guided, scheduler, (3, 1, 4, 4), 10, generator=torch.Generator().manual_seed(9),
                            progress=False, y=y)
    by_hand = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(9))
    guided = ClassifierGuidance(ZeroDenoiser(), classifier, 8.0)
    with torch.no_grad():
        for t in scheduler.timesteps.tolist():
            tt = torch.full((3,), t)
            by_hand = scheduler.step(guided(by_hand, tt, y), t, by_hand, gradient=guided.guidance_gradient(by_hand, tt, y))
    assert torch.allclose(runs[8.0], by_hand.clamp(-1, 1), atol=1e-6)
    assert not torch.allclose(runs[8.0], runs[0.0])
    assert ClassifierGuidance(ZeroDenoiser(), classifier, 0.0).guidance_gradient(by_hand, tt, y) is None


def test_noisy_classifier_learns_a_small_batch_at_every_noise_level():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    # Two classes that differ in brightness: learnable even when noised.
    x0 = torch.cat([torch.full((16, 1, 28, 28), -0.8), torch.full((16, 1, 28, 28), 0.8)])
    y = torch.cat([torch.zeros(16), torch.ones(16)]).long()
    scheduler = DDPMScheduler(linear_betas())
    model = NoisyClassifier(channels=(8, 16), num_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        t = torch.randint(0, 600, (32,), generator=g)
        x_t = scheduler.add_noise(x0, torch.randn(x0.shape, generator=g), t)
        loss = nn.functional.cross_entropy(model(x_t, t), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    t = torch.full((32,), 300)
    with torch.no_grad():
        x_t = scheduler.add_noise(x0, torch.randn(x0.shape, generator=g), t)
        assert (model(x_t, t).argmax(1) == y).float().mean() >= 0.95
        log_p = model.log_prob(x_t, t, y)
    assert log_p.shape == (32,) and (log_p <= 0).all()


class PixelFeatures(nn.Module):
    def features(self, x):
        return x.flatten(1)


def test_within_class_diversity_is_the_mean_pairwise_distance_per_class():
    a, b = torch.zeros(1, 1, 28, 28), torch.full((1, 1, 28, 28), 0.5)   # ‖a − b‖ = 0.5 · 28 = 14
    images = torch.cat([a, b, a, a])
    labels = torch.tensor([0, 0, 1, 1])                                  # class 1: two equal images
    assert mean_pairwise_distance(PixelFeatures().features(images), labels) == pytest.approx((14 + 0) / 2)
