"""The command line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gensynth_course import device
from gensynth_course.__main__ import main
from gensynth_course.course import REPO_ROOT


def test_list_shows_every_chapter_with_times(capsys):
    main(["list"])
    out = capsys.readouterr().out
    for number in ("00", "01", "07"):
        assert f"\n{number} " in out
    assert "quick" in out and "standard" in out


def test_unknown_and_planned_chapters_get_a_clear_message(monkeypatch):
    import dataclasses

    from gensynth_course import __main__ as cli

    with pytest.raises(SystemExit, match="no chapter '42'"):
        main(["eval", "42"])
    planned = dataclasses.replace(cli.chapter("07"), status="planned")      # every chapter is written today
    monkeypatch.setattr(cli, "chapter", lambda number: planned)
    with pytest.raises(SystemExit, match="planned but not written"):
        main(["run", "07"])


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "gensynth_course", "list"], capture_output=True, text=True, check=True)
    assert "DDPM" in out.stdout


def test_eval_03_prints_the_measured_sweep_as_json(capsys, monkeypatch, quick_evals):
    # The eval itself ran once for the session (conftest's quick_evals, in the course's cache: the
    # quick models chapter 03's notebook loads); here the command line prints what it returns.
    import json

    from gensynth_course.experiments import chapter_module

    measured, _ = quick_evals.get("03")
    capsys.readouterr()                        # what the eval printed, if it ran just now
    monkeypatch.setattr(chapter_module("03"), "evaluate", lambda budget: measured if budget == "quick" else None)
    main(["eval", "03", "--budget", "quick", "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)          # stdout holds the JSON alone
    assert "results at the quick budget" in captured.err
    from gensynth_course.results import RECORD

    measures = [key for key in measured if key not in RECORD]
    assert measures and {key: result[key] for key in measures} == json.loads(json.dumps({k: measured[k] for k in measures}))
    assert result["chapter"] == "03" and result["budget"] == "quick" and result["trained"] == []
    for key in ("cfg_best_accuracy", "classifier_guidance_best_accuracy", "diversity_monotone",
                "cfg_accuracy", "cfg_fd", "cfg_diversity", "cg_accuracy", "cg_fd", "cg_diversity", "seconds"):
        assert key in result
    assert len(result["cfg_accuracy"]) == len(result["cfg_scales"]) and len(result["cg_fd"]) == len(result["cg_scales"])
    assert 0 <= result["cfg_best_accuracy"]["value"] <= 1 and isinstance(result["diversity_monotone"], bool)
    for name in ("cfg", "classifier_guidance"):
        for key in ("best_accuracy", "accuracy_gain", "diversity_change"):
            figure = result[f"{name}_{key}"]
            assert figure["ci_low"] <= figure["value"] <= figure["ci_high"], (name, key)
        assert result[f"{name}_lowest_fd"]["fd_n"] == result["samples_per_scale"]


def test_prepare_runs_the_chapters_and_says_what_it_trained(capsys, monkeypatch):
    # Chapter 00 at the quick budget: the notebook runs headless and needs no trained model.
    import json

    monkeypatch.setenv("GENSYNTH_BUDGET", "quick")           # main() sets both; restored after the test
    monkeypatch.setenv("GENSYNTH_HEADLESS", "1")
    monkeypatch.setenv("GENSYNTH_CLI", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/elsewhere", str(REPO_ROOT)]))
    main(["prepare", "--budget", "quick", "--chapters", "00"])
    out = capsys.readouterr().out
    assert "preparing 1 chapter(s) at the quick budget: about" in out
    assert "chapter 00: " in out and ("verified: every model it needs was in the cache" in out or "trained " in out)
    with pytest.raises(SystemExit, match="no ready chapter 42"):
        main(["prepare", "--chapters", "42"])
    monkeypatch.setattr(device, "_chosen", None)               # as in a new process: the device is announced …
    main(["run", "00", "--budget", "quick", "--json"])
    record = json.loads(capsys.readouterr().out)              # … on stderr: stdout holds the run's record alone
    assert record["chapter"] == "00" and record["budget"] == "quick" and record["seconds"] > 0
    assert isinstance(record["trained"], list)
    # The kernel imported this clone's package, whatever the installed copy points at.
    assert os.environ["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/elsewhere"]
    kernel = subprocess.run([sys.executable, "-c", "import gensynth_course; print(gensynth_course.__file__)"],
                            cwd=REPO_ROOT / "chapters", capture_output=True, text=True, check=True)
    assert Path(kernel.stdout.strip()).parent == REPO_ROOT / "gensynth_course"
