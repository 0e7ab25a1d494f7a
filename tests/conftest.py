import pytest


@pytest.fixture(autouse=True)
def in_a_notebook(monkeypatch):
    """Each test starts as a notebook would; the GENSYNTH_CLI=1 that an in-process ``main()`` sets
    is undone after it, so no test's messages depend on which tests ran before it."""
    monkeypatch.setenv("GENSYNTH_CLI", "")


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty model cache for one test."""
    monkeypatch.setenv("GENSYNTH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No copy of Fashion-MNIST anywhere: an empty cache, no Debian package, and a copy of the
    checksum table that a test's fake files may register in."""
    from gensynth_course.data import fashion_mnist as data

    monkeypatch.setenv("GENSYNTH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENSYNTH_DATA", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data, "CHECKSUMS", dict(data.CHECKSUMS))
    return tmp_path
