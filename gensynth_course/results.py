"""RESULTS.md, generated: every chapter's measured numbers, from its eval's JSON.

Each measurement is committed as ``results/NN.json``, written by
``python -m gensynth_course eval NN --budget standard --json > results/NN.json``, and the time of a
notebook run as ``results/runs/NN.json``, written by
``python -m gensynth_course run NN --budget standard --json > results/runs/NN.json``.
The full budget's GPU run is ``results/full.json``, written by ``benchmarks/full_budget_gpu.py``.
``python -m gensynth_course results`` rewrites RESULTS.md from those files alone, and a test fails
when the committed page and the JSON disagree, so no figure in it is ever typed by hand.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from gensynth_course.course import REPO_ROOT, chapters

# What :func:`gensynth_course.__main__.run_record` adds to every eval's JSON.
RECORD = ("chapter", "budget", "device", "seconds", "torch", "commit", "machine", "date", "trained")
INTERVAL = ("_ci_low", "_ci_high")


def results_dir() -> Path:
    return REPO_ROOT / "results"


def results_page() -> Path:
    return REPO_ROOT / "RESULTS.md"


def load(number: str, kind: str = "eval") -> dict | None:
    """``results/NN.json`` (``kind`` "eval") or ``results/runs/NN.json`` (``kind`` "run": a notebook
    run's record); None when the chapter has not been measured; a file that is not the command's
    JSON is refused with what to do."""
    if kind not in ("eval", "run"):
        raise ValueError(f"kind must be 'eval' or 'run', not {kind!r}")
    path = (results_dir() if kind == "eval" else results_dir() / "runs") / f"{number}.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); write it again with `python -m gensynth_course "
                         f"{kind} {number} --budget standard --json > {path.relative_to(REPO_ROOT)}`.") from None
    missing = [key for key in RECORD if key not in data and key != "trained"]   # "trained": since 2026-12-02
    if missing or data.get("chapter") != number:
        raise ValueError(f"{path} lacks {missing or ['the right chapter']}: it is not the JSON of `{kind} {number}`; "
                         f"write it again with the {kind} command.")
    return data


def _number(value) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "not measured"}[value]
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _is_interval(value) -> bool:
    return isinstance(value, dict) and {"ci_low", "ci_high"} <= set(value) and ("value" in value or "mean" in value)


def _interval(value: float, low, high) -> str:
    if low is None or high is None:
        return f"{_number(value)} (no interval)"
    return f"{_number(value)} [{_number(low)}, {_number(high)}]"


def _rows(results: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(measure, value) rows: nested dicts and lists flattened into dotted names; a figure with
    ``<key>_ci_low``/``<key>_ci_high`` beside it, or a dict from the stats helper, as
    ``value [low, high]``."""
    rows = []
    for key, value in results.items():
        if not prefix and key in RECORD or key.endswith(INTERVAL):
            continue
        name = f"{prefix}{key}"
        if f"{key}_ci_low" in results:
            rows.append((name, _interval(value, results[f"{key}_ci_low"], results.get(f"{key}_ci_high"))))
        elif _is_interval(value):
            text = _interval(value.get("value", value.get("mean")), value["ci_low"], value["ci_high"])
            if isinstance(value.get("seeds"), list) and len(value["seeds"]) > 1:
                text += f" (mean of {len(value['seeds'])} seeds: {', '.join(_number(v) for v in value['seeds'])})"
            rows.append((name, text))
        elif isinstance(value, dict):
            rows += _rows(value, f"{name}.")
        elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            rows += _rows({f"[{i}]": v for i, v in enumerate(value)}, name)
        elif isinstance(value, list):
            rows.append((name, ", ".join(_number(v) for v in value)))
        else:
            rows.append((name, _number(value)))
    return rows


def _trained(trained: list[str] | None) -> str:
    if trained is None:
        return "training whatever the model cache lacked (not recorded which), and measuring"
    if not trained:
        return "every model loaded from the cache, so measuring only"
    return f"training {', '.join(f'`{m}`' for m in trained)} (the rest loaded from the cache), and measuring"


def _section(chapter, results: dict | None) -> str:
    head = f"## Chapter {chapter.number} · {chapter.title}\n\n*Reproduces:* {chapter.reproduces}\n\n"
    command = f"`python -m gensynth_course eval {chapter.number} --budget standard --json > results/{chapter.number}.json`"
    if results is None:
        return head + f"Not measured yet: {command}.\n"
    head += (f"Measured by {command} on {results['date']} at commit `{results['commit']}`: {results['machine']}, "
             f"device {results['device']}, torch {results['torch']}, budget `{results['budget']}`; "
             f"{results['seconds'] / 60:.1f} minutes, {_trained(results.get('trained'))}.\n\n")
    run = load(chapter.number, "run")
    if run is not None:
        head += (f"The notebook, `python -m gensynth_course run {chapter.number} --budget {run['budget']}`, ran in "
                 f"{run['seconds'] / 60:.1f} minutes on {run['date']} at commit `{run['commit']}` ({run['machine']}, "
                 f"device {run['device']}), {_trained(run.get('trained'))}.\n\n")
    table = "| measure | value |\n|---|---|\n" + "".join(f"| `{name}` | {value} |\n" for name, value in _rows(results))
    return head + table


def _full_section(full: dict | None) -> str:
    head = "## The full budget on a GPU\n\n"
    if full is None:
        return head + ("Not measured yet. `python benchmarks/full_budget_gpu.py` "
                       "measures it in one run meant to fit in about 9 minutes (chapter 01 at `full` with FD-FMNIST, KID and the "
                       "real-vs-real floor at N = 2,048, and the seconds per step of every chapter's `full` "
                       "configuration in fp32 and bf16) into `results/full.json`; `make test` dry-runs every `full` "
                       "configuration and that script on the CPU.\n")
    ddpm = full["chapter01"]
    head += (f"Measured by `python benchmarks/full_budget_gpu.py` on {full['date']}: {full['device']}, torch "
             f"{full['torch']}, {full['seconds'] / 60:.1f} minutes. Chapter 01 at N = {ddpm['n']:,} samples, FD-FMNIST "
             f"against the real-vs-real floor ({ddpm['floor']:.3g}, the mean of {len(ddpm['floor_draws'])} draws); "
             f"fast.ai's course22p2 reports a ratio of {ddpm['fastai_ratio']} in its own feature space.\n\n"
             "| budget | training | sampler | FD-FMNIST | FD / floor | KID |\n|---|---|---|---|---|---|\n")
    for budget in ("standard", "full"):
        r = ddpm[budget]
        head += (f"| `{budget}` | {r['train_steps']} steps, {r['train_seconds']:.0f} s | {r['sampler']} | "
                 f"{_interval(r['fd'], r['fd_ci_low'], r['fd_ci_high'])} | "
                 f"{_interval(r['ratio'], r['ratio_ci_low'], r['ratio_ci_high'])} | {r['kid']:.3g} ± {r['kid_std']:.2g} |\n")
    head += f"\nFull beats standard (95 % intervals apart): {_number(ddpm['full_beats_standard'])}.\n\n"
    head += (f"Seconds per training step of every chapter's `full` configuration ({full['time_steps']} steps each, "
             "warm-up included), and each chapter's training minutes at `full` from them:\n\n"
             "| chapter | model | parameters | planned steps | s/step fp32 | s/step bf16 |\n|---|---|---|---|---|---|\n")
    by_key = {(r["chapter"], r["name"], r["precision"]): r for r in full["seconds_per_step"]}
    for r in (r for r in full["seconds_per_step"] if r["precision"] == "fp32"):
        bf16 = by_key.get((r["chapter"], r["name"], "bf16"), {}).get("seconds_per_step")
        head += (f"| {r['chapter']} | `{r['name']}` | {r['parameters']:,} | {r['planned_steps']:,} | "
                 f"{r['seconds_per_step']:.4g} | {_number(bf16)} |\n")
    minutes = full["training_minutes"]
    head += "\n| chapter | training minutes fp32 | training minutes bf16 |\n|---|---|---|\n"
    head += "".join(f"| {c} | {minutes['fp32'][c]} | {minutes.get('bf16', {}).get(c)} |\n" for c in minutes["fp32"])
    return head


def load_full() -> dict | None:
    """``results/full.json`` (the GPU run of ``benchmarks/full_budget_gpu.py``), or None; a tiny
    check run is refused."""
    path = results_dir() / "full.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("tiny"):
        raise ValueError(f"{path} holds a --tiny check run, not results; run the script again without --tiny.")
    return data


def profile_section() -> str:
    """Where the course's minutes go, from the notebook runs (``results/runs/NN.json``): each
    chapter's cold run, the training seconds of each model it trained, and its costliest sections
    (its code cells' seconds summed under each heading). A record older than the profile has only
    its total."""
    runs = [(c, load(c.number, "run")) for c in chapters()]
    runs = [(c, run) for c, run in runs if run is not None]
    head = "## Where the minutes go\n\n"
    if not runs:
        return head + "No notebook run is recorded yet: `python -m gensynth_course run NN --budget standard --json`.\n"
    total = sum(run["seconds"] for _, run in runs)
    head += (f"Each chapter's notebook run from an empty cache of its own models (`python -m gensynth_course run NN "
             f"--budget standard --json > results/runs/NN.json`; {len(runs)} chapters, {total / 60:.1f} minutes in "
             "all). Training: the seconds each model it trained took (the rest of the run samples, measures and "
             "draws). Sections: the three costliest, by the seconds of their code cells.\n\n"
             "| chapter | minutes | date, commit | training | costliest sections |\n|---|---|---|---|---|\n")
    for c, run in runs:
        if "sections" not in run:
            training, sections = "—", "not profiled: recorded before the profile (run it again)"
        else:
            training = "; ".join(f"`{row['model']}` {_number(row['seconds'])} s" for row in run["training_seconds"])
            costliest = sorted(run["sections"], key=lambda row: -row["seconds"])[:3]
            sections = "; ".join(f"{row['section']}: {row['seconds']:.0f} s" for row in costliest)
        head += (f"| {c.number} | {run['seconds'] / 60:.1f} | {run['date']}, `{run['commit']}` | {training or 'none'} "
                 f"| {sections} |\n")
    return head


def render() -> str:
    """The whole of RESULTS.md, from ``results/*.json``."""
    intro = ("# Results\n\n"
             "Generated by `python -m gensynth_course results` from the eval JSON committed under `results/`: "
             "do not edit by hand. Each chapter's notebook explains its measures; a figure followed by "
             "`[low, high]` carries its 95 % interval (bootstrap over samples, or a t-interval over training "
             "seeds). FD-FMNIST is a Fréchet distance in the feature space of the course's own Fashion-MNIST "
             "classifier: it is not FID and is comparable only with itself.\n")
    sections = [_section(c, load(c.number)) for c in chapters() if c.number != "00"]
    return "\n".join([intro, *sections, profile_section(), _full_section(load_full())])


def write(path: Path | None = None) -> Path:
    """Write RESULTS.md atomically (a temporary file, then a rename)."""
    path = path or results_page()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".RESULTS-", suffix=".md")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(render())
    os.replace(tmp, path)
    return path
