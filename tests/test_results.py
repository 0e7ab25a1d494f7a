"""RESULTS.md is generated from the committed eval JSON, never typed: regenerating it changes nothing."""

import json

import pytest

from gensynth_course import results
from gensynth_course.__main__ import main


def test_results_md_is_what_the_committed_json_says():
    assert results.results_page().read_text() == results.render(), (
        "RESULTS.md does not match results/*.json: run `python -m gensynth_course results`.")


def test_every_committed_result_is_a_standard_eval_json():
    files = sorted(results.results_dir().glob("*.json"))
    assert files, "no results/NN.json committed"
    for path in files:
        data = results.load(path.stem)
        assert data["budget"] == "standard", f"{path.name} was measured at the {data['budget']} budget"


def test_rows_flatten_nested_results_and_print_intervals():
    rows = dict(results._rows({
        "chapter": "01", "fd": 526.9, "acc": 0.9, "acc_ci_low": 0.88, "acc_ci_high": 0.92,
        "sweep": {"cfg": [{"s": 1.0}, {"s": 3.0}]}, "scales": [0.0, 1.0], "gain": {"value": 0.1, "ci_low": 0.05, "ci_high": 0.2},
        "seeds": {"mean": 0.5, "seeds": [0.5], "ci_low": None, "ci_high": None},
        "three": {"mean": 2.0, "seeds": [1.0, 2.0, 3.0], "ci_low": -0.48, "ci_high": 4.48}, "holds": True, "missing": None}))
    assert rows == {"fd": "526.9", "acc": "0.9 [0.88, 0.92]", "sweep.cfg[0].s": "1", "sweep.cfg[1].s": "3",
                    "scales": "0, 1", "gain": "0.1 [0.05, 0.2]", "seeds": "0.5 (no interval)",
                    "three": "2 [-0.48, 4.48] (mean of 3 seeds: 1, 2, 3)", "holds": "yes",
                    "missing": "not measured"}


def test_a_damaged_result_is_refused_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "results_dir", lambda: tmp_path)
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)
    (tmp_path / "02.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"02.json is not valid JSON .*eval 02 --budget standard --json > 02.json"):
        results.load("02")
    (tmp_path / "02.json").write_text(json.dumps({"fd": 1.0}))
    with pytest.raises(ValueError, match="lacks .*'chapter'.*it is not the JSON of `eval 02`"):
        results.load("02")
    assert results.load("03") is None


def test_the_command_checks_and_writes(tmp_path, monkeypatch, capsys):
    main(["results", "--check"])
    assert "matches" in capsys.readouterr().out
    page = tmp_path / "RESULTS.md"
    page.write_text("typed by hand\n")
    monkeypatch.setattr(results, "results_page", lambda: page)
    with pytest.raises(SystemExit, match="does not match"):
        main(["results", "--check"])
    main(["results"])
    assert page.read_text() == results.render()


def test_a_notebook_runs_record_stands_beside_its_chapters_results(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "results_dir", lambda: tmp_path)
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)
    record = {"budget": "standard", "device": "cpu", "torch": "2.14.1", "commit": "abc1234",
              "machine": "x86_64, 2 CPU cores", "date": "2026-12-03"}
    (tmp_path / "06.json").write_text(json.dumps({"chapter": "06", "seconds": 60.0, "fd": 1.0, **record}))
    assert "The notebook" not in results.render()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "06.json").write_text(json.dumps({"chapter": "06", "seconds": 750.0, **record,
                                                          "trained": ["ch06_xmc_gan/gan_all"]}))
    page = results.render()
    assert ("The notebook, `python -m gensynth_course run 06 --budget standard`, ran in 12.5 minutes on 2026-12-03 "
            "at commit `abc1234`") in page and "training `ch06_xmc_gan/gan_all` (the rest loaded" in page
    (tmp_path / "runs" / "06.json").write_text(json.dumps({"chapter": "05", **record}))
    with pytest.raises(ValueError, match="it is not the JSON of `run 06`; write it again with the run command"):
        results.render()


def test_a_run_records_what_the_cache_gained(tmp_path, monkeypatch):
    from gensynth_course.__main__ import _cached_models, _trained_since

    monkeypatch.setenv("GENSYNTH_CACHE", str(tmp_path))
    assert _cached_models() == set()
    folder = tmp_path / "models" / "ch06_xmc_gan"
    folder.mkdir(parents=True)
    (folder / "gan_all-0123456789-abcdefabcd.pt").write_bytes(b"")      # trained before, under older code
    before = _cached_models()
    assert _trained_since(before) == []
    (folder / "gan_all-0123456789-fedcbafedc.pt").write_bytes(b"")      # the same model trained again: new code hash
    (folder / "gan_baseline-0123456789-fedcbafedc.partial.pt").write_bytes(b"")    # unfinished: not trained
    assert _trained_since(before) == ["ch06_xmc_gan/gan_all"]
    assert _trained_since(set()) == ["ch06_xmc_gan/gan_all", "ch06_xmc_gan/gan_all"]


def test_the_full_budget_section_renders_the_gpu_run_and_refuses_a_tiny_one(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "results_dir", lambda: tmp_path)
    assert "Not measured yet." in results.render()
    budget_row = {"fd": 4.0, "fd_ci_low": 3.8, "fd_ci_high": 4.2, "ratio": 2.0, "ratio_ci_low": 1.9, "ratio_ci_high": 2.1,
                  "kid": 0.0012, "kid_std": 0.0003, "train_steps": 9000, "train_seconds": 360.0, "sampler": "ddim, 100 steps"}
    full = {"tiny": False, "date": "2027-01-05 10:00 UTC", "device": "NVIDIA H200", "torch": "2.14.1", "seconds": 530.0,
            "time_steps": 100,
            "chapter01": {"n": 2048, "floor": 2.0, "floor_draws": [1.9, 2.1], "fastai_ratio": 1.95,
                          "standard": dict(budget_row, fd=6.0, fd_ci_low=5.7, fd_ci_high=6.3), "full": budget_row,
                          "full_beats_standard": True},
            "seconds_per_step": [{"chapter": "01", "name": "unet", "precision": p, "parameters": 1234, "trained": True,
                                  "planned_steps": 30_000, "seconds_per_step": s} for p, s in (("fp32", 0.02), ("bf16", 0.015))],
            "training_minutes": {"fp32": {"01": 10.0}, "bf16": {"01": 7.5}}}
    (tmp_path / "full.json").write_text(json.dumps(full))
    page = results.render()
    assert "NVIDIA H200" in page and "| `full` | 9000 steps, 360 s | ddim, 100 steps | 4 [3.8, 4.2] | 2 [1.9, 2.1] |" in page
    assert "| 01 | `unet` | 1,234 | 30,000 | 0.02 | 0.015 |" in page and "| 01 | 10.0 | 7.5 |" in page
    assert "Full beats standard (95 % intervals apart): yes." in page
    (tmp_path / "full.json").write_text(json.dumps(dict(full, tiny=True)))
    with pytest.raises(ValueError, match="--tiny check run"):
        results.render()


def test_the_packages_manifest_is_the_repositorys_book_toml():
    """In a clone, ``gensynth_course/book.toml`` is a link to the repository's ``book.toml``, so
    the two can never disagree (an editor or ``sed -i`` that replaces the link with a copy fails here)."""
    from gensynth_course.course import REPO_ROOT, manifest_path

    shipped = manifest_path()
    assert shipped.is_symlink() and shipped.resolve() == (REPO_ROOT / "book.toml").resolve(), (
        f"{shipped} must be a link to ../book.toml: run `ln -sf ../book.toml {shipped}`")


def test_book_tomls_standard_minutes_are_the_recorded_notebook_runs_rounded_up():
    """A chapter's standard minutes in book.toml come from its cold notebook run (results/runs/NN.json)."""
    import math

    from gensynth_course.course import chapters

    recorded = {c.number: results.load(c.number, "run") for c in chapters()}
    measured = {number: math.ceil(run["seconds"] / 60) for number, run in recorded.items() if run is not None}
    assert measured, "no results/runs/NN.json committed"
    stated = {c.number: c.minutes["standard"] for c in chapters() if c.number in measured}
    assert stated == measured, ("book.toml's standard minutes differ from the recorded runs (rounded up): "
                                f"book.toml {stated}, results/runs {measured}")


def test_a_runs_profile_sums_its_cells_under_each_heading_and_renders(tmp_path, monkeypatch):
    import nbformat

    from gensynth_course.__main__ import section_seconds

    def timed(source, start, end):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["execution"] = {"iopub.execute_input": f"2026-12-07T10:00:{start:02d}.000000Z",
                                      "shell.execute_reply": f"2026-12-07T10:00:{end:02d}.500000Z"}
        return cell

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 09 · A chapter"), timed("import torch", 0, 1),
        nbformat.v4.new_markdown_cell("## 1 · Training\nText."), timed("train()", 1, 31), timed("plot()", 31, 33),
        nbformat.v4.new_markdown_cell("### A subsection counts in its section"), timed("more()", 33, 40),
        nbformat.v4.new_markdown_cell("## 2 · Sampling"), nbformat.v4.new_code_cell("never ran()"), timed("s()", 40, 45)])
    assert section_seconds(nb) == [{"section": "introduction", "seconds": 1.5}, {"section": "1 · Training", "seconds": 40.5},
                                   {"section": "2 · Sampling", "seconds": 5.5}]
    monkeypatch.setattr(results, "results_dir", lambda: tmp_path)
    (tmp_path / "runs").mkdir()
    record = {"budget": "standard", "device": "cpu", "torch": "2.14.1", "machine": "x86_64, 2 CPU cores"}
    (tmp_path / "runs" / "02.json").write_text(json.dumps({"chapter": "02", "seconds": 120.0, "commit": "abc1234",
                                                          "date": "2026-12-07", **record}))
    (tmp_path / "runs" / "08.json").write_text(json.dumps(
        {"chapter": "08", "seconds": 600.0, "commit": "def5678", "date": "2026-12-07", **record,
         "sections": section_seconds(nb), "training_seconds": [{"model": "ch08_semantic_synthesis/prior", "seconds": 333.4}]}))
    page = results.profile_section()
    assert "2 chapters, 12.0 minutes in all" in page
    assert "| 02 | 2.0 | 2026-12-07, `abc1234` | — | not profiled: recorded before the profile (run it again) |" in page
    assert ("| 08 | 10.0 | 2026-12-07, `def5678` | `ch08_semantic_synthesis/prior` 333.4 s | 1 · Training: 40 s; "
            "2 · Sampling: 6 s; introduction: 2 s |") in page
