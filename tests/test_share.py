"""Sharing the model cache: export → import round trip, and archives that must be refused."""

import io
import json
import tarfile

import pytest
import torch

from gensynth_course import cache, share
from gensynth_course.__main__ import main


def _build():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def _train(model, checkpoint):
    with torch.no_grad():
        model.weight.fill_(0.5)
    return {"seconds": 1.0}


@pytest.fixture
def teacher(tmp_path, monkeypatch):
    """A cache with two chapters' models and one study, exported to an archive."""
    monkeypatch.setenv("GENSYNTH_CACHE", str(tmp_path / "teacher"))
    monkeypatch.setenv("GENSYNTH_BUDGET", "quick")
    _, info = cache.load_or_train("ch06_test", "gan", {"width": 3}, _build, _train)
    cache.load_or_train("ch05_test", "unet", {"width": 4}, _build, _train)
    cache.save_study("ch06_test", {"fd": 1.0}, {"gan": info["model_id"]})
    archive = tmp_path / "course-models.tar"
    manifest = share.export_cache(archive)
    monkeypatch.setenv("GENSYNTH_CACHE", str(tmp_path / "learner"))
    return archive, manifest, tmp_path


def _rewrite(archive, path, change):
    """A copy of ``archive`` with member ``path`` passed through ``change`` (bytes → bytes or None to drop)."""
    members = []
    with tarfile.open(archive) as tar:
        for member in tar:
            data = tar.extractfile(member).read()
            members.append((member.name, change(data) if member.name == path else data))
    out = archive.with_name("changed.tar")
    with tarfile.open(out, "w") as tar:
        for name, data in members:
            if data is not None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out


def test_export_then_import_gives_the_same_files_and_says_where_they_came_from(teacher, capsys):
    archive, manifest, root = teacher
    gan = next(m for m in manifest["models"] if m["name"] == "gan")
    assert gan["chapter"] == "ch06_test" and gan["budget"] == "quick" and gan["torch"] == torch.__version__
    assert gan["studies"] and gan["studies"][0].startswith("studies/ch06_test-")
    report = share.import_cache(archive)
    assert sorted(report["added"]) == sorted([m["path"] for m in manifest["models"]] + [gan["studies"][0]])
    assert not report["rejected"] and not report["skipped"]
    for entry in manifest["models"]:
        assert (root / "learner" / entry["path"]).read_bytes() == (root / "teacher" / entry["path"]).read_bytes()
    capsys.readouterr()
    model, info = cache.load_or_train("ch06_test", "gan", {"width": 3}, _build, lambda m, c: pytest.fail("trained"))
    assert "(imported from course-models.tar on " in capsys.readouterr().out
    assert torch.all(model.weight == 0.5)
    assert cache.load_study("ch06_test", {"gan": info["model_id"]}) == {"fd": 1.0}
    again = share.import_cache(archive)                                  # a second import changes nothing
    assert not again["added"] and len(again["skipped"]) == len(report["added"])


def test_a_chapter_filter_keeps_that_chapter(teacher, monkeypatch):
    archive, _, root = teacher
    monkeypatch.setenv("GENSYNTH_CACHE", str(root / "teacher"))
    manifest = share.export_cache(root / "only06.tar", ["06"])
    assert {m["chapter"] for m in manifest["models"]} == {"ch06_test"}
    with pytest.raises(ValueError, match="chapters must be two-digit chapter numbers"):
        share.export_cache(root / "bad.tar", ["six"])


def test_a_tampered_file_is_rejected_and_a_good_local_file_is_never_replaced(teacher):
    archive, manifest, root = teacher
    gan = next(m["path"] for m in manifest["models"] if m["name"] == "gan")
    tampered = _rewrite(archive, gan, lambda data: data[:-10] + bytes(10))
    report = share.import_cache(tampered)
    assert "checksum differs" in report["rejected"][gan] and not (root / "learner" / gan).exists()
    # a manifest edited to match a replaced file still needs a weights-only checkpoint of those hashes
    evil = io.BytesIO()
    torch.save({"format": 1, "state_dict": {}, "config": {"width": 99}, "code_hash": "0" * 10}, evil)

    def forged_manifest(data):
        forged = json.loads(data)
        for entry in forged["models"]:
            if entry["path"] == gan:
                entry.update(size=len(evil.getvalue()), sha256=share._sha256(evil.getvalue()))
        return json.dumps(forged).encode()

    forged = _rewrite(_rewrite(archive, gan, lambda data: evil.getvalue()), "manifest.json", forged_manifest)
    assert "hash is not the one its name says" in share.import_cache(forged)["rejected"][gan]
    # a good local copy that differs from the archive's (trained here, say) is kept, not overwritten
    local = root / "learner" / gan
    payload = torch.load(root / "teacher" / gan, weights_only=True)
    payload["state_dict"]["weight"] = torch.zeros(2, 3)
    cache.save_atomic(payload, local)
    before = local.read_bytes()
    assert f"{gan} (a good local copy differs; kept it)" in share.import_cache(archive)["skipped"]
    assert local.read_bytes() == before


def test_a_damaged_local_file_is_replaced_by_the_archives(teacher):
    archive, manifest, root = teacher
    path = root / "learner" / manifest["models"][0]["path"]
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    assert manifest["models"][0]["path"] in share.import_cache(archive)["added"]
    assert path.read_bytes() == (root / "teacher" / manifest["models"][0]["path"]).read_bytes()


def test_members_outside_the_manifest_or_the_cache_are_rejected(teacher):
    archive, _, root = teacher
    with tarfile.open(archive, "a") as tar:
        for name in ("../outside.pt", "models/ch06_test/extra-0123456789-0123456789.pt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    report = share.import_cache(archive)
    assert report["rejected"] == {"../outside.pt": "not in the manifest",
                                  "models/ch06_test/extra-0123456789-0123456789.pt": "not in the manifest"}
    assert not (root / "outside.pt").exists() and not (root / "learner").joinpath("..", "outside.pt").exists()


def test_a_truncated_or_foreign_archive_gets_one_clear_line(teacher, capsys, monkeypatch):
    archive, _, root = teacher
    monkeypatch.setenv("GENSYNTH_CLI", "1")          # main() sets it; restored after the test
    cut = root / "cut.tar"
    cut.write_bytes(archive.read_bytes()[:1000])
    with pytest.raises(SystemExit, match=r"cut.tar (is not a complete archive|has no readable manifest)"):
        main(["cache", "import", str(cut)])
    with pytest.raises(SystemExit, match="does not exist; give the path of a file written by `cache export`"):
        main(["cache", "import", str(root / "missing.tar")])
    main(["cache", "import", str(archive)])
    out = capsys.readouterr().out
    assert "3 added, 0 skipped, 0 rejected" in out
