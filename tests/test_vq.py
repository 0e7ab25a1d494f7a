"""Chapter 02's maths: the quantizer, VQGAN's adaptive weight, the causal prior, sliding windows."""

import math

import pytest
import torch
from torch.nn import functional as F

from gensynth_course.cache import config_hash
from gensynth_course.experiments import ch02_vqgan
from gensynth_course.models.vq.prior import CodePrior, sample_sliding_window
from gensynth_course.models.vq.quantizer import CodeUsage, VectorQuantizer
from gensynth_course.models.vq.vqgan import (GRID_SIDE, PatchDiscriminator, VQAutoencoder, VQGANTrainer,
                                             adaptive_weight, hinge_d_loss)


def test_nearest_code_is_the_true_argmin():
    q = VectorQuantizer(32, 4)
    z = torch.randn(100, 4)
    brute = torch.cdist(z, q.codebook.detach()).argmin(1)
    assert torch.equal(q.nearest(z), brute)


def test_quantized_output_equals_the_codes_and_gradient_goes_straight_through():
    torch.manual_seed(0)
    q = VectorQuantizer(16, 4)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    quantized, indices, _ = q(z)
    expected = q.codebook[indices].permute(0, 3, 1, 2)
    # z + (e − z).detach() is e up to the rounding of the two float32 operations
    assert torch.allclose(quantized, expected, rtol=0, atol=1e-6)
    weights = torch.randn_like(z)
    (grad,) = torch.autograd.grad((quantized * weights).sum(), z)
    assert torch.allclose(grad, weights)   # identity Jacobian: the straight-through estimator


def test_beta_sits_on_the_commitment_term():
    q = VectorQuantizer(1, 3, beta=0.25)   # one code: every z maps to it
    z = torch.randn(1, 3, 2, 2, requires_grad=True)
    _, _, loss = q(z)
    loss.backward()
    e = q.codebook.detach()[0].view(1, 3, 1, 1)
    n = z.numel()
    assert torch.allclose(z.grad, 0.25 * 2 * (z.detach() - e) / n, atol=1e-7)                # β on ‖z − sg[e]‖²
    assert torch.allclose(q.codebook.grad[0], (2 * (e - z.detach()) / n).sum((0, 2, 3)), atol=1e-7)   # 1 on the codebook
    assert torch.allclose(loss, 1.25 * F.mse_loss(z.detach(), e.expand_as(z)))


def test_gradients_reach_the_encoder_without_the_vq_loss():
    model = VQAutoencoder((8, 16), dim=4, num_codes=8)
    x_rec, _, _ = model(torch.randn(2, 1, 28, 28))
    x_rec.pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_ema_update_matches_its_formula():
    torch.manual_seed(0)
    q = VectorQuantizer(4, 2, ema=True, decay=0.9, eps=1e-5)
    n0, m0 = q.cluster_size.clone(), q.embed_sum.clone()
    z = torch.randn(1, 2, 4, 4)
    q.train()
    _, indices, _ = q(z)
    z_flat, idx = z.permute(0, 2, 3, 1).reshape(-1, 2), indices.flatten()
    counts = torch.bincount(idx, minlength=4).float()
    sums = torch.stack([z_flat[idx == k].sum(0) for k in range(4)])
    n1 = 0.9 * n0 + 0.1 * counts
    m1 = 0.9 * m0 + 0.1 * sums
    total = n1.sum()
    smoothed = (n1 + 1e-5) / (total + 4 * 1e-5) * total
    assert torch.allclose(q.cluster_size, n1)
    assert torch.allclose(q.codebook, m1 / smoothed[:, None], atol=1e-6)
    assert not any(p.requires_grad for p in q.parameters())   # no gradient reaches an EMA codebook


def test_dead_codes_are_restarted_on_encoder_outputs():
    q = VectorQuantizer(8, 2, restart_dead=True, restart_every=1)
    q.codebook.data[:] = 100.0                      # all codes far away ...
    q.codebook.data[0] = 0.0                        # ... except code 0, which takes every vector
    z = torch.randn(1, 2, 5, 5)
    q.train()
    for _ in range(150):   # the running usage of an unused code falls below the threshold in ~70 steps
        q(z)
    z_flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    moved = [k for k in range(1, 8) if (q.codebook[k] - z_flat).norm(dim=1).min() < 1e-5]
    assert len(moved) >= 5


def test_code_usage_over_a_pass():
    usage = CodeUsage(4)
    usage.add(torch.tensor([[0, 0], [1, 1]]))
    usage.add(torch.tensor([0, 1]))
    assert usage.used_fraction() == 0.5
    assert math.isclose(usage.perplexity(), 2.0)


def test_adaptive_weight_is_the_ratio_of_gradient_norms():
    torch.manual_seed(0)
    model = VQAutoencoder((8, 16), dim=4, num_codes=8)
    disc = PatchDiscriminator(8)
    x = torch.randn(4, 1, 28, 28)

    def losses():
        x_rec, _, _ = model(x)
        return (x_rec - x).abs().mean(), -disc(x_rec).mean()

    rec, gan = losses()
    lam = adaptive_weight(rec, gan, model.decoder.last_layer.weight)
    norms = []
    for which in (0, 1):
        model.zero_grad()
        losses()[which].backward()
        norms.append(model.decoder.last_layer.weight.grad.norm())
    assert torch.allclose(lam, norms[0] / (norms[1] + 1e-6), rtol=1e-4)


def test_vqgan_step_trains_the_discriminator_only_on_its_own_loss():
    torch.manual_seed(0)
    trainer = VQGANTrainer(VQAutoencoder((8, 16), dim=4, num_codes=8), perceptual=None, gan=True, disc_start=0,
                           disc_width=8)
    x = torch.randn(4, 1, 28, 28)
    trainer.loss(x).backward()
    disc_grads = [p.grad.clone() for p in trainer.discriminator.parameters()]
    trainer.zero_grad()
    x_rec = trainer.autoencoder(x)[0].detach()
    hinge_d_loss(trainer.discriminator(x), trainer.discriminator(x_rec)).backward()
    for got, want in zip(disc_grads, (p.grad for p in trainer.discriminator.parameters())):
        assert torch.allclose(got, want, atol=1e-6)
    assert set(trainer.last_terms) == {"rec", "vq", "g", "d", "lam"}


def test_vqvae_overfits_a_small_batch():
    torch.manual_seed(0)
    model = VQAutoencoder((8, 16), dim=4, num_codes=16, restart_dead=True)
    trainer = VQGANTrainer(model, gan=False)
    x = torch.rand(16, 1, 28, 28).round() * 2 - 1
    opt = torch.optim.Adam(trainer.parameters(), 3e-3)
    first = None
    for _ in range(150):
        loss = trainer.loss(x)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert trainer.last_terms["rec"] < 0.5 * first


@pytest.fixture(scope="module")
def prior():
    torch.manual_seed(0)
    return CodePrior(num_codes=16, length=49, n_classes=10, dim=32, layers=2, heads=4).eval()


def test_prior_is_causal(prior):
    codes = torch.randint(16, (2, 49))
    cond = torch.tensor([3, 10])
    logits = prior(cond, codes)
    changed = codes.clone()
    changed[:, 20:] = torch.randint(16, (2, 29))
    logits2 = prior(cond, changed)
    # the logits at position i predict s_i from s_<i: positions up to 20 saw no change
    assert torch.allclose(logits[:, :21], logits2[:, :21], atol=1e-5)
    assert not torch.allclose(logits[:, 22:], logits2[:, 22:])


def test_prior_honours_the_class_token(prior):
    codes = torch.randint(16, (1, 49))
    a, b = prior(torch.tensor([0]), codes), prior(torch.tensor([7]), codes)
    assert not torch.allclose(a[:, 0], b[:, 0])


def test_prior_overfits_two_sequences():
    torch.manual_seed(0)
    model = CodePrior(num_codes=16, length=49, dim=32, layers=2, heads=4)
    codes, cond = torch.randint(16, (2, 49)), torch.tensor([1, 2])
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(150):
        loss = model.loss(cond, codes)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    assert torch.equal(model.generate(cond, top_k=1), codes)   # greedy decoding replays them


def test_sliding_window_on_the_training_size_is_plain_sampling(prior):
    cond = torch.tensor([2, 5])
    plain = prior.generate(cond, generator=torch.Generator().manual_seed(0))
    window = sample_sliding_window(prior, cond, 7, 7, generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.equal(window.flatten(1), plain)
    big = sample_sliding_window(prior, cond, 9, 12, progress=False)
    assert big.shape == (2, 9, 12) and big.max() < 16


def test_top_k_one_is_greedy(prior):
    logits = torch.randn(5, 16)
    picked = prior.next_code(logits, 1.0, 1, torch.Generator().manual_seed(0))
    assert torch.equal(picked, logits.argmax(1))


def test_the_codebook_gradient_is_the_same_every_time():
    """Training must repeat bit for bit: the gradient reaching the codebook may not depend on how
    the CPU's threads happened to add up the codes' shares (plain indexing's backward does)."""
    torch.manual_seed(0)
    q = VectorQuantizer(128, 16)
    z = torch.randn(64, 16, 7, 7, requires_grad=True)
    grads = []
    for _ in range(6):
        q.codebook.grad = None
        quantized, _, loss = q(z)
        (loss + quantized.pow(2).sum()).backward()
        grads.append(q.codebook.grad.clone())
    assert all(torch.equal(grads[0], g) for g in grads[1:])


def test_sharpness_is_one_for_a_faithful_copy_and_falls_with_blur():
    class Copy(torch.nn.Module):                        # an "autoencoder" that copies or blurs its input
        num_codes = 4

        def __init__(self, blur: bool):
            super().__init__()
            self.blur, self.anchor = blur, torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            out = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False) if self.blur else 0.999 * x   # (PSNR needs an error)
            return out, torch.zeros(len(x), 7, 7, dtype=torch.long), None

    images = (torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    copied = ch02_vqgan.reconstruction_report(Copy(False), images, None)
    blurred = ch02_vqgan.reconstruction_report(Copy(True), images, None)
    assert copied["sharpness"] == pytest.approx(1.0, abs=2e-3)
    assert blurred["sharpness"] < 0.6


@pytest.mark.parametrize("factor", sorted(GRID_SIDE))
def test_each_downsampling_factor_gives_its_grid_and_decodes_back_to_28(factor):
    torch.manual_seed(0)
    autoencoder = VQAutoencoder((8, 16), dim=4, num_codes=16, factor=factor)
    x_rec, indices, _ = autoencoder(torch.rand(3, 1, 28, 28) * 2 - 1)
    side = 28 // factor if 28 % factor == 0 else 28 // factor + 1
    assert autoencoder.grid == side and indices.shape == (3, side, side)
    assert x_rec.shape == (3, 1, 28, 28)
    assert autoencoder.decode_indices(indices).shape == (3, 1, 28, 28)


def test_factor_four_is_the_chapters_autoencoder_and_bad_factors_are_refused():
    # the chapter's models keep their layout: the same parameter names and shapes as without a factor
    plain, four = VQAutoencoder((8, 16), dim=4, num_codes=16), VQAutoencoder((8, 16), dim=4, num_codes=16, factor=4)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in four.state_dict().items()}
    assert VQAutoencoder((8, 16), dim=4, num_codes=16).decode_indices(torch.zeros(1, 14, 21, dtype=torch.long)).shape \
        == (1, 1, 56, 84)                                   # f = 4 still decodes any grid (sliding windows)
    for bad in (3, 8, True, "4"):
        with pytest.raises(ValueError, match="downsampling factor .* is not supported; use one of 2, 4, 7"):
            VQAutoencoder(factor=bad)
    with pytest.raises(ValueError, match="downsampling factor"):
        ch02_vqgan.autoencoder_config("vqgan", "quick", factor=5)


def test_a_factors_prior_fits_its_grid_and_trains_for_a_time_not_a_step_count():
    for factor, side in GRID_SIDE.items():
        config = ch02_vqgan.factor_prior_config(factor, "standard")
        assert ch02_vqgan.build_prior(config, 128).length == side * side
        assert config["seconds"] == ch02_vqgan.factor_prior_config(2, "standard")["seconds"]   # equal time
        assert {k: v for k, v in config.items() if k not in ("codes_from", "factor", "steps", "seconds")} \
            == {k: v for k, v in ch02_vqgan.prior_config("standard").items() if k not in ("codes_from", "factor", "steps")}
    assert ch02_vqgan.build_prior(ch02_vqgan.prior_config("standard"), 128).length == 49


def test_the_factor_study_pairs_every_factor_with_the_same_seeds():
    config = ch02_vqgan.factor_study_config("standard")
    runs = {(run["factor"], run["seed"]): run for run in config["runs"]}
    assert sorted(runs) == sorted((f, s) for f in ch02_vqgan.FACTORS for s in ch02_vqgan.SEEDS)
    for (factor, seed), run in runs.items():
        assert run["autoencoder"]["factor"] == run["prior"]["factor"] == factor
        assert run["prior"]["codes_from"] == config_hash(run["autoencoder"])
    for seed in ch02_vqgan.SEEDS:      # f = 4 is the chapter's VQGAN from that seed, not a retrained copy
        assert runs[4, seed]["autoencoder"] == ch02_vqgan.autoencoder_config("vqgan", "standard", seed)


def test_eval_02_compares_the_autoencoders_over_its_training_seeds(quick_evals):
    assert ch02_vqgan.seed_config("standard")["seeds"] == ch02_vqgan.SEEDS == (0, 1, 2)
    assert ch02_vqgan.seed_config("quick")["seeds"] == (0, 1)
    results, _ = quick_evals.get("02")
    assert results["training_seeds"] == 2
    for kind in ch02_vqgan.COMPARED:
        for measure in ch02_vqgan.MEASURES:
            figure = results[f"{kind}_{measure}"]
            assert len(figure["seeds"]) == 2 and figure["ci_low"] <= figure["mean"] <= figure["ci_high"], (kind, measure)
    # the differences are taken seed by seed
    d = results["vqgan_minus_vqvae_restart_recon_fd"]
    assert d["seeds"] == pytest.approx([a - b for a, b in zip(results["vqgan_recon_fd"]["seeds"],
                                                               results["vqvae_restart_recon_fd"]["seeds"])], abs=2e-4)
    assert results["sample_fd_n"] == results["samples"] and results["sample_fd_floor_same_n"] > 0
    accuracy = results["cond_sample_accuracy"]
    assert accuracy["ci_low"] <= accuracy["value"] <= accuracy["ci_high"]
    # the notebook finds the study for its own seed-0 models, and not for other ones
    infos = {kind: ch02_vqgan.load_autoencoder(ch02_vqgan.autoencoder_config(kind, "quick"))[1]
             for kind in ch02_vqgan.NOTEBOOK_MODELS}
    assert ch02_vqgan.cached_study(infos)["vqgan_recon_fd"] == results["vqgan_recon_fd"]
    assert ch02_vqgan.cached_study({**infos, "vqgan": {"model_id": "0000000000-0000000000"}}) is None
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        ch02_vqgan.autoencoder_config("vqgan", "quick", seed=-1)
    # the factor study: every factor over the same seeds, paired differences taken seed by seed
    by_f = results["fd_by_f"]
    assert sorted(by_f, key=int) == [str(f) for f in ch02_vqgan.FACTORS]
    for f, row in by_f.items():
        assert row["tokens"] == GRID_SIDE[int(f)] ** 2
        for measure in ("recon_fd", "bits_per_code", "sample_fd", "sample_accuracy"):
            assert len(row[measure]["seeds"]) == 2, (f, measure)             # the quick budget's seeds 0 and 1
    # f = 4 is the chapter's VQGAN: the same models as the seed comparison's
    assert by_f["4"]["recon_fd"]["seeds"] == pytest.approx(results["vqgan_recon_fd"]["seeds"], abs=2e-4)
    d = results["f_differences"]["2_minus_4"]["sample_fd"]
    assert d["seeds"] == pytest.approx([a - b for a, b in zip(by_f["2"]["sample_fd"]["seeds"],
                                                               by_f["4"]["sample_fd"]["seeds"])], abs=2e-3)
    timing = results["pixels_vs_codes"]
    assert timing["pixels"]["tokens"] == 784 and timing["codes"]["tokens"] == 49
    assert timing["pixels"]["seconds_per_step"] > 0 and timing["codes"]["seconds_per_image"] > 0


@pytest.fixture(scope="module")
def constrained():
    torch.manual_seed(0)
    return CodePrior(num_codes=8, length=9, n_classes=0, dim=32, layers=2, heads=4, constraint_codes=5,
                     constraint_length=9).eval()


def test_every_image_code_sees_the_whole_constraint_and_only_earlier_image_codes(constrained):
    cond, codes, constraint = torch.zeros(2, dtype=torch.long), torch.randint(8, (2, 9)), torch.randint(5, (2, 9))
    logits = constrained(cond, codes, constraint)
    assert logits.shape == (2, 9, 8)                           # logits for the image codes only
    last_changed = constraint.clone()
    last_changed[:, -1] = (constraint[:, -1] + 1) % 5
    moved = constrained(cond, codes, last_changed)
    assert all(not torch.allclose(logits[:, i], moved[:, i]) for i in range(9))   # even s_1 sees r_P
    later = codes.clone()
    later[:, 4:] = (codes[:, 4:] + 1) % 8
    assert torch.allclose(logits[:, :5], constrained(cond, later, constraint)[:, :5], atol=1e-5)
    assert not torch.allclose(logits[:, 5:], constrained(cond, later, constraint)[:, 5:])


def test_a_prior_without_a_constraint_builds_the_chapters_layers_and_refuses_one():
    torch.manual_seed(0)
    plain = CodePrior(num_codes=16, length=49, dim=32, layers=2, heads=4)
    torch.manual_seed(0)
    explicit = CodePrior(num_codes=16, length=49, dim=32, layers=2, heads=4, constraint_codes=0, constraint_length=0)
    assert list(plain.state_dict()) == list(explicit.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), explicit.state_dict().values()))
    cond, codes = torch.tensor([1]), torch.randint(16, (1, 49))
    with pytest.raises(ValueError, match="built without a constraint"):
        plain(cond, codes, torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="give both"):
        CodePrior(num_codes=16, constraint_codes=5)


def test_a_constrained_prior_explains_a_missing_or_malformed_constraint(constrained):
    cond, codes = torch.zeros(2, dtype=torch.long), torch.randint(8, (2, 9))
    with pytest.raises(ValueError, match="pass constraint="):
        constrained(cond, codes)
    with pytest.raises(ValueError, match=r"must be \(B, P\) = \(2, 9\) integer codes, got \(2, 3, 3\)"):
        constrained(cond, codes, torch.zeros(2, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="must lie in 0..4"):
        constrained(cond, codes, torch.full((2, 9), 5))
    with pytest.raises(ValueError, match="code grid of the whole canvas"):
        sample_sliding_window(constrained, cond, 4, 4, window=3, constraint=torch.zeros(2, 3, 3, dtype=torch.long),
                              progress=False)
    with pytest.raises(ValueError, match="must fit the canvas"):
        sample_sliding_window(constrained, cond, 2, 4, window=3, progress=False)


def test_a_constrained_prior_learns_to_draw_what_the_map_says_and_slides_over_a_larger_map():
    """Image code at each place = (2 r + 1) mod 8 of the constraint code r at that place: a rule only
    the constraint can tell. Learned on 3×3 windows, it must hold on fresh maps and, by the sliding
    window, on a 5×6 canvas whose every window is a training-size map."""
    torch.manual_seed(0)
    rule = lambda r: (2 * r + 1) % 8  # noqa: E731
    model = CodePrior(num_codes=8, length=9, n_classes=0, dim=32, layers=2, heads=4, constraint_codes=4,
                      constraint_length=9)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    cond = torch.zeros(64, dtype=torch.long)
    for _ in range(400):
        constraint = torch.randint(4, (64, 9))
        loss = model.loss(cond, rule(constraint), constraint)
        opt.zero_grad()
        loss.backward()
        opt.step()
    fresh = torch.randint(4, (64, 9), generator=torch.Generator().manual_seed(1))
    assert model.bits_per_code(cond, rule(fresh), fresh) < 0.05
    assert torch.equal(model.generate(cond[:8], top_k=1, constraint=fresh[:8]), rule(fresh[:8]))
    canvas = torch.randint(4, (3, 5, 6), generator=torch.Generator().manual_seed(2))
    drawn = sample_sliding_window(model, cond[:3], 5, 6, window=3, top_k=1, constraint=canvas, progress=False)
    assert torch.equal(drawn, rule(canvas))


def test_the_autoencoder_takes_other_channels_and_sides_at_factor_four():
    torch.manual_seed(0)
    rgb = VQAutoencoder((8, 16), dim=4, num_codes=16, in_channels=3, out_channels=3, image_size=32)
    x_rec, indices, _ = rgb(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert rgb.grid == 8 and indices.shape == (2, 8, 8) and x_rec.shape == (2, 3, 32, 32)
    maps = VQAutoencoder((8, 16), dim=4, num_codes=16, in_channels=25, out_channels=25, image_size=32)
    onehot = F.one_hot(torch.randint(25, (2, 32, 32)), 25).permute(0, 3, 1, 2).float()
    logits, indices, _ = maps(onehot)
    assert logits.shape == (2, 25, 32, 32) and indices.shape == (2, 8, 8)
    trainer = VQGANTrainer(rgb, perceptual=None, gan=True, disc_start=0, disc_width=8)
    assert trainer.discriminator(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 8, 8)
    assert torch.isfinite(trainer.loss(torch.rand(2, 3, 32, 32) * 2 - 1))
    # the Fashion-MNIST autoencoder is unchanged: one channel in and out at 28×28
    plain = VQAutoencoder((8, 16), dim=4, num_codes=16)
    one = VQAutoencoder((8, 16), dim=4, num_codes=16, in_channels=1, out_channels=1, image_size=28)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in one.state_dict().items()}
    with pytest.raises(ValueError, match="factor 2 is built for 28×28 images only"):
        VQAutoencoder(factor=2, image_size=32)
    with pytest.raises(ValueError, match="image side 30 is not supported"):
        VQAutoencoder(image_size=30)
