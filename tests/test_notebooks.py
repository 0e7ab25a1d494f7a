"""Chapters: every .py has its paired .ipynb, in sync, stored without outputs, listed in book.toml."""

import json

import jupytext
import pytest

from gensynth_course.course import REPO_ROOT, chapters

SOURCES = sorted((REPO_ROOT / "chapters").glob("*.py"))


def test_every_ready_chapter_has_its_files():
    for c in chapters():
        if c.status == "ready":
            assert c.source.exists() and c.notebook.exists(), c.number


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync_and_clean(source):
    notebook = source.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.name} is missing: run `make sync`"
    stored = json.loads(notebook.read_text())
    for cell in stored["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{notebook.name} has outputs"
    from_py = [(c.cell_type, c.source.strip()) for c in jupytext.read(source).cells]
    from_nb = [(c.cell_type, c.source.strip()) for c in jupytext.read(notebook).cells]
    assert from_py == from_nb, f"{source.name} and {notebook.name} differ: run `make sync`"
