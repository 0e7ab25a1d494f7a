"""Fashion-MNIST, offline first.

Lookup order:

1. ``$GENSYNTH_DATA`` (the four ``*-ubyte`` files, gzipped or not, in that folder or in
   ``FashionMNIST/raw`` below it);
2. the torchvision root, ``<cache>/data/FashionMNIST/raw`` (where a download lands);
3. Debian's ``dataset-fashion-mnist`` package, ``/usr/share/datasets/fashion-mnist``;
4. a download through torchvision, where the network allows.

The first copy whose four files match Fashion-MNIST's published MD5 checksums (of the uncompressed
files, so a recompressed ``.gz`` passes too) is used; a damaged copy is skipped with a note. Only
damaged copies: :class:`FashionMNISTDamaged` names the damaged files and how to replace them.
Nowhere at all: :class:`FashionMNISTNotFound` says the three ways to get it.
Images come back as ``uint8`` tensors of shape (N, 1, 28, 28); :func:`to_model_range`
maps them to [-1, 1], the range the diffusion models work in.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gensynth_course.cache import cache_dir
from gensynth_course.train import step_seed

CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
# MD5 of each file's uncompressed content, as published with Fashion-MNIST (torchvision lists the
# same); the Debian package's .gz files are recompressed, so the .gz checksums would not fit them.
CHECKSUMS = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
GENSYNTH_DATA, TORCHVISION_ROOT, DEBIAN = "GENSYNTH_DATA", "torchvision root", "Debian package dataset-fashion-mnist"
_REPAIR = {  # what to do about a damaged copy, by where it is
    GENSYNTH_DATA: "replace the damaged files with good copies, or point GENSYNTH_DATA to another folder (or unset it)",
    TORCHVISION_ROOT: "delete the damaged files and run `python -m gensynth_course data` to download them again",
    DEBIAN: "reinstall the package: sudo apt-get install --reinstall dataset-fashion-mnist",
}


class FashionMNISTNotFound(FileNotFoundError):
    """Raised when Fashion-MNIST is in none of the places we look and cannot be downloaded."""


class FashionMNISTDamaged(FashionMNISTNotFound):
    """Raised when every copy of Fashion-MNIST found is damaged (truncated, corrupt or altered);
    the message names the damaged files and what to do."""


@dataclass
class ImageDataset:
    """Images (N, 1, 28, 28) as uint8 and labels (N,) as int64, held in memory."""

    images: torch.Tensor
    labels: torch.Tensor
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def batch_fn(self, batch_size: int, seed: int, drop_last: bool = True):
        """A function ``batch(k, generator) -> (x in [-1, 1], y)``: batch k of one shuffled epoch
        after another. Epoch e's order comes from ``(seed, e)`` alone, so batch k is the same
        whether training got there in one go or resumed after an interruption."""
        n = len(self)
        per_epoch = n // batch_size if drop_last else -(-n // batch_size)
        if per_epoch < 1:
            raise ValueError(f"batch_size {batch_size} is larger than the {n} images; use a smaller batch.")
        current: dict = {}

        def batch(step: int, generator: torch.Generator | None = None):
            epoch, i = divmod(step, per_epoch)
            if current.get("epoch") != epoch:
                order_seed = step_seed(seed, epoch, 1)
                current.update(epoch=epoch, order=torch.randperm(n, generator=torch.Generator().manual_seed(order_seed)))
            idx = current["order"][i * batch_size:(i + 1) * batch_size]
            return to_model_range(self.images[idx]), self.labels[idx]

        return batch


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images_uint8.float().div_(127.5).sub_(1.0)


def as_model_input(images: torch.Tensor) -> torch.Tensor:
    """Images as a network reads them: uint8 [0, 255] mapped to [-1, 1], floats (generated
    samples) clamped to [-1, 1]."""
    return to_model_range(images) if images.dtype == torch.uint8 else images.float().clamp(-1, 1)


def torchvision_root() -> Path:
    """The folder handed to ``torchvision.datasets.FashionMNIST`` for downloads."""
    return cache_dir() / "data"


def _candidate_dirs() -> list[tuple[str, Path]]:
    dirs = []
    env = os.environ.get("GENSYNTH_DATA")
    if env:
        dirs += [(GENSYNTH_DATA, Path(env)), (GENSYNTH_DATA, Path(env) / "FashionMNIST" / "raw")]
    dirs.append((TORCHVISION_ROOT, torchvision_root() / "FashionMNIST" / "raw"))
    dirs.append((DEBIAN, DEBIAN_DIR))
    return dirs


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _complete(folder: Path) -> bool:
    return all(_find_file(folder, stem) for stem in _FILES.values())


def _version(path: Path) -> tuple[str, int, int]:
    """A file as the per-process caches below know it: its path, size and modification time."""
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


_read: dict[tuple[tuple[str, int, int], int], np.ndarray] = {}   # (version, header) -> its read-only bytes


def _read_idx(path: Path, header_bytes: int) -> np.ndarray:
    """The bytes of an IDX file after its header, read-only: each file is read (and unzipped) once per
    process, again only if its size or modification time changes."""
    key = (_version(path), header_bytes)
    if key not in _read:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            _read[key] = np.frombuffer(f.read(), dtype=np.uint8, offset=header_bytes)
    return _read[key]


_checked: dict[tuple[str, int, int], str | None] = {}   # (path, size, mtime) -> what is wrong, or None
_noted: set[str] = set()                                  # damaged copies already reported as skipped


def _file_problem(path: Path) -> str | None:
    """What is wrong with one file, or None when its content has the published checksum. Each file
    is hashed once per process (again only if its size or modification time changes)."""
    key = _version(path)
    if key not in _checked:
        digest = hashlib.md5(usedforsecurity=False)
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        except (EOFError, OSError, zlib.error) as error:     # a truncated or corrupt .gz
            _checked[key] = f"{path.name} is truncated or corrupt ({error})"
        else:
            _checked[key] = (None if digest.hexdigest() == CHECKSUMS[path.name.removesuffix(".gz")] else
                             f"{path.name} does not match the published checksum (truncated or altered)")
    return _checked[key]


def _damage(where: str, folder: Path) -> str | None:
    """One line naming the damaged files of a complete copy and what to do, or None if it is sound."""
    problems = [p for stem in _FILES.values() if (p := _file_problem(_find_file(folder, stem)))]
    if not problems:
        return None
    return f"Fashion-MNIST in {folder} ({where}) is damaged: {'; '.join(problems)}. To fix it, {_REPAIR[where]}."


def _found(where: str, folder: Path, skipped: list[str]) -> tuple[str, Path]:
    for report in skipped:
        if report not in _noted:
            _noted.add(report)
            print(f"gensynth_course: skipped a damaged copy. {report}", file=sys.stderr)
    return where, folder


def _download() -> Path:
    from torchvision.datasets import FashionMNIST

    root = torchvision_root()
    for train in (True, False):
        FashionMNIST(str(root), train=train, download=True)
    return root / "FashionMNIST" / "raw"


def locate_fashion_mnist(download: bool = True) -> tuple[str, Path]:
    """Return ``(where, folder)`` of a complete, verified copy of Fashion-MNIST, downloading if
    allowed. Damaged copies are skipped (with a note on stderr); if only damaged copies exist,
    :class:`FashionMNISTDamaged` says which files are damaged and what to do."""
    damaged = []
    for where, folder in _candidate_dirs():
        if _complete(folder):
            report = _damage(where, folder)
            if report is None:
                return _found(where, folder, damaged)
            damaged.append(report)
    if download:
        try:
            folder = _download()
        except Exception as error:  # no network, a proxy, a full disk ...
            reason = f"the download failed ({type(error).__name__}: {error})"
        else:
            report = _damage(TORCHVISION_ROOT, folder)    # torchvision keeps (damaged) files already there
            if report is None:
                return _found("downloaded by torchvision", folder, damaged)
            if report not in damaged:
                damaged.append(report)
    else:
        reason = "downloading was not allowed"
    if damaged:
        raise FashionMNISTDamaged(" ".join(damaged))
    looked = "\n".join(f"  - {folder}  ({where})" for where, folder in _candidate_dirs())
    raise FashionMNISTNotFound(
        f"Fashion-MNIST was not found, and {reason}.\nLooked in:\n{looked}\n"
        "Three ways to get it:\n"
        "  1. Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist\n"
        "  2. With internet: python -m gensynth_course data   (torchvision downloads it)\n"
        "  3. Copy the four *-ubyte(.gz) files into a folder and set GENSYNTH_DATA to it."
    )


def load_fashion_mnist(split: str = "train", download: bool = True) -> ImageDataset:
    """Load the ``train`` (60,000) or ``test`` (10,000) split into memory."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    where, folder = locate_fashion_mnist(download=download)
    images = _read_idx(_find_file(folder, _FILES[split, "images"]), 16)
    labels = _read_idx(_find_file(folder, _FILES[split, "labels"]), 8)
    images = torch.from_numpy(images.copy()).view(-1, 1, 28, 28)
    labels = torch.from_numpy(labels.astype(np.int64))
    if len(images) != len(labels):
        raise FashionMNISTNotFound(
            f"{folder} holds {len(images)} images but {len(labels)} labels for the {split} split: "
            "the files are damaged. Delete them and get the data again."
        )
    return ImageDataset(images, labels, f"{where}: {folder}")
