# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · VQ-VAE → VQGAN → a transformer prior over codes
#
# VQGAN (Esser, Rombach & Ommer 2021, "Taming Transformers for High-Resolution Image Synthesis")
# made a two-stage recipe popular that later powered latent diffusion: **compress, then
# generate.** A first model turns an image into a small grid of *discrete codes* and back; a
# second model, a transformer, learns to write new code grids. Generating is then: sample a code
# grid, decode it.
#
# The seed article reaches VQGAN by two routes that meet in the middle:
#
# * **From the transformer.** Transformers model sequences of discrete tokens superbly, but
#   self-attention costs grow with the square of the sequence length. A picture read pixel by
#   pixel is a very long sentence; a small grid of codes is a short one. So let a convolutional
#   network do the compressing and let the transformer model the compressed image.
# * **From VQ-VAE** (van den Oord, Vinyals & Kavukcuoglu 2017), which already had the two stages.
#   It has two weaknesses: its autoencoder is trained with a pixel-wise squared error, which
#   rewards blurry averages, and its code model (a PixelCNN) is weaker than a transformer. VQGAN
#   fixes both: a perceptual loss and a patch discriminator are meant to make reconstructions
#   sharp, and a transformer models the codes.
#
# In this chapter we build every piece on Fashion-MNIST: the vector quantizer with its
# straight-through gradient, VQ-VAE, VQGAN with its adaptive GAN weight, a GPT-style prior that
# generates unconditionally or for a chosen class, and the sliding window that generates images
# larger than anything seen in training.
#
# **The claim we test in miniature:** whether, at the same code grid, codebook and training
# budget, VQGAN's reconstructions are closer to real images in distribution (a lower Fréchet
# distance) than VQ-VAE's, even where their pixel error is higher; and whether a transformer over
# the codes generates recognisable items of a requested class. `python -m gensynth_course eval 02` measures
# both, and the chapter says what it found.

# %% [markdown]
# *Outside a clone of the course* (Colab, Kaggle, a JupyterHub), the next cell installs the course's
# package `gensynth_course` from the wheel the book publishes beside this notebook: put the `.whl`
# file next to the notebook (or set `GENSYNTH_WHEEL` to its address). A PyTorch already installed
# stays as it is; the course uses a GPU when there is one and downloads Fashion-MNIST when it needs
# it. In a clone, or wherever the package is installed, the cell does nothing.

# %%
import importlib.metadata
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("gensynth_course") is None:
    WHEEL = os.environ.get("GENSYNTH_WHEEL", "gensynth_course-0.1.0-py3-none-any.whl")
    if "://" not in WHEEL and not os.path.exists(WHEEL):
        raise SystemExit(f"{WHEEL} is not beside this notebook: download it from the book, or set GENSYNTH_WHEEL.")
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if importlib.util.find_spec("torch") is None:
        subprocess.run([*pip, WHEEL], check=True)
    else:                                       # keep this PyTorch: the package alone, then its other needs
        subprocess.run([*pip, "--no-deps", WHEEL], check=True)
        importlib.invalidate_caches()
        needs = importlib.metadata.requires("gensynth-course")
        subprocess.run([*pip, *(r for r in needs if "extra ==" not in r and not r.startswith("torch"))], check=True)
    importlib.invalidate_caches()

# %%
import math

import matplotlib.pyplot as plt
import torch
from torch.nn import functional as F

from gensynth_course.budget import BUDGET
from gensynth_course.data.fashion_mnist import CLASSES, load_fashion_mnist, to_model_range
from gensynth_course.device import pick_device
from gensynth_course.evaluation.fashion_classifier import classifier_config, load_classifier
from gensynth_course.evaluation.metrics import FashionFD
from gensynth_course.evaluation.stats import describe, excludes_zero
from gensynth_course.experiments import ch02_vqgan
from gensynth_course.images import show_grid
from gensynth_course.models.vq.prior import CodePrior, sample_sliding_window
from gensynth_course.models.vq.quantizer import VectorQuantizer
from gensynth_course.models.vq.vqgan import VQAutoencoder, VQGANTrainer, adaptive_weight
from gensynth_course.notebook import LivePreview, no_study_yet, show_source
from gensynth_course.seeding import seed_everything

generator = seed_everything(0)
pick_device()          # prints where every model of this chapter trains, samples and is measured
print(f"budget: {BUDGET}")

# %% [markdown]
# As in chapter 01, everything below runs on the device printed above; these models are small
# enough that a laptop's CPU trains them in minutes.
#
# ## 1 · Why compress first: the cost of a long sentence
#
# A 28×28 image read in raster order is a sequence of 784 tokens; our autoencoder turns it into a
# 7×7 grid, 49 tokens (a downsampling factor f = 4). Self-attention compares every token with
# every other one, so its cost grows with the square of the length:

# %%
for name, length in (("pixels", 28 * 28), ("codes (f = 4)", 7 * 7)):
    print(f"{name:<14} {length:>4} tokens   attention pairs per layer: {length * length:>7,}")
print(f"the code grid is {(784 / 49) ** 2:.0f}× cheaper to attend over")

# %% [markdown]
# The paper makes the same argument at ImageNet scale: its transformers always see a 16×16 grid,
# and f = 16 turns that into 256×256 pixels.
#
# ## 2 · The vector quantizer
#
# The encoder produces one D-dimensional vector z per latent position. The quantizer replaces
# each z by the nearest of K codebook vectors e_1 … e_K; the index k of that code is the discrete
# token. Nearest means smallest ‖z − e_j‖², which expands to ‖z‖² + ‖e_j‖² − 2 z·e_j, so the
# distances to all codes are one matrix product:

# %%
show_source(VectorQuantizer.nearest)

# %% [markdown]
# Here is what that does to 300 random two-dimensional vectors and eight codes: the plane is
# cut into eight cells (a Voronoi diagram), and every vector is replaced by the code of its cell.

# %%
toy = VectorQuantizer(8, 2)
toy.codebook.data = torch.randn(8, 2, generator=generator) * 1.5
points = torch.randn(300, 2, generator=generator) * 1.5
assignment = toy.nearest(points)
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.scatter(points[:, 0], points[:, 1], c=assignment, cmap="tab10", s=12, alpha=0.7)
ax.scatter(toy.codebook[:, 0].detach(), toy.codebook[:, 1].detach(), c=range(8), cmap="tab10", s=200,
           marker="*", edgecolors="black")
ax.set(title="Nearest-code assignment: each vector takes its cell's code (★)", xlabel="z₁", ylabel="z₂")
plt.show()

# %% [markdown]
# ### The straight-through gradient and the two loss terms
#
# "Take the nearest code" has no useful gradient: a small change of z either changes nothing or
# jumps to another code. VQ-VAE's answer (section 3.2) is to **copy the decoder's gradient
# straight through** the quantizer to the encoder: in the forward pass the decoder receives e_k,
# in the backward pass the quantizer behaves like the identity. In code, `z + (e − z).detach()`.
#
# Because no gradient from the decoder reaches the codebook, the codebook is trained by its own
# terms (VQ-VAE, eq. 3, with sg = stop-gradient):
#
# $$ L_{VQ} = \lVert \mathrm{sg}[z] - e_k \rVert^2 + \beta\, \lVert z - \mathrm{sg}[e_k] \rVert^2, \qquad \beta = 0.25 . $$
#
# The first term pulls the chosen code towards the encoder's output; the second, the
# *commitment* loss, keeps the encoder from drifting away from its codes. β weights the
# commitment term, and only that one; a widely copied implementation puts β on the codebook term
# by mistake, and our tests check which term carries it here.

# %%
show_source(VectorQuantizer.forward)

# %% [markdown]
# Let us watch the straight-through estimator work: the quantized output *equals* the codes, yet
# the gradient with respect to z is exactly the gradient with respect to the output.

# %%
z = torch.randn(1, 2, 1, 3, requires_grad=True)
quantized, indices, vq_loss = toy(z)
upstream = torch.tensor([1.0, -2.0, 0.5]).view(1, 1, 1, 3).expand(1, 2, 1, 3)
(quantized * upstream).sum().backward()
print("codes chosen:            ", indices.flatten().tolist())
print("output equals the codes: ", torch.allclose(quantized, toy.codebook[indices].permute(0, 3, 1, 2)))
print("gradient reaching z:     ", z.grad[0, 0, 0].tolist(), "(= the upstream gradient)")

# %% [markdown]
# **Dead codes.** A code that no encoder output is ever nearest to receives no gradient and stays
# where it is: forever unused. With fewer codes in use the bottleneck is narrower than it needs
# to be. Two standard fixes live in the quantizer: an exponential-moving-average codebook
# (VQ-VAE, appendix A.1) and *dead-code restart*, which moves a code whose running usage has
# collapsed onto a random encoder output of the current batch. We compare training with and
# without restart below, and count codes over a whole pass of the test set, not one batch.

# %%
show_source(VectorQuantizer.restart)

# %% [markdown]
# ## 3 · The autoencoder
#
# Encoder: two stride-2 convolutions (28 → 14 → 7) with a residual block after each, then a 1×1
# convolution to D = 16 dimensions. Decoder: the mirror image with nearest-neighbour upsampling.
# The codebook has K = 128 entries, so an image becomes 49 tokens from a vocabulary of 128.

# %%
show_source(VQAutoencoder)

# %%
train = load_fashion_mnist("train")
test = load_fashion_mnist("test")
x_test = to_model_range(test.images[:8])
probe = VQAutoencoder()
z_e = probe.encoder(x_test)
print(f"image {tuple(x_test.shape)} → encoder output {tuple(z_e.shape)} → code grid {tuple(probe.encode(x_test)[1].shape)}")
print(f"parameters: encoder {sum(p.numel() for p in probe.encoder.parameters()):,}, "
      f"decoder {sum(p.numel() for p in probe.decoder.parameters()):,}, codebook {probe.quantizer.codebook.numel():,}")
print("recipe:", ch02_vqgan.autoencoder_config("vqvae", BUDGET))

# %% [markdown]
# ## 4 · VQ-VAE: squared error, with and without dead-code restart
#
# VQ-VAE's loss is ‖x − x̂‖² + L_VQ. We train it twice with the same recipe, once with a plain
# codebook and once with dead-code restart. The preview shows test images (top rows) and their
# reconstructions (bottom rows) as training goes.

# %%
def reconstruction_preview(title, steps):
    def make_images(trainer):
        with torch.no_grad():
            trainer.eval()
            x_rec = trainer.autoencoder(x_test)[0]
            trainer.train()
        return torch.cat([x_test, x_rec.clamp(-1, 1)])
    return LivePreview(make_images, title, steps)


steps = ch02_vqgan.autoencoder_config("vqvae", BUDGET)["steps"]
autoencoders, infos = {}, {}
for kind in ("vqvae", "vqvae_restart"):
    autoencoders[kind], infos[kind] = ch02_vqgan.load_autoencoder(
        ch02_vqgan.autoencoder_config(kind, BUDGET), preview=reconstruction_preview(f"{kind}: test images and reconstructions", steps),
        preview_every=max(1, steps // 4))

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for kind in ("vqvae", "vqvae_restart"):
    rec = torch.tensor([t["rec"] for t in infos[kind]["terms"]])
    ax.plot(rec.unfold(0, min(25, len(rec)), 1).mean(1), label=kind)
ax.set(title="VQ-VAE training: reconstruction MSE (running mean of 25 steps)", xlabel="step",
       ylabel="MSE (images in [−1, 1])", yscale="log")
ax.legend()
plt.show()

# %% [markdown]
# Now count how often each code is used on held-out images. Perplexity, exp of the entropy of the
# code frequencies, is the *effective* number of codes: K if all are used equally, 1 if one code
# does everything.

# %%
classifier, classifier_info = load_classifier(classifier_config(BUDGET))
fd_metric = FashionFD(classifier, test.images)
eval_images = test.images[: ch02_vqgan.sampling_config(BUDGET)["eval_images"]]
reports = {kind: ch02_vqgan.reconstruction_report(autoencoders[kind], eval_images, fd_metric) for kind in autoencoders}

fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
for ax, kind in zip(axes, reports):
    counts = torch.tensor(reports[kind]["usage_counts"]).sort(descending=True).values
    ax.bar(range(len(counts)), counts / counts.sum())
    r = reports[kind]
    ax.set(title=f"{kind}: {r['used_code_fraction']:.0%} of codes used, perplexity {r['perplexity']:.1f}",
           xlabel="code (sorted by use)", ylabel="share of positions")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5 · VQGAN: perceptual loss, a patch discriminator and the adaptive weight
#
# VQGAN keeps the autoencoder and the quantizer and changes what "a good reconstruction" means
# (Esser et al. 2021, eqs. 4–7):
#
# $$ L = \underbrace{\lVert x - \hat x\rVert_1 + L_{perc}(x, \hat x)}_{L_{rec}} + L_{VQ} + \lambda\, L_{GAN},
# \qquad \lambda = \frac{\lVert \nabla_{G_L} L_{rec} \rVert}{\lVert \nabla_{G_L} L_{GAN} \rVert + \delta}. $$
#
# * **Perceptual loss.** Both images go through a trained network and the distance between its
#   features is penalised, so the decoder is asked to get *edges and textures* right rather than
#   the average grey value. The paper uses ImageNet VGG16 features; no weights can be downloaded
#   here, so the course trains a small VGG-style Fashion-MNIST network of its own (a different
#   network from the classifier that computes FD later, so the metric is not the loss). With
#   internet, `PerceptualLoss("vgg16")` uses torchvision's VGG16 instead.
# * **Patch discriminator.** A PatchGAN (Isola et al. 2017) gives one real/fake verdict per
#   overlapping patch, trained with the hinge loss; the generator, here the decoder, is rewarded
#   for patches the discriminator takes for real.
# * **Adaptive weight λ.** The GAN gradient and the reconstruction gradient can differ by orders
#   of magnitude. λ rescales the GAN term so that both push the decoder's last layer G_L equally
#   hard; it is switched on only after `disc_start` steps, once reconstructions are reasonable.

# %%
show_source(adaptive_weight)
show_source(VQGANTrainer.loss)

# %% [markdown]
# One scalar trains both players: while the discriminator judges x̂ for the generator its weights
# are frozen, and it learns from x̂ *detached*, so each gradient reaches only its own player.
#
# Two choices of ours, both found by measuring: the GAN term gets a weight of 0.1 on top of λ
# (at 0.5 the adversarial gradient swamped the reconstruction in a few hundred steps and the
# reconstructions got *worse*), and the discriminator has no BatchNorm (real and fake batches go
# through it separately, and per-batch normalisation hid the difference between them).
# Same budget, same code grid, same codebook and dead-code restart as `vqvae_restart`:

# %%
autoencoders["vqgan"], infos["vqgan"] = ch02_vqgan.load_autoencoder(
    ch02_vqgan.autoencoder_config("vqgan", BUDGET), preview=reconstruction_preview("VQGAN: test images and reconstructions", steps),
    preview_every=max(1, steps // 4))
reports["vqgan"] = ch02_vqgan.reconstruction_report(autoencoders["vqgan"], eval_images, fd_metric)

# %%
terms = infos["vqgan"]["terms"]
gan_steps = [i for i, t in enumerate(terms) if "g" in t]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
axes[0].plot([t["rec"] for t in terms])
axes[0].set(title="L_rec = L1 + perceptual", xlabel="step", ylabel="loss", yscale="log")
axes[1].plot(gan_steps, [terms[i]["d"] for i in gan_steps], label="discriminator (hinge)")
axes[1].plot(gan_steps, [terms[i]["g"] for i in gan_steps], label="generator −D(x̂)")
axes[1].set(title="The adversarial game (after disc_start)", xlabel="step", ylabel="loss")
axes[1].legend()
axes[2].plot(gan_steps, [terms[i]["lam"] for i in gan_steps])
axes[2].set(title="Adaptive weight λ (eq. 7)", xlabel="step", ylabel="λ", yscale="log")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 6 · Reconstructions side by side
#
# Rows: original, VQ-VAE (with restart) and VQGAN, for the same test images. Look at the
# shirts' stripes, the print on the T-shirts and the straps of the sandals.

# %%
x_show = to_model_range(test.images[8:20])
with torch.no_grad():
    rows = [x_show] + [autoencoders[k](x_show)[0].clamp(-1, 1) for k in ("vqvae_restart", "vqgan")]
show_grid(torch.cat(rows), "Original (top) · VQ-VAE (middle) · VQGAN (bottom)", nrow=12, scale=0.9)
plt.show()

print(f"{'':<15} {'L1':>7} {'PSNR dB':>8} {'FD-FMNIST':>10} {'sharpness':>10} {'codes used':>11} {'perplexity':>11}")
for kind, r in reports.items():
    print(f"{kind:<15} {r['l1']:>7.4f} {r['psnr']:>8.2f} {r['recon_fd']:>10.2f} {r['sharpness']:>10.3f} "
          f"{r['used_code_fraction']:>10.0%} {r['perplexity']:>11.1f}")
print("(sharpness: the reconstructions' mean gradient magnitude over the originals'; 1 is ideal, blur is below.)")
print(f"(FD-FMNIST of {len(eval_images)} reconstructions against the test set; lower is better. "
      f"Classifier test accuracy {classifier_info['test_accuracy']:.3f}.)")

# %% [markdown]
# The paper's reading of such a table: pixel metrics (L1, PSNR) reward the safe, blurry average,
# so the squared-error VQ-VAE can match or beat VQGAN on them, while the distribution of VQGAN's
# reconstructions, measured by a Fréchet distance in a classifier's feature space, should be
# closer to that of real images: sharp and slightly wrong looks more real than blurred and on
# average right. What this run shows:

# %%
vqvae_r, vqgan_r = reports["vqvae_restart"], reports["vqgan"]
closer = "VQGAN" if vqgan_r["recon_fd"] < vqvae_r["recon_fd"] else "VQ-VAE"
pixels = "VQGAN" if vqgan_r["l1"] < vqvae_r["l1"] else "VQ-VAE"
sharper = "VQGAN" if abs(vqgan_r["sharpness"] - 1) < abs(vqvae_r["sharpness"] - 1) else "VQ-VAE"
print(f"FD-FMNIST: VQ-VAE {vqvae_r['recon_fd']:.1f}, VQGAN {vqgan_r['recon_fd']:.1f}, so {closer}'s reconstructions "
      f"are closer to real images in distribution; {pixels} has the lower pixel error (L1); {sharper}'s edges are "
      f"nearer the originals' (sharpness {vqvae_r['sharpness']:.2f} against {vqgan_r['sharpness']:.2f}).")
print("This is one training seed per model, so it is what this run shows, not yet a finding: section 10 puts the "
      "same comparison over three seeds.")
#
# ## 7 · What the codes look like
#
# Each image is now a 7×7 grid of integers. Drawn with one colour per code, the grids show that
# the codes are *local*: background is one or two codes, and the outline of a garment is drawn in
# a handful of "edge" codes.

# %%
vqgan = autoencoders["vqgan"]
x_codes = to_model_range(test.images[20:26])
codes = ch02_vqgan.encode_dataset(vqgan, test.images[20:26])
fig, axes = plt.subplots(2, 6, figsize=(11, 4))
for i in range(6):
    axes[0, i].imshow(x_codes[i, 0], cmap="gray")
    axes[0, i].set_title(CLASSES[test.labels[20 + i]], fontsize=9)
    axes[1, i].imshow(codes[i], cmap="tab20", vmin=0, vmax=vqgan.num_codes - 1)
    for (r, c), k in zip([(r, c) for r in range(7) for c in range(7)], codes[i].flatten().tolist()):
        axes[1, i].text(c, r, k, ha="center", va="center", fontsize=5)
    for ax in axes[:, i]:
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].set_ylabel("image")
axes[1, 0].set_ylabel("code map")
fig.suptitle("Images and their 7×7 code maps (VQGAN, one colour per code)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 8 · A transformer prior over the codes
#
# Read in raster order, a code grid is a sentence of 49 words. A causal transformer (GPT) learns
# p(s) = Π_i p(s_i | c, s_<i): at every position it predicts the next code from all the previous
# ones. Conditioning is the "decoder-only" trick of the seed: put the condition in front of the
# sentence. For the seed's "generate only the digit 0–9" example we use the ten Fashion-MNIST
# classes: the first token is the class; a separate start token means "no class". During
# training 10 % of the class tokens are replaced by the start token, so one network is both the
# unconditional and the class-conditional prior.

# %%
show_source(CodePrior.forward)
show_source(CodePrior.next_code)

# %%
print("prior recipe:", ch02_vqgan.prior_config(BUDGET))
prior, prior_info = ch02_vqgan.load_prior(vqgan, ch02_vqgan.prior_config(BUDGET))
test_codes = ch02_vqgan.encode_dataset(vqgan, eval_images).flatten(1)
eval_labels = test.labels[: len(eval_images)]
bits = prior.bits_per_code(eval_labels, test_codes)
bits_uncond = prior.bits_per_code(torch.full_like(eval_labels, prior.unconditional), test_codes)
losses = torch.tensor(prior_info["losses"])
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(losses.unfold(0, min(25, len(losses)), 1).mean(1) / math.log(2))
ax.axhline(math.log2(vqgan.num_codes), color="grey", ls="--", label=f"uniform guess, log₂ K = {math.log2(vqgan.num_codes):.0f}")
ax.set(title="Prior training loss", xlabel="step", ylabel="bits per code (running mean)")
ax.legend()
plt.show()
print(f"held-out test codes: {bits:.3f} bits per code with the class token, {bits_uncond:.3f} without")

# %% [markdown]
# The class token buys a little likelihood, a fraction of a bit per code: most of the
# information in a code grid is *where the edges are*, not which class it is. It buys a lot of
# control, though. Unconditional samples first, then ten per class (rows) with top-k = 16
# sampling, which keeps the 16 most likely codes at each step:

# %%
s = ch02_vqgan.sampling_config(BUDGET)
unconditional = ch02_vqgan.sample_images(vqgan, prior, torch.full((20,), prior.unconditional), s["temperature"],
                                   s["top_k"], seed=1)
show_grid(unconditional, "Unconditional samples (start token)", nrow=10, scale=0.8)
plt.show()

per_class = ch02_vqgan.sample_images(vqgan, prior, torch.arange(10).repeat_interleave(10), s["temperature"], s["top_k"],
                               seed=2)
fig, ax = plt.subplots(figsize=(8, 8.5))
show_grid(per_class, "Class-conditional samples, one class per row", nrow=10, ax=ax)
ax.set_yticks([15 + 30 * i for i in range(10)], CLASSES)
plt.show()

# %% [markdown]
# ## 9 · Larger than the window: sliding-window sampling
#
# The prior has only ever seen 7×7 grids. To generate a larger canvas the paper slides a window
# over it: each new code is predicted from the 7×7 window around it, placed so that the codes
# above and to the left are already there. Thanks to the causal mask the whole window can go
# through the transformer and only the output at the new position is read.

# %%
show_source(sample_sliding_window)

# %% [markdown]
# The seed stresses **when this is valid**: either the data's statistics are (nearly) the same
# wherever a window is cut, *spatially invariant*, as for landscapes, or every window receives
# spatial conditioning (a segmentation map, or simply its coordinates). Fashion-MNIST is neither:
# every image is one centred item, so a window's contents depend on where it is. The map of
# code entropy per position shows it: at the borders one code (background) is nearly certain, at
# the centre anything goes. Put four items side by side on a "catalogue page" and cut windows at
# random offsets, and the statistics no longer depend on the position. (The other way, spatial
# conditioning, is chapter 08: a segmentation map of the Shapes world, turned into tokens by a
# second VQ autoencoder with its own codebook, tells every window what belongs in it.)

# %%
train_codes = ch02_vqgan.encode_dataset(vqgan, train.images[:5000])


def entropy_map(grids):
    h, w = grids.shape[1:]
    out = torch.zeros(h, w)
    for i in range(h):
        for j in range(w):
            p = torch.bincount(grids[:, i, j], minlength=vqgan.num_codes).double() / len(grids)
            p = p[p > 0]
            out[i, j] = -(p * p.log2()).sum()
    return out


generator = torch.Generator().manual_seed(0)
windows = torch.cat([ch02_vqgan.page_window(train_codes, 500, generator)[1].reshape(-1, 7, 7) for _ in range(10)])
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
for ax, grids, title in ((axes[0], train_codes, "single centred items"), (axes[1], windows, "windows of catalogue pages")):
    im = ax.imshow(entropy_map(grids), cmap="viridis", vmin=0, vmax=math.log2(vqgan.num_codes))
    ax.set(title=f"Code entropy per position:\n{title}", xlabel="column", ylabel="row")
fig.colorbar(im, ax=axes, label="bits")
plt.show()

# %% [markdown]
# So we slide two priors over a 14×21 canvas (56×84 pixels): the item prior from section 8 with
# the class token "Sneaker" in every window, and the same prior fine-tuned for a few hundred steps
# on random windows of catalogue pages. The first has learnt "one centred item, framed by
# background" and tries to put that everywhere; the second has learnt statistics that hold
# anywhere on the canvas.

# %%
page_prior, _ = ch02_vqgan.load_page_prior(vqgan, prior, ch02_vqgan.page_prior_config(BUDGET))
item_canvas = ch02_vqgan.sliding_window_images(vqgan, prior, torch.full((2,), CLASSES.index("Sneaker")), 14, 21,
                                         top_k=s["top_k"], seed=3)
page_canvas = ch02_vqgan.sliding_window_images(vqgan, page_prior, torch.full((2,), page_prior.unconditional), 14, 21,
                                         top_k=s["top_k"], seed=3)
fig, axes = plt.subplots(2, 2, figsize=(11, 6))
for row, (canvas, title) in enumerate(((item_canvas, "item prior (not spatially invariant)"),
                                       (page_canvas, "catalogue-page prior (spatially invariant)"))):
    for col in range(2):
        show_grid(canvas[col:col + 1], f"{title}", ax=axes[row, col])
plt.suptitle("Sliding-window samples, 14×21 codes = 56×84 pixels")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 10 · The measured result
#
# `ch02_vqgan.prior_report` measures the prior and its samples: bits per code on held-out test
# images' codes, and 100 class-conditional samples per class, judged by the course classifier
# (never used to train either model) and by FD-FMNIST beside the real-vs-real floor at the same N.

# %%
prior_results = ch02_vqgan.prior_report(vqgan, prior, classifier, fd_metric, ch02_vqgan.sampling_config(BUDGET))
for key, value in prior_results.items():
    print(f"{key:<36} {value}")
accuracy = prior_results["cond_sample_accuracy"]
print(f"\nThe classifier puts {describe(accuracy)} of the samples in the class they were asked for "
      f"(chance is 0.1); their FD-FMNIST is {prior_results['sample_fd']:.1f} "
      f"[{prior_results['sample_fd_ci_low']:.1f}, {prior_results['sample_fd_ci_high']:.1f}] against "
      f"{prior_results['sample_fd_floor_same_n']:.1f} between real training and test images at the same N "
      f"({prior_results['sample_fd_n']}).")

# %% [markdown]
# ### The comparison over three seeds
#
# One run per model cannot tell a method from a lucky seed. `python -m gensynth_course eval 02`
# trains the three compared autoencoders from seeds 0, 1 and 2, adds the control
# `l1_perceptual` (L1 + perceptual without the PatchGAN: between VQ-VAE and VQGAN three things
# change at once, L1 for MSE, the perceptual term and the GAN, and the control separates what the
# perceptual term buys from what the GAN adds), and keeps its results in the model cache. When
# they were measured on the same seed-0 models as this notebook's, the next cell shows them: each
# seed's figure, the mean and its 95 % t-interval, and the differences seed by seed. A difference
# is a finding only when its interval excludes zero.

# %%
study = ch02_vqgan.cached_study(infos)
if study is None:
    no_study_yet(f"02 --budget {BUDGET}", "seed study")
else:
    print(f"From `eval 02` on these seed-0 models ({study['training_seeds']} seeds each):")
    digits = {"l1": 4}                                    # pixel error needs more digits than FD
    print(f"{'':<15}" + "".join(f"{m:>26}" for m in ch02_vqgan.MEASURES))
    for kind in ch02_vqgan.COMPARED:
        print(f"{kind:<15}" + "".join(f"{describe(study[f'{kind}_{m}'], digits.get(m, 2)):>26}"
                                      for m in ch02_vqgan.MEASURES))
    for a, b in (("vqgan", "vqvae_restart"), ("l1_perceptual", "vqvae_restart"), ("vqgan", "l1_perceptual")):
        for measure, better in (("recon_fd", "closer to real images in distribution"), ("l1", "lower in pixel error")):
            d = study[f"{a}_minus_{b}_{measure}"]
            lower = d["mean"] < 0
            verdict = (f"{a if lower else b} is {better}" if excludes_zero(d)
                       else f"no difference beyond the noise of {study['training_seeds']} seeds")
            print(f"{a} − {b}, {measure}: {describe(d, digits.get(measure, 2))}: {verdict}.")
    sharpness = {kind: study[f"{kind}_sharpness"]["mean"] for kind in ch02_vqgan.COMPARED}
    print("Sharpness nearest the originals' (1): " + min(sharpness, key=lambda k: abs(sharpness[k] - 1))
          + " (" + ", ".join(f"{k} {v:.2f}" for k, v in sharpness.items()) + ").")

# %% [markdown]
# The paper's point is the first line: with the grid and codebook fixed, training with perceptual
# and adversarial losses should bring the reconstructions closer to real images in distribution,
# while pixel error may say the opposite. The control's lines would say which part of the recipe
# does it: read them first for whether any FD difference is beyond the noise of three seeds at
# all, since the pixel-error lines can be beyond the noise while the FD lines are not. Other measures, in the output of `eval 02` and in RESULTS.md:
#
# * `used_code_fraction` against `used_code_fraction_no_restart`: how much of the codebook dead-code
#   restart brings back into use.
# * `*_sharpness`: the mean gradient magnitude of the reconstructions over that of the originals
#   (1 is ideal, blur falls below it), the "sharper" of the paper measured rather than seen.
#
# ### The downsampling factor f, and pixels against codes
#
# How far should the autoencoder compress? The paper keeps its transformer at a 16×16 grid and
# varies f, so a larger f means a larger image and a wider view for every token; f = 16 came out
# best. Our image is fixed at 28×28, so here f trades detail for sequence length: f = 2 leaves a
# 14×14 grid (196 tokens), f = 4 the chapter's 7×7 (49), f = 7 a 4×4 (16). A smaller f should
# reconstruct better (the study below prints whether it does), but gives the prior a longer sequence to learn in the same time; a larger f
# gives it an easy sequence of codes that each carry more of the image. `eval 02` trains the
# VQGAN recipe at each f from the three seeds (`ch02_vqgan.factor_study`), and on each a prior of
# one size trained for the same wall-clock time (`factor_prior_config`); it also times one
# transformer of that size on raw pixels (784 tokens) against on codes (`pixels_vs_codes`).

# %%
if study is None or "fd_by_f" not in study:
    no_study_yet(f"02 --budget {BUDGET}", "study of the downsampling factor")
else:
    by_f, factors = study["fd_by_f"], sorted(study["fd_by_f"], key=int)
    for row in by_f.values():        # bits per code × codes per image: what the prior pays for a whole image
        row["bits_per_image"] = {k: v * row["tokens"] for k, v in row["bits_per_code"].items()
                                 if k in ("mean", "ci_low", "ci_high")}
    measures = {"recon_fd": "reconstruction FD", "bits_per_image": "prior bits / image", "sample_fd": "sample FD",
                "sample_accuracy": "sample accuracy"}
    print(f"{'f':<3}{'grid':>7}" + "".join(f"{name:>24}" for name in measures.values()))
    for f in factors:
        row = by_f[f]
        cells = (describe(row[m], 3 if m == "sample_accuracy" else 1) for m in measures)
        print(f"{f:<3}{row['grid']:>4}×{row['grid']:<2}" + "".join(f"{cell:>24}" for cell in cells))
    print(f"(means over {len(by_f['4']['recon_fd']['seeds'])} seeds with 95 % t-intervals; each prior trained for "
          f"{by_f['4']['prior_seconds'][0]:.0f} s, reaching " + ", ".join(
              f"{sum(by_f[f]['prior_steps']) / len(by_f[f]['prior_steps']):.0f} steps at f = {f}" for f in factors)
          + f"; {study['f_samples_per_run']} samples per run)")

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for ax, m in zip(axes, ("recon_fd", "sample_fd", "sample_accuracy")):
        means = [by_f[f][m]["mean"] for f in factors]
        errors = [[by_f[f][m]["mean"] - by_f[f][m]["ci_low"] for f in factors],
                  [by_f[f][m]["ci_high"] - by_f[f][m]["mean"] for f in factors]]
        ax.errorbar([int(f) for f in factors], means, yerr=errors, fmt="o-", capsize=4)
        ax.set(title=measures[m], xlabel="downsampling factor f", xticks=[int(f) for f in factors])
    plt.tight_layout()
    plt.show()

    for pair, d in study["f_differences"].items():
        a, b = pair.split("_minus_")
        for m, lower_is_better in (("recon_fd", True), ("sample_fd", True), ("sample_accuracy", False)):
            diff = d[m]
            if not excludes_zero(diff):
                verdict = "no difference beyond the noise of the seeds"
            else:
                better = a if (diff["mean"] < 0) == lower_is_better else b
                verdict = f"f = {better} is better"
            print(f"f = {a} − f = {b}, {measures[m]}: {describe(diff, 2)}: {verdict}.")
    best = min(factors, key=lambda f: by_f[f]["sample_fd"]["mean"])
    print(f"The lowest mean sample FD is at f = {best} (the lines above say which differences are beyond the noise).")

    timing = study["pixels_vs_codes"]
    print(f"\nOne transformer of the prior's size, a batch of {timing['batch_size']}: "
          f"{timing['pixels']['seconds_per_step']:.3f} s per training step on pixels against "
          f"{timing['codes']['seconds_per_step']:.3f} s on codes ({timing['step_ratio']:g}×), and "
          f"{timing['pixels']['seconds_per_image']:.2f} s against {timing['codes']['seconds_per_image']:.3f} s per "
          f"sampled image ({timing['sample_ratio']:g}×).")

# %% [markdown]
# Read the differences against the paper's claim. Its study keeps the transformer's grid fixed, so
# a larger f is pure gain in context; ours keeps the image fixed, so the question becomes where
# the balance between detail and sequence length lies for a prior trained for a few minutes. The
# timing line is why the paper compresses at all: on pixels, every training step and every
# sampled image costs many times more than on codes, and the gap grows with the square of the
# length for attention.
#
# ## 11 · Exercises
#
# Each checker compares your function with the package on random inputs. The attempts below are
# *not* right: fix them until the checker says "correct" (the reference solutions are in
# `teaching/solutions/ch02_vqgan.py` in the repository).
#
# **1.** Find the nearest code for each row of `z_flat` (N, D) using the expansion
# ‖z‖² + ‖e‖² − 2 z·e.

# %%
from gensynth_course.exercises import ch02_vqgan as check


def nearest_codes(z_flat, codebook):
    return (z_flat @ codebook.T).argmax(1)  # not yet: the largest dot product is not the nearest code


check.check_nearest_codes(nearest_codes)

# %% [markdown]
# **2.** Write the straight-through estimator: the output must be e, the gradient must reach z.

# %%
def straight_through(z, e):
    return e  # hint: the decoder needs e, the encoder needs a gradient


check.check_straight_through(straight_through)

# %% [markdown]
# **3.** Write L_VQ = ‖sg[z] − e‖² + β‖z − sg[e]‖² with mean squared errors.

# %%
def vq_loss(z, e, beta):
    return beta * F.mse_loss(e, z.detach()) + F.mse_loss(z, e.detach())  # which term carries β?


check.check_vq_loss(vq_loss)

# %% [markdown]
# **4.** Compute the perplexity of code counts (K,).

# %%
def perplexity(counts):
    return float((counts > 0).sum())  # this is the number of codes used, not the effective number


check.check_perplexity(perplexity)

# %% [markdown]
# **5.** Write the discriminator's hinge loss from real and fake logits.

# %%
def hinge_d_loss(logits_real, logits_fake):
    return (logits_fake - logits_real).mean()  # the Wasserstein critic's loss, without the hinges


check.check_hinge_d_loss(hinge_d_loss)

# %% [markdown]
# **Going further.** Train the VQ-VAE with EMA codebook updates (`VectorQuantizer(ema=True)`, the
# VQ-VAE-2 recipe) and compare its code usage with the restart fix; or sample with other `top_k` and
# temperatures and watch accuracy trade against variety:
#
# ```python
# ema_vqvae, _ = ch02_vqgan.load_autoencoder(dict(ch02_vqgan.autoencoder_config("vqvae", BUDGET), ema=True))
# print(ch02_vqgan.reconstruction_report(ema_vqvae, eval_images, None)["used_code_fraction"])
# for top_k, temperature in ((4, 0.8), (None, 1.0)):
#     bold = ch02_vqgan.sample_images(vqgan, prior, torch.arange(10).repeat(2), temperature, top_k)
#     show_grid(bold, f"top-k {top_k}, temperature {temperature}", nrow=10)
# ```
#
# A project for later: give every sliding window its coordinates as a second condition token, the
# paper's fix for data that is not spatially invariant.
#
# Next: chapter 03 goes back to diffusion and steers it towards a class, with a classifier's
# gradient and without one.
