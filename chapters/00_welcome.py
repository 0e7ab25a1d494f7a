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
# # 00 · Welcome: how this course works
#
# This course teaches generative models by building them. Each chapter takes one paper family,
# from denoising diffusion to contrastive text–image–audio models, implements it from scratch in
# the small companion package `gensynth_course`, trains it on your machine, and ends with a
# measured result that reproduces the paper's headline claim in miniature.
#
# **How a chapter is built.** The idea and its equations (numbered as in the paper) → the
# implementation, read straight from the package (what you read is what runs) → training with a
# live progress bar and previews → samples, GIFs and plots → a measured result → exercises with
# checkers.
#
# **One source of truth.** The notebooks never paste a second copy of a model: they import it
# from `gensynth_course` and show its source with `show_source`. Open the package in an editor
# beside the notebook whenever you like; it is laid out by concept (`models/diffusion/`,
# `models/vq/`, `evaluation/`, one `experiments/chNN_*.py` per chapter; see the README's layout).

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
from gensynth_course.course import chapters, load_manifest

book = load_manifest()["book"]
print(book["title"], "—", book["subtitle"], "\n")
for c in chapters():
    print(f"{c.number}  {c.title:<62} {c.minutes['standard']:>4g} min  ({c.status})")

# %% [markdown]
# ## Budgets: one notebook, three sizes
#
# Every chapter runs at three sizes, chosen with the environment variable `GENSYNTH_BUDGET`
# (read once, when the package is imported):
#
# | budget | for | what it means |
# |---|---|---|
# | `quick` | tests and CI | every code path runs, small models, a minute or two per chapter |
# | `standard` (default) | a laptop CPU | convincing figures and the chapter's measured claim |
# | `full` | a GPU | larger models, longer training, the best pictures |
#
# The list above gives each chapter's minutes at the standard budget from an empty model cache;
# `python -m gensynth_course list` prints all three budgets.
#
# Start JupyterLab with, for example, `GENSYNTH_BUDGET=quick make lab` to try everything fast.
# Trained models are cached under `GENSYNTH_CACHE` (by chapter, model, a hash of the configuration
# and a hash of the code that trains it), so a second run of a chapter, or a later chapter that needs an earlier model,
# loads it instead of training again. Delete the folder to start afresh.

# %%
from gensynth_course.budget import BUDGET
from gensynth_course.cache import cache_dir

print(f"budget: {BUDGET}")
print(f"model cache: {cache_dir()}")

# %% [markdown]
# ## Environment check
#
# The course picks the fastest device it can find (an NVIDIA GPU, Apple's Metal, or the CPU) and
# says which. Set `GENSYNTH_DEVICE=cpu` to override. On a CPU, the number of threads matters:
# PyTorch uses one per physical core by default.

# %%
import platform
import sys

import matplotlib
import torch
import torchvision

from gensynth_course.device import pick_device

device = pick_device()
print(f"Python {sys.version.split()[0]} on {platform.system()} {platform.machine()}")
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, matplotlib {matplotlib.__version__}")
print(f"CPU threads used by torch: {torch.get_num_threads()}")

# %% [markdown]
# ## Data
#
# Chapters 01–03 use **Fashion-MNIST** (Xiao, Rasul & Vollgraf 2017): 70,000 grey 28×28 images of
# ten kinds of clothing. The package looks for it in `GENSYNTH_DATA`, then in its own download
# folder, then in Debian's package `dataset-fashion-mnist`, and downloads it through torchvision
# only if it is nowhere. If none works, you get one message with the three ways to get it.
# Chapters 04–07 generate their own data (a world of coloured shapes with exact captions, and
# sounds that follow the same attributes), so they need no download at all.

# %%
import matplotlib.pyplot as plt

from gensynth_course.data.fashion_mnist import CLASSES, load_fashion_mnist, to_model_range
from gensynth_course.images import show_grid

train = load_fashion_mnist("train")
print(f"{len(train):,} training images from {train.source}")
per_class = torch.stack([train.images[train.labels == k][:8] for k in range(10)])  # (10, 8, 1, 28, 28)
fig, ax = plt.subplots(figsize=(6, 7.5))
show_grid(to_model_range(per_class.flatten(0, 1)), "Fashion-MNIST: eight images of each class, one class a row", nrow=8, ax=ax)
ax.set_yticks([14 + 30 * k for k in range(10)], CLASSES)
ax.set_xlabel("examples")
plt.show()

# %% [markdown]
# ## How results are measured
#
# Published image-generation papers report FID, a Fréchet distance in the feature space of an
# Inception network trained on ImageNet. Those weights cannot be downloaded everywhere, and on
# 28×28 clothing they would measure the wrong thing anyway. The course trains its own evaluation
# networks (a Fashion-MNIST classifier here; an attribute reader and an independent CLIP for the
# shapes world later) and calls the numbers what they are: **FD-FMNIST** is not FID and is only
# comparable with itself. Every number is printed beside two baselines: real images against real
# images (the floor) and noise (the ceiling).
#
# Each chapter's numbers can be reproduced with one command, for example
# `python -m gensynth_course eval 01 --budget standard --json`.
#
# ## Exercises
#
# Chapters end with exercises. Each comes with a checker from `gensynth_course.exercises` that
# runs your function on random inputs, compares it with the package's own implementation, and
# says "correct" or gives a hint; it never stops the notebook with a traceback. The reference
# solutions are in the package too, and the test suite proves that they pass.
#
# Next: chapter 01, denoising diffusion from scratch.
