"""The lock file agrees with what it locks: every requirement of pyproject.toml (extras included)
pinned to a version its range allows, every pin hashed, and the Makefile's default PyTorch pinned."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gensynth_course.course import REPO_ROOT

LOCK = REPO_ROOT / "requirements" / "linux-x86_64-py311.txt"


def pins() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of every pin in the lock."""
    out = {}
    for block in re.split(r"\n(?=[a-z0-9])", LOCK.read_text()):
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if match:
            out[canonicalize_name(match[1])] = (match[2], block.count("--hash=sha256:"))
    return out


def test_every_requirement_is_pinned_within_its_range_and_hashed():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    locked = pins()
    assert len(locked) > 100 and all(hashes >= 1 for _, hashes in locked.values())
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is required by pyproject.toml but missing from {LOCK.name}: run `make lock`"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (
            f"{LOCK.name} pins {name}=={locked[name][0]}, outside pyproject.toml's {requirement.specifier}: run `make lock`")


def test_the_makefiles_default_pytorch_is_the_locked_one():
    default = re.search(r"^TORCH\s*\?=\s*(.+)$", (REPO_ROOT / "Makefile").read_text(), re.M)[1].split()
    locked = pins()
    for pin in default:
        name, version = pin.split("==")
        assert locked[canonicalize_name(name)][0] == version, f"Makefile asks for {pin}; {LOCK.name} has {locked[name][0]}"
