"""The online book: a Sphinx + MyST-NB + sphinx-book-theme site built from ``book.toml``.

``python -m gensynth_course book --budget quick`` (or ``make book BUDGET=quick``) writes a Sphinx
source folder under ``_build/book-src/`` — ``conf.py`` generated from ``book.toml``, a landing page
with one card per chapter, and the chapters' jupytext ``.py`` sources — then executes the chapters
with MyST-NB's jupyter-cache (an unchanged chapter is not run again) and renders the static site
into ``_build/book/``. A cell that fails fails the build. Maths is rendered by a MathJax copied from
Debian's ``libjs-mathjax`` (or ``$GENSYNTH_MATHJAX``), so the site works without a network.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from gensynth_course.budget import check_budget
from gensynth_course.course import REPO_ROOT, chapters, load_manifest

BUILD = REPO_ROOT / "_build"

CONF = '''# Generated from book.toml by gensynth_course.book; edit book.toml instead.
project = {title!r}
author = {author!r}
copyright = {copyright!r}
html_title = {title!r}
extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "conf.py", "_static"]
nb_custom_formats = {{".py": ["jupytext.reads", {{"fmt": "py:percent"}}]}}
nb_execution_mode = {execution!r}
nb_execution_cache_path = {cache!r}
nb_execution_timeout = -1
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "html_image"]
myst_heading_anchors = 3
myst_update_mathjax = False  # its MathJax 3 settings (window.MathJax) would stop MathJax 2 starting
html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["course.css"]
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS_CHTML"
mathjax2_config = {{"tex2jax": {{"inlineMath": [["\\\\(", "\\\\)"]], "displayMath": [["\\\\[", "\\\\]"]]}}}}
nb_ipywidgets_js = {{}}  # no widget state is saved, and the widget scripts would come from a CDN
html_theme_options = {{
    "show_toc_level": 2,
    "use_download_button": True,
    "extra_footer": {footer!r},
}}
html_context = {{"download_links": {downloads!r}}}


def _add_download_links(app, pagename, templatename, context, doctree):
    links = app.config.html_context["download_links"].get(pagename)
    if links and "body" in context:
        context["body"] = links + context["body"]


def setup(app):
    app.connect("html-page-context", _add_download_links)
'''

CSS = """
.gs-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); gap: 1rem; margin: 1.5rem 0; }
.gs-card { border: 1px solid var(--pst-color-border, #ddd); border-radius: .5rem; padding: 1rem; }
.gs-card h3 { margin-top: 0; font-size: 1.1rem; }
.gs-card .gs-times { font-size: .85rem; color: var(--pst-color-text-muted, #666); }
.gs-card.gs-planned { opacity: .65; }
.gs-downloads { font-size: .9rem; margin-bottom: 1rem; }
"""


def mathjax_dir() -> Path:
    """A local MathJax 2.7 (``$GENSYNTH_MATHJAX``, else Debian's ``libjs-mathjax``): no CDN needed."""
    for folder in (os.environ.get("GENSYNTH_MATHJAX"), "/usr/share/javascript/mathjax"):
        if folder and (Path(folder) / "MathJax.js").exists():
            return Path(folder)
    raise SystemExit(
        "The book renders maths with a local copy of MathJax 2.7, and none was found.\n"
        "  Debian/Ubuntu: sudo apt-get install libjs-mathjax\n"
        "  elsewhere: unpack MathJax 2.7 (its npm package 'mathjax@2') and set GENSYNTH_MATHJAX to that folder."
    )


def _card(c) -> str:
    m = c.minutes
    times = f"quick {m['quick']:g} min · standard {m['standard']:g} min (2 CPU cores) · full {m['full']:g} min (GPU)"
    if c.status == "ready":
        name = f"{c.number}_{c.slug}"
        head = f'<a href="{name}.html">{c.number} · {c.title}</a>'
        links = (f'<div class="gs-downloads">download: <a href="_static/downloads/{name}.ipynb" download>.ipynb</a> · '
                 f'<a href="_static/downloads/{name}.py" download>.py</a></div>')
        cls = "gs-card"
    else:
        head, links, cls = f"{c.number} · {c.title}", "<p><em>planned</em></p>", "gs-card gs-planned"
    return (f'<div class="{cls}"><h3>{head}</h3><p>{c.reproduces}</p>'
            f'<p class="gs-times">{times}</p>{links}</div>')


def executed_notebook(c, budget: str, folder: Path) -> Path:
    """Where ``python -m gensynth_course run`` (or ``make test``) leaves chapter ``c`` executed."""
    return folder / f"{c.number}_{c.slug}.{budget}.ipynb"


def executed_is_fresh(c, budget: str, folder: Path) -> bool:
    """Whether ``folder`` holds chapter ``c`` executed at ``budget`` after its source last changed."""
    run = executed_notebook(c, budget, folder)
    return run.exists() and run.stat().st_mtime >= c.source.stat().st_mtime


def write_sources(budget: str, executed: Path | None = None) -> Path:
    """Write the Sphinx source folder for ``budget``; return its path.

    With ``executed``, each chapter page is the notebook already executed in that folder (see
    :func:`executed_notebook`) and nothing runs again; without it, MyST-NB executes the chapters.
    """
    manifest = load_manifest()
    book = manifest["book"]
    src = BUILD / "book-src"
    if src.exists():
        shutil.rmtree(src)
    (src / "_static" / "downloads").mkdir(parents=True)
    ready = [c for c in chapters() if c.status == "ready"]
    wheel = build_wheel(src / "_static" / "downloads")
    downloads = {}
    for c in ready:
        name = f"{c.number}_{c.slug}"
        if executed is None:
            shutil.copy2(c.source, src / f"{name}.py")
        else:
            if not executed_is_fresh(c, budget, executed):
                raise SystemExit(f"No executed copy of chapter {c.number} newer than its source in {executed}: "
                                 f"run `python -m gensynth_course run {c.number} --budget {budget}` first.")
            shutil.copy2(executed_notebook(c, budget, executed), src / f"{name}.ipynb")
        shutil.copy2(c.source, src / "_static" / "downloads" / f"{name}.py")
        shutil.copy2(c.notebook, src / "_static" / "downloads" / f"{name}.ipynb")
        downloads[name] = (f'<div class="gs-downloads">Download this chapter: '
                           f'<a href="_static/downloads/{name}.ipynb" download>{name}.ipynb</a> · '
                           f'<a href="_static/downloads/{name}.py" download>{name}.py</a> · '
                           f"or run it with <code>python -m gensynth_course run {c.number}</code>. "
                           f'In Colab, Kaggle or a JupyterHub, upload the notebook with the package, '
                           f'<a href="_static/downloads/{wheel.name}" download>{wheel.name}</a>, '
                           "and run its first code cell, which installs it.</div>")
    shutil.copytree(mathjax_dir(), src / "_static" / "mathjax",
                    ignore=shutil.ignore_patterns("unpacked", "test", "STIX-Web", "eot", "otf", "png"))
    (src / "_static" / "course.css").write_text(CSS)

    today = datetime.date.today().isoformat()
    footer = (f"Outputs produced at the <b>{budget}</b> budget on {today} "
              f"({platform.machine()}, {os.cpu_count()} CPU cores).")
    (src / "conf.py").write_text(CONF.format(
        title=book["title"], author=", ".join(book["authors"]), copyright=f"{today[:4]}, {', '.join(book['authors'])}",
        cache=str(BUILD / "jupyter-cache" / budget), execution="cache" if executed is None else "off",
        footer=footer, downloads=downloads))

    (src / "teachers.md").write_text(teachers_page())
    cards = "\n".join(_card(c) for c in chapters())
    toctree = "\n".join(f"{c.number}_{c.slug}" for c in ready)
    (src / "index.md").write_text(f"""# {book['title']}

**{book['subtitle']}.** {book['description']}

Each chapter is a notebook you can download and run; the pages below show the outputs of a real
run at the `{budget}` budget. Times are wall-clock minutes including training. Teaching with it?
The {{doc}}`teacher's guide <teachers>` has learning objectives, a plan, and how to share trained models.

<div class="gs-cards">
{cards}
</div>

```{{toctree}}
:maxdepth: 1
:caption: Chapters
:hidden:

{toctree}
```

```{{toctree}}
:maxdepth: 1
:caption: Teaching
:hidden:

teachers
```
""")
    return src


def build_wheel(folder: Path) -> Path:
    """The package's wheel, built into ``folder``: the book publishes it beside the chapters, and a
    chapter's first code cell installs it where the package is missing (a hosted notebook)."""
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(folder),
                           str(REPO_ROOT)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"Could not build the package's wheel for the book:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return next(folder.glob("gensynth_course-*.whl"))


def teachers_page() -> str:
    """The teacher's guide (``docs/teachers.md``) with its table of minutes per budget filled in
    from ``book.toml``, so that the page never disagrees with the manifest."""
    rows = "\n".join(f"| {c.number} · {c.title} | {c.minutes['quick']:g} | {c.minutes['standard']:g} | "
                     f"{c.minutes['full']:g} |" for c in chapters() if c.status == "ready")
    table = "| chapter | quick (CPU) | standard (CPU) | full (GPU) |\n|---|---|---|---|\n" + rows
    return (REPO_ROOT / "docs" / "teachers.md").read_text().replace("<!-- minutes -->", table)


def build(budget: str | None = None, executed: Path | None = None) -> Path:
    """Execute the ready chapters (cached) and render the site into ``_build/book/``; with
    ``executed``, render the chapters executed there instead (``make test`` does, after nbval)."""
    from sphinx.cmd.build import build_main

    budget = check_budget(budget)
    os.environ["GENSYNTH_BUDGET"] = budget      # the notebook kernels inherit these
    os.environ["GENSYNTH_HEADLESS"] = "1"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    src = write_sources(budget, executed)
    out = BUILD / "book"
    start = time.perf_counter()
    status = build_main(["-b", "html", "-q", "-W", "--keep-going", "-d", str(BUILD / "book-doctrees"), str(src), str(out)])
    if status != 0:
        raise SystemExit(f"The book build failed (status {status}); see the messages above.")
    print(f"book built at the {budget} budget in {time.perf_counter() - start:.0f} s: {out / 'index.html'}")
    return out
