"""`make lab` as a learner types it: it starts JupyterLab on the chapters, as root (a container,
the Debian set-up) and as an ordinary user, and prints the address to open."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

from gensynth_course.course import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_lab(prefix: list[str], env: dict) -> None:
    """Run ``make lab`` (behind ``prefix``), wait for the address it prints, open it, stop it."""
    port = _free_port()
    process = subprocess.Popen([*prefix, "make", "--no-print-directory", "lab", f"PORT={port}"], cwd=REPO_ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen, told, token = [], False, None
    try:
        deadline = time.monotonic() + 180
        while token is None and time.monotonic() < deadline and process.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            told = told or f"http://127.0.0.1:{port}/lab" in line
            match = re.search(rf"http://(?:127\.0\.0\.1|localhost):{port}/lab\?token=(\w+)", line)
            token = match.group(1) if match else None
        output = "".join(seen)
        assert told, f"make lab did not print the address to open:\n{output}"
        assert token, f"JupyterLab did not start (or printed no token):\n{output}"
        while True:                       # the address is logged a moment before the server listens
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=30) as reply:
                    assert reply.status == 200
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, \
                    f"JupyterLab stopped or does not answer:\n{output}"
                time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _lab_env(home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "GENSYNTH_HEADLESS"))}
    env.update(HOME=home, JUPYTER_RUNTIME_DIR=os.path.join(home, "runtime"), BROWSER="true")
    return env


def test_make_lab_starts_and_prints_the_address():
    """As whoever runs the tests: root in CI and containers, where Jupyter needs --allow-root."""
    with tempfile.TemporaryDirectory() as home:
        _start_lab([], _lab_env(home))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to switch to another user")
def test_make_lab_as_an_ordinary_user_does_not_ask_for_root():
    """An ordinary user gets the same command without --allow-root. (This machine's Python lives
    in root's home, so another user can only dry-run the recipe here, not start it.)"""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    with tempfile.TemporaryDirectory() as home:
        os.chmod(home, 0o777)
        dry = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "make", "-n", "lab"],
                             cwd=REPO_ROOT, env=_lab_env(home), capture_output=True, text=True, check=True).stdout
    lab = [line for line in dry.splitlines() if "jupyter lab" in line and not line.startswith("echo")]
    assert lab and "--allow-root" not in lab[-1], dry
    assert "open http://127.0.0.1:8888/lab" in dry, dry
