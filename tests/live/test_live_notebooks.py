"""Every chapter as a learner runs it: JupyterLab in headless Chromium, Run All, then one interaction.

nbval (``make test``) runs the chapters headless, where no widget is ever built; this test opens
each chapter in a real JupyterLab at the quick budget (``GENSYNTH_LIVE_BUDGET=standard`` tries the
standard one, best with its models already in the cache), with live widgets, and checks that

* Run All finishes with no error output in any cell,
* every widget output is rendered (no "Error displaying widget"),
* each control does something: moving a slider, or typing a prompt and clicking its button,
  changes the picture below it,
* saving the notebook leaves the repository clean: jupytext rewrites the paired ``.py``
  byte for byte, and the outputs JupyterLab saves are stripped again by the repository's git
  filter (installed by the set-up).

It runs after nbval in ``make test``, so the models are in the cache and each chapter takes
seconds to a minute. It needs Debian's Chromium (``make book-deps``); without it, it is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from gensynth_course.course import REPO_ROOT, chapters

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
READY = [c for c in chapters() if c.status == "ready"]
LIVE_BUDGET = os.environ.get("GENSYNTH_LIVE_BUDGET", "quick").strip().lower()
RUN_ALL_TIMEOUT_S = {"quick": 600}.get(LIVE_BUDGET, 3600)
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"

# JupyterLab settings for the test: no news or update checks (there is no network), and every
# cell in the DOM (no windowing), so that the test can read all prompts and outputs; the notebook's
# own kernel starts without asking.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                       "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                   "autoStartDefaultKernel": True},
}


@dataclass(frozen=True)
class Control:
    """One interaction: ``kind`` is "slider" (press → on the n-th slider of the n-th interactive)
    or "prompt" (type ``text`` into the interactive's text box and click its button)."""
    kind: str
    interactive: int = 0
    text: str = ""


# The controls of each chapter, in the order they appear (chapters without one are not listed).
CONTROLS = {
    "01": [Control("slider")],
    "03": [Control("slider")],
    "04": [Control("prompt", text="a small red square on the right")],
    "05": [Control("prompt", text="a small red square on the right")],
    "06": [Control("prompt", text="a small red square on the right")],
    "07": [Control("slider", interactive=0), Control("prompt", interactive=1, text="a small red square on the right")],
    "08": [Control("prompt", text="a small red square on the right")],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    root = tmp_path_factory.mktemp("chapters")
    for path in (REPO_ROOT / "chapters").iterdir():
        if path.is_file():
            shutil.copy2(path, root / path.name)
    settings = tmp_path_factory.mktemp("lab-settings")
    for name, value in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("GENSYNTH_HEADLESS", "MPLBACKEND")}
    env.update(GENSYNTH_BUDGET=LIVE_BUDGET, JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path_factory.mktemp("lab-workspaces")))
    log = open(root.parent / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
         "--ServerApp.open_browser=False"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError(f"JupyterLab did not start: see {log.name}")
            time.sleep(0.5)
    yield {"base": base, "token": token, "root": root}
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def _api(lab, method: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{lab['base']}{path}?token={lab['token']}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


def _image_hash(locator) -> str | None:
    """A hash of the images shown inside ``locator`` (None when there are none)."""
    sources = [img.get_attribute("src") or "" for img in locator.locator("img").all()]
    return hashlib.sha256("".join(sources).encode()).hexdigest() if sources else None


def _wait_for_new_image(locator, before: str | None, what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = _image_hash(locator)
        if now is not None and now != before:
            return
        time.sleep(0.5)
    raise AssertionError(f"{what}: the picture did not change within {timeout_s:.0f} s")


def _run_all(page, panel, attempts: int = 3) -> None:
    # "Restart Kernel and Run All Cells…", as a learner starting afresh would: JupyterLab waits for
    # the restarted kernel before it sends the cells (a plain Run All right after the page opens
    # can reach a kernel connection that is still settling, and then nothing runs). A kernel that
    # does not come up (seen once in a while on a loaded 2-core machine) gets another restart.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(1, attempts + 1):
        page.keyboard.press("Escape")
        page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel and Run All Cells").first.click()
        page.locator(".jp-Dialog .jp-mod-accept").first.click()
        try:      # the first cell only imports: when it has not run, the kernel is not answering
            page.wait_for_function(
                """(panel) => /\\[\\d+\\]/.test(panel.querySelector('.jp-CodeCell .jp-InputArea-prompt').textContent)""",
                arg=panel.element_handle(), timeout=90_000, polling=1000)
            break
        except PlaywrightTimeout:
            if attempt == attempts:
                raise
    # Done when no cell waits ([*]) and either every code cell has run or one failed (Run All
    # stops at the first error).
    page.wait_for_function(
        """(panel) => {
            const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent);
            if (prompts.some(p => p.includes('*'))) return false;
            const failed = [...panel.querySelectorAll(STDERR)].some(e => e.textContent.includes('Traceback'));
            return failed || prompts.every(p => /\\[\\d+\\]/.test(p));
        }""".replace("STDERR", json.dumps(STDERR)),
        arg=panel.element_handle(), timeout=RUN_ALL_TIMEOUT_S * 1000, polling=1000)


def _check_control(page, panel, control: Control, chapter: str) -> None:
    box = panel.locator(".widget-interact").nth(control.interactive)
    box.scroll_into_view_if_needed()
    output = box.locator(".widget-output")
    before = _image_hash(output)
    if control.kind == "slider":
        handle = box.locator(".noUi-handle").first
        handle.focus()
        page.keyboard.press("ArrowRight")
        if box.locator("button").count():      # an ask_box: the button runs the function
            box.locator("button").first.click()
    else:
        box.locator("input[type=text]").first.fill(control.text)
        box.locator("button").first.click()
    _wait_for_new_image(output, before, f"chapter {chapter}: {control.kind} control {control.interactive}")
    errors = output.locator("[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    assert not any("Traceback" in e for e in errors), f"chapter {chapter}: the control raised:\n{errors}"
    time.sleep(1)                                        # let a second (duplicate) figure arrive, if any
    cell = box.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' jp-CodeCell ')]").first
    sources = [img.get_attribute("src") for img in cell.locator("img").all()]   # inside the widget or not
    shown = [hashlib.sha256((s or "").encode()).hexdigest()[:8] for s in sources]
    assert len(shown) == len(set(shown)), (f"chapter {chapter}: the control drew the same picture twice "
                                           f"(the cell's images, in order: {shown})")


def _parses(data: bytes) -> bool:
    try:
        json.loads(data)
        return True
    except ValueError:
        return False


def _read_settled(path: Path, done, timeout_s: float = 30) -> bytes:
    """``path``'s bytes once ``done(bytes)`` holds, or what is there after ``timeout_s``.

    The server's "atomic" save truncates a file and then writes it in place, so a read right after
    a save can meet the notebook or its paired ``.py`` empty or cut short.
    """
    deadline = time.monotonic() + timeout_s
    while not done(found := path.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def _clean_with_git_filter(notebook: bytes) -> bytes | None:
    """``notebook`` as the repository's nbstripout filter would store it (None when not installed)."""
    try:
        command = subprocess.run(["git", "-C", str(REPO_ROOT), "config", "filter.nbstripout.clean"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return subprocess.run(command, shell=True, input=notebook, capture_output=True, check=True, cwd=REPO_ROOT).stdout


@pytest.mark.parametrize("chapter", READY, ids=lambda c: c.number)
def test_chapter_runs_live(lab, browser, chapter):
    name = f"{chapter.number}_{chapter.slug}"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # The notebook's kernel is started first, as the server's session for it, so that the page
        # connects to that one kernel (opening a fresh workspace can otherwise start two).
        _api(lab, "POST", "/api/sessions", {"path": f"{name}.ipynb", "name": f"{name}.ipynb", "type": "notebook",
                                            "kernel": {"name": "python3"}})
        page.goto(f"{lab['base']}/lab/workspaces/{name}/tree/{name}.ipynb?token={lab['token']}")
        panel = page.locator(".jp-NotebookPanel").first
        panel.wait_for(timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        _run_all(page, panel)

        errors = [e for e in panel.locator(STDERR).all_inner_texts()
                  if "Traceback" in e or re.search(r"^\w*(Error|Exception)\b", e, re.M)]
        assert not errors, f"chapter {chapter.number}: error output after Run All:\n{errors[0][-3000:]}"
        prompts = panel.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        assert all(p.strip().startswith("[") and p.strip()[1:-2].isdigit() for p in prompts), \
            f"chapter {chapter.number}: not every cell ran: {prompts}"

        widget_outputs = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.widget-view+json']")
        for i in range(widget_outputs.count()):
            text = widget_outputs.nth(i).inner_text()
            assert "Error displaying widget" not in text and "Loading widget" not in text, \
                f"chapter {chapter.number}: widget {i} is not rendered: {text[:200]!r}"
            assert widget_outputs.nth(i).locator(".jupyter-widgets").count() >= 1, \
                f"chapter {chapter.number}: widget output {i} is empty"

        controls = CONTROLS.get(chapter.number, [])
        assert panel.locator(".widget-interact").count() == len({c.interactive for c in controls}), \
            f"chapter {chapter.number}: the controls changed; update CONTROLS in this test"
        for control in controls:
            _check_control(page, panel, control, chapter.number)

        page.keyboard.press("Control+s")
        page.wait_for_function("(panel) => !panel.querySelector('.jp-mod-dirty') && "
                               "!document.querySelector('.jp-DocumentWidget.jp-mod-dirty')",
                               arg=panel.element_handle(), timeout=30_000)
        saved = _read_settled(lab["root"] / f"{name}.ipynb", _parses)
        stored = json.loads(saved)                       # still incomplete after the wait: fails here
        failed = [o for c in stored["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
                  if o["output_type"] == "error"]
        assert not failed, f"chapter {chapter.number}: {failed[0]['ename']}: {failed[0]['evalue']}"
        source = chapter.source.read_bytes()
        assert _read_settled(lab["root"] / f"{name}.py", source.__eq__) == source, \
            f"saving {name}.ipynb in JupyterLab rewrote {name}.py (kernelspec or jupytext header?)"
        cleaned = _clean_with_git_filter(saved)
        if cleaned is not None:
            assert cleaned == chapter.notebook.read_bytes(), \
                f"the git filter does not strip {name}.ipynb back to the committed file"
    except Exception:
        shots = REPO_ROOT / "_build" / "live"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shots / f"{name}.png", full_page=True)
        raise
    finally:
        page.close()
        for session in _api(lab, "GET", "/api/sessions"):
            _api(lab, "DELETE", f"/api/sessions/{session['id']}")
