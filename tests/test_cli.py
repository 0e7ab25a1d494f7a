"""The command line."""

import subprocess
import sys

import pytest

from gensynth_course.__main__ import main


def test_list_shows_every_chapter_with_times(capsys):
    main(["list"])
    out = capsys.readouterr().out
    for number in ("00", "01", "07"):
        assert f"\n{number} " in out
    assert "quick" in out and "standard" in out


def test_unknown_and_planned_chapters_get_a_clear_message():
    with pytest.raises(SystemExit, match="no chapter '42'"):
        main(["eval", "42"])
    with pytest.raises(SystemExit, match="planned but not written"):
        main(["run", "07"])


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "gensynth_course", "list"], capture_output=True, text=True, check=True)
    assert "DDPM" in out.stdout
