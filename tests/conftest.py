import pytest


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty model cache for one test."""
    monkeypatch.setenv("GENSYNTH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
