"""The maths of the forward process, the posterior and the samplers, against closed forms."""

import json
import math

import pytest
import torch

from gensynth_course.models.diffusion.schedulers import DDIMScheduler, DDPMScheduler, cosine_betas, linear_betas, sample


@pytest.fixture
def scheduler():
    return DDPMScheduler(linear_betas())


def test_linear_schedule_matches_the_paper():
    b = linear_betas()
    assert len(b) == 1000
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)


def test_closed_form_equals_the_iterated_chain_in_mean_and_variance(scheduler):
    # Iterating x_t = √α_t x_{t−1} + √β_t ε from a fixed x_0: mean m_t = √α_t m_{t−1},
    # variance v_t = α_t v_{t−1} + β_t. Eq. 4 says m_t = √ᾱ_t x_0 and v_t = 1 − ᾱ_t.
    m, v = 1.0, 0.0
    for t in range(1000):
        m = math.sqrt(scheduler.alphas[t]) * m
        v = scheduler.alphas[t].item() * v + scheduler.betas[t].item()
        if t in (0, 10, 250, 500, 999):
            assert m == pytest.approx(scheduler.alpha_bars[t].sqrt().item(), rel=1e-9)
            assert v == pytest.approx(1 - scheduler.alpha_bars[t].item(), rel=1e-9)


def test_add_noise_samples_match_a_simulated_chain(scheduler):
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20_000, 1), 0.7)
    t = 200
    x = x0.clone()
    for s in range(t + 1):
        x = scheduler.alphas[s].sqrt().float() * x + scheduler.betas[s].sqrt().float() * torch.randn(x.shape, generator=g)
    direct = scheduler.add_noise(x0, torch.randn(x0.shape, generator=g), torch.full((20_000,), t))
    assert x.mean().item() == pytest.approx(direct.mean().item(), abs=0.03)
    assert x.var().item() == pytest.approx(direct.var().item(), rel=0.05)


def test_posterior_coefficients_follow_from_bayes_rule(scheduler):
    # q(x_{t−1} | x_t, x_0) ∝ N(x_t; √α_t x_{t−1}, β_t) · N(x_{t−1}; √ᾱ_{t−1} x_0, 1 − ᾱ_{t−1}).
    for t in (1, 5, 100, 999):
        a, b = scheduler.alphas[t].item(), scheduler.betas[t].item()
        ab_prev = scheduler.alpha_bars[t - 1].item()
        precision = a / b + 1 / (1 - ab_prev)
        var = 1 / precision
        x0, xt = torch.tensor([0.3]), torch.tensor([-1.2])
        expected_mean = var * (math.sqrt(a) * xt / b + math.sqrt(ab_prev) * x0 / (1 - ab_prev))
        mean, variance = scheduler.q_posterior(x0, xt, torch.tensor([t]))
        assert variance.item() == pytest.approx(var, rel=1e-6)
        assert mean.item() == pytest.approx(expected_mean.item(), rel=1e-6)


def test_ancestral_mean_is_the_posterior_mean_at_the_predicted_x0(scheduler):
    # Eq. 11 is μ̃_t(x_t, x̂_0(ε)) written in terms of ε; the clipped variant computes μ̃_t directly.
    g = torch.Generator().manual_seed(1)
    xt, eps = torch.randn(3, 1, 4, 4, generator=g), 0.1 * torch.randn(3, 1, 4, 4, generator=g)
    clipping = DDPMScheduler(linear_betas(), clip_sample=True)
    for t in (1, 100, 999):
        z = torch.randn(xt.shape, generator=torch.Generator().manual_seed(7))
        mean = scheduler.step(eps, t, xt, torch.Generator().manual_seed(7)) - scheduler.betas[t].sqrt().float() * z
        x0 = scheduler.predict_x0(eps, torch.tensor([t]), xt)
        posterior_mean, _ = scheduler.q_posterior(x0, xt, torch.tensor([t]))
        assert torch.allclose(mean, posterior_mean, atol=1e-4)
        if x0.abs().max() <= 1:
            clipped = clipping.step(eps, t, xt, torch.Generator().manual_seed(7))
            assert torch.allclose(clipped, mean + scheduler.betas[t].sqrt().float() * z, atol=1e-4)
    assert torch.equal(scheduler.step(eps, 0, xt), scheduler.step(eps, 0, xt))  # no noise at the last step


def test_posterior_variance_options(scheduler):
    tilde = DDPMScheduler(linear_betas(), variance="beta_tilde").posterior_variance
    assert tilde[0].item() == 0.0
    assert torch.all(tilde[1:] <= scheduler.betas[1:])
    with pytest.raises(ValueError):
        DDPMScheduler(linear_betas(), variance="other")


def test_cosine_schedule_follows_its_definition():
    T, s = 1000, 0.008
    ab = torch.cumprod(1 - cosine_betas(T), 0)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    for t in (0, 100, 500, 900):
        assert ab[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-6)
    assert ab[-1].item() < 1e-3 and ab[0].item() > 0.999


class Oracle(torch.nn.Module):
    """The exact ε of a data set that holds a single image x0."""

    def __init__(self, x0, scheduler):
        super().__init__()
        self.x0, self.scheduler = x0, scheduler

    def forward(self, x, t):
        ab = self.scheduler.alpha_bars[t].float().reshape(-1, 1, 1, 1)
        return (x - ab.sqrt() * self.x0) / (1 - ab).sqrt()


@pytest.mark.parametrize("steps", [1, 10, 50])
def test_ddim_with_the_exact_noise_lands_on_the_data(steps):
    ddim = DDIMScheduler(linear_betas())
    x0 = torch.linspace(-0.9, 0.9, 16).reshape(1, 1, 4, 4)
    images, _ = sample(Oracle(x0, ddim), ddim, (3, 1, 4, 4), steps, generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.allclose(images, x0.expand(3, -1, -1, -1), atol=1e-3)  # float32 rounding


def test_ddim_is_deterministic_given_the_starting_noise():
    ddim = DDIMScheduler(linear_betas())
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    run = lambda: sample(_Wrap(net), ddim, (2, 1, 8, 8), 20, generator=torch.Generator().manual_seed(3), progress=False)[0]
    assert torch.equal(run(), run())
    ddim.set_timesteps(20)
    assert ddim.timesteps[0].item() == 999 and ddim.timesteps[-1].item() == 0 and len(ddim.timesteps) == 20


class _Wrap(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, t):
        return self.net(x)


@pytest.mark.parametrize("steps", [0, 1001, 2.5, "10"])
def test_ddpm_refuses_a_number_of_steps_it_cannot_take(scheduler, steps):
    with pytest.raises(ValueError, match="whole number from 1 to 1000"):
        scheduler.set_timesteps(steps)


def test_min_snr_weighting_changes_only_the_weights(scheduler):
    net = _Wrap(torch.nn.Conv2d(1, 1, 3, padding=1))
    x0 = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    plain = scheduler.loss(net, x0, torch.Generator().manual_seed(5))
    huge_gamma = scheduler.loss(net, x0, torch.Generator().manual_seed(5), min_snr_gamma=1e12)
    assert plain.item() == pytest.approx(huge_gamma.item(), rel=1e-5)
    assert scheduler.loss(net, x0, torch.Generator().manual_seed(5), min_snr_gamma=1.0).item() < plain.item()


class BlindToTheMean(torch.nn.Module):
    """ε̂ = 0 whatever x_t is: the limit of a network that cannot see an image's mean."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return torch.zeros_like(x)


def test_the_drift_of_a_blind_network_matches_its_closed_form():
    from gensynth_course.experiments import ch01_ddpm

    generator = torch.Generator().manual_seed(0)
    raw, _ = sample(BlindToTheMean(), DDPMScheduler(linear_betas(), clip_sample=False), (2000, 1, 28, 28), 1000,
                    generator=generator, progress=False, clip=False)
    measured = raw.flatten(1).mean(1).std().item()
    predicted = ch01_ddpm.unseen_mean_spread()
    assert predicted > 5                       # the linear schedule's 1/√ᾱ_T ≈ 157 makes it large
    assert measured == pytest.approx(predicted, rel=0.05)


def test_the_tutorials_unet_cannot_see_an_images_mean_or_scale_and_the_control_can():
    from gensynth_course.experiments import ch01_ddpm
    from gensynth_course.models.diffusion.seed_unet import SeedUNet

    torch.manual_seed(0)
    blind, control = ch01_ddpm.unseen_shift(SeedUNet()), ch01_ddpm.unseen_shift(SeedUNet(first_norm=False))
    assert blind < 1e-5 and control > 1000 * blind      # even untrained, the control sees the shift


def test_the_seed_recipes_samples_are_stored_as_8_bit_grids_and_read_back_verified(tmp_path, monkeypatch):
    """The seed recipe's samples, kept as data so that every eval measures them with the classifier
    of the day: written as PNG grids of 64 a row, read back exactly (as uint8), and refused with a
    line saying what to do when a file was altered or is missing."""
    from gensynth_course.experiments import ch01_ddpm

    monkeypatch.setattr(ch01_ddpm, "SEED_SAMPLES", tmp_path)
    images = {name: torch.rand(128, 1, 28, 28, generator=torch.Generator().manual_seed(k)) * 2 - 1
              for k, name in enumerate(ch01_ddpm.SEED_SAMPLERS)}
    manifest = ch01_ddpm.save_seed_samples(images, {"recipe": ch01_ddpm.SEED_RECIPE})
    record = json.loads(manifest.read_text())
    assert record["recipe"] == ch01_ddpm.SEED_RECIPE and set(record["samples"]) == set(ch01_ddpm.SEED_SAMPLERS)
    for name, original in images.items():
        back = ch01_ddpm.load_seed_samples(name)
        assert back.dtype == torch.uint8 and back.shape == (128, 1, 28, 28)
        assert torch.equal(back, ((original + 1) * 127.5).round().to(torch.uint8))
        assert record["samples"][name]["images"] == 128 and record["samples"][name]["steps"] == 1000
    with pytest.raises(ValueError, match="do not fill rows of 64"):
        ch01_ddpm.save_seed_samples({"tutorial": images["tutorial"][:100]}, {})
    (tmp_path / "clipped.png").write_bytes((tmp_path / "tutorial.png").read_bytes())
    with pytest.raises(ValueError, match=r"clipped\.png does not match its SHA-256 in samples\.json; restore it"):
        ch01_ddpm.load_seed_samples("clipped")
    (tmp_path / "tutorial.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"the seed recipe's 'tutorial' samples are missing .* --seed-recipe"):
        ch01_ddpm.load_seed_samples("tutorial")


def test_the_tutorials_output_step_stretches_each_image_to_the_full_range():
    from gensynth_course.experiments import ch01_ddpm

    x = torch.stack([torch.full((1, 2, 2), -9.0), torch.tensor([[[-10.0, -8.0], [-9.0, -7.0]]])])
    x[0, 0, 0, 0] = -8.0
    out = ch01_ddpm.per_image_minmax(x)
    assert torch.allclose(out.amin((1, 2, 3)), torch.tensor([-1.0, -1.0]))
    assert torch.allclose(out.amax((1, 2, 3)), torch.tensor([1.0, 1.0]))
    assert out[1, 0, 1, 0].item() == pytest.approx(-1 / 3)


def test_the_stored_seed_samples_are_complete_and_intact():
    """The committed samples: 2,048 per sampler, each matching its recorded hash."""
    from gensynth_course.experiments import ch01_ddpm

    for name in ch01_ddpm.SEED_SAMPLERS:
        assert ch01_ddpm.load_seed_samples(name).shape == (ch01_ddpm.N_SEED_SAMPLES, 1, 28, 28)


def test_class_shares_name_the_rarest_class_with_its_interval():
    from gensynth_course.data.fashion_mnist import CLASSES
    from gensynth_course.experiments import ch01_ddpm

    class Fixed(torch.nn.Module):             # predicts the class written in the first pixel
        def forward(self, x):
            return torch.nn.functional.one_hot(((x[:, 0, 0, 0] + 1) * 4.5).round().long(), 10).float()

    labels = torch.tensor([0] * 50 + [1] * 30 + list(range(2, 10)) * 2 + [3] * 4)
    images = (labels.float() / 4.5 - 1)[:, None, None, None].expand(-1, 1, 28, 28).contiguous()
    out = ch01_ddpm.class_shares(Fixed(), images)
    assert out["class_shares"][0] == pytest.approx(0.5) and sum(out["class_shares"]) == pytest.approx(1)
    assert out["rarest_class"] == CLASSES[2] and out["rarest_class_share"]["value"] == pytest.approx(0.02)
    assert out["rarest_class_share"]["ci_low"] <= 0.02 <= out["rarest_class_share"]["ci_high"]
