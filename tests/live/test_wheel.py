"""The package outside this repository: built as a wheel and an sdist, installed into a fresh
virtual environment that lacks it by the chapters' own set-up cell, as a hosted notebook runs it;
chapter 00 runs at the quick budget from a folder that is not the clone, the way a learner runs
the notebooks downloaded from the book, and the installed package finds chapter 01's models.

The fresh environment reuses the set-up's PyTorch (torch, torchvision and their CUDA libraries,
linked in through a ``.pth`` file, a few gigabytes not copied again); everything else the wheel
needs, pip installs into it from the package index, so a dependency missing from
``pyproject.toml`` fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from gensynth_course.cache import cache_dir
from gensynth_course.course import REPO_ROOT, chapter

SHARED = ("torch", "torchvision", "torchgen", "functorch", "triton", "nvidia", "cuda")   # names the links cover
CHAPTERS = ("00",)                 # chapter 01's models and figures: see the test after it


def run(*command, **kwargs) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """An sdist, and a wheel built from it (``python -m build``: a file the sdist forgot fails)."""
    pytest.importorskip("build", reason="`python -m build` needs the build package (pip install '.[test]')")
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, REPO_ROOT)
    return out


def new_venv(root: Path) -> Path:
    """A new virtual environment at ``root`` that sees the set-up's PyTorch and nothing else; returns its python."""
    run(sys.executable, "-m", "venv", root / "env")
    python = root / "env" / "bin" / "python"
    shared = root / "shared-torch"
    shared.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if entry.name.split("-")[0].split("_")[0].split(".")[0].lower() in SHARED:
            (shared / entry.name).symlink_to(entry)
    fresh_site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (fresh_site / "shared_torch.pth").write_text(f"{shared}\n")
    return python


def set_up_cell() -> str:
    """The first code cell of chapter 01 (every chapter's is the same): it installs the wheel beside
    the notebook when the package is missing, keeping a PyTorch that is already there."""
    import jupytext

    return next(c.source for c in jupytext.read(chapter("01").source).cells if c.cell_type == "code")


def torch_needs() -> list[str]:
    """What PyTorch and torchvision need beside the linked packages (sympy, networkx, numpy, …):
    the rest of the PyTorch environment a hosted notebook has."""
    import importlib.metadata
    import re

    needs = importlib.metadata.requires("torch") + importlib.metadata.requires("torchvision")
    return [r for r in needs if "extra ==" not in r
            and re.split(r"[-_.\[ ;<>=!~(]", r, maxsplit=1)[0].lower() not in SHARED]


@pytest.fixture(scope="module")
def fresh(dist, tmp_path_factory) -> Path:
    """A new virtual environment where the package is missing but PyTorch is there (a hosted
    notebook), after the chapters' set-up cell ran in a folder with the wheel beside it; returns
    its python. The tests below then use it as the learner's environment."""
    root = tmp_path_factory.mktemp("hosted")
    python = new_venv(root)
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *torch_needs())
    folder = root / "notebook folder"
    folder.mkdir()
    shutil.copy2(next(dist.glob("*.whl")), folder)
    assert "No module named" in subprocess.run([str(python), "-c", "import gensynth_course"], cwd=folder,
                                               capture_output=True, text=True).stderr
    run(python, "-c", set_up_cell(), cwd=folder, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return python


def test_the_sdist_and_the_wheel_carry_the_package_and_its_manifest(dist):
    import tarfile
    import zipfile

    wheel = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
    sdist = tarfile.open(next(dist.glob("*.tar.gz"))).getnames()
    assert "gensynth_course/book.toml" in wheel
    assert any(name.endswith("/gensynth_course/book.toml") for name in sdist)
    assert "gensynth_course/experiments/ch01_ddpm.py" in wheel
    tracked = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "gensynth_course"], capture_output=True, text=True)
    if tracked.returncode == 0:                  # a clone: every file of the package, data included
        missing = set(tracked.stdout.split()) - set(wheel)
        assert not missing, f"the wheel lacks {sorted(missing)}: add them to the package data in pyproject.toml"


def test_the_installed_package_is_the_wheel_and_reuses_the_set_ups_torch(fresh, tmp_path):
    where = run(fresh, "-c", "import gensynth_course, torch; print(gensynth_course.__file__); print(torch.__file__)",
                cwd=tmp_path).splitlines()
    assert Path(where[0]).is_relative_to(fresh.parents[1]), f"gensynth_course came from {where[0]}, not the new venv"
    assert not Path(where[0]).resolve().is_relative_to(REPO_ROOT)
    assert Path(where[1]).resolve().is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve())
    listing = run(fresh, "-m", "gensynth_course", "list", cwd=tmp_path)
    assert chapter("05").title[:40] in listing             # the manifest came with the wheel


@pytest.mark.parametrize("number", CHAPTERS)
def test_a_downloaded_chapter_runs_from_the_installed_package(fresh, number, tmp_path):
    """The notebook the book offers for download, run in an empty folder by the new venv's kernel,
    with the course's model cache."""
    c = chapter(number)
    folder = tmp_path / "my notebooks"
    folder.mkdir()
    shutil.copy2(c.notebook, folder)
    env = {"PATH": f"{fresh.parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path / "home"),
           "GENSYNTH_BUDGET": "quick", "GENSYNTH_HEADLESS": "1", "GENSYNTH_CACHE": str(cache_dir()),
           "JUPYTER_PLATFORM_DIRS": "1"}
    run(fresh.parent / "jupyter", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=900",
        "--ExecutePreprocessor.kernel_name=python3", "--output", "executed", c.notebook.name, cwd=folder, env=env)
    assert (folder / "executed.ipynb").exists()


def test_the_installed_package_loads_the_models_the_clone_trained_and_draws_beside_the_notebook(fresh, tmp_path):
    """What a downloaded chapter 01 adds to chapter 00's run, checked without running its cells a
    third time (nbval and JupyterLab ran them): the installed package loads every model the chapter
    trains from the course's cache, warm by now, without training (the code hash is the clone's),
    and a chapter's figures go to ``figures/`` in the notebook's folder, not into the package."""
    script = (
        "from gensynth_course.cache import cached_only\n"
        "from gensynth_course.experiments import ch01_ddpm\n"
        "from gensynth_course.notebook import figures_dir\n"
        "with cached_only():\n"
        "    for training in ch01_ddpm.trainings('quick'):\n"
        "        training.load(training.config)\n"
        "print(figures_dir('01'))\n")
    from gensynth_course.experiments import ch01_ddpm

    for training in ch01_ddpm.trainings("quick"):    # here, by the clone's package (cached by now in make test)
        training.load(training.config)
    env = {**os.environ, "GENSYNTH_BUDGET": "quick", "GENSYNTH_HEADLESS": "1", "GENSYNTH_CACHE": str(cache_dir())}
    folder = tmp_path / "my notebooks"
    folder.mkdir()
    said = run(fresh, "-c", script, cwd=folder, env=env).strip().splitlines()
    assert "gensynth_course: loaded unet from the cache" in "\n".join(said)
    assert Path(said[-1]) == folder / "figures" / "01"


def test_a_chapters_set_up_cell_installs_the_wheel_and_keeps_pytorch(fresh, tmp_path):
    """After the set-up cell (the ``fresh`` fixture) the package imports, and PyTorch is still the
    one that was there; without the wheel beside the notebook the cell says so in one line."""
    where = run(fresh, "-c", "import gensynth_course, torch; print(torch.__file__)", cwd=tmp_path).strip()
    assert Path(where).resolve().is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve())
    missing = tmp_path / "elsewhere"
    missing.mkdir()                             # the cell as it runs where the package is missing
    done = subprocess.run([str(fresh), "-c", set_up_cell().replace("gensynth_course\")", "no_such_package\")")],
                          cwd=missing, capture_output=True, text=True)
    assert done.returncode != 0 and "is not beside this notebook" in done.stderr
