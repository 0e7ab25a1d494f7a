"""Chapters: every .py has its paired .ipynb, in sync, stored without outputs, listed in book.toml."""

import json

import jupytext
import pytest

from gensynth_course.course import REPO_ROOT, chapters

SOURCES = sorted((REPO_ROOT / "chapters").glob("*.py"))
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def test_the_stored_kernelspec_is_the_installed_one():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNELSPEC["name"])
    assert {"display_name": spec.display_name, "language": spec.language, "name": KERNELSPEC["name"]} == KERNELSPEC


def test_every_ready_chapter_has_its_files():
    for c in chapters():
        if c.status == "ready":
            assert c.source.exists() and c.notebook.exists(), c.number


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync_and_clean(source):
    notebook = source.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.name} is missing: run `make sync`"
    stored = json.loads(notebook.read_text())
    # What JupyterLab writes when it saves, so that opening a chapter does not rewrite its pair.
    assert stored["metadata"]["kernelspec"] == KERNELSPEC, f"{notebook.name}: kernelspec is not {KERNELSPEC}"
    assert "language_info" not in stored["metadata"], f"{notebook.name} was saved with the kernel's language_info"
    for cell in stored["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{notebook.name} has outputs"
    from_py = [(c.cell_type, c.source.strip()) for c in jupytext.read(source).cells]
    from_nb = [(c.cell_type, c.source.strip()) for c in jupytext.read(notebook).cells]
    assert from_py == from_nb, f"{source.name} and {notebook.name} differ: run `make sync`"


def setup_cell(source) -> str:
    """A chapter's first code cell: the set-up that installs the package outside a clone."""
    return next(cell.source for cell in jupytext.read(source).cells if cell.cell_type == "code")


def test_every_chapter_opens_with_the_same_set_up_naming_this_version_s_wheel():
    """Outside a clone, a chapter's first code cell installs the wheel the book publishes beside it:
    the same cell in every chapter, naming the package's current version."""
    from importlib.metadata import version

    first = setup_cell(SOURCES[0])
    assert f'"gensynth_course-{version("gensynth-course")}-py3-none-any.whl"' in first
    assert 'importlib.util.find_spec("gensynth_course") is None' in first
    for source in SOURCES[1:]:
        assert setup_cell(source) == first, f"{source.name}: its set-up cell differs from {SOURCES[0].name}'s"
