"""Command line: ``python -m gensynth_course list | run NN | eval NN | results | book | data``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gensynth_course.budget import BUDGETS, budget_from_environment
from gensynth_course.course import REPO_ROOT, chapter, chapters, load_manifest
from gensynth_course.errors import SettingError
from gensynth_course.experiments import MODULES


def cmd_list(args) -> None:
    book = load_manifest()["book"]
    print(f"{book['title']}: {book['subtitle']}\n")
    print(f"{'NN':<3} {'chapter':<62} {'quick':>6} {'standard':>9} {'full':>6}  status")
    for c in chapters():
        m = c.minutes
        print(f"{c.number:<3} {c.title[:62]:<62} {m['quick']:>5g}m {m['standard']:>8g}m {m['full']:>5g}m  {c.status}")
    print("\nquick and standard: minutes on a 2-core CPU; full: minutes on one GPU. "
          "Budget: GENSYNTH_BUDGET or --budget.")


def _ready(number: str):
    c = chapter(number)
    if c.status != "ready" or not c.source.exists():
        raise SystemExit(f"Chapter {c.number} ({c.title}) is planned but not written yet.")
    return c


def _kernels_import_this_package() -> None:
    """Put this clone first on the PYTHONPATH that kernels inherit. A kernel starts in ``chapters/``,
    where ``import gensynth_course`` finds whichever copy is installed, and an editable install may
    point at another clone: the notebook would then run other code than the command that started it."""
    others = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO_ROOT)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *others])


def _run_notebook(c, budget: str) -> tuple[float, list[str], Path]:
    """Execute chapter ``c`` headless at ``budget``: (seconds, the models it trained, the executed
    notebook's path, where nbclient has put each code cell's start and end times). A failing cell
    ends the command with where the notebook up to it was kept."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from tqdm.auto import tqdm

    os.environ["GENSYNTH_BUDGET"] = budget  # the kernel inherits both
    os.environ["GENSYNTH_HEADLESS"] = "1"
    _kernels_import_this_package()
    nb = jupytext.read(c.source)
    out_dir = REPO_ROOT / "_build" / "run"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{c.number}_{c.slug}.{budget}.ipynb"
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    before = _cached_models()
    bar = tqdm(total=code_cells, desc=f"chapter {c.number} ({budget})", unit="cell")
    client = NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(c.source.parent)}},
                            on_cell_executed=lambda **kw: bar.update(1) if kw["cell"].cell_type == "code" else None)
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        nbformat.write(nb, out)
        bar.close()
        raise SystemExit(f"Chapter {c.number} failed; the notebook up to the error is in {out}\n{error}")
    bar.close()
    seconds = time.perf_counter() - start
    nbformat.write(nb, out)
    # the kernel trains in its own process: what it trained is what the cache gained
    return seconds, _trained_since(before), out


def cmd_run(args) -> None:
    import nbformat

    c = _ready(args.chapter)
    # With --json, stdout carries the record alone (for pipes and files); the rest goes to stderr.
    with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
        before = _cached_models()
        seconds, trained, out = _run_notebook(c, args.budget)
        print(f"chapter {c.number} ran in {seconds:.0f} s at the {args.budget} budget: {out}")
        record = {**run_record(c.number, args.budget, seconds, trained),
                  "sections": section_seconds(nbformat.read(out, as_version=4)),
                  "training_seconds": _training_seconds(before)}
    if args.json:
        print(json.dumps(record))


def section_seconds(nb) -> list[dict]:
    """Where an executed notebook's time went: its code cells' run times (nbclient's ``execution``
    timestamps) summed under each ``## `` heading, in the notebook's order; the cells before the
    first heading count as the "introduction"."""
    import datetime

    def moment(stamp: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    sections = [{"section": "introduction", "seconds": 0.0}]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = next((line[3:].strip() for line in cell.source.splitlines() if line.startswith("## ")), None)
            if heading:
                sections.append({"section": heading, "seconds": 0.0})
        elif cell.cell_type == "code":
            timing = cell.get("metadata", {}).get("execution", {})
            if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
                sections[-1]["seconds"] += (moment(timing["shell.execute_reply"])
                                            - moment(timing["iopub.execute_input"])).total_seconds()
    return [{**section, "seconds": round(section["seconds"], 1)} for section in sections]


def _training_seconds(before: set[str]) -> list[dict]:
    """The training time of each model the cache gained since ``before`` (:func:`_cached_models`),
    from the info stored beside its weights: ``[{"model": "chapter/name", "seconds": s}]``."""
    from gensynth_course.cache import cache_dir, load_safe

    rows = []
    for file in sorted(_cached_models() - before):
        seconds = load_safe(cache_dir() / "models" / file).get("info", {}).get("seconds")
        rows.append({"model": file.split("-")[0], "seconds": None if seconds is None else round(float(seconds), 1)})
    return rows


def cmd_prepare(args) -> None:
    """Run every chapter (or those asked for) headless at the budget, so that the cache holds what
    they need; with ``--studies`` also each chapter's eval, whose studies the notebooks show."""
    selected = [c for c in chapters() if c.status == "ready" and c.source.exists()
                and (not args.chapters or c.number in args.chapters)]
    unknown = sorted(set(args.chapters or ()) - {c.number for c in selected})
    if unknown:
        raise SystemExit(f"no ready chapter {', '.join(unknown)}; `python -m gensynth_course list` shows them.")
    estimate = sum(c.minutes[args.budget] for c in selected)
    print(f"preparing {len(selected)} chapter(s) at the {args.budget} budget: about {estimate:g} minutes from an "
          "empty cache (book.toml), less for what is cached")
    for c in selected:
        print(f"\nchapter {c.number}: about {c.minutes[args.budget]:g} minutes from an empty cache")
        seconds, trained, _ = _run_notebook(c, args.budget)
        done = f"trained {', '.join(trained)}" if trained else "verified: every model it needs was in the cache"
        print(f"chapter {c.number}: {seconds / 60:.1f} minutes, {done}")
        if args.studies and c.number in MODULES:
            start = time.perf_counter()
            importlib.import_module(MODULES[c.number]).evaluate(args.budget)
            print(f"chapter {c.number}: its eval (studies) took {(time.perf_counter() - start) / 60:.1f} minutes")


def _cached_models() -> set[str]:
    """The finished model files in the cache, as ``chapter/file`` (a model trained again under a new
    config or code hash is a new file beside the old one)."""
    from gensynth_course.cache import cache_dir

    return {f"{path.parent.name}/{path.name}" for path in (cache_dir() / "models").glob("*/*.pt")
            if not path.name.endswith(".partial.pt")}


def _trained_since(before: set[str]) -> list[str]:
    """The models the cache gained since ``before`` (:func:`_cached_models`), as ``chapter/name`` (the
    names eval's ``trained`` uses), one per new file."""
    return sorted(file.split("-")[0] for file in _cached_models() - before)


def cmd_eval(args) -> None:
    from gensynth_course.cache import TRAINED

    c = _ready(args.chapter)
    if c.number not in MODULES:
        raise SystemExit(f"Chapter {c.number} has no measured results (nothing to evaluate).")
    os.environ["GENSYNTH_BUDGET"] = args.budget
    module = importlib.import_module(MODULES[c.number])
    # With --json, stdout carries the JSON alone (for pipes and files); the rest goes to stderr.
    with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
        start, before = time.perf_counter(), len(TRAINED)
        results = module.evaluate(args.budget)
        results = {**results, **run_record(c.number, args.budget, time.perf_counter() - start, TRAINED[before:])}
        print(f"\nChapter {c.number} results at the {args.budget} budget:")
        for key, value in results.items():
            if not isinstance(value, (list, dict)):
                print(f"  {key:<28} {value}")
    if args.json:
        print(json.dumps(results))


def run_record(chapter: str, budget: str, seconds: float, trained: list[str]) -> dict:
    """What every eval's JSON carries besides its numbers: where and how they were measured, and
    which models the run ``trained`` (the others came from the cache)."""
    import platform

    import torch

    from gensynth_course.device import pick_device

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"chapter": chapter, "budget": budget, "device": str(pick_device(verbose=False)),
            "seconds": round(seconds, 1), "torch": torch.__version__, "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "date": time.strftime("%Y-%m-%d", time.gmtime()), "trained": trained}


def cmd_results(args) -> None:
    from gensynth_course import results

    if args.check:
        if results.results_page().read_text() != results.render():
            raise SystemExit("RESULTS.md does not match results/*.json; run `python -m gensynth_course results` "
                             "to write it again (never edit it by hand).")
        print("RESULTS.md matches results/*.json.")
        return
    print(f"wrote {results.write()}")


def cmd_cache(args) -> None:
    from gensynth_course import share
    from gensynth_course.cache import cache_dir

    start = time.perf_counter()
    try:
        if args.action == "export":
            manifest = share.export_cache(Path(args.file), args.chapters)
            size = Path(args.file).stat().st_size / 2 ** 20
            print(f"wrote {args.file}: {len(manifest['models'])} models and {len(manifest['studies'])} studies from "
                  f"{cache_dir()}, {size:.1f} MiB, in {time.perf_counter() - start:.1f} s")
            for relative in manifest["left_out"]:
                print(f"  left out (damaged in the cache): {relative}")
            return
        report = share.import_cache(Path(args.file))
    except (share.ArchiveError, ValueError) as error:
        raise SystemExit(str(error)) from None
    print(f"imported {args.file} into {cache_dir()} in {time.perf_counter() - start:.1f} s: "
          f"{len(report['added'])} added, {len(report['skipped'])} skipped, {len(report['rejected'])} rejected")
    for relative in report["added"]:
        print(f"  added    {relative}")
    for line in report["skipped"]:
        print(f"  skipped  {line}")
    for relative, reason in report["rejected"].items():
        print(f"  rejected {relative}: {reason}")
    if report["rejected"]:
        raise SystemExit(f"{len(report['rejected'])} file(s) of {args.file} were rejected and not written; "
                         "ask for the archive again.")


def cmd_assignments(args) -> None:
    from gensynth_course import assignments

    start = time.perf_counter()
    selected = [chapter(number) for number in args.chapters] if args.chapters else None
    course = Path(args.out).resolve()
    ids = assignments.write_course(course, selected)
    print(f"wrote the nbgrader course {course} in {time.perf_counter() - start:.1f} s:")
    for aid in ids:
        print(f"  {aid}: source/{aid}/{aid}.ipynb (instructor: solutions, hidden tests) -> "
              f"release/{aid}/{aid}.ipynb (students)")
    print("To grade: put each student's notebook at submitted/<student>/<id>/<id>.ipynb, then run "
          f"`nbgrader autograde <id>` and `nbgrader export` in {course}.")


def cmd_book(args) -> None:
    from gensynth_course.book import build

    build(args.budget)


def cmd_data(args) -> None:
    from gensynth_course.data.fashion_mnist import locate_fashion_mnist

    where, folder = locate_fashion_mnist(download=not args.no_download)
    print(f"Fashion-MNIST found and verified ({where}): {folder}")


def _budget_name(text: str) -> str:
    """``--budget`` as GENSYNTH_BUDGET reads it: case and surrounding spaces do not matter."""
    return text.strip().lower()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gensynth_course", description="The gensynth-course companion.")
    try:
        default_budget = budget_from_environment()
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the chapters, their status and time per budget").set_defaults(func=cmd_list)
    for name, func, text in (("run", cmd_run, "execute a chapter headless; the executed notebook goes to _build/run/"),
                             ("eval", cmd_eval, "train or load what a chapter trains and print its measured results")):
        p = sub.add_parser(name, help=text)
        p.add_argument("chapter", help="chapter number, e.g. 01")
        p.add_argument("--budget", type=_budget_name, choices=BUDGETS, default=default_budget)
        p.add_argument("--json", action="store_true",
                       help="print the results (eval) or the run's record (run: its time and what it trained) as "
                            "one line of JSON on stdout, everything else on stderr")
        p.set_defaults(func=func)
    p = sub.add_parser("results", help="write RESULTS.md from the eval JSON committed under results/")
    p.add_argument("--check", action="store_true", help="only check that RESULTS.md is up to date")
    p.set_defaults(func=cmd_results)
    p = sub.add_parser("prepare", help="run the chapters headless so that the cache holds what they need")
    p.add_argument("--budget", type=_budget_name, choices=BUDGETS, default=default_budget)
    p.add_argument("--chapters", nargs="+", metavar="NN", help="only these chapters")
    p.add_argument("--studies", action="store_true", help="also run each chapter's eval (the multi-seed studies)")
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("cache", help="share the model cache: export it to one archive, or import one")
    p.add_argument("action", choices=("export", "import"))
    p.add_argument("file", help="the archive (a .tar file) to write or to read")
    p.add_argument("--chapters", nargs="+", metavar="NN",
                   help="export only these chapters' models and studies (the shared judges always go with them)")
    p.set_defaults(func=cmd_cache)
    p = sub.add_parser("assignments", help="make nbgrader assignments of the chapters' exercises (needs a clone)")
    p.add_argument("--out", default=str(REPO_ROOT / "_build" / "assignments"), help="the nbgrader course folder")
    p.add_argument("--chapters", nargs="+", metavar="NN", help="only these chapters")
    p.set_defaults(func=cmd_assignments)
    p = sub.add_parser("book", help="execute the chapters (cached) and render the book into _build/book/")
    p.add_argument("--budget", type=_budget_name, choices=BUDGETS, default=default_budget)
    p.set_defaults(func=cmd_book)
    p = sub.add_parser("data", help="find Fashion-MNIST, downloading it where the network allows")
    p.add_argument("--no-download", action="store_true")
    p.set_defaults(func=cmd_data)
    args = parser.parse_args(argv)
    # Training interrupted by Ctrl-C then says to run the command again, not the notebook cell.
    os.environ["GENSYNTH_CLI"] = "1"
    try:
        args.func(args)
    except KeyboardInterrupt as interrupt:
        message = str(interrupt) or ("interrupted. Run the same command again to continue: trained models "
                                     "are cached, and training resumes from its last checkpoint.")
        print(f"{parser.prog}: {message}", file=sys.stderr)
        raise SystemExit(130) from None
    except SettingError as error:                   # a GENSYNTH_* setting that cannot be used: its one line
        raise SystemExit(f"{parser.prog}: error: {error}") from None
    except FileNotFoundError as error:              # Fashion-MNIST missing or damaged: one message
        from gensynth_course.data.fashion_mnist import \
            FashionMNISTNotFound  # imported here, so that `list` need not load torch

        if not isinstance(error, FashionMNISTNotFound):
            raise                                   # a bug: keep its traceback
        raise SystemExit(f"{parser.prog}: {error}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
