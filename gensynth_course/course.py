"""The course manifest, ``book.toml``: chapters, titles, budgets' time estimates. ``REPO_ROOT`` is
the clone the package was installed from (``pip install -e .``); only a clone has the chapters' sources."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from gensynth_course.budget import BUDGETS

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Chapter:
    number: str
    slug: str
    title: str
    status: str
    minutes: dict[str, float]
    reproduces: str

    @property
    def source(self) -> Path:
        """The jupytext percent-format source, ``chapters/NN_slug.py``."""
        return REPO_ROOT / "chapters" / f"{self.number}_{self.slug}.py"

    @property
    def notebook(self) -> Path:
        return self.source.with_suffix(".ipynb")


def manifest_path() -> Path:
    """``book.toml``, shipped inside the package (in a clone, a link to the repository's own), so
    that an installed package knows its chapters too."""
    return Path(__file__).resolve().parent / "book.toml"


def load_manifest() -> dict:
    with open(manifest_path(), "rb") as f:
        return tomllib.load(f)


def chapters() -> list[Chapter]:
    out = []
    for c in load_manifest()["chapter"]:
        out.append(Chapter(number=c["number"], slug=c["slug"], title=c["title"], status=c["status"],
                           minutes=dict(zip(BUDGETS, c["minutes"])), reproduces=c["reproduces"]))
    return out


def chapter(number: str | int) -> Chapter:
    """Look a chapter up by number ('1', '01' or 1)."""
    key = f"{int(number):02d}" if str(number).isdigit() else str(number)
    for c in chapters():
        if c.number == key:
            return c
    known = ", ".join(c.number for c in chapters())
    raise SystemExit(f"There is no chapter {number!r}; the chapters are {known} (see `python -m gensynth_course list`).")
