"""The course's processes share the CPU cores while they compute (gensynth_course.threads)."""

import os
import time

import pytest
import torch

from gensynth_course import threads
from gensynth_course.progress import progress_bar


@pytest.fixture
def busy_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "busy_folder", lambda: tmp_path)
    monkeypatch.delenv("GENSYNTH_SHARE_CORES", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield tmp_path
    torch.set_num_threads(before)


def test_alone_keeps_every_core_and_marks_itself_busy(busy_folder):
    bar = progress_bar(total=2, disable=True)
    assert torch.get_num_threads() == 4
    assert (busy_folder / str(os.getpid())).exists()
    bar.close()
    assert not (busy_folder / str(os.getpid())).exists()


def test_another_busy_process_halves_the_threads_and_they_come_back(busy_folder):
    (busy_folder / "999999").touch()                      # another notebook, training now
    bar = progress_bar(total=2, disable=True)
    assert torch.get_num_threads() == 2
    bar.close()
    assert torch.get_num_threads() == 4


def test_a_marker_not_refreshed_no_longer_counts(busy_folder):
    stale = busy_folder / "999999"
    stale.touch()
    old = time.time() - threads.STALE_S - 1
    os.utime(stale, (old, old))
    with progress_bar(total=1, disable=True):
        assert torch.get_num_threads() == 4
    assert not stale.exists()


def test_sharing_can_be_switched_off(busy_folder, monkeypatch):
    monkeypatch.setenv("GENSYNTH_SHARE_CORES", "0")
    (busy_folder / "999999").touch()
    for _ in progress_bar(range(2), disable=True):
        assert torch.get_num_threads() == 4
    assert not (busy_folder / str(os.getpid())).exists()
