"""Fashion-MNIST lookup: the order of places, the idx format, and the message when it is nowhere."""

import gzip
import hashlib

import numpy as np
import pytest
import torch

from gensynth_course.data import fashion_mnist as data


def _write_idx(folder, n, compress):
    """Fake Fashion-MNIST files, with their checksums registered as the published ones (the
    ``nowhere`` fixture gives each test its own copy of ``data.CHECKSUMS``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("t10k", n // 2)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        for kind, header, payload in (("images-idx3", b"\0\0\x08\x03" + count.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2, images),
                                      ("labels-idx1", b"\0\0\x08\x01" + count.to_bytes(4, "big"), labels)):
            raw = header + payload.tobytes()
            name = f"{split}-{kind}-ubyte"
            data.CHECKSUMS[name] = hashlib.md5(raw).hexdigest()
            if compress:
                with gzip.open(folder / (name + ".gz"), "wb") as f:
                    f.write(raw)
            else:
                (folder / name).write_bytes(raw)
    return images


@pytest.mark.parametrize("compress", [True, False])
def test_reads_idx_files_from_gensynth_data(nowhere, monkeypatch, compress):
    folder = nowhere / "mydata"
    _write_idx(folder, 20, compress)
    monkeypatch.setenv("GENSYNTH_DATA", str(folder))
    ds = data.load_fashion_mnist("train", download=False)
    assert ds.images.shape == (20, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.tolist() == [i % 10 for i in range(20)]
    assert "GENSYNTH_DATA" in ds.source
    assert len(data.load_fashion_mnist("test", download=False)) == 10


def test_each_file_is_read_once_and_every_load_gets_its_own_tensors(nowhere, monkeypatch):
    folder = nowhere / "mydata"
    _write_idx(folder, 20, compress=True)
    monkeypatch.setenv("GENSYNTH_DATA", str(folder))
    monkeypatch.setattr(data, "_read", {})
    opened = []
    real_open = gzip.open
    monkeypatch.setattr(data.gzip, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    first = data.load_fashion_mnist("train", download=False)
    reads = len(opened)
    first.images[0] = 0                                      # a learner's edit stays in their copy
    second = data.load_fashion_mnist("train", download=False)
    assert len(opened) == reads and not torch.equal(first.images, second.images) and len(data._read) == 2
    (folder / "train-labels-idx1-ubyte.gz").touch()          # a changed file is read again
    data.load_fashion_mnist("train", download=False)
    assert len(data._read) == 3


def test_gensynth_data_comes_before_the_debian_package(nowhere, monkeypatch):
    _write_idx(nowhere / "no-debian", 10, True)
    assert "Debian" in data.locate_fashion_mnist(download=False)[0]
    _write_idx(nowhere / "mine" / "FashionMNIST" / "raw", 10, True)
    monkeypatch.setenv("GENSYNTH_DATA", str(nowhere / "mine"))
    assert data.locate_fashion_mnist(download=False)[0] == "GENSYNTH_DATA"


def test_torchvision_root_comes_before_the_debian_package(nowhere):
    _write_idx(nowhere / "no-debian", 10, True)
    _write_idx(data.torchvision_root() / "FashionMNIST" / "raw", 10, False)
    assert data.locate_fashion_mnist(download=False)[0] == "torchvision root"


def test_missing_everywhere_gives_one_clear_message(nowhere, monkeypatch):
    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(data.FashionMNISTNotFound) as info:
        data.load_fashion_mnist("train")
    message = str(info.value)
    assert "network is unreachable" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "GENSYNTH_DATA" in message and "python -m gensynth_course data" in message
    with pytest.raises(data.FashionMNISTNotFound, match="downloading was not allowed"):
        data.load_fashion_mnist("train", download=False)


def test_batches_are_in_model_range_and_cover_an_epoch(nowhere, monkeypatch):
    _write_idx(nowhere / "d", 20, True)
    monkeypatch.setenv("GENSYNTH_DATA", str(nowhere / "d"))
    ds = data.load_fashion_mnist("train", download=False)
    batch = ds.batch_fn(5, seed=0)
    seen = torch.cat([batch(k)[1] for k in range(4)])
    assert sorted(seen.tolist()) == sorted(ds.labels.tolist())
    x, _ = batch(4)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    # batch k depends on (seed, k) alone: asked again, out of order, from a fresh function, it is the same
    assert torch.equal(ds.batch_fn(5, seed=0)(6)[0], batch(6)[0])
    assert not torch.equal(ds.batch_fn(5, seed=1)(6)[0], batch(6)[0])
    assert data.to_model_range(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]
