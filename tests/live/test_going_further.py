"""Every "Going further" suggestion runs as printed: in a fresh kernel at the quick budget (the cache
is warm by now), the chapter's cells that define what the suggestion names (and, in turn, what those
cells name), in the chapter's order, then the suggestion's code block. The rest of the chapter ran
twice already (headless and live), so it is not run a third time here."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
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


def defined_and_used(source: str) -> tuple[set[str], set[str]]:
    """The global names a cell binds (assignments, imports, functions, classes) or fills in
    (``infos[kind] = …``, ``config.x = …``), and those it reads."""
    defined, used = set(), set()
    for node in ast.walk(ast.parse(TransformerManager().transform_cell(source))):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store):
            while isinstance(node, (ast.Subscript, ast.Attribute)):
                node = node.value
            if isinstance(node, ast.Name):
                defined.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
    return defined, used


def cells_it_needs(cells: list, code: str) -> list:
    """The cells, among ``cells``, that bind a name ``code`` reads, or a name such a cell reads."""
    _, needed = defined_and_used(code)
    kept = []
    for cell in reversed(cells):
        defined, used = defined_and_used(cell.source)
        if defined & needed:
            kept.append(cell)
            needed |= used
    return kept[::-1]


def test_a_suggestion_gets_the_cells_that_define_its_names_and_theirs():
    cells = [nbformat.v4.new_code_cell(source) for source in (
        "import torch\nfrom gensynth_course import ch", "%matplotlib inline\nunused = torch.zeros(3)",
        "config = ch.config()", "config['steps'] = 2", "def helper():\n    return config", "x = 1")]
    kept = cells_it_needs(cells, "print(helper())")
    assert [c.source for c in kept] == [cells[i].source for i in (0, 2, 3, 4)]


def test_the_chapters_have_suggestions_to_run():
    assert {name for name, _, _ in suggestions()} >= {"01_ddpm", "02_vqgan"}


@pytest.mark.parametrize("chapter, index, code", suggestions(), ids=[s[0] for s in suggestions()])
def test_a_going_further_suggestion_runs_as_printed(chapter, index, code, monkeypatch):
    notebook = jupytext.read(ROOT / "chapters" / f"{chapter}.py")
    cells = [c for c in notebook.cells[:index] if c.cell_type == "code" and "check." not in c.source]
    notebook.cells = cells_it_needs(cells, code) + [nbformat.v4.new_code_cell(code)]
    for name, value in {"GENSYNTH_BUDGET": "quick", "GENSYNTH_HEADLESS": "1", "MPLBACKEND": "Agg"}.items():
        monkeypatch.setenv(name, value)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "chapters")}}).execute()
    errors = [o for o in notebook.cells[-1].get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    assert os.environ["GENSYNTH_BUDGET"] == "quick"
