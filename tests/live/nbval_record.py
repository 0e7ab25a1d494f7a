"""A pytest plugin for nbval: keep what each chapter printed and drew, for the book.

``make test`` runs every chapter once, headless, through nbval. With ``-p nbval_record`` the
outputs of that run are written as executed notebooks to ``_build/run/NN_slug.<budget>.ipynb``
(the names ``python -m gensynth_course run`` uses), and the book is rendered from them instead of
executing every chapter a second time. A notebook with a failed cell is not written. The summary
at the end lists each chapter's time (the sum of its cells).
"""

from __future__ import annotations

import os
from collections import defaultdict

import nbformat
import pytest

from gensynth_course.budget import budget_from_environment
from gensynth_course.course import REPO_ROOT

_cells: dict = defaultdict(list)
_seconds: dict = defaultdict(float)
_failed: set = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not hasattr(item, "test_outputs") or call.when != "call":
        return
    path = str(item.parent.fspath)
    _seconds[path] += report.duration
    if report.failed:
        _failed.add(path)
    _cells[path].append((item.cell_num, item.test_outputs or []))


def pytest_sessionfinish(session):
    budget = budget_from_environment()
    out_dir = REPO_ROOT / "_build" / "run"
    for path, cells in _cells.items():
        if path in _failed:
            continue
        nb = nbformat.read(path, as_version=4)
        outputs = dict(cells)           # nbval numbers the code cells 0, 1, 2, ...
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        if set(outputs) != set(range(len(code))):
            continue                    # not every cell ran (a selection of cells, or -x)
        for count, cell in enumerate(code, start=1):
            cell.execution_count = count
            cell.outputs = [_output(o, count) for o in outputs[count - 1]]
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = os.path.splitext(os.path.basename(path))[0]
        nbformat.write(nb, out_dir / f"{stem}.{budget}.ipynb")


def _output(node, count: int):
    kind = node["output_type"]
    if kind == "stream":
        return nbformat.v4.new_output("stream", name=node["name"], text=node["text"])
    if kind == "execute_result":
        return nbformat.v4.new_output("execute_result", data=node["data"], metadata=node.get("metadata", {}),
                                      execution_count=count)
    return nbformat.v4.new_output("display_data", data=node["data"], metadata=node.get("metadata", {}))


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    terminalreporter.section("chapter times (headless, sum of cells)")
    for path, seconds in _seconds.items():
        status = "failed" if path in _failed else "ok"
        terminalreporter.write_line(f"{os.path.basename(path):<28} {seconds:6.0f} s  {status}")
