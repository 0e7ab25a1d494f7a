"""The package's layers, read from its imports: the rules in the README's "Layout" section.

core (the top-level modules) < data < models < evaluation < experiments; a layer imports only
layers below it (and core), a chapter's experiment module never imports another chapter's, and the
command line, the book, the results page, the assignments and the full-budget plan are imported
by nothing below them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gensynth_course

PACKAGE = Path(gensynth_course.__file__).parent
RANK = {"core": 0, "data": 1, "models": 2, "evaluation": 3, "experiments": 4, "exercises": 4}
# Top-level modules that sit at the edge: nothing inside the package may import them.
EDGE = {"__main__", "assignments", "book", "results", "full_budget"}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    head = module.split(".")[0]
    return head if head in RANK else "core"


def imports(path: Path) -> set[str]:
    """Every module of the package that ``path`` imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gensynth_course"):
            base = node.module.removeprefix("gensynth_course").lstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}".lstrip(".")
                found.add(full if full in modules() or f"{full}.__init__" in modules() else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("gensynth_course.") for a in node.names if a.name.startswith("gensynth_course.")}
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.name}: use absolute imports (from gensynth_course... import ...)")
    return {m for m in found if m}


EDGES = sorted((name, target) for name, path in modules().items() for target in imports(path))


def test_the_walk_finds_the_layers():
    layers = {layer(name) for name in modules()}
    assert {"core", "data", "models", "evaluation", "experiments", "exercises"} <= layers
    assert ("experiments.ch06_xmc_gan", "models.gan.xmc_gan") in EDGES


@pytest.mark.parametrize("name, target", EDGES, ids=[f"{a}->{b}" for a, b in EDGES])
def test_imports_go_down(name: str, target: str):
    assert target.split(".")[0] not in EDGE or name in EDGE, f"{name} imports {target}, which is the edge"
    if layer(name) == "core" and name not in EDGE:
        assert layer(target) == "core", f"core module {name} imports {target}"
    elif layer(name) != "core":
        assert RANK[layer(target) if layer(target) != "core" else "core"] <= RANK[layer(name)], (
            f"{name} ({layer(name)}) imports {target} ({layer(target)}), a layer above it")
        if layer(name) == "exercises" and layer(target) == "experiments":     # only its own chapter's
            assert name.split(".")[1] == target.split(".")[1], f"{name} imports {target}"


@pytest.mark.parametrize("name, target", [e for e in EDGES if e[0].startswith("experiments.")],
                         ids=[f"{a}->{b}" for a, b in EDGES if a.startswith("experiments.")])
def test_a_chapter_never_imports_another(name: str, target: str):
    if target.startswith("experiments."):
        other = target.split(".")[1]
        assert not other.startswith("ch"), (
            f"{name} imports {target}: what two chapters share belongs in a shared module below them")


def _functions_with_a_budget():
    import importlib
    import inspect

    for name in modules():
        if name in EDGE or name.split(".")[0] == "exercises" or name.endswith("__init__"):
            continue
        module = importlib.import_module(f"gensynth_course.{name}")
        members = [m for _, m in inspect.getmembers(module, inspect.isfunction) if m.__module__ == module.__name__]
        for cls in (c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__):
            members += [m for m in vars(cls).values() if inspect.isfunction(m)]
        for function in members:
            if "budget" in inspect.signature(function).parameters:
                yield f"{name}.{function.__qualname__}"


def test_the_budget_is_resolved_at_the_edge():
    """Only the functions that turn a budget into configs take one (``*_config``, a chapter's
    ``trainings``, ``evaluate`` for the command line, and the budget module itself); below them only
    configs and the device travel."""
    allowed = ("_config", "trainings", "evaluate", "evaluation_scenes")
    found = list(_functions_with_a_budget())
    assert "experiments.ch01_ddpm.evaluate" in found
    strays = [f for f in found if not f.split(".")[-1].endswith(allowed) and not f.startswith("budget.")]
    assert not strays, f"these take a budget below the edge; give them a config instead: {strays}"
