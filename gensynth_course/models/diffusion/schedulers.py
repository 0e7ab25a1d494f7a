"""Denoising diffusion: the forward process, the ε-prediction loss, DDPM and DDIM sampling, and
the learned variances of Improved DDPM.

Notation follows Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models":
β_t is the noise schedule, α_t = 1 − β_t and ᾱ_t = ∏_{s≤t} α_s. Time steps are indexed
0 … T−1 in code (the paper writes 1 … T), as in the seed tutorial and in diffusers.

The interface mirrors diffusers: ``add_noise(x0, noise, t)``, ``set_timesteps(n)`` and
``step(eps, t, x_t)``, so a learner can later swap in the library's schedulers.

Nichol & Dhariwal (2021), "Improved Denoising Diffusion Probabilistic Models", add three things used
by chapter 03: a network that also predicts its reverse-process variance Σ_θ (eq. 15), trained with
the hybrid objective L_simple + λ L_vlb (eq. 16; L_vlb sums T terms, eq. 4), and ancestral sampling on a subsequence of the T
steps with the β recomputed for it (section 4), which the learned Σ makes good in few steps.
"""

from __future__ import annotations

import math
import operator
from typing import Callable

import torch
from torch import nn

from gensynth_course.device import autocast, model_device
from gensynth_course.progress import progress_bar


def linear_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """β_t evenly spaced from 1e-4 to 0.02 over T = 1000 steps (Ho et al. 2020, section 4)."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine schedule of Nichol & Dhariwal (2021), eq. 17:

    ᾱ_t = f(t) / f(0),  f(t) = cos²(((t/T + s) / (1 + s)) · π/2),  β_t = 1 − ᾱ_t / ᾱ_{t−1},
    clipped at ``max_beta`` to avoid a singularity at t = T.
    """
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


def gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] shaped (N, 1, 1, 1) to broadcast over images ``like``; every t must be a step of
    the schedule, 0 ≤ t < T."""
    t = torch.as_tensor(t, device=values.device).long().reshape(-1)
    if len(t):
        low, high = (int(v) for v in t.aminmax())
        if low < 0 or high >= len(values):
            raise ValueError(f"time steps from {low} to {high} are out of range: this schedule has steps 0 to "
                             f"{len(values) - 1}.")
    out = values[t].to(device=like.device, dtype=like.dtype)
    return out.reshape(-1, *([1] * (like.dim() - 1)))


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor):
    """KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) per element, in nats: the closed form of the
    Gaussian KL that every L_{t−1} term of the variational bound is (Ho et al. 2020, eq. 5)."""
    return 0.5 * (logvar2 - logvar1 - 1 + (logvar1 - logvar2).exp() + (mean1 - mean2).pow(2) * (-logvar2).exp())


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor):
    """log p(x) per element, in nats, of the discretised decoder L_0 (Ho et al. 2020, eq. 13): the
    mass that N(mean, e^{2 log_scale}) puts on x's bin of width 2/255, for data x of 256 levels in
    [−1, 1]; the outermost bins reach to ±∞."""
    inv = (-log_scale).exp()
    cdf = lambda z: 0.5 * (1 + torch.erf(z / math.sqrt(2)))  # noqa: E731 — the standard normal CDF
    upper = cdf(inv * (x - mean + 1 / 255))
    lower = cdf(inv * (x - mean - 1 / 255))
    mass = torch.where(x < -0.999, upper, torch.where(x > 0.999, 1 - lower, upper - lower))
    return mass.clamp(min=1e-12).log()


def split_output(output: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A network's output as (ε̂, v): a learned-variance network returns twice x's channels, ε̂ and
    then the interpolation v's raw value (Nichol & Dhariwal 2021, eq. 15); any other returns ε̂ alone."""
    if output.shape[1] == 2 * x.shape[1]:
        return output.chunk(2, dim=1)
    if output.shape[1] != x.shape[1]:
        raise ValueError(f"the network returned {output.shape[1]} channels for {x.shape[1]}-channel images; "
                         f"an ε-prediction network returns {x.shape[1]}, a learned-variance one {2 * x.shape[1]}.")
    return output, None


def learned_log_variance(v: torch.Tensor, beta: torch.Tensor, beta_tilde: torch.Tensor) -> torch.Tensor:
    """log Σ_θ = v log β_t + (1 − v) log β̃_t (Nichol & Dhariwal 2021, eq. 15), with the network's raw
    output mapped to v = (output + 1) / 2 as in the authors' code, which does not clamp it: an output
    in [−1, 1] puts Σ between the two fixed choices of DDPM, the lower and upper bounds on the
    reverse variance, and the network learns to stay near them."""
    frac = (v + 1) / 2
    return frac * beta.log() + (1 - frac) * beta_tilde.log()


class DDPMScheduler:
    """The forward process q and the ancestral sampler of DDPM (Algorithms 1 and 2).

    ``variance="beta"`` uses σ_t² = β_t, ``variance="beta_tilde"`` uses the posterior variance
    σ_t² = β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t (eq. 7); the paper finds both work about equally
    with all T steps. ``variance="learned"`` takes Σ_θ from a network that predicts it
    (:func:`learned_log_variance`); the other two also sample such a network, ignoring its Σ. A
    dict ``{t: σ_t²}`` gives the variance of every kept step t itself (a variance measured for one
    respacing, such as chapter 03's KL-optimal reference).

    ``set_timesteps(n)`` with n < T respaces the sampler (Nichol & Dhariwal 2021, section 4): it
    keeps n evenly spaced steps S and recomputes β for them from ᾱ, β_{S_i} = 1 − ᾱ_{S_i} / ᾱ_{S_{i−1}},
    so each step jumps over the ones left out; β̃ and the learned Σ follow from these β.

    ``clip_sample=True`` clips the predicted x̂_0 to the data range [−1, 1] and takes the posterior
    mean μ̃_t(x_t, x̂_0) (eq. 7), as the authors' released code does; without clipping this mean is
    exactly eq. 11. Early in sampling x̂_0 divides by √ᾱ_t ≈ 0.006, so an undertrained network's
    small errors in ε become huge in x̂_0: clipping keeps them in range.
    """

    def __init__(self, betas: torch.Tensor, variance: str = "beta", clip_sample: bool = False):
        if not isinstance(variance, dict) and variance not in ("beta", "beta_tilde", "learned"):
            raise ValueError(f"variance {variance!r} is not known; use 'beta', 'beta_tilde', 'learned' or a dict "
                             "{t: σ_t²} of the kept steps.")
        self.variance = variance
        self.clip_sample = clip_sample
        self.betas = betas.double()
        self.alphas = 1 - self.betas
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)
        self.alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])
        # Posterior q(x_{t-1} | x_t, x_0) = N(coef_x0 x_0 + coef_xt x_t, β̃_t), eqs. 6-7.
        self.posterior_variance = (1 - self.alpha_bars_prev) / (1 - self.alpha_bars) * self.betas
        self.posterior_coef_x0 = self.alpha_bars_prev.sqrt() * self.betas / (1 - self.alpha_bars)
        self.posterior_coef_xt = self.alphas.sqrt() * (1 - self.alpha_bars_prev) / (1 - self.alpha_bars)
        # log β̃_t with β̃_0 = 0 replaced by β̃_1, the lower end of a learned Σ at t = 0 (authors' code)
        self.posterior_log_variance_clipped = torch.cat([self.posterior_variance[1:2],
                                                         self.posterior_variance[1:]]).log()
        self.set_timesteps(self.num_train_timesteps)

    @property
    def num_train_timesteps(self) -> int:
        return len(self.betas)

    # --- the forward process -------------------------------------------------------------
    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sample q(x_t | x_0) in closed form (eq. 4): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε."""
        ab = gather(self.alpha_bars, t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def q_posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """Mean and variance of q(x_{t−1} | x_t, x_0) (eqs. 6-7)."""
        mean = gather(self.posterior_coef_x0, t, x_t) * x0 + gather(self.posterior_coef_xt, t, x_t) * x_t
        return mean, gather(self.posterior_variance, t, x_t)

    def predict_x0(self, eps: torch.Tensor, t: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """Invert eq. 4: x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t."""
        ab = gather(self.alpha_bars, t, x_t)
        return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()

    # --- training: Algorithm 1 -----------------------------------------------------------
    def loss(self, model: Callable, x0: torch.Tensor, generator: torch.Generator | None = None,
             min_snr_gamma: float | None = None, vlb_weight: float = 0.0, **model_kwargs) -> torch.Tensor:
        """The simplified objective L_simple = E_{t, x_0, ε} ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖² (eq. 14).

        With ``min_snr_gamma`` = γ each step's error is weighted by min(SNR_t, γ) / SNR_t, with
        SNR_t = ᾱ_t / (1 − ᾱ_t) (Hang et al. 2023, "Min-SNR weighting"): the many easy,
        nearly noise-free steps stop dominating the gradient, and training converges faster.

        With ``vlb_weight`` = λ > 0 the model must also predict its variance, and the loss is Nichol &
        Dhariwal's hybrid L_hybrid = L_simple + λ L_vlb (eq. 16, λ = 0.001), with the mean's gradient
        stopped in L_vlb, so that L_vlb trains Σ_θ alone and L_simple the mean. L_vlb is a *sum* over
        the T terms, L_0 + L_1 + … + L_T (eq. 4); one uniformly drawn t estimates it by T·L_t
        (:meth:`vlb_terms` at the same t and ε; L_T has no parameters), so each drawn term weighs
        λ·T, 1 at T = 1000. The authors' code does the same: it multiplies the drawn term by T/1000.
        """
        n = x0.shape[0]
        t = torch.randint(0, self.num_train_timesteps, (n,), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        x_t = self.add_noise(x0, noise, t)
        eps, v = split_output(model(x_t, t, **model_kwargs), x0)
        errors = (eps - noise).pow(2).flatten(1).mean(1)
        if min_snr_gamma is not None:
            snr = gather(self.alpha_bars / (1 - self.alpha_bars), t, x0).reshape(-1)
            errors = snr.clamp(max=min_snr_gamma) / snr * errors
        if not vlb_weight:
            return errors.mean()
        if v is None:
            raise ValueError("vlb_weight > 0 trains a learned variance, but the network predicts ε only; "
                             "build it with learn_sigma=True (twice the image channels out).")
        vlb_estimate = self.num_train_timesteps * self.vlb_terms(eps.detach(), v, x0, x_t, t)   # T·L_t ≈ L_vlb
        return errors.mean() + vlb_weight * vlb_estimate.mean()

    def vlb_terms(self, eps: torch.Tensor, v: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor,
                  t: torch.Tensor) -> torch.Tensor:
        """One term of the variational bound per image, in bits per dimension (Ho et al. 2020, eq. 5):
        L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)) for t > 0 and the decoder's
        L_0 = −log p_θ(x_0 | x_1) at t = 0, where p_θ has mean μ̃_t(x_t, x̂_0(ε̂)) and variance Σ_θ."""
        true_mean, _ = self.q_posterior(x0, x_t, t)
        true_log_var = gather(self.posterior_log_variance_clipped, t, x_t)
        mean, _ = self.q_posterior(self.predict_x0(eps, t, x_t), x_t, t)
        log_var = learned_log_variance(v, gather(self.betas, t, x_t), true_log_var.exp())
        kl = normal_kl(true_mean, true_log_var, mean, log_var).flatten(1).mean(1)
        nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var).flatten(1).mean(1)
        return torch.where(t == 0, nll, kl) / math.log(2)

    # --- sampling: Algorithm 2 -----------------------------------------------------------
    def set_timesteps(self, num_inference_steps: int) -> None:
        """Sample with ``num_inference_steps`` evenly spaced steps from T−1 down to 0: all T (DDPM), or
        fewer, respaced (Nichol & Dhariwal 2021, section 4; DDIM's "uniform" skipping)."""
        T = self.num_train_timesteps
        try:
            whole = operator.index(num_inference_steps)
        except TypeError:
            whole = None
        if whole is None or not 1 <= whole <= T:
            raise ValueError(f"{num_inference_steps!r} sampling steps is not allowed; use a whole number from 1 "
                             f"to {T} (the training steps).")
        self.timesteps = torch.linspace(0, T - 1, whole).round().long().flip(0)
        self._prev = dict(zip(self.timesteps.tolist(), self.timesteps[1:].tolist() + [-1]))
        # β̃ of the last step is 0; a learned Σ there takes the step above's β̃ as its lower end
        # instead (the authors' "clipped" log variance), or β when there is no other step
        low = self.alpha_bars[self.timesteps[-1]].item()
        above = self.alpha_bars[self.timesteps[-2]].item() if whole > 1 else 0.0
        self._lowest_beta_tilde = (1 - low) / (1 - above) * (1 - above / low)

    def step(self, output: torch.Tensor, t: int, x_t: torch.Tensor,
             generator: torch.Generator | None = None, gradient: torch.Tensor | None = None) -> torch.Tensor:
        """One step of Algorithm 2 (eq. 11) from step t to the previous kept step t' (t − 1 with all
        T steps), with the respaced β = 1 − ᾱ_t / ᾱ_{t'} and α = 1 − β:
        x_{t'} = 1/√α · (x_t − β / √(1 − ᾱ_t) · ε_θ(x_t, t)) + σ z, with z = 0 at the last step, and
        σ² = β, β̃ = (1 − ᾱ_{t'}) / (1 − ᾱ_t) · β or the learned Σ_θ (``output`` then holds ε and v).

        ``gradient``: classifier guidance's s ∇_{x_t} log p_φ(y | x_t), added to the mean *after* it
        is computed (from the clipped x̂_0 with ``clip_sample``): μ̂ = μ + s Σ ∇ log p_φ, Dhariwal
        & Nichol's Algorithm 1, in the order of their code's ``condition_mean``.
        """
        t = int(t)
        eps, v = split_output(output, x_t)
        ab = self.alpha_bars[t].item()
        ab_prev = self.alpha_bars[self._prev[t]].item() if self._prev[t] >= 0 else 1.0
        beta = 1 - ab / ab_prev
        if self.clip_sample:
            x0 = ((x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
            mean = (math.sqrt(ab_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - ab_prev) * x_t) / (1 - ab)
        else:
            mean = (x_t - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
        beta_tilde = (1 - ab_prev) / (1 - ab) * beta
        if isinstance(self.variance, dict):
            if t not in self.variance:
                raise ValueError(f"the variance table has no entry for step {t}; give σ² for every kept step "
                                 f"({', '.join(map(str, self.timesteps.tolist()))}).")
            var = float(self.variance[t])
        elif self.variance == "learned":
            if v is None:
                raise ValueError("variance='learned' needs a network that predicts its variance "
                                 "(learn_sigma=True); sample this one with 'beta' or 'beta_tilde'.")
            lowest = beta_tilde or self._lowest_beta_tilde
            var = learned_log_variance(v, torch.tensor(beta), torch.tensor(lowest)).exp()
        else:
            var = beta if self.variance == "beta" else beta_tilde
        if gradient is not None:
            mean = mean + var * gradient
        if self._prev[t] < 0:        # the last step returns the mean
            return mean
        z = torch.randn(x_t.shape, generator=generator).to(x_t.device, x_t.dtype)
        return mean + var ** 0.5 * z


class DDIMScheduler(DDPMScheduler):
    """Deterministic DDIM sampling (Song, Meng & Ermon 2021, eq. 12 with σ = 0) on a subsequence
    of the training steps, so a model trained with T = 1000 samples in 10 to 100 steps.
    """

    def __init__(self, betas: torch.Tensor, eta: float = 0.0, clip_sample: bool = False):
        self.eta = eta
        super().__init__(betas, clip_sample=clip_sample)

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor,
             generator: torch.Generator | None = None, gradient: torch.Tensor | None = None) -> torch.Tensor:
        """x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'} − σ²) ε̂ + σ z, for the previous kept step t'.

        ``gradient``: classifier guidance's s ∇_{x_t} log p_φ(y | x_t). It shifts the ε that belongs
        to the *clipped* x̂_0, ε̂ = ε − √(1 − ᾱ_t) s ∇ log p_φ (Dhariwal & Nichol's Algorithm 2, in
        the order of their code's ``condition_score``), and x̂_0 follows from ε̂ without a second
        clip: clipping after the shift would throw the guidance away wherever the clip is active.
        """
        t = int(t)
        eps, _ = split_output(eps, x_t)      # DDIM is deterministic: a learned Σ has no use here
        t_prev = self._prev[t]
        ab = self.alpha_bars[t].item()
        ab_prev = self.alpha_bars[t_prev].item() if t_prev >= 0 else 1.0
        x0 = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        if self.clip_sample:  # keep x̂_0 in the data range and re-derive ε from it
            x0 = x0.clamp(-1, 1)
            eps = (x_t - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        if gradient is not None:
            eps = eps - math.sqrt(1 - ab) * gradient
            x0 = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        sigma = self.eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
        x_prev = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x_prev = x_prev + sigma * torch.randn(x_t.shape, generator=generator).to(x_t.device, x_t.dtype)
        return x_prev


@torch.no_grad()
def sample(
    model: nn.Module,
    scheduler: DDPMScheduler,
    shape: tuple[int, ...],
    num_inference_steps: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    frames: int = 0,
    batch_size: int = 500,
    progress: bool = True,
    clip: bool = True,
    **model_kwargs,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Generate ``shape[0]`` images by running the reverse process from pure noise.

    ``num_inference_steps``: how many steps to take, 1 to T (DDIM, or respaced ancestral sampling);
    ``None`` takes all T.
    Returns ``(images, snapshots)``: the final images (clipped to [−1, 1]) and, if ``frames`` > 0,
    about that many intermediate x_t of the first batch, for a GIF of the sampling process.
    Large requests run in batches of ``batch_size``, on ``device`` (by default where ``model`` is);
    the images come back on the CPU. A ``model`` with a ``guidance_gradient(x_t, t, **model_kwargs)``
    method (classifier or CLIP guidance) has that gradient applied by each ``step``, after the clip.
    """
    device = torch.device(device) if device is not None else model_device(model)
    guide = getattr(model, "guidance_gradient", None)     # classifier (or CLIP) guidance, applied by the step
    steps = scheduler.num_train_timesteps if num_inference_steps is None else num_inference_steps
    scheduler.set_timesteps(steps)
    was_training = model.training
    model.eval()
    n = shape[0]
    outputs, snapshots = [], []
    keep = set(torch.linspace(0, steps - 1, frames).round().long().tolist()) if frames else set()
    bar = progress_bar(total=steps * math.ceil(n / batch_size), desc=f"sampling ({steps} steps)",
                       disable=not progress, leave=False)
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        x = torch.randn((m, *shape[1:]), generator=generator).to(device)
        kwargs = {k: v[start:start + m].to(device) if torch.is_tensor(v) else v for k, v in model_kwargs.items()}
        for i, t in enumerate(scheduler.timesteps.tolist()):
            tt = torch.full((m,), t, device=device, dtype=torch.long)
            gradient = guide(x, tt, **kwargs) if guide is not None else None
            with autocast(device):
                prediction = model(x, tt, **kwargs).float()
            x = scheduler.step(prediction, t, x, generator=generator, gradient=gradient)
            if start == 0 and i in keep:
                snapshots.append(x.clamp(-1, 1).cpu() if clip else x.cpu())
            bar.update(1)
        outputs.append(x.clamp(-1, 1).cpu() if clip else x.cpu())
    bar.close()
    model.train(was_training)
    return torch.cat(outputs), snapshots
