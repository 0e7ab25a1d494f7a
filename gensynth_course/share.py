"""A model cache a class can share: one archive of the cached models and studies, with a manifest.

A teacher trains once (``python -m gensynth_course eval NN`` or the chapters themselves) and runs
``python -m gensynth_course cache export course-models.tar``; every learner runs
``python -m gensynth_course cache import course-models.tar`` and the chapters load instead of
training. The archive is a plain tar file:

* ``manifest.json`` -- for every file: its path, size and SHA-256, and for a model its chapter,
  name, budget (as the training session declared it), config hash, code hash, the torch version
  that wrote it, and the studies (``eval`` results) measured on it;
* ``models/<chapter>/<name>-<config hash>-<code hash>.pt`` -- the cache's own files;
* ``studies/<chapter>-<hash>.json`` -- the results ``eval NN`` kept for the notebooks.

Import trusts nothing in the archive: each file must be in the manifest, have its size and
checksum, and (for a model) load with ``torch.load(weights_only=True)`` as a checkpoint whose config
and code hashes are the ones in its name; anything else is rejected with the reason. A good local
file is never replaced, a damaged one is, and every write is atomic. What was imported is recorded
(``imported.json`` in the cache), so a chapter that loads such a model says where it came from.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import time
from pathlib import Path

import torch

from gensynth_course.cache import (PROVENANCE, CorruptCheckpoint, cache_dir, config_hash, imported, load_safe,
                                   write_atomic)

ARCHIVE_FORMAT = 1
MODEL_PATH = re.compile(r"models/(?P<chapter>[a-z0-9_]+)/(?P<name>[a-z0-9_]+)-(?P<config>[0-9a-f]{10})-(?P<code>[0-9a-f]{10})\.pt")
STUDY_PATH = re.compile(r"studies/[a-z0-9_]+-[0-9a-f]{10}\.json")


class ArchiveError(ValueError):
    """An archive that cannot be used at all (not a tar file, no manifest, another format)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checkpoint(data: bytes, relative: str) -> dict:
    """The checkpoint in ``data`` (weights only), checked against the hashes its path names."""
    match = MODEL_PATH.fullmatch(relative)
    payload = load_safe(relative, data)
    if config_hash(payload.get("config", {})) != match["config"] or payload.get("code_hash") != match["code"]:
        raise CorruptCheckpoint("its config or code hash is not the one its name says")
    return payload


def _entries(chapters: list[str] | None) -> list[tuple[str, Path]]:
    root = cache_dir()
    models = sorted((root / "models").glob("*/*.pt"))
    wanted = [m for m in models if MODEL_PATH.fullmatch(m.relative_to(root).as_posix())
              and (chapters is None or m.parent.name == "common" or m.parent.name[2:4] in chapters)]
    studies = [s for s in sorted((root / "studies").glob("*.json"))
               if chapters is None or s.name[2:4] in chapters]
    return [(p.relative_to(root).as_posix(), p) for p in wanted + studies]


def export_cache(archive: Path, chapters: list[str] | None = None) -> dict:
    """Write ``archive`` (a tar file) with every readable model and study of the cache, or those of
    ``chapters`` ("05", "06", …; the shared judges in ``common`` always go with them). Returns the
    manifest. Damaged cache files are left out and listed under ``left_out``."""
    archive = Path(archive)
    if chapters is not None and not all(re.fullmatch(r"\d\d", c) for c in chapters):
        raise ValueError(f"chapters must be two-digit chapter numbers such as 05, not {chapters!r}")
    manifest = {"format": ARCHIVE_FORMAT, "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "torch": str(torch.__version__), "models": [], "studies": [], "left_out": []}
    files, studies = [], {}
    for relative, path in _entries(chapters):
        data = path.read_bytes()
        if relative.startswith("studies/"):
            try:
                studies[relative] = json.loads(data).get("models", {})
            except (ValueError, AttributeError):
                manifest["left_out"].append(relative)
                continue
            manifest["studies"].append({"path": relative, "size": len(data), "sha256": _sha256(data)})
            files.append((relative, data))
            continue
        try:
            payload = _checkpoint(data, relative)
        except CorruptCheckpoint:
            manifest["left_out"].append(relative)
            continue
        match = MODEL_PATH.fullmatch(relative)
        manifest["models"].append({
            "path": relative, "chapter": match["chapter"], "name": match["name"],
            "budget": payload.get("budget"), "config_hash": match["config"], "code_hash": match["code"],
            "size": len(data), "sha256": _sha256(data), "torch": payload.get("torch")})
        files.append((relative, data))
    for entry in manifest["models"]:                 # the eval results measured on each model
        model_id = f"{entry['config_hash']}-{entry['code_hash']}"
        entry["studies"] = [s for s, models in studies.items() if model_id in models.values()]
    if not files:
        raise ValueError(f"the cache {cache_dir()} holds no models{' of those chapters' if chapters else ''} "
                         "to export; train them first (run the chapters, or `python -m gensynth_course eval NN`).")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for relative, data in [("manifest.json", json.dumps(manifest, indent=1).encode())] + files:
            info = tarfile.TarInfo(relative)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    write_atomic(buffer.getvalue(), archive)
    return manifest


def _read_archive(archive: Path) -> tuple[dict, dict[str, bytes], list[tuple[str, str]]]:
    """The manifest, the regular files by name, and the members refused outright."""
    if not Path(archive).is_file():
        raise ArchiveError(f"{archive} does not exist; give the path of a file written by `cache export`.")
    files, refused = {}, []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    refused.append((member.name, "not a plain file"))
                    continue
                files[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ArchiveError(f"{archive} is not a complete archive ({error}); export it again, or copy it again "
                           "if it was cut short.") from None
    try:
        manifest = json.loads(files.pop("manifest.json"))
    except (KeyError, ValueError):
        raise ArchiveError(f"{archive} has no readable manifest.json: it was not written by `cache export`.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"{archive} is an archive of format {manifest.get('format') if isinstance(manifest, dict) else '?'}, "
                           f"this package reads format {ARCHIVE_FORMAT}; export it again with this version.")
    return manifest, files, refused


def import_cache(archive: Path) -> dict:
    """Add the models and studies of ``archive`` (from :func:`export_cache`) to the cache. Returns
    ``added``, ``skipped`` (already there, or a good local copy kept) and ``rejected`` (path →
    reason) lists; nothing rejected is written."""
    manifest, files, refused = _read_archive(Path(archive))
    root = cache_dir()
    report = {"added": [], "skipped": [], "rejected": dict(refused)}
    listed = {entry.get("path"): entry for entry in manifest.get("models", []) + manifest.get("studies", [])
              if isinstance(entry, dict)}
    for name in files:
        if name not in listed:
            report["rejected"][name] = "not in the manifest"
    for relative, entry in listed.items():
        model = MODEL_PATH.fullmatch(str(relative)) is not None
        if not model and not STUDY_PATH.fullmatch(str(relative)):
            report["rejected"][str(relative)] = "not a path of the model cache"
            continue
        data = files.get(relative)
        if data is None:
            report["rejected"][relative] = "listed in the manifest but missing from the archive"
            continue
        if len(data) != entry.get("size") or _sha256(data) != entry.get("sha256"):
            report["rejected"][relative] = "its size or checksum differs from the manifest (damaged or altered)"
            continue
        try:
            _checkpoint(data, relative) if model else json.loads(data)
        except (CorruptCheckpoint, ValueError) as error:
            report["rejected"][relative] = str(error)
            continue
        target = root / relative
        if target.exists():
            local = target.read_bytes()
            if _sha256(local) == entry["sha256"]:
                report["skipped"].append(f"{relative} (already there)")
                continue
            try:
                load_safe(target) if model else json.loads(local)
                report["skipped"].append(f"{relative} (a good local copy differs; kept it)")
                continue
            except (CorruptCheckpoint, ValueError):
                pass                                  # a damaged local file: the archive's replaces it
        write_atomic(data, target)
        report["added"].append(relative)
    if report["added"]:
        provenance = imported()
        stamp = {"archive": Path(archive).name, "exported": manifest.get("created"),
                 "imported": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        provenance.update({relative: stamp for relative in report["added"]})
        write_atomic(json.dumps(provenance, indent=1).encode(), root / PROVENANCE)
    return report
