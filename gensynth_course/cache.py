"""A cache of trained models, so each model is trained once.

A model is stored under ``<cache>/models/<chapter>/<name>-<config hash>-<code hash>.pt``.
The config hash covers every hyper-parameter; the code hash covers the source the model is trained
with (:func:`code_hash`): the modules that define its layers, the module of its training function,
the modules that function names, the loop, and every module of the core, data, models or
evaluation that any of these imports, directly or not (:func:`hashed_files`). Changing either
trains a new model instead of silently loading an old one; an edit to another chapter's module, to
a display-only module (progress bars, previews), or to a comment, a docstring or a blank line,
keeps the cached weights, and so does another Python version. Files are
written atomically (a temporary file, then ``os.replace``) and read with
``torch.load(weights_only=True)``: a cache file can never run code. A file that cannot be read is
reported, moved aside and the model trained again.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import functools
import hashlib
import inspect
import io
import json
import os
import tempfile
import tokenize
import types
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from gensynth_course.device import resolve
from gensynth_course.errors import SettingError

FORMAT = 1
PROVENANCE = "imported.json"      # cache path → the archive it came from (gensynth_course.share)


class CorruptCheckpoint(RuntimeError):
    """A cache or checkpoint file exists but cannot be read back."""


class NotCached(LookupError):
    """Under :func:`cached_only`, a model that is not in the cache (so it would have been trained)."""


_CACHED_ONLY = contextvars.ContextVar("cached_only", default=False)


@contextlib.contextmanager
def cached_only():
    """Inside this block :func:`load_or_train` loads what the cache holds and trains nothing: a model
    it would train raises :class:`NotCached` instead. A notebook uses it for a model it shows only
    when someone has already trained it (chapter 06's baseline, trained by ``eval 06``)."""
    token = _CACHED_ONLY.set(True)
    try:
        yield
    finally:
        _CACHED_ONLY.reset(token)


# Every model this process trained (rather than loaded), as "chapter/name": an eval's JSON says
# what its minutes include.
TRAINED: list[str] = []


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gensynth_course"


def cache_dir() -> Path:
    """``$GENSYNTH_CACHE``, else ``$XDG_CACHE_HOME/gensynth_course``, else ``~/.cache/gensynth_course``;
    checked before anything is written there (:func:`check_cache_dir`)."""
    env = os.environ.get("GENSYNTH_CACHE", "").strip()
    path = Path(env).expanduser() if env else _default_cache_dir()
    check_cache_dir(str(path), env)
    return path


@functools.lru_cache(maxsize=None)
def check_cache_dir(path: str, env: str = "") -> None:
    """Make sure the cache can live at ``path``: a folder this user can write, or one that can be
    created (every part of the path that exists is a folder, and the deepest one is writable).
    Otherwise raise :class:`~gensynth_course.errors.SettingError` with one line naming
    ``GENSYNTH_CACHE`` (``env``: its value, '' when unset), what is wrong and what to do. Nothing
    is created or written here."""
    where = f"GENSYNTH_CACHE={env!r}" if env else f"the model cache {path} (GENSYNTH_CACHE is unset)"
    fix = (f"set GENSYNTH_CACHE to a folder you can write (it is created if missing), or unset it to use "
           f"{_default_cache_dir()}" if env else "set GENSYNTH_CACHE to a folder you can write")
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SettingError(f"{where} cannot hold the model cache: {existing} is a file, not a folder; {fix}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SettingError(f"{where} cannot hold the model cache: {existing} is not writable by this user; {fix}.")


def config_hash(config: dict) -> str:
    """A short, stable hash of a JSON-able config."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@functools.lru_cache(maxsize=None)
def _module_code(path: str) -> str:
    """A module's code without its comments, docstrings, blank lines and trailing spaces: what
    changes behaviour. It is cut out of the source text by position (the tokenizer's comments, the
    parser's docstrings), so one file gives one text under every Python version. An AST dump would
    not: its format changes between versions, and a cache shared between two of them (a laptop's
    and a hosted notebook's) would train every model again."""
    source = Path(path).read_text()
    lines = source.split("\n")

    def column(row: int, utf8_offset: int) -> int:          # the parser counts bytes, not characters
        return len(lines[row - 1].encode()[:utf8_offset].decode())

    cuts = []
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            doc = body[0]
            cuts.append((doc.lineno, column(doc.lineno, doc.col_offset),
                         doc.end_lineno, column(doc.end_lineno, doc.end_col_offset)))
    cuts += [(*token.start, *token.end) for token in tokenize.generate_tokens(io.StringIO(source).readline)
             if token.type == tokenize.COMMENT]
    for first, start, last, end in sorted(cuts, reverse=True):     # from the end: earlier cuts keep their place
        lines[first - 1:last] = [lines[first - 1][:start] + lines[last - 1][end:]]
    return "\n".join(line.rstrip() for line in lines if line.strip())


def _package_file(obj) -> str | None:
    module = inspect.getmodule(obj)
    if module is None or not module.__name__.startswith("gensynth_course"):
        return None
    return getattr(module, "__file__", None)


# Modules that only show or pace training (live previews, progress bars, core sharing, image grids):
# they change no weight, and a notebook's training, which passes a preview, and the command line's,
# which does not, must give a model the same hash and share its file.
DISPLAY_ONLY = ("gensynth_course.notebook", "gensynth_course.progress", "gensynth_course.threads",
                "gensynth_course.images")
# The layers whose modules a hash follows through imports: the core (the package's own top-level
# modules), data, models and evaluation. The experiments are not followed: one chapter's module
# does not change another's models.
FOLLOWED_LAYERS = ("data", "models", "evaluation")


def _referenced_file(obj) -> str | None:
    """The package module a referenced object comes from: a module itself, a function or class,
    or an instance of one of the package's classes (a scheduler, a tokenizer); not the display
    helpers of :data:`DISPLAY_ONLY`."""
    if isinstance(obj, types.ModuleType):
        name, path = obj.__name__, getattr(obj, "__file__", None)      # a built-in module has none
    else:
        module = inspect.getmodule(obj if callable(obj) else type(obj))
        name, path = getattr(module, "__name__", ""), getattr(module, "__file__", None)
    return path if name.startswith("gensynth_course") and name not in DISPLAY_ONLY else None


def _called_modules(function: Callable) -> set[str]:
    """The package modules a function refers to, by global name or through the variables it closes
    over; likewise for the functions defined inside it and the functions it closes over (a condition
    passed in from another chapter's module is read too)."""
    files, seen, todo = set(), set(), [function]
    while todo:
        fn = todo.pop()
        if id(fn) in seen or not hasattr(fn, "__code__"):
            continue
        seen.add(id(fn))
        codes, referenced = [fn.__code__], []
        while codes:
            code = codes.pop()
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
            referenced += [fn.__globals__[name] for name in code.co_names if name in fn.__globals__]
        for cell in fn.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:                                  # a cell not filled yet
                continue
            referenced.append(value)
            if isinstance(value, types.FunctionType):          # e.g. a condition passed in: read it too
                todo.append(value)
        files |= {path for path in map(_referenced_file, referenced) if path}
    return files


def _package_root() -> Path:
    return Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def _imported_files(path: str) -> frozenset[str]:
    """The package modules that the module at ``path`` imports anywhere in its text (at the top or
    inside a function), as files: ``from gensynth_course.data import shapes`` names data/shapes.py,
    ``from gensynth_course.data.shapes import caption`` the same file."""
    root = _package_root()
    package = ".".join(Path(path).resolve().relative_to(root.parent).with_suffix("").parts)
    if not Path(path).name == "__init__.py":
        package = package.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                                      # a relative import
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    files = set()
    for name in names:
        parts = name.split(".")
        if parts[0] != root.name:
            continue
        candidate = root.joinpath(*parts[1:])
        for file in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if file.is_file():
                files.add(str(file))
                break
    return frozenset(files)


def _followed(path: str) -> bool:
    """Whether a hash follows the imports into ``path``: a module of the core, data, models or
    evaluation, and not one of :data:`DISPLAY_ONLY`."""
    relative = Path(path).resolve().relative_to(_package_root())
    name = ".".join(("gensynth_course", *relative.with_suffix("").parts)).removesuffix(".__init__")
    return name not in DISPLAY_ONLY and (len(relative.parts) == 1 or relative.parts[0] in FOLLOWED_LAYERS)


def hashed_files(model: nn.Module, train: Callable) -> list[str]:
    """The package modules (paths relative to the package) whose code makes a model what it is: the
    modules defining the classes of all its layers, the module of ``train``, the modules ``train``
    refers to and the training loop, and every module of the core, data, models or evaluation that
    any of these imports, directly or not (display-only modules aside)."""
    from gensynth_course import train as loop

    files = {_package_file(type(m)) for m in model.modules()} | {_package_file(train), loop.__file__}
    files = {str(Path(f).resolve()) for f in files | _called_modules(train) if f}
    todo = list(files)
    while todo:
        for imported_file in _imported_files(todo.pop()):
            if imported_file not in files and _followed(imported_file):
                files.add(imported_file)
                todo.append(imported_file)
    root = _package_root()
    return sorted(str(Path(f).relative_to(root)) for f in files)


def code_hash(model: nn.Module, train: Callable) -> str:
    """A short hash of the code a model is trained with (:func:`hashed_files`), without comments,
    docstrings and blank lines."""
    root = _package_root()
    digest = hashlib.sha256()
    for path in hashed_files(model, train):
        digest.update(path.encode() + b"\0" + _module_code(str(root / path)).encode() + b"\0")
    return digest.hexdigest()[:10]


def model_path(chapter: str, name: str, config: dict, code: str) -> Path:
    """Where the model ``name`` of ``chapter`` with this config and code hash is cached. The budget is
    not part of the name: it only chooses the config (two budgets with one config share a model)."""
    return cache_dir() / "models" / chapter / f"{name}-{config_hash(config)}-{code}.pt"


def study_path(chapter: str, models: dict[str, str]) -> Path:
    """Where the study measured on ``models`` (name → the ``model_id`` that :func:`load_or_train`
    puts in each model's info) is kept: a study of other models, or of older code, is another file."""
    return cache_dir() / "studies" / f"{chapter}-{config_hash(models)}.json"


def save_study(chapter: str, results: dict, models: dict[str, str]) -> Path:
    """Keep an eval's results (a multi-seed study, an experiment) beside the models it measured, so
    that the chapter's notebook, which trains only some of them, can show them; ``models`` names the
    notebook's own models by their ``model_id``. Written atomically."""
    path = study_path(chapter, models)
    write_atomic(json.dumps({"models": models, "results": results}, indent=1).encode("utf-8"), path)
    return path


def load_study(chapter: str, models: dict[str, str]) -> dict | None:
    """The results :func:`save_study` kept for these very ``models``, or None when there are none
    or the file cannot be read."""
    try:
        saved = json.loads(study_path(chapter, models).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("models") != models or not isinstance(saved.get("results"), dict):
        return None
    return saved["results"]


def write_atomic(data: bytes, path: Path) -> None:
    """Write ``data`` so that ``path`` is either the old or the new file (a temporary file, then
    ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(payload: dict, path: Path) -> None:
    """Write ``payload`` with ``torch.save`` so that ``path`` is either the old or the new file."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(buffer.getvalue(), path)


def load_safe(path: Path, data: bytes | None = None) -> dict:
    """Load a file written by :func:`save_atomic` (or, with ``data``, those bytes under the name
    ``path``, as an archive holds them); raise :class:`CorruptCheckpoint` if unreadable."""
    try:
        payload = torch.load(path if data is None else io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        raise CorruptCheckpoint(f"{path} cannot be read ({type(error).__name__}: {error})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CorruptCheckpoint(f"{path} is not a gensynth_course checkpoint (format {FORMAT})")
    return payload


def imported() -> dict:
    """Cache path (relative, e.g. ``models/ch06_xmc_gan/gan_all-….pt``) → the archive it was
    imported from, for the files ``cache import`` added (:mod:`gensynth_course.share`)."""
    try:
        record = json.loads((cache_dir() / PROVENANCE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def set_aside(path: Path, reason: str) -> None:
    """Move a damaged file out of the way (kept as ``*.corrupt`` for inspection) and say so."""
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    print(f"gensynth_course: {reason}\n  moved it to {aside} and will train the model again.")


def load_or_train(
    chapter: str,
    name: str,
    config: dict,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module, Path], dict],
    retrain: bool = False,
    device: torch.device | str | None = None,
) -> tuple[nn.Module, dict]:
    """Return ``(model, info)``, loading the cached model or training and caching it; the model is
    on ``device`` (the course's device unless given).

    ``build()`` makes a fresh model from ``config``, seeded with ``config["seed"]`` (0 if absent);
    ``train(model, checkpoint_path)`` trains it in place (it may save progress to
    ``checkpoint_path`` and resume from it after an interruption) and returns a JSON-able ``info``
    dict (losses, timings) stored beside the weights; the returned ``info`` also holds the model's
    ``code_hash`` and ``model_id`` (``<config hash>-<code hash>``), so that a measurement can name
    the exact network it used.
    """
    device = resolve(device)
    # The initial weights come from the config's seed, whatever ran before, so that training from
    # an empty cache gives the same model every time; the caller's random stream is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.get("seed", 0))
        model = build()
    code = code_hash(model, train)
    path = model_path(chapter, name, config, code)
    identity = {"code_hash": code, "model_id": f"{config_hash(config)}-{code}"}
    if path.exists() and not retrain:
        try:
            payload = load_safe(path)
            model.load_state_dict(payload["state_dict"])
            origin = imported().get(path.relative_to(cache_dir()).as_posix())
            source = f" (imported from {origin['archive']} on {origin['imported']})" if isinstance(origin, dict) else ""
            print(f"gensynth_course: loaded {name} from the cache{source}: {path}")
            return model.to(device).eval(), {**payload["info"], **identity}
        except (CorruptCheckpoint, RuntimeError, KeyError) as error:
            set_aside(path, f"the cached {name} is damaged: {error}")
    if _CACHED_ONLY.get():
        raise NotCached(f"{chapter}/{name} is not in the cache ({path}); train it (or run the eval that does) first.")
    info = train(model, path.with_suffix(".partial.pt"))
    save_atomic({"format": FORMAT, "name": name, "config": config, "code_hash": code,
                 "state_dict": model.state_dict(), "info": info, "torch": str(torch.__version__),
                 "budget": os.environ.get("GENSYNTH_BUDGET") or None}, path)
    path.with_suffix(".partial.pt").unlink(missing_ok=True)
    TRAINED.append(f"{chapter}/{name}")
    return model.to(device).eval(), {**info, **identity}
