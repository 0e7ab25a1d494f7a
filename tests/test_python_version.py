"""The lowest Python the course promises is the one its code needs and the one CI runs."""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_readme_and_conda_promise_the_same_python():
    lowest = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert lowest == ">=3.11"                              # tomllib (course.py) is 3.11's
    assert "Python 3.11 or newer" in (ROOT / "README.md").read_text()
    assert re.search(r"python=3\.11\b", (ROOT / "environment.yml").read_text())


def test_this_run_is_on_a_promised_python():
    assert sys.version_info >= (3, 11)
