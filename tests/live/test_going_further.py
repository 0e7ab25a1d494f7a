"""Every "Going further" suggestion runs as printed: the chapter's code up to the suggestion, then
the suggestion's code block, in a fresh kernel at the quick budget (the cache is warm by now)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"```python\n(.*?)```", re.S)


def suggestions() -> list[tuple[str, int, str]]:
    """(chapter, index of the Going-further cell, its code) for every chapter that has one."""
    found = []
    for source in sorted((ROOT / "chapters").glob("0*.py")):
        for i, cell in enumerate(jupytext.read(source).cells):
            if cell.cell_type == "markdown" and "**Going further.**" in cell.source:
                blocks = CODE.findall(cell.source)
                assert blocks, f"{source.name}: a Going-further suggestion without code to run"
                found += [(source.stem, i, block) for block in blocks]
    return found


def test_the_chapters_have_suggestions_to_run():
    assert {name for name, _, _ in suggestions()} >= {"01_ddpm", "02_vqgan"}


@pytest.mark.parametrize("chapter, index, code", suggestions(), ids=[s[0] for s in suggestions()])
def test_a_going_further_suggestion_runs_as_printed(chapter, index, code, monkeypatch):
    notebook = jupytext.read(ROOT / "chapters" / f"{chapter}.py")
    cells = [c for c in notebook.cells[:index] if c.cell_type == "code" and "check." not in c.source]
    notebook.cells = cells + [nbformat.v4.new_code_cell(code)]
    for name, value in {"GENSYNTH_BUDGET": "quick", "GENSYNTH_HEADLESS": "1", "MPLBACKEND": "Agg"}.items():
        monkeypatch.setenv(name, value)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "chapters")}}).execute()
    errors = [o for o in notebook.cells[-1].get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    assert os.environ["GENSYNTH_BUDGET"] == "quick"
