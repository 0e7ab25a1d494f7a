"""The rendered book: built at the quick budget, then read in headless Chromium.

In ``make test`` the book is rendered from the chapters that nbval has just executed
(``_build/run/``, written by the ``nbval_record`` plugin), so nothing runs twice; run alone, where
those are missing or older than the chapters, the build executes the chapters itself. It needs a
local MathJax and the browser tests Debian's Chromium (``make book-deps`` installs both on Debian
as root; `.ci/run` does too); where either is missing the tests say so and are skipped.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from importlib.metadata import version

import pytest

from gensynth_course.course import chapters

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
READY = [c for c in chapters() if c.status == "ready"]


@pytest.fixture(scope="module")
def site():
    from gensynth_course.book import BUILD, build, executed_is_fresh, mathjax_dir

    try:
        mathjax_dir()
    except SystemExit as missing:
        pytest.skip(str(missing))
    executed = BUILD / "run"
    fresh = all(executed_is_fresh(c, "quick", executed) for c in READY)
    return build("quick", executed if fresh else None)


def test_every_ready_chapter_has_a_page(site):
    index = (site / "index.html").read_text()
    for c in chapters():
        assert c.title.split(":")[0] in index
        if c.status == "ready":
            page = site / f"{c.number}_{c.slug}.html"
            assert page.exists(), f"no page for chapter {c.number}"
            assert f"_static/downloads/{c.number}_{c.slug}.ipynb" in page.read_text()
            assert (site / "_static" / "downloads" / f"{c.number}_{c.slug}.py").exists()
            wheel = f"gensynth_course-{version('gensynth-course')}-py3-none-any.whl"      # what its set-up cell installs
            assert f"_static/downloads/{wheel}" in page.read_text()
            assert (site / "_static" / "downloads" / wheel).exists()
    assert "quick</b> budget" in index  # the footer says which run produced the outputs
    assert (site / "_static" / "mathjax" / "MathJax.js").exists()
    assert "cdn.jsdelivr" not in index and "cdnjs" not in index


def test_the_teachers_guide_is_linked_and_has_the_manifests_minutes(site):
    from gensynth_course.book import teachers_page

    assert 'href="teachers.html"' in (site / "index.html").read_text()
    page = (site / "teachers.html").read_text()
    assert "For teachers" in page and "Before the class: prepare and share the models" in page
    assert "minutes --" not in page                          # the marker was replaced by the table
    for c in READY:
        assert f"{c.number} · " in page
    assert "<!-- minutes -->" not in teachers_page() and f"| {c.minutes['standard']:g} |" in teachers_page()


@pytest.fixture(scope="module")
def browser_page(site):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page()
        page.base = f"http://127.0.0.1:{server.server_address[1]}/"
        yield page
        browser.close()
    server.shutdown()


def test_landing_page_has_a_card_per_chapter(browser_page):
    page = browser_page
    page.goto(page.base + "index.html")
    assert page.locator(".gs-card").count() == len(chapters())
    assert page.locator(".gs-card a[href$='.html']").count() == len(READY)


@pytest.mark.parametrize("chapter", READY, ids=lambda c: c.number)
def test_chapter_page_renders(browser_page, chapter):
    page = browser_page
    page.goto(page.base + f"{chapter.number}_{chapter.slug}.html")
    article = page.locator("article")
    text = article.inner_text()
    assert "Traceback (most recent call last)" not in text
    assert page.locator(".output.error, .output.traceback, .cell_output .stderr:has-text('Error')").count() == 0
    assert article.locator("img").count() >= 1
    if page.locator(".math").count():
        page.wait_for_function("document.querySelectorAll('.MathJax_CHTML, .MathJax, mjx-container').length > 0",
                               timeout=20_000)
    assert "$$" not in text and not re.search(r"\\\\(frac|mathcal|sqrt)\{", text)


def test_search_finds_a_chapter(browser_page):
    page = browser_page
    page.goto(page.base + "search.html?q=denoising")
    page.wait_for_selector("#search-results ul li a, ul.search li a", timeout=20_000)
    hrefs = [a.get_attribute("href") for a in page.locator("#search-results a, ul.search a").all()]
    assert any("01_ddpm" in (h or "") for h in hrefs)


def test_previous_and_next_links(browser_page):
    if len(READY) < 2:
        pytest.skip("needs two chapters")
    page = browser_page
    first, second = (f"{c.number}_{c.slug}.html" for c in READY[:2])
    page.goto(page.base + first)
    page.locator("a.right-next").first.click()
    page.wait_for_url(re.compile(second))
    page.locator("a.left-prev").first.click()
    page.wait_for_url(re.compile(first))
