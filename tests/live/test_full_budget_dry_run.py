"""The dry run of the full budget on the CPU: ``benchmarks/full_budget_gpu.py --tiny``, the very
script a GPU session runs, trains chapter 01 and every chapter's ``full`` configuration (two steps
each, on little data, in a throwaway cache) and measures what the GPU run will, at a tiny size. On
the CPU it times fp32 alone: bf16 autocast is about ten times slower there, and one bf16 training
step is checked by the unit tests (``tests/test_full_budget.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gensynth_course.course import REPO_ROOT
from gensynth_course.experiments import MODULES, chapter_module


def test_the_gpu_script_runs_end_to_end_at_a_tiny_size_on_the_cpu(tmp_path):
    """The dry run: ``benchmarks/full_budget_gpu.py --tiny --precisions fp32`` trains chapter 01 and
    every chapter's ``full`` configuration (two steps each, in a throwaway cache) and measures what
    the GPU run will, at a tiny size."""
    out = tmp_path / "full.json"
    env = {**os.environ, "GENSYNTH_DEVICE": "cpu", "GENSYNTH_HEADLESS": "1", "GENSYNTH_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "full_budget_gpu.py"), "--tiny", "--out", str(out),
                          "--precisions", "fp32"],
                         env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["tiny"] and result["device"].startswith("CPU")
    ddpm = result["chapter01"]
    assert len(ddpm["floor_draws"]) == 2 and ddpm["floor"] > 0
    for budget in ("standard", "full"):
        assert ddpm[budget]["fd_n"] == 64 and ddpm[budget]["fd_ci_low"] <= ddpm[budget]["fd"] <= ddpm[budget]["fd_ci_high"]
    assert isinstance(ddpm["full_beats_standard"], bool)
    planned = {(number, t.name) for number in MODULES for t in chapter_module(number).trainings("full")}
    rows = result["seconds_per_step"]
    assert {r["precision"] for r in rows} == {"fp32"} and set(result["training_minutes"]) == {"fp32"}
    assert {(r["chapter"], r["name"]) for r in rows} == planned
    assert all(r["steps"] == 2 and r["seconds_per_step"] > 0 and r["parameters"] > 0 for r in rows)
    assert [r["name"] for r in rows if not r["trained"]] == ["fashion_classifier", "unet", "fashion_classifier"]
    assert set(result["training_minutes"]["fp32"]) == set(MODULES)
    assert not list(Path(tmp_path / "cache").glob("models/*/*.pt")), "the dry run wrote into the learner's cache"
    with pytest.raises(SystemExit, match="outside results"):
        sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
        try:
            import full_budget_gpu
            full_budget_gpu.main(["--tiny"])
        finally:
            sys.path.remove(str(REPO_ROOT / "benchmarks"))
