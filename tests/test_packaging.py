"""The package admits a range of releases (pyproject.toml); the tested set is pinned separately
(constraints.txt), and `make` installs with it."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = [line.split("#")[0].strip().split("==") for line in lines if line.split("#")[0].strip()]
    return {canonicalize_name(name): version for name, version in pairs}


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in listed]


def test_every_requirement_is_pinned_within_its_range():
    pinned = pins()
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} has no pin in constraints.txt"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]} is outside {requirement}"


def test_pyproject_pins_no_exact_release_of_torch():
    torch = next(r for r in requirements() if r.name == "torch")
    assert not any(s.operator == "==" for s in torch.specifier)
    assert torch.specifier.contains("2.4.0") and torch.specifier.contains(pins()["torch"])


def test_make_installs_the_tested_set():
    install = [line for line in (ROOT / "Makefile").read_text().splitlines() if "pip install" in line]
    assert install and all(re.search(r"(-c|--constraint) constraints\.txt", line) for line in install)
