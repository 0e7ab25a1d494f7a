"""Improved DDPM's learned variances (Nichol & Dhariwal 2021): the L_vlb term against closed forms,
the interpolated Σ, the stop-gradient of the hybrid loss, and respaced ancestral sampling."""

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from gensynth_course.models.diffusion.guidance import ClassifierFreeGuidance, ClassifierGuidance
from gensynth_course.models.diffusion.schedulers import (DDIMScheduler, DDPMScheduler,
                                                         discretized_gaussian_log_likelihood, learned_log_variance,
                                                         linear_betas, normal_kl, split_output)
from gensynth_course.models.diffusion.unet import UNet


class TwoHeads(nn.Module):
    """ε̂ and v from separate parameters, so each one's gradient can be read on its own."""

    def __init__(self):
        super().__init__()
        self.eps = nn.Conv2d(1, 1, 3, padding=1)
        self.v = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x, t):
        return torch.cat([self.eps(x), torch.tanh(self.v(x))], 1)


def test_normal_kl_is_the_closed_form_gaussian_kl():
    g = torch.Generator().manual_seed(0)
    m1, m2, lv1, lv2 = (torch.randn(50, generator=g) for _ in range(4))
    expected = kl_divergence(Normal(m1, (0.5 * lv1).exp()), Normal(m2, (0.5 * lv2).exp()))
    assert torch.allclose(normal_kl(m1, lv1, m2, lv2), expected, atol=1e-5)
    assert torch.allclose(normal_kl(m1, lv1, m1, lv1), torch.zeros(50), atol=1e-6)


def test_the_discretised_decoder_puts_all_its_mass_on_the_256_levels():
    levels = torch.linspace(-1, 1, 256)
    for mean, log_scale in ((0.0, math.log(0.1)), (0.7, math.log(0.01)), (-0.95, math.log(1.0))):
        p = discretized_gaussian_log_likelihood(levels, torch.full_like(levels, mean),
                                                torch.full_like(levels, log_scale)).exp()
        assert p.sum().item() == pytest.approx(1.0, abs=1e-4)
        if log_scale < 0:                    # a narrow decoder peaks at its mean; a wide one in a tail bin
            assert levels[p.argmax()].item() == pytest.approx(mean, abs=1 / 255)


def test_the_learned_variance_interpolates_between_beta_tilde_and_beta_in_log_space():
    beta, beta_tilde = torch.tensor(0.02), torch.tensor(0.005)
    assert learned_log_variance(torch.tensor(1.0), beta, beta_tilde).exp().item() == pytest.approx(0.02)
    assert learned_log_variance(torch.tensor(-1.0), beta, beta_tilde).exp().item() == pytest.approx(0.005)
    assert learned_log_variance(torch.tensor(0.0), beta, beta_tilde).exp().item() == pytest.approx(0.01)


def test_the_vlb_term_is_the_kl_between_the_true_posterior_and_the_model():
    scheduler = DDPMScheduler(linear_betas())
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1      # in float64: β_1 is tiny
    eps = 0.3 * torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    v = torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    t = torch.tensor([1, 300, 999])
    x_t = scheduler.add_noise(x0, torch.randn(x0.shape, generator=g, dtype=torch.float64), t)
    terms = scheduler.vlb_terms(eps, v, x0, x_t, t)
    b = scheduler.betas
    ab = torch.cumprod(1 - b, 0)
    for i, step in enumerate(t.tolist()):
        ab_t, ab_prev = ab[step], ab[step - 1]
        beta_tilde = (1 - ab_prev) / (1 - ab_t) * b[step]
        true_mean = (ab_prev.sqrt() * b[step] * x0[i] + (1 - b[step]).sqrt() * (1 - ab_prev) * x_t[i]) / (1 - ab_t)
        model_mean = (x_t[i] - b[step] / (1 - ab_t).sqrt() * eps[i]) / (1 - b[step]).sqrt()     # eq. 11
        frac = (v[i] + 1) / 2
        model_std = (frac * b[step].log() + (1 - frac) * beta_tilde.log()).exp().sqrt()
        kl = kl_divergence(Normal(true_mean, beta_tilde.sqrt()), Normal(model_mean, model_std))
        assert terms[i].item() == pytest.approx(kl.mean().item() / math.log(2), rel=1e-9)


def test_at_step_zero_the_vlb_term_is_the_decoders_negative_log_likelihood_in_bits():
    scheduler = DDPMScheduler(linear_betas())
    x0 = torch.full((1, 1, 2, 2), 0.2)
    x_t = scheduler.add_noise(x0, torch.zeros_like(x0), torch.tensor([0]))
    v = torch.ones_like(x0)                  # Σ = β_0
    term = scheduler.vlb_terms(torch.zeros_like(x0), v, x0, x_t, torch.tensor([0]))
    mean = scheduler.q_posterior(scheduler.predict_x0(torch.zeros_like(x0), torch.tensor([0]), x_t), x_t,
                                 torch.tensor([0]))[0]
    std = math.sqrt(scheduler.betas[0].item())
    mass = Normal(mean, std).cdf(x0 + 1 / 255) - Normal(mean, std).cdf(x0 - 1 / 255)
    assert term.item() == pytest.approx((-mass.log().mean() / math.log(2)).item(), rel=1e-4)


def test_the_hybrid_loss_trains_the_mean_with_l_simple_alone_and_the_variance_with_l_vlb():
    scheduler = DDPMScheduler(linear_betas())
    x0 = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = TwoHeads()
    scheduler.loss(model, x0, torch.Generator().manual_seed(3)).backward()
    simple_eps_grad = model.eps.weight.grad.clone()
    assert model.v.weight.grad is None or not model.v.weight.grad.any()      # L_simple never sees v
    model.zero_grad()
    scheduler.loss(model, x0, torch.Generator().manual_seed(3), vlb_weight=0.001).backward()
    assert torch.allclose(model.eps.weight.grad, simple_eps_grad, atol=1e-7)   # the mean's gradient is stopped
    assert model.v.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="learn_sigma=True"):
        scheduler.loss(lambda x, t: x, x0, torch.Generator().manual_seed(3), vlb_weight=0.001)


@pytest.mark.parametrize("T", [1000, 50])
def test_the_hybrid_loss_is_l_simple_plus_lambda_t_times_the_drawn_vlb_term(T):
    """L_hybrid = L_simple + λ L_vlb with L_vlb = L_0 + … + L_T (Nichol & Dhariwal 2021, eqs. 4 and
    16): at one uniformly drawn t per image, L_vlb is estimated by T·L_t, so each drawn term weighs
    λ·T (1 at λ = 0.001, T = 1000). Recomputed by hand from the same t and ε: the plain ε-MSE, and
    the Gaussian KL of each image's L_t in bits per dimension (or the decoder's NLL at t = 0)."""
    scheduler = DDPMScheduler(linear_betas(T, beta_end=0.02 * 1000 / T))
    x0 = torch.rand(6, 1, 3, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model, lam = TwoHeads(), 0.001
    loss = scheduler.loss(model, x0, torch.Generator().manual_seed(4), vlb_weight=lam)
    g = torch.Generator().manual_seed(4)                  # the loss's own draws, in its order
    t = torch.randint(0, T, (6,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    x_t = scheduler.add_noise(x0, noise, t)
    with torch.no_grad():
        eps, v = model(x_t, t).chunk(2, dim=1)
    l_simple = (eps - noise).pow(2).mean()
    b = scheduler.betas
    ab = torch.cumprod(1 - b, 0)
    terms = []
    for i, step in enumerate(t.tolist()):
        ab_prev = ab[step - 1] if step > 0 else torch.tensor(1.0, dtype=torch.float64)
        x0_hat = (x_t[i] - (1 - ab[step]).sqrt() * eps[i]) / ab[step].sqrt()
        mean = (ab_prev.sqrt() * b[step] * x0_hat + (1 - b[step]).sqrt() * (1 - ab_prev) * x_t[i]) / (1 - ab[step])
        upper, lower = b[step].log(), scheduler.posterior_log_variance_clipped[step]
        log_var = (v[i] + 1) / 2 * upper + (1 - (v[i] + 1) / 2) * lower
        if step == 0:
            decoder = Normal(mean, (0.5 * log_var).exp())
            mass = decoder.cdf(x0[i] + 1 / 255) - decoder.cdf(x0[i] - 1 / 255)
            mass = torch.where(x0[i] < -0.999, decoder.cdf(x0[i] + 1 / 255), mass)
            mass = torch.where(x0[i] > 0.999, 1 - decoder.cdf(x0[i] - 1 / 255), mass)
            nats = -mass.clamp(min=1e-12).log().mean()
        else:
            true_mean = (ab_prev.sqrt() * b[step] * x0[i] + (1 - b[step]).sqrt() * (1 - ab_prev) * x_t[i]) / (1 - ab[step])
            nats = kl_divergence(Normal(true_mean, (0.5 * lower).exp()), Normal(mean, (0.5 * log_var).exp())).mean()
        terms.append(nats / math.log(2))
    expected = l_simple + lam * T * torch.stack(terms).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert loss.item() != pytest.approx((l_simple + lam * torch.stack(terms).mean()).item(), rel=1e-3)


def test_respacing_recomputes_beta_so_the_kept_steps_keep_their_alpha_bar():
    scheduler = DDPMScheduler(linear_betas(), variance="beta")
    scheduler.set_timesteps(10)
    kept = scheduler.timesteps.tolist()
    assert kept[0] == 999 and kept[-1] == 0 and len(kept) == 10
    # a step with σ = 0 noise is the respaced chain's mean: build that chain's betas directly and compare
    ab = scheduler.alpha_bars
    ab_kept = ab[torch.tensor(kept[::-1])]
    respaced = 1 - ab_kept / torch.cat([torch.ones(1, dtype=ab.dtype), ab_kept[:-1]])
    assert torch.allclose(torch.cumprod(1 - respaced, 0), ab_kept)
    direct = DDPMScheduler(respaced)
    g = torch.Generator().manual_seed(0)
    x_t, eps = torch.randn(2, 1, 4, 4, generator=g), 0.1 * torch.randn(2, 1, 4, 4, generator=g)
    for i, t in enumerate(kept):
        j = len(kept) - 1 - i                      # the same step in the direct chain's indices
        ours = scheduler.step(eps, t, x_t, torch.Generator().manual_seed(5))
        theirs = direct.step(eps, j, x_t, torch.Generator().manual_seed(5))
        assert torch.allclose(ours, theirs, atol=1e-5), t


def test_all_steps_reproduce_the_plain_ddpm_step_and_learned_sigma_takes_its_ends():
    plain, learned = DDPMScheduler(linear_betas()), DDPMScheduler(linear_betas(), variance="learned")
    tilde = DDPMScheduler(linear_betas(), variance="beta_tilde")
    g = torch.Generator().manual_seed(2)
    x_t, eps = torch.randn(2, 1, 4, 4, generator=g), 0.1 * torch.randn(2, 1, 4, 4, generator=g)
    for t in (999, 500, 3):
        for v, fixed in ((1.0, plain), (-1.0, tilde)):
            out = torch.cat([eps, torch.full_like(eps, v)], 1)
            a = learned.step(out, t, x_t, torch.Generator().manual_seed(9))
            b = fixed.step(eps, t, x_t, torch.Generator().manual_seed(9))
            assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="learn_sigma=True"):
        learned.step(eps, 500, x_t)


def test_ddim_and_fixed_variances_ignore_a_learned_variance():
    g = torch.Generator().manual_seed(4)
    x_t, eps, v = torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4)
    for scheduler in (DDIMScheduler(linear_betas()), DDPMScheduler(linear_betas(), variance="beta_tilde")):
        scheduler.set_timesteps(10)
        a = scheduler.step(torch.cat([eps, v], 1), 888, x_t, torch.Generator().manual_seed(1))
        b = scheduler.step(eps, 888, x_t, torch.Generator().manual_seed(1))
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="3 channels for 1-channel"):
        split_output(torch.zeros(1, 3, 4, 4), x_t)


def test_a_learned_sigma_unet_returns_eps_and_v_and_guidance_steers_eps_only():
    model = UNet(channels=(8, 16), blocks=1, patch=2, num_classes=3, learn_sigma=True)
    nn.init.normal_(model.out[2].weight, std=0.1)
    x, t, y = torch.randn(2, 1, 28, 28), torch.tensor([10, 500]), torch.tensor([0, 2])
    out = model(x, t, y)
    assert out.shape == (2, 2, 28, 28)
    guided = ClassifierFreeGuidance(model, 3.0)(x, t, y)
    cond, uncond = model(x, t, y), model(x, t)
    assert torch.allclose(guided[:, :1], uncond[:, :1] + 3 * (cond[:, :1] - uncond[:, :1]), atol=1e-5)
    assert torch.allclose(guided[:, 1:], cond[:, 1:], atol=1e-5)        # the conditional model's Σ


def test_classifier_guidance_runs_a_conditional_model_with_the_label_and_an_unconditional_one_without():
    model = UNet(channels=(8, 16), blocks=1, patch=2, num_classes=3)
    nn.init.normal_(model.out[2].weight, std=0.1)
    x, t, y = torch.randn(2, 1, 28, 28), torch.tensor([10, 500]), torch.tensor([0, 2])
    classifier = nn.Identity()
    assert torch.equal(ClassifierGuidance(model, classifier, 1.0, conditional=True)(x, t, y), model(x, t, y))
    assert torch.equal(ClassifierGuidance(model, classifier, 1.0)(x, t, y), model(x, t))


def test_the_kl_optimal_variance_is_beta_tilde_plus_the_x0_coefficient_squared_times_its_error():
    """σ*² = β̃ + c_0² E‖x_0 − x̂_0‖²/d for each respaced step t → t′, c_0 = √ᾱ_t′ β / (1 − ᾱ_t):
    a perfect x̂_0 gives the posterior's β̃; the true reverse step's variance is checked by Monte
    Carlo on a two-point data set, where x_0 is ±1 and the posterior over it is known exactly."""
    from gensynth_course.experiments import ch03_guided_diffusion as ch03

    timesteps = ch03.kept_steps(10)
    assert timesteps[0] == 999 and timesteps[-1] == 0 and len(timesteps) == 10
    ab = DDPMScheduler(linear_betas()).alpha_bars
    perfect = ch03.kl_optimal_variances(timesteps, [0.0] * 10)
    for t, t_prev in zip(timesteps[:-1], timesteps[1:]):
        beta = 1 - ab[t] / ab[t_prev]
        assert perfect[t] == pytest.approx(((1 - ab[t_prev]) / (1 - ab[t]) * beta).item(), rel=1e-9)
    assert ch03.variance_fractions(timesteps, perfect) == pytest.approx([0.0] * 9, abs=1e-9)
    # a two-point world: x_0 = ±1 with equal odds, x̂_0 = 0 (an error of 1 per pixel) at one step
    t, t_prev = timesteps[5], timesteps[6]
    optimal = ch03.kl_optimal_variances([t, t_prev], [1.0, 0.0])[t]
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 2, (400_000,), generator=g).double() * 2 - 1
    x_t = ab[t].sqrt() * x0 + (1 - ab[t]).sqrt() * torch.randn(len(x0), generator=g, dtype=torch.float64)
    beta = 1 - ab[t] / ab[t_prev]
    c0, ct = ab[t_prev].sqrt() * beta / (1 - ab[t]), (1 - beta).sqrt() * (1 - ab[t_prev]) / (1 - ab[t])
    x_prev = c0 * x0 + ct * x_t + ((1 - ab[t_prev]) / (1 - ab[t]) * beta).sqrt() * torch.randn(len(x0), generator=g,
                                                                                              dtype=torch.float64)
    measured = (x_prev - ct * x_t).pow(2).mean().item()       # the model's mean with x̂_0 = 0 is c_t x_t
    assert optimal == pytest.approx(measured, rel=0.01)


def test_a_table_of_variances_samples_like_the_variance_it_holds():
    """variance={t: σ_t²} for the kept steps gives exactly the sampler with those variances, and a
    missing step is refused with a line that lists the kept steps."""
    b = linear_betas()
    reference = DDPMScheduler(b, variance="beta_tilde", clip_sample=True)
    reference.set_timesteps(5)
    ab = reference.alpha_bars
    kept = reference.timesteps.tolist()
    table = {t: ((1 - ab[p]) / (1 - ab[t]) * (1 - ab[t] / ab[p])).item() for t, p in zip(kept, kept[1:])}
    table[kept[-1]] = 0.0
    tabled = DDPMScheduler(b, variance=table, clip_sample=True)
    tabled.set_timesteps(5)
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    eps = 0.1 * torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    for t in kept:
        a = reference.step(eps, t, x, torch.Generator().manual_seed(t))
        assert torch.allclose(tabled.step(eps, t, x, torch.Generator().manual_seed(t)), a, atol=1e-6)
    del table[kept[1]]
    with pytest.raises(ValueError, match=f"no entry for step {kept[1]}; give σ² for every kept step"):
        tabled.step(eps, kept[1], x)
